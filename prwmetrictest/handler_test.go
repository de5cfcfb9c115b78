package prwmetrictest_test

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

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
