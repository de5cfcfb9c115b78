package prwmetrictest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.uber.org/goleak"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestMain fails the tests if a goroutine outlives them: Close must stop
// everything the server started, delayed answers included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Fixed timestamps (ms) keep the tests deterministic.
const (
	t1 = int64(1_700_000_000_000)
	t2 = t1 + 15_000
)

func v1Headers() http.Header {
	return http.Header{
		"Content-Encoding":                  {"snappy"},
		"Content-Type":                      {"application/x-protobuf"},
		"X-Prometheus-Remote-Write-Version": {"0.1.0"},
		"User-Agent":                        {"prwmetrictest-test/1"},
	}
}

func v2Headers() http.Header {
	h := v1Headers()
	h.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
	h.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
	return h
}

func encodeV1(t testing.TB, wr *prompb.WriteRequest) []byte {
	t.Helper()
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return snappy.Encode(nil, raw)
}

func encodeV2(t testing.TB, r *writev2.Request) []byte {
	t.Helper()
	raw, err := r.Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return snappy.Encode(nil, raw)
}

type response struct {
	status int
	header http.Header
	body   string
}

func post(t testing.TB, ctx context.Context, client *http.Client, method, url string, h http.Header, body []byte) (response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header = h.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

func mustPost(t testing.TB, url string, h http.Header, body []byte) response {
	t.Helper()
	r, err := post(t, context.Background(), http.DefaultClient, http.MethodPost, url, h, body)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	return r
}

func lbls(kv ...string) []prompb.Label {
	out := make([]prompb.Label, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func series(labels []prompb.Label, samples ...prompb.Sample) prompb.TimeSeries {
	return prompb.TimeSeries{Labels: labels, Samples: samples}
}

// validV1 is a request a correct sender could produce: a counter, a classic
// histogram, a native histogram, an exemplar and metadata.
func validV1() *prompb.WriteRequest {
	hist := func(le string, v float64) prompb.TimeSeries {
		return series(lbls("__name__", "latency_seconds_bucket", "job", "app", "le", le), prompb.Sample{Timestamp: t1, Value: v})
	}
	return &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{
				Labels:  lbls("__name__", "requests_total", "job", "app", "path", "/"),
				Samples: []prompb.Sample{{Timestamp: t1, Value: 1}, {Timestamp: t2, Value: 3}},
				Exemplars: []prompb.Exemplar{{
					Labels:    lbls("trace_id", "0af7651916cd43dd8448eb211c80319c"),
					Value:     2,
					Timestamp: t2,
				}},
			},
			series(lbls("__name__", "requests_total", "job", "app", "path", "/x"), prompb.Sample{Timestamp: t1, Value: 7}),
			hist("0.1", 1), hist("1", 3), hist("+Inf", 4),
			series(lbls("__name__", "latency_seconds_count", "job", "app"), prompb.Sample{Timestamp: t1, Value: 4}),
			series(lbls("__name__", "latency_seconds_sum", "job", "app"), prompb.Sample{Timestamp: t1, Value: 2.5}),
			{
				Labels: lbls("__name__", "size_bytes", "job", "app"),
				Histograms: []prompb.Histogram{{
					Count:          &prompb.Histogram_CountInt{CountInt: 5},
					Sum:            12,
					Schema:         0,
					ZeroThreshold:  1e-128,
					ZeroCount:      &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
					PositiveSpans:  []prompb.BucketSpan{{Offset: 0, Length: 2}},
					PositiveDeltas: []int64{1, 2}, // absolute 1, 3
					Timestamp:      t1,
				}},
			},
		},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "requests", Help: "Requests served.", Unit: ""},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "latency_seconds", Help: "Latency.", Unit: "seconds"},
		},
	}
}

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

func TestFindErrors(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	mustPost(t, srv.URL(), v1Headers(), encodeV1(t, validV1()))

	tests := []struct {
		name    string
		metric  string
		match   map[string]string
		wantErr string
	}{
		{"unknown name", "nope_total", nil, `no series named "nope_total" received; names received: latency_seconds_bucket, `},
		{"no label match", "requests_total", map[string]string{"path": "/y"}, `no series matches requests_total{path="/y"}`},
		{"ambiguous", "requests_total", nil, `2 series match requests_total{}, add labels to pick one`},
		{"absent label must be absent", "requests_total", map[string]string{"path": ""}, `no series matches`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := srv.Latest(tt.metric, tt.match)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	t.Run("empty value matches absent label", func(t *testing.T) {
		if _, err := srv.Latest("latency_seconds_sum", map[string]string{"path": ""}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMalformedRequests checks that every broken rule is flagged, answered
// with an error status naming it, and that nothing is stored.
func TestMalformedRequests(t *testing.T) {
	okSeries := func() prompb.TimeSeries {
		return series(lbls("__name__", "up", "job", "app"), prompb.Sample{Timestamp: t1, Value: 1})
	}
	body := func(ts ...prompb.TimeSeries) func(t testing.TB) []byte {
		return func(t testing.TB) []byte { return encodeV1(t, &prompb.WriteRequest{Timeseries: ts}) }
	}
	okBody := body(okSeries())
	headers := func(edit func(http.Header)) http.Header {
		h := v1Headers()
		edit(h)
		return h
	}
	nativeBad := prompb.TimeSeries{
		Labels: lbls("__name__", "h", "job", "app"),
		Histograms: []prompb.Histogram{{
			Count:          &prompb.Histogram_CountInt{CountInt: 3},
			PositiveSpans:  []prompb.BucketSpan{{Offset: 0, Length: 3}},
			PositiveDeltas: []int64{1, 1}, // span says 3 buckets
			Timestamp:      t1,
		}},
	}
	bucket := func(le string, v float64) prompb.TimeSeries {
		return series(lbls("__name__", "lat_bucket", "le", le), prompb.Sample{Timestamp: t1, Value: v})
	}
	withExemplar := func(e prompb.Exemplar) prompb.TimeSeries {
		s := okSeries()
		s.Exemplars = []prompb.Exemplar{e}
		return s
	}

	tests := []struct {
		name          string
		opts          []prwmetrictest.Option
		method        string
		path          string
		header        http.Header
		body          func(t testing.TB) []byte
		wantStatus    int
		wantViolation string
	}{
		{name: "missing Content-Encoding", header: headers(func(h http.Header) { h.Del("Content-Encoding") }), body: okBody,
			wantStatus: 400, wantViolation: "missing header Content-Encoding"},
		{name: "wrong Content-Type", header: headers(func(h http.Header) { h.Set("Content-Type", "application/json") }), body: okBody,
			wantStatus: 400, wantViolation: `header Content-Type is "application/json"`},
		{name: "unknown proto message", header: headers(func(h http.Header) { h.Set("Content-Type", "application/x-protobuf;proto=foo.Bar") }), body: okBody,
			wantStatus: 415, wantViolation: `unknown message "foo.Bar"`},
		{name: "wrong version", header: headers(func(h http.Header) { h.Set("X-Prometheus-Remote-Write-Version", "0.2.0") }), body: okBody,
			wantStatus: 400, wantViolation: `X-Prometheus-Remote-Write-Version is "0.2.0", want "0.1.0"`},
		{name: "missing User-Agent", header: headers(func(h http.Header) { h.Set("User-Agent", "") }), body: okBody,
			wantStatus: 400, wantViolation: "missing header User-Agent"},
		{name: "bad snappy", body: func(testing.TB) []byte { return []byte("definitely not snappy") },
			wantStatus: 400, wantViolation: "not snappy block-compressed"},
		{name: "framed snappy", body: func(t testing.TB) []byte {
			var buf bytes.Buffer
			w := snappy.NewBufferedWriter(&buf)
			raw, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{okSeries()}}).Marshal()
			_, _ = w.Write(raw)
			_ = w.Close()
			return buf.Bytes()
		}, wantStatus: 400, wantViolation: "snappy framed (stream) format"},
		{name: "not protobuf", body: func(testing.TB) []byte { return snappy.Encode(nil, []byte{0xff, 0xff, 0xff}) },
			wantStatus: 400, wantViolation: "not a prometheus.WriteRequest protobuf"},
		{name: "unsorted labels", body: body(series(lbls("__name__", "up", "zone", "a", "job", "app"), prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: `labels not sorted by name: "job" comes after "zone"`},
		{name: "__name__ not first", body: body(series(lbls("a", "b", "__name__", "up"), prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: `labels not sorted by name: "__name__" comes after "a"`},
		{name: "repeated label", body: body(series(lbls("__name__", "up", "job", "a", "job", "b"), prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: `label "job" appears more than once`},
		{name: "empty value", body: body(series(lbls("__name__", "up", "job", ""), prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: `label "job" has an empty value`},
		{name: "empty name", body: body(series(lbls("", "x", "__name__", "up"), prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: "has an empty name"},
		{name: "no metric name", body: body(series(lbls("job", "app"), prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: "no __name__ label"},
		{name: "bad metric name", body: body(series(lbls("__name__", "1up"), prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: `metric name "1up" does not match`},
		{name: "bad label name", body: body(series(lbls("__name__", "up", "a-b", "x"), prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: `label name "a-b" does not match`},
		{name: "reserved label name", body: body(series(lbls("__name__", "up", "__x", "x"), prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: `label name "__x" is reserved`},
		{name: "samples out of order", body: body(series(lbls("__name__", "up"), prompb.Sample{Timestamp: t2, Value: 1}, prompb.Sample{Timestamp: t1, Value: 1})),
			wantStatus: 400, wantViolation: "samples must be sent in timestamp order"},
		{name: "nanosecond timestamp", body: body(series(lbls("__name__", "up"), prompb.Sample{Timestamp: t1 * 1_000_000, Value: 1})),
			wantStatus: 400, wantViolation: "is not in milliseconds"},
		{name: "invalid native histogram", body: body(nativeBad),
			wantStatus: 400, wantViolation: "invalid native histogram"},
		{name: "classic histogram without +Inf", body: body(bucket("1", 1), bucket("2", 2), series(lbls("__name__", "lat_count"), prompb.Sample{Timestamp: t1, Value: 2})),
			wantStatus: 400, wantViolation: `no le="+Inf" bucket`},
		{name: "classic histogram not cumulative", body: body(bucket("1", 3), bucket("2", 2), bucket("+Inf", 3)),
			wantStatus: 400, wantViolation: "bucket counts must be cumulative"},
		{name: "classic histogram +Inf != count", body: body(bucket("+Inf", 3), series(lbls("__name__", "lat_count"), prompb.Sample{Timestamp: t1, Value: 4})),
			wantStatus: 400, wantViolation: `le="+Inf" bucket is 3 but _count is 4`},
		{name: "exemplar labels too long", body: body(withExemplar(prompb.Exemplar{Labels: lbls("trace_id", strings.Repeat("a", 130)), Value: 1, Timestamp: t1})),
			wantStatus: 400, wantViolation: "more than the limit of 128"},
		{name: "exemplar with stale NaN", body: body(withExemplar(prompb.Exemplar{Labels: lbls("trace_id", "a"), Value: math.Float64frombits(prwmetrictest.StaleNaN), Timestamp: t1})),
			wantStatus: 400, wantViolation: "exemplar value is the stale NaN"},
		{name: "GET", method: http.MethodGet, body: func(testing.TB) []byte { return nil },
			wantStatus: 405, wantViolation: "method GET, want POST"},
		{name: "wrong path", path: "/write", body: okBody,
			wantStatus: 404, wantViolation: `path "/write", want "/api/v1/write"`},
		{name: "body too large", opts: []prwmetrictest.Option{prwmetrictest.WithMaxBodySize(16)}, body: func(testing.TB) []byte { return bytes.Repeat([]byte{1}, 1024) },
			wantStatus: 413, wantViolation: "larger than the limit of 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer(tt.opts...)
			defer srv.Close()
			method, url, h := http.MethodPost, srv.URL(), v1Headers()
			if tt.method != "" {
				method = tt.method
			}
			if tt.path != "" {
				url = strings.TrimSuffix(url, "/api/v1/write") + tt.path
			}
			if tt.header != nil {
				h = tt.header
			}
			resp, err := post(t, context.Background(), http.DefaultClient, method, url, h, tt.body(t))
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", resp.status, tt.wantStatus, resp.body)
			}
			if !strings.Contains(resp.body, tt.wantViolation) {
				t.Errorf("response body %q does not name the violation %q", resp.body, tt.wantViolation)
			}
			v := srv.Violations()
			if !containsSub(v, "request 1: ", tt.wantViolation) {
				t.Errorf("Violations() = %q, want one containing %q", v, tt.wantViolation)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Stored || reqs[0].Status != tt.wantStatus || !containsSub(reqs[0].Violations, tt.wantViolation) {
				t.Errorf("recorded request = %+v", reqs)
			}
			if s := srv.Series(); len(s) != 0 {
				t.Errorf("a rejected request was stored: %v", s)
			}
		})
	}
}

// containsSub reports whether an entry of list contains every one of subs.
func containsSub(list []string, subs ...string) bool {
	for _, s := range list {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(s, sub)
		}
		if all {
			return true
		}
	}
	return false
}

func TestOrderAcrossRequests(t *testing.T) {
	up := func(ts int64, v float64) []byte {
		return encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(lbls("__name__", "up"), prompb.Sample{Timestamp: ts, Value: v})}})
	}
	tests := []struct {
		name          string
		second        []byte
		wantStatus    int
		wantViolation string // "" for none
	}{
		{"newer sample", up(t2, 2), 204, ""},
		{"same sample resent", up(t1, 1), 204, ""},
		{"older sample", up(t1-1, 1), 400, "is older than the previous sample"},
		{"same timestamp other value", up(t1, 5), 400, "two samples at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			defer srv.Close()
			if r := mustPost(t, srv.URL(), v1Headers(), up(t1, 1)); r.status != 204 {
				t.Fatalf("first request: %d %s", r.status, r.body)
			}
			r := mustPost(t, srv.URL(), v1Headers(), tt.second)
			if r.status != tt.wantStatus {
				t.Errorf("status = %d, want %d (%s)", r.status, tt.wantStatus, r.body)
			}
			v := srv.Violations()
			if tt.wantViolation == "" && len(v) != 0 || tt.wantViolation != "" && !containsSub(v, "request 2: ", tt.wantViolation) {
				t.Errorf("Violations() = %q, want %q", v, tt.wantViolation)
			}
		})
	}
}

func TestLenientStoresAndRecords(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithLenient())
	defer srv.Close()
	body := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "up", "zone", "a", "job", "app"), prompb.Sample{Timestamp: t1, Value: 1}),
	}})
	if r := mustPost(t, srv.URL(), v1Headers(), body); r.status != 204 {
		t.Fatalf("status = %d, want 204 in lenient mode", r.status)
	}
	if v := srv.Violations(); !containsSub(v, "labels not sorted") {
		t.Errorf("Violations() = %q, want the unsorted labels flagged", v)
	}
	got, err := srv.Latest("up", map[string]string{"zone": "a", "job": "app"})
	if err != nil || got.Value != 1 {
		t.Errorf("Latest = %v, %v; want the series stored", got, err)
	}
	// An undecodable body can't be stored, lenient or not.
	if r := mustPost(t, srv.URL(), v1Headers(), []byte("junk")); r.status != 400 {
		t.Errorf("junk body: status = %d, want 400", r.status)
	}
}

func TestRespondWith(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	srv.RespondWith(2, prwmetrictest.Response{Status: 503, RetryAfter: "3", Body: "overloaded"})
	srv.RespondWith(1, prwmetrictest.Response{Status: 429, Header: http.Header{"X-Test": {"yes"}}})

	body := func(ts int64) []byte {
		return encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(lbls("__name__", "up"), prompb.Sample{Timestamp: ts, Value: 1})}})
	}
	want := []struct {
		status     int
		retryAfter string
		xTest      string
		body       string
		stored     bool
	}{
		{503, "3", "", "overloaded", false},
		{503, "3", "", "overloaded", false},
		{429, "", "yes", "", false},
		{204, "", "", "", true},
	}
	for i, w := range want {
		r := mustPost(t, srv.URL(), v1Headers(), body(t1+int64(i)))
		if r.status != w.status || r.header.Get("Retry-After") != w.retryAfter || r.header.Get("X-Test") != w.xTest || r.body != w.body {
			t.Errorf("request %d: got %d Retry-After=%q X-Test=%q body=%q, want %+v", i+1, r.status, r.header.Get("Retry-After"), r.header.Get("X-Test"), r.body, w)
		}
	}
	for i, r := range srv.Requests() {
		if r.Stored != want[i].stored {
			t.Errorf("request %d stored = %v, want %v", i+1, r.Stored, want[i].stored)
		}
	}
	samples, err := srv.Samples("up", nil)
	if err != nil || len(samples) != 1 || samples[0].Timestamp != t1+3 {
		t.Errorf("Samples = %v, %v; want only the accepted request's sample", samples, err)
	}

	t.Run("Always and ClearResponses", func(t *testing.T) {
		srv.RespondWith(prwmetrictest.Always, prwmetrictest.Response{Status: 500})
		for i := range 3 {
			if r := mustPost(t, srv.URL(), v1Headers(), body(t2+int64(i))); r.status != 500 {
				t.Errorf("status = %d, want 500", r.status)
			}
		}
		srv.ClearResponses()
		if r := mustPost(t, srv.URL(), v1Headers(), body(t2+10)); r.status != 204 {
			t.Errorf("after ClearResponses status = %d, want 204", r.status)
		}
	})
}

func TestDelay(t *testing.T) {
	body := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(lbls("__name__", "up"), prompb.Sample{Timestamp: t1, Value: 1})}})

	t.Run("holds the answer back", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		defer srv.Close()
		const delay = 100 * time.Millisecond
		srv.RespondWith(1, prwmetrictest.Response{Delay: delay})
		start := time.Now()
		r := mustPost(t, srv.URL(), v1Headers(), body)
		if elapsed := time.Since(start); elapsed < delay {
			t.Errorf("answered after %v, want at least %v", elapsed, delay)
		}
		if r.status != 204 {
			t.Errorf("status = %d, want 204 (Status 0 keeps the normal answer)", r.status)
		}
	})

	t.Run("client timeout ends it", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		defer srv.Close()
		srv.RespondWith(1, prwmetrictest.Response{Delay: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := post(t, ctx, http.DefaultClient, http.MethodPost, srv.URL(), v1Headers(), body)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the client's deadline", err)
		}
		// The backend wrote the data before it stalled, like a real slow one.
		if _, err := srv.Latest("up", nil); err != nil {
			t.Errorf("data of the delayed request not stored: %v", err)
		}
	})

	t.Run("Close ends it", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		srv.RespondWith(1, prwmetrictest.Response{Delay: time.Hour})
		done := make(chan error, 1)
		go func() {
			_, err := post(t, context.Background(), http.DefaultClient, http.MethodPost, srv.URL(), v1Headers(), body)
			done <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.WaitForRequests(ctx, 1); err != nil {
			t.Fatal(err)
		}
		srv.Close() // must not wait an hour
		if err := <-done; err != nil {
			t.Logf("client saw %v (fine: the server closed)", err)
		}
	})
}

func TestWaitForRequests(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	body := encodeV1(t, validV1())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := srv.WaitForRequests(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForRequests with no request: err = %v, want deadline exceeded", err)
	}

	const n = 3
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errc <- srv.WaitForRequests(ctx, n)
	}()
	for range n {
		mustPost(t, srv.URL(), v1Headers(), body)
	}
	if err := <-errc; err != nil {
		t.Fatalf("WaitForRequests: %v", err)
	}
	if got := srv.RequestCount(); got != n {
		t.Errorf("RequestCount = %d, want %d", got, n)
	}

	srv.Close()
	if err := srv.WaitForRequests(context.Background(), n+1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("WaitForRequests after Close: err = %v, want server closed", err)
	}
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

func TestStartTLS(t *testing.T) {
	srv := prwmetrictest.NewUnstartedServer()
	srv.StartTLS()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") || srv.Certificate() == nil {
		t.Fatalf("URL = %q, certificate %v", srv.URL(), srv.Certificate())
	}
	r, err := post(t, context.Background(), srv.Client(), http.MethodPost, srv.URL(), v1Headers(), encodeV1(t, validV1()))
	if err != nil || r.status != 204 {
		t.Fatalf("post over TLS: %v, %+v", err, r)
	}
}

// TestServerConcurrentSafe sends and reads from many goroutines; run with
// -race.
func TestServerConcurrentSafe(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	const senders, perSender = 8, 10
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range senders {
		wg.Go(func() {
			for j := range perSender {
				body := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
					series(lbls("__name__", "up", "sender", string(rune('a'+i))), prompb.Sample{Timestamp: t1 + int64(j), Value: float64(j)}),
				}})
				r, err := post(t, context.Background(), http.DefaultClient, http.MethodPost, srv.URL(), v1Headers(), body)
				if err != nil || r.status != 204 {
					t.Errorf("post: %v %+v", err, r)
				}
			}
		})
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, s := range srv.Series() {
					_ = s.Labels.String()
				}
				_, _ = srv.Latest("up", map[string]string{"sender": "a"})
				_ = srv.Requests()
				_ = srv.Violations()
				srv.RespondWith(0, prwmetrictest.Response{})
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	if got := srv.RequestCount(); got != senders*perSender {
		t.Errorf("RequestCount = %d, want %d", got, senders*perSender)
	}
	for i := range senders {
		samples, err := srv.Samples("up", map[string]string{"sender": string(rune('a' + i))})
		if err != nil || len(samples) != perSender {
			t.Errorf("sender %d: %d samples, %v", i, len(samples), err)
		}
	}
	if v := srv.Violations(); len(v) != 0 {
		t.Errorf("violations: %q", v)
	}
}
