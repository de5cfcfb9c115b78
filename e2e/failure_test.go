package e2e

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric"
)

// TestOutOfOrderRejected sends a sample older than the one Prometheus already
// holds: Prometheus refuses the request with 400, the exporter sends it once,
// warns once with Prometheus' own message, and the next export succeeds.
//
// The older sample comes from a second exporter, as after a restart of the
// service (or from a replica with the same identity): one exporter keeps its
// own series' timestamps increasing, so only a fresh one can know nothing of
// what Prometheus already holds.
func TestOutOfOrderRejected(t *testing.T) {
	backends := []struct {
		name  string
		start func(*testing.T) *promServer
		// wantMsg is the backend's own words for the refusal.
		wantMsg string
	}{
		{name: "Prometheus 2.42", start: func(t *testing.T) *promServer { return startPrometheus2(t, promConfig{}) }, wantMsg: "out of order sample"},
		{name: "Prometheus 3", start: func(t *testing.T) *promServer { return startPrometheus3(t, promConfig{}) }, wantMsg: "out of order sample"},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.start(t)
			proxy := newCountingProxy(t, s.baseURL)
			c := newClock()
			older, newer, latest := c.next(), c.next(), c.next()

			first, _ := newExporter(t, proxy.URL+"/api/v1/write")
			export(t, first, oooGauge(newer, 2))

			exp, logs := newExporter(t, proxy.URL+"/api/v1/write")
			before := proxy.requests.Load()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := exp.Export(ctx, oooGauge(older, 1))
			if err == nil {
				t.Fatal("Export of an out-of-order sample succeeded, want Prometheus' 400")
			}
			var we *prwmetric.WriteError
			if !errors.As(err, &we) {
				t.Fatalf("Export error %q (%T) does not wrap a *prwmetric.WriteError", err, err)
			}
			if we.StatusCode != http.StatusBadRequest || !strings.Contains(we.Body, b.wantMsg) {
				t.Errorf("WriteError{StatusCode: %d, Body: %q}, want 400 with %q", we.StatusCode, we.Body, b.wantMsg)
			}
			if n := proxy.requests.Load() - before; n != 1 {
				t.Errorf("%d requests for one refused export, want exactly 1 (no retry of a 400)", n)
			}
			warns := logs.lines(slog.LevelWarn)
			if len(warns) != 1 || !strings.Contains(warns[0], b.wantMsg) || !strings.Contains(warns[0], "400") {
				t.Errorf("warnings:\n%s\nwant exactly one, with status 400 and %q", joinLines(warns), b.wantMsg)
			}

			export(t, exp, oooGauge(latest, 3))
			got := s.readRange(t, "e2e_ooo_value", latest, time.Hour)
			compareFloats(t, s.name, got.Floats, map[string][]sample{
				labelKey(seriesLabels("e2e_ooo_value")): {{T: newer.UnixMilli(), V: 2}, {T: latest.UnixMilli(), V: 3}},
			})
		})
	}
}

func oooGauge(ts time.Time, v float64) *metricdata.ResourceMetrics {
	return resourceMetrics(metricdata.Metrics{Name: "e2e.ooo.value", Data: metricdata.Gauge[float64]{
		DataPoints: []metricdata.DataPoint[float64]{{Time: ts, Value: v}},
	}})
}

// TestUnansweredThenNativeRefused: the first export gets no answer (the
// request reached the server, the client gave up), so the exporter must
// assume its series may be stored, native histogram included. The next
// export meets Prometheus 2.42 without native histograms: refused with 500,
// sent again with classic histograms, and from then on. Nothing of the
// native histogram can be stored there, so nothing of it (not even its
// staleness marker) may go in the resend: the second and third exports
// must succeed and read back.
func TestUnansweredThenNativeRefused(t *testing.T) {
	s := startPrometheus2WithoutNativeHistograms(t)
	target, err := url.Parse(s.baseURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	var requests atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 1 {
			rp.ServeHTTP(w, r)
			return
		}
		// Read the request, then answer nothing until the client gives
		// up (bounded in case it never does).
		_, _ = io.Copy(io.Discard, r.Body)
		timer := time.NewTimer(30 * time.Second)
		defer timer.Stop()
		select {
		case <-r.Context().Done():
		case <-timer.C:
		}
	}))
	t.Cleanup(proxy.Close)

	exp, logs := newExporter(t, proxy.URL+"/api/v1/write")
	c := newClock()
	t1, t2, t3 := c.next(), c.next(), c.next()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = exp.Export(ctx, unsureExport(t1, 1))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first Export = %v, want the deadline it ran into", err)
	}
	export(t, exp, unsureExport(t2, 2))
	export(t, exp, unsureExport(t3, 3))

	got := s.readRange(t, `{__name__=~"e2e_unsure_.*"}`, t3, time.Hour)
	want := wantSeries{}
	for i, ts := range []time.Time{t2, t3} {
		v := float64(i + 2)
		want.add(seriesLabels("e2e_unsure_value"), ts, v)
		want.add(seriesLabels("e2e_unsure_size_count"), ts, 1)
		want.add(seriesLabels("e2e_unsure_size_sum"), ts, v)
		want.add(seriesLabels("e2e_unsure_size_bucket", "le", "0"), ts, 0)
		want.add(seriesLabels("e2e_unsure_size_bucket", "le", "4"), ts, 1)
		want.add(seriesLabels("e2e_unsure_size_bucket", "le", "+Inf"), ts, 1)
	}
	compareFloats(t, s.name, got.Floats, want)
	if len(got.Histograms) != 0 {
		t.Errorf("native histograms stored by a server that refuses them: %v", keysOf(got.Histograms))
	}
	refusals := 0
	for _, w := range logs.lines(slog.LevelWarn) {
		if strings.Contains(w, "refuses native histograms") {
			refusals++
		} else if !strings.Contains(w, "context deadline exceeded") {
			t.Errorf("unexpected warning: %s", w)
		}
	}
	if refusals != 1 {
		t.Errorf("%d warnings about refused native histograms, want 1", refusals)
	}
}

// unsureExport is a gauge and an exponential histogram with one
// observation v in the bucket (2, 4] at ts.
func unsureExport(ts time.Time, v float64) *metricdata.ResourceMetrics {
	return resourceMetrics(
		metricdata.Metrics{Name: "e2e.unsure.value", Data: metricdata.Gauge[float64]{
			DataPoints: []metricdata.DataPoint[float64]{{Time: ts, Value: v}},
		}},
		metricdata.Metrics{Name: "e2e.unsure.size", Data: metricdata.ExponentialHistogram[float64]{
			Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{{
				StartTime: ts.Add(-time.Hour), Time: ts, Count: 1, Sum: v, Scale: 0,
				PositiveBucket: metricdata.ExponentialBucket{Offset: 1, Counts: []uint64{1}},
			}},
		}},
	)
}
