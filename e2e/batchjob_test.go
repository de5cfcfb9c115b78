package e2e

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric"
)

// TestBatchJobShutdownMarkers runs a batch job's exporter lifetime against
// Prometheus 3: two exports, the second without the series of a finished
// phase, then Shutdown, and an instant query right after. By default
// Shutdown ends every series with a staleness marker, so the job's final
// values are invisible to an instant query; WithoutShutdownMarkers leaves
// them visible (until the 5m lookback passes). Either way the series that
// vanished between the exports has its marker.
func TestBatchJobShutdownMarkers(t *testing.T) {
	cases := []struct {
		name        string
		opts        []prwmetric.Option
		wantVisible bool
	}{
		{name: "default", wantVisible: false},
		{name: "WithoutShutdownMarkers", opts: []prwmetric.Option{prwmetric.WithoutShutdownMarkers()}, wantVisible: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startPrometheus3(t, promConfig{})
			exp, logs := newExporter(t, s.writeURL(), tc.opts...)
			start := time.Now().Add(-time.Second)
			rows := func(at time.Time, v float64, phases ...string) *metricdata.ResourceMetrics {
				var dps []metricdata.DataPoint[float64]
				for _, p := range phases {
					dps = append(dps, metricdata.DataPoint[float64]{Attributes: attrs("phase", p), StartTime: start, Time: at, Value: v})
				}
				return resourceMetrics(metricdata.Metrics{Name: "e2e.batch.rows", Data: metricdata.Sum[float64]{
					Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: dps,
				}})
			}
			now := time.Now()
			export(t, exp, rows(now.Add(-200*time.Millisecond), 10, "load", "transform"))
			export(t, exp, rows(now.Add(-100*time.Millisecond), 20, "transform"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := exp.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			at := time.Now().Add(time.Second)
			got := s.queryVector(t, "e2e_batch_rows_total", at)
			transform := labelKey(seriesLabels("e2e_batch_rows_total", "phase", "transform"))
			load := labelKey(seriesLabels("e2e_batch_rows_total", "phase", "load"))
			if _, ok := got[load]; ok {
				t.Errorf("the vanished series %s is still visible: %v", load, got)
			}
			v, ok := got[transform]
			switch {
			case tc.wantVisible && (!ok || v != 20):
				t.Errorf("after Shutdown, %s = %v (present %v), want 20", transform, v, ok)
			case !tc.wantVisible && ok:
				t.Errorf("after Shutdown, %s is still visible (%v), want it ended by a staleness marker", transform, v)
			}
			requireNoWarnings(t, logs)
		})
	}
}
