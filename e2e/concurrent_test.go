package e2e

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric"
)

// concurrentTarget is a started backend of TestConcurrentRequests.
type concurrentTarget struct {
	baseURL string
	// read returns the float series matching selector in [from, to].
	read func(t *testing.T, selector string, from, to time.Time) map[string][]sample
	// since reads the server's own counters and returns a check to run
	// after the exports: it must have answered exactly requests write
	// requests, all with success, stored exactly samples samples and
	// refused none.
	since func(t *testing.T) func(t *testing.T, requests, samples int)
}

func promTarget(s *promServer) concurrentTarget {
	return concurrentTarget{
		baseURL: s.baseURL,
		read: func(t *testing.T, selector string, _, to time.Time) map[string][]sample {
			return s.readRange(t, selector, to, time.Hour).Floats
		},
		since: func(t *testing.T) func(*testing.T, int, int) {
			before := s.writeStats(t)
			return func(t *testing.T, requests, samples int) {
				after := s.writeStats(t)
				for code, n := range after.codes.sub(before.codes) {
					if code == "204" && n != float64(requests) || code != "204" && n != 0 {
						t.Errorf("%s answered %v write requests with %s; want all %d with 204", s.name, n, code, requests)
					}
				}
				// The out-of-order, out-of-bounds and too-old counters.
				for name, n := range after.rejected.sub(before.rejected) {
					if n != 0 {
						t.Errorf("%s: %s rose by %v", s.name, name, n)
					}
				}
				if n := after.appended - before.appended; n != float64(samples) {
					t.Errorf("%s: prometheus_tsdb_head_samples_appended_total rose by %v, want %d", s.name, n, samples)
				}
			}
		},
	}
}

func vmTarget(s *vmServer) concurrentTarget {
	return concurrentTarget{
		baseURL: s.baseURL,
		read:    s.export,
		since: func(t *testing.T) func(*testing.T, int, int) {
			before := s.writeStats(t)
			return func(t *testing.T, requests, samples int) {
				want := vmWriteStats{requests: before.requests + float64(requests), errors: before.errors, rows: before.rows + float64(samples)}
				after := s.awaitWriteStats(t, func(st vmWriteStats) bool { return st.requests >= want.requests && st.rows >= want.rows })
				if after != want {
					t.Errorf("%s /metrics went from %v to %v; want %v (%d more requests, no error, %d more rows)", s.name, before, after, want, requests, samples)
				}
			}
		},
	}
}

// TestConcurrentRequests splits each export of 10 000 series into requests
// of 500 series, sent with the default limit of requests in flight (128: all
// 21 at once), five exports in a row, against every backend. The proxy in front holds the first request until a second one
// is in flight, so concurrency is proven, not hoped for. Every Export must
// return nil, every request succeed, the server's own counters show exactly
// those requests and samples and no out-of-order (or other) refusal, and
// every sample of every export read back exactly.
func TestConcurrentRequests(t *testing.T) {
	const (
		series     = 10_000
		exports    = 5
		perRequest = 500
		concurrent = 128 // WithMaxConcurrentRequests' default, not set
		// Each export carries target_info as well.
		requestsPerExport = (series + 1 + perRequest - 1) / perRequest
	)
	backends := []struct {
		name     string
		start    func(t *testing.T) concurrentTarget
		encoding string
	}{
		{name: "Prometheus 2.42", start: func(t *testing.T) concurrentTarget { return promTarget(startPrometheus2(t, promConfig{})) }},
		{name: "Prometheus 3", start: func(t *testing.T) concurrentTarget { return promTarget(startPrometheus3(t, promConfig{})) }},
		{name: "VictoriaMetrics 1.79", start: func(t *testing.T) concurrentTarget { return vmTarget(startVictoriaMetrics(t)) }},
		{name: "VictoriaMetrics 1.151", start: func(t *testing.T) concurrentTarget { return vmTarget(startVictoriaMetricsNew(t)) }},
		{name: "VictoriaMetrics 1.151 zstd", start: func(t *testing.T) concurrentTarget { return vmTarget(startVictoriaMetricsNew(t)) }, encoding: "zstd"},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.start(t)
			proxy := newProtocolProxy(t, s.baseURL)
			proxy.holdFirstUntilConcurrent()
			opts := []prwmetric.Option{
				prwmetric.WithMaxSeriesPerRequest(perRequest),
			}
			wantEncoding := "snappy"
			if b.encoding == "zstd" {
				opts = append(opts, prwmetric.WithCompression(prwmetric.CompressionZstd))
				wantEncoding = "zstd"
			}
			exp, logs := newExporter(t, proxy.writeURL(), opts...)
			check := s.since(t)
			c := newClock()
			from := c.now()
			w := wantSeries{}
			began := time.Now()
			for e := range exports {
				rm := concurrentExport(c.next(), e, series, w)
				export(t, exp, rm)
				w.add(targetInfoLabels(), newestTime(rm), 1)
			}
			took := time.Since(began)

			reqs := proxy.requests()
			check(t, len(reqs), exports*(series+1))
			sent := 0
			for i, r := range reqs {
				sent += r.series
				if r.problem != "" || r.encoding != wantEncoding || r.status < 200 || r.status > 299 {
					t.Errorf("request %d: Content-Encoding %q, answered %d %s (%s); want %s, 2xx", i+1, r.encoding, r.status, r.answer, r.problem, wantEncoding)
				}
			}
			if len(reqs) != exports*requestsPerExport || sent != exports*(series+1) {
				t.Errorf("%d requests carrying %d series; want %d carrying %d", len(reqs), sent, exports*requestsPerExport, exports*(series+1))
			}
			if most := min(concurrent, requestsPerExport); proxy.mostInFlight() < 2 || proxy.mostInFlight() > most {
				t.Errorf("at most %d requests were in flight at once; want 2 to %d", proxy.mostInFlight(), most)
			}
			if warns := logs.lines(slog.LevelWarn); len(warns) > 0 {
				t.Errorf("the exporter warned although every export succeeded:\n\t%s", joinLines(warns))
			}
			got := s.read(t, `{__name__=~"e2e_concurrent_requests_total|target_info"}`, from, c.now())
			compareFloats(t, b.name, got, w)
			t.Logf("%d exports of %d series in %d requests (at most %d in flight) in %v", exports, series, len(reqs), proxy.mostInFlight(), took.Round(time.Millisecond))
		})
	}
}

// concurrentExport is export e of TestConcurrentRequests: a counter with n
// series, each with its own value, stamped ts; it adds them to w.
func concurrentExport(ts time.Time, e, n int, w wantSeries) *metricdata.ResourceMetrics {
	dps := make([]metricdata.DataPoint[float64], n)
	for i := range dps {
		id := fmt.Sprintf("%05d", i)
		v := float64(e*n+i) + 0.25
		dps[i] = metricdata.DataPoint[float64]{Attributes: attrs("id", id), StartTime: ts.Add(-time.Hour), Time: ts, Value: v}
		w.add(seriesLabels("e2e_concurrent_requests_total", "id", id), ts, v)
	}
	return resourceMetrics(metricdata.Metrics{
		Name: "e2e.concurrent.requests",
		Data: metricdata.Sum[float64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: dps},
	})
}
