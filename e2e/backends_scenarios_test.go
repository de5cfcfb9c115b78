package e2e

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric"
)

// TestPrometheus2 pushes every scenario to the Debian Prometheus 2.42 and
// reads it back through /api/v1/query and /api/v1/query_exemplars.
func TestPrometheus2(t *testing.T) {
	runPromScenarios(t, startPrometheus2(t, promConfig{}))
}

// TestPrometheus3 pushes every scenario (Remote Write 1.0) to Prometheus 3
// built from the module proxy.
func TestPrometheus3(t *testing.T) {
	runPromScenarios(t, startPrometheus3(t, promConfig{}))
}

func runPromScenarios(t *testing.T, s *promServer) {
	// One exporter for the whole run, as in a real service.
	exp, logs := newExporter(t, s.writeURL())
	c := newClock()
	wantTargetInfo := wantSeries{}
	for _, sc := range floatScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			d := sc.build(c)
			for _, rm := range d.exports {
				export(t, exp, rm)
				wantTargetInfo.add(targetInfoLabels(), newestTime(rm), 1)
			}
			got := s.readRange(t, sc.selector, c.now(), time.Hour)
			compareFloats(t, s.name, got.Floats, d.want)
			compareNative(t, s.name, got.Histograms, d.wantNative)
			if d.prom != nil {
				d.prom(t, s)
			}
		})
	}
	t.Run("target_info", func(t *testing.T) {
		got := s.readRange(t, "target_info", c.now(), time.Hour)
		compareFloats(t, s.name, got.Floats, wantTargetInfo)
	})
	if w := logs.lines(slog.LevelWarn); len(w) > 0 {
		t.Errorf("the exporter warned although every export succeeded:\n%s", joinLines(w))
	}
}

// TestVictoriaMetrics pushes every scenario to the Debian VictoriaMetrics
// 1.79 and reads it back through /api/v1/export. VictoriaMetrics keeps labels
// and float samples only: native histograms and exemplars are not stored, so
// the exponential-histogram scenario must leave no float series behind.
func TestVictoriaMetrics(t *testing.T) {
	s := startVictoriaMetrics(t)
	exp, logs := newExporter(t, s.writeURL())
	runVMScenarios(t, s, exp, false)
	if w := logs.lines(slog.LevelWarn); len(w) > 0 {
		t.Errorf("the exporter warned although every export succeeded:\n%s", joinLines(w))
	}
}

// runVMScenarios pushes every scenario through exp to s and reads it back
// through /api/v1/export. nativeAsFloats says whether s stores native
// histograms as float series (VictoriaMetrics 1.151) rather than dropping
// them (1.79).
func runVMScenarios(t *testing.T, s *vmServer, exp *prwmetric.Exporter, nativeAsFloats bool) {
	t.Helper()
	c := newClock()
	first := c.now()
	wantTargetInfo := wantSeries{}
	for _, sc := range floatScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			d := sc.build(c)
			for _, rm := range d.exports {
				export(t, exp, rm)
				wantTargetInfo.add(targetInfoLabels(), newestTime(rm), 1)
			}
			want := d.want
			if nativeAsFloats && len(d.wantVMNative) > 0 {
				want = wantSeries{}
				for _, m := range []map[string][]sample{d.want, d.wantVMNative} {
					for k, ss := range m {
						want[k] = append(want[k], ss...)
					}
				}
			}
			got := s.export(t, sc.selector, first, c.now())
			compareFloats(t, s.name, got, want)
		})
	}
	t.Run("target_info", func(t *testing.T) {
		got := s.export(t, "target_info", first, c.now())
		compareFloats(t, s.name, got, wantTargetInfo)
	})
}

// newestTime is the time of the newest data point in rm: the exporter stamps
// the request's target_info sample with it, so that target_info lines up
// with the data it describes.
func newestTime(rm *metricdata.ResourceMetrics) time.Time {
	var newest time.Time
	see := func(t time.Time) {
		if t.After(newest) {
			newest = t
		}
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					see(dp.Time)
				}
			case metricdata.Sum[float64]:
				for _, dp := range d.DataPoints {
					see(dp.Time)
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					see(dp.Time)
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					see(dp.Time)
				}
			case metricdata.Histogram[int64]:
				for _, dp := range d.DataPoints {
					see(dp.Time)
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					see(dp.Time)
				}
			case metricdata.ExponentialHistogram[float64]:
				for _, dp := range d.DataPoints {
					see(dp.Time)
				}
			default:
				panic(fmt.Sprintf("newestTime: no case for %T", m.Data))
			}
		}
	}
	return newest
}
