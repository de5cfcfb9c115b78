package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
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
