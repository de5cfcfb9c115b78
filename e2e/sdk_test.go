package e2e

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric"
)

// recordingExporter passes every export on to prwmetric and keeps a copy of
// what the SDK handed over (the SDK reuses its buffers after Export returns),
// so the test knows the exact data point times the SDK chose.
type recordingExporter struct {
	*prwmetric.Exporter
	mu      sync.Mutex
	counter []metricdata.DataPoint[int64]
	hist    []metricdata.ExponentialHistogramDataPoint[float64]
}

func (r *recordingExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	r.mu.Lock()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				r.counter = append(r.counter, d.DataPoints...)
			case metricdata.ExponentialHistogram[float64]:
				for _, dp := range d.DataPoints {
					dp.PositiveBucket.Counts = slices.Clone(dp.PositiveBucket.Counts)
					dp.NegativeBucket.Counts = slices.Clone(dp.NegativeBucket.Counts)
					dp.Exemplars = nil
					r.hist = append(r.hist, dp)
				}
			}
		}
	}
	r.mu.Unlock()
	return r.Exporter.Export(ctx, rm)
}

// TestMeterProviderToPrometheus drives the exporter the way users do: a
// MeterProvider with a PeriodicReader, flushed twice and shut down (a third,
// final export), with histograms aggregated as base-2 exponential histograms
// chosen through WithAggregationSelector.
func TestMeterProviderToPrometheus(t *testing.T) {
	s := startPrometheus2(t, promConfig{})
	exp, logs := newExporter(t, s.writeURL(), prwmetric.WithAggregationSelector(func(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
		if k == sdkmetric.InstrumentKindHistogram {
			return sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}
		}
		return sdkmetric.DefaultAggregationSelector(k)
	}))
	rec := &recordingExporter{Exporter: exp}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(testResource),
		// The interval is long so that only the test's flushes export.
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(rec, sdkmetric.WithInterval(time.Hour))),
	)
	meter := mp.Meter(testScope.Name, metric.WithInstrumentationVersion(testScope.Version))
	counter, err := meter.Int64Counter("e2e.sdk.requests", metric.WithUnit("{request}"), metric.WithDescription("Requests."))
	if err != nil {
		t.Fatal(err)
	}
	hist, err := meter.Float64Histogram("e2e.sdk.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	route := metric.WithAttributes(attribute.String("route", "/checkout"))

	counter.Add(ctx, 2, route)
	for _, v := range []float64{0.1, 0.25, 0.25, 3} {
		hist.Record(ctx, v, route)
	}
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("first ForceFlush: %v", err)
	}
	counter.Add(ctx, 3, route)
	hist.Record(ctx, 7.5, route)
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("second ForceFlush: %v", err)
	}
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown (final export): %v", err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.counter) != 3 || len(rec.hist) != 3 {
		t.Fatalf("the SDK exported %d counter and %d histogram points, want 3 of each", len(rec.counter), len(rec.hist))
	}
	wantCounter := wantSeries{}
	wantNative := map[string][]nativeHistogram{}
	histKey := labelKey(seriesLabels("e2e_sdk_duration_seconds", "route", "/checkout"))
	// Collections can fall into the same millisecond (the second ForceFlush
	// and Shutdown especially); the exporter keeps a series' timestamps
	// strictly increasing by moving such a sample 1 ms after the previous
	// one, as Prometheus would reject the request otherwise.
	var prevCounter, prevHist int64
	for i, v := range []int64{2, 5, 5} {
		if got := rec.counter[i].Value; got != v {
			t.Fatalf("SDK counter value %d in export %d, want %d", got, i+1, v)
		}
		prevCounter = max(rec.counter[i].Time.UnixMilli(), prevCounter+1)
		wantCounter.add(seriesLabels("e2e_sdk_requests_total", "route", "/checkout"), time.UnixMilli(prevCounter), float64(v))
		h := expectedNative(rec.hist[i])
		prevHist = max(h.T, prevHist+1)
		h.T = prevHist
		wantNative[histKey] = append(wantNative[histKey], h)
	}
	at := time.UnixMilli(max(prevCounter, prevHist))
	got := s.readRange(t, `e2e_sdk_requests_total`, at, time.Hour)
	compareFloats(t, s.name, got.Floats, wantCounter)
	got = s.readRange(t, `e2e_sdk_duration_seconds`, at, time.Hour)
	compareNative(t, s.name, got.Histograms, wantNative)
	if len(got.Floats) != 0 {
		t.Errorf("the exponential histogram also produced float series: %v", got.Floats)
	}
	if w := logs.lines(slog.LevelWarn); len(w) > 0 {
		t.Errorf("the exporter warned although every export succeeded:\n%s", joinLines(w))
	}
}
