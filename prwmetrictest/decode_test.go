package prwmetrictest_test

// A valid request of each protocol, decoded and read back, and the rules
// only Remote-Write 2.0 has.

import (
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

func TestValidRequestV1(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()

	resp := mustPost(t, srv.URL(), v1Headers(), encodeV1(t, validV1()))
	if resp.status != http.StatusNoContent {
		t.Fatalf("status = %d (%s), want 204", resp.status, resp.body)
	}
	if v := srv.Violations(); len(v) != 0 {
		t.Fatalf("violations for a valid request: %q", v)
	}
	if !strings.HasSuffix(srv.URL(), "/api/v1/write") || !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want http://127.0.0.1:PORT/api/v1/write", srv.URL())
	}

	t.Run("Latest", func(t *testing.T) {
		got, err := srv.Latest("requests_total", map[string]string{"path": "/"})
		if err != nil {
			t.Fatal(err)
		}
		if want := (prwmetrictest.Sample{Timestamp: t2, Value: 3}); got != want {
			t.Errorf("Latest = %+v, want %+v", got, want)
		}
	})
	t.Run("Samples", func(t *testing.T) {
		got, err := srv.Samples("requests_total", map[string]string{"path": "/"})
		if err != nil {
			t.Fatal(err)
		}
		want := []prwmetrictest.Sample{{Timestamp: t1, Value: 1}, {Timestamp: t2, Value: 3}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Samples (-want +got):\n%s", d)
		}
	})
	t.Run("ClassicHistogram", func(t *testing.T) {
		got, err := srv.ClassicHistogram("latency_seconds", nil)
		if err != nil {
			t.Fatal(err)
		}
		want := prwmetrictest.ClassicHistogram{
			Labels:    prwmetrictest.Labels{"__name__": "latency_seconds", "job": "app"},
			Timestamp: t1,
			Buckets:   []prwmetrictest.Bucket{{0.1, 1}, {1, 3}, {math.Inf(1), 4}},
			Count:     4,
			Sum:       2.5,
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("ClassicHistogram (-want +got):\n%s", d)
		}
	})
	t.Run("NativeHistograms", func(t *testing.T) {
		got, err := srv.NativeHistograms("size_bytes", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("got %d histograms, want 1", len(got))
		}
		h := got[0]
		if h.Timestamp != t1 || h.Float || h.Histogram.Count != 5 || h.Histogram.Sum != 12 || h.Histogram.ZeroCount != 1 {
			t.Errorf("histogram = %+v / %+v", h, h.Histogram)
		}
		if d := cmp.Diff([]float64{1, 3}, h.Histogram.PositiveBuckets); d != "" {
			t.Errorf("absolute positive buckets (-want +got):\n%s", d)
		}
	})
	t.Run("Exemplars", func(t *testing.T) {
		got, err := srv.Exemplars("requests_total", map[string]string{"path": "/"})
		if err != nil {
			t.Fatal(err)
		}
		want := []prwmetrictest.Exemplar{{
			Labels:    prwmetrictest.Labels{"trace_id": "0af7651916cd43dd8448eb211c80319c"},
			Value:     2,
			Timestamp: t2,
		}}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Exemplars (-want +got):\n%s", d)
		}
	})
	t.Run("Metadata", func(t *testing.T) {
		want := []prwmetrictest.Metadata{
			{MetricFamilyName: "latency_seconds", Type: "histogram", Help: "Latency.", Unit: "seconds"},
			{MetricFamilyName: "requests", Type: "counter", Help: "Requests served."},
		}
		if d := cmp.Diff(want, srv.Metadata()); d != "" {
			t.Errorf("Metadata (-want +got):\n%s", d)
		}
	})
	t.Run("Requests", func(t *testing.T) {
		reqs := srv.Requests()
		if len(reqs) != 1 || srv.RequestCount() != 1 {
			t.Fatalf("got %d requests (count %d), want 1", len(reqs), srv.RequestCount())
		}
		r := reqs[0]
		if r.Seq != 1 || r.Method != http.MethodPost || r.Path != "/api/v1/write" || r.Protocol != prwmetrictest.ProtocolV1 || !r.Stored || r.Status != 204 {
			t.Errorf("request = seq %d %s %s proto %v stored %v status %d", r.Seq, r.Method, r.Path, r.Protocol, r.Stored, r.Status)
		}
		if got := r.Header.Get("User-Agent"); got != "prwmetrictest-test/1" {
			t.Errorf("raw User-Agent = %q", got)
		}
		if r.V1 == nil || len(r.V1.Timeseries) != len(validV1().Timeseries) {
			t.Errorf("decoded V1 request missing or incomplete: %v", r.V1)
		}
		if r.V2 != nil {
			t.Errorf("V2 set on a 1.0 request")
		}
	})
	t.Run("Series", func(t *testing.T) {
		var names []string
		for _, s := range srv.Series() {
			names = append(names, s.Labels.String())
		}
		want := []string{
			`latency_seconds_bucket{job="app", le="+Inf"}`,
			`latency_seconds_bucket{job="app", le="0.1"}`,
			`latency_seconds_bucket{job="app", le="1"}`,
			`latency_seconds_count{job="app"}`,
			`latency_seconds_sum{job="app"}`,
			`requests_total{job="app", path="/"}`,
			`requests_total{job="app", path="/x"}`,
			`size_bytes{job="app"}`,
		}
		if d := cmp.Diff(want, names); d != "" {
			t.Errorf("Series (-want +got):\n%s", d)
		}
	})
}

func TestV2(t *testing.T) {
	// symbols: 0 "", 1 __name__, 2 requests_total, 3 job, 4 app, 5 help, 6 unit, 7 trace_id, 8 abc, 9 size_bytes
	syms := []string{"", "__name__", "requests_total", "job", "app", "Requests served.", "1", "trace_id", "abc", "size_bytes"}
	valid := func() *writev2.Request {
		return &writev2.Request{
			Symbols: syms,
			Timeseries: []writev2.TimeSeries{
				{
					LabelsRefs: []uint32{1, 2, 3, 4},
					Samples:    []writev2.Sample{{Value: 3, Timestamp: t2, StartTimestamp: t1}},
					Exemplars:  []writev2.Exemplar{{LabelsRefs: []uint32{7, 8}, Value: 1, Timestamp: t2}},
					Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: 5, UnitRef: 0},
				},
				{
					LabelsRefs: []uint32{1, 9, 3, 4},
					Histograms: []writev2.Histogram{{
						Count:          &writev2.Histogram_CountInt{CountInt: 2},
						Sum:            3,
						ZeroCount:      &writev2.Histogram_ZeroCountInt{ZeroCountInt: 0},
						PositiveSpans:  []writev2.BucketSpan{{Offset: 1, Length: 1}},
						PositiveDeltas: []int64{2},
						Timestamp:      t2,
						StartTimestamp: t1,
					}},
					Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_HISTOGRAM},
				},
			},
		}
	}

	t.Run("valid", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		defer srv.Close()
		r := mustPost(t, srv.URL(), v2Headers(), encodeV2(t, valid()))
		if r.status != 204 {
			t.Fatalf("status = %d (%s)", r.status, r.body)
		}
		for h, want := range map[string]string{
			prwmetrictest.HeaderSamplesWritten:    "1",
			prwmetrictest.HeaderHistogramsWritten: "1",
			prwmetrictest.HeaderExemplarsWritten:  "1",
		} {
			if got := r.header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		if v := srv.Violations(); len(v) != 0 {
			t.Fatalf("violations: %q", v)
		}
		got, err := srv.Latest("requests_total", map[string]string{"job": "app"})
		if want := (prwmetrictest.Sample{Timestamp: t2, Value: 3, StartTimestamp: t1}); err != nil || got != want {
			t.Errorf("Latest = %+v, %v; want %+v", got, err, want)
		}
		hs, err := srv.NativeHistograms("size_bytes", nil)
		if err != nil || len(hs) != 1 || hs[0].StartTimestamp != t1 || hs[0].Histogram.Count != 2 {
			t.Errorf("NativeHistograms = %+v, %v", hs, err)
		}
		wantMeta := []prwmetrictest.Metadata{
			{MetricFamilyName: "requests_total", Type: "counter", Help: "Requests served."},
			{MetricFamilyName: "size_bytes", Type: "histogram"},
		}
		if d := cmp.Diff(wantMeta, srv.Metadata()); d != "" {
			t.Errorf("Metadata (-want +got):\n%s", d)
		}
		if reqs := srv.Requests(); reqs[0].Protocol != prwmetrictest.ProtocolV2 || reqs[0].V2 == nil || reqs[0].V1 != nil {
			t.Errorf("request recorded as %v (V1 %v, V2 %v)", reqs[0].Protocol, reqs[0].V1 != nil, reqs[0].V2 != nil)
		}
	})

	tests := []struct {
		name          string
		edit          func(*writev2.Request)
		wantViolation string
	}{
		{"symbols[0] not empty", func(r *writev2.Request) { r.Symbols = append([]string{"x"}, r.Symbols[1:]...) }, `symbols[0] == ""`},
		{"ref outside table", func(r *writev2.Request) { r.Timeseries[0].LabelsRefs[3] = 99 }, "outside the symbols table"},
		{"odd labels_refs", func(r *writev2.Request) { r.Timeseries[0].LabelsRefs = []uint32{1, 2, 3} }, "odd length 3"},
		{"unsorted labels", func(r *writev2.Request) { r.Timeseries[0].LabelsRefs = []uint32{3, 4, 1, 2} }, "labels not sorted"},
		{"samples and histograms", func(r *writev2.Request) {
			r.Timeseries[1].Samples = []writev2.Sample{{Value: 1, Timestamp: t2}}
		}, "both samples and histograms"},
		{"exemplar without timestamp", func(r *writev2.Request) { r.Timeseries[0].Exemplars[0].Timestamp = 0 }, "exemplar without timestamp"},
		{"start after timestamp", func(r *writev2.Request) { r.Timeseries[0].Samples[0].StartTimestamp = t2 + 1 }, "start_timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			defer srv.Close()
			req := valid()
			req.Symbols = append([]string(nil), req.Symbols...)
			tt.edit(req)
			r := mustPost(t, srv.URL(), v2Headers(), encodeV2(t, req))
			if r.status != 400 {
				t.Errorf("status = %d, want 400", r.status)
			}
			if got := r.header.Get(prwmetrictest.HeaderSamplesWritten); got != "0" {
				t.Errorf("%s = %q, want \"0\" for a rejected request", prwmetrictest.HeaderSamplesWritten, got)
			}
			if v := srv.Violations(); !containsSub(v, tt.wantViolation) {
				t.Errorf("Violations() = %q, want %q", v, tt.wantViolation)
			}
		})
	}

	t.Run("RemoteWrite1Only answers 415", func(t *testing.T) {
		srv := prwmetrictest.NewServer(prwmetrictest.WithRemoteWrite1Only())
		defer srv.Close()
		r := mustPost(t, srv.URL(), v2Headers(), encodeV2(t, valid()))
		if r.status != http.StatusUnsupportedMediaType {
			t.Errorf("status = %d, want 415", r.status)
		}
		if v := srv.Violations(); len(v) != 0 {
			t.Errorf("a 2.0 request to a 1.0-only receiver is not a violation, got %q", v)
		}
		if r := mustPost(t, srv.URL(), v1Headers(), encodeV1(t, validV1())); r.status != 204 {
			t.Errorf("1.0 request: status = %d, want 204", r.status)
		}
	})
}
