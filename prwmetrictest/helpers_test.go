package prwmetrictest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.uber.org/goleak"
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
