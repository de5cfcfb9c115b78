package prwmetrictest_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

var staleNaN = math.Float64frombits(prwmetrictest.StaleNaN)

// TestLatestSkipsStaleMarkers pins that Latest returns the last real value
// of a series that ends with a staleness marker (as every series does once
// a sender shuts down), that Samples still returns the marker, and that
// Latest fails on a series holding nothing but markers.
func TestLatestSkipsStaleMarkers(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "up", "job", "a"), prompb.Sample{Timestamp: t1, Value: 3}, prompb.Sample{Timestamp: t2, Value: staleNaN}),
		series(lbls("__name__", "up", "job", "b"), prompb.Sample{Timestamp: t2, Value: staleNaN}),
	}}
	if r := mustPost(t, srv.URL(), v1Headers(), encodeV1(t, wr)); r.status != 204 {
		t.Fatalf("status %d (%s)", r.status, r.body)
	}
	got, err := srv.Latest("up", map[string]string{"job": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Value != 3 || got.Timestamp != t1 {
		t.Errorf("Latest = %+v, want 3 at %d", got, t1)
	}
	all, err := srv.Samples("up", map[string]string{"job": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || !all[1].IsStale() {
		t.Errorf("Samples = %+v, want the value and the staleness marker", all)
	}
	if _, err := srv.Latest("up", map[string]string{"job": "b"}); err == nil || !strings.Contains(err.Error(), "only staleness markers") {
		t.Errorf("Latest of a series of markers: err = %v, want it to say so", err)
	}
}

// TestClassicHistogramSkipsStaleMarkers pins that ClassicHistogram rebuilds
// the histogram at the latest timestamp of real bucket values, not at the
// staleness markers' timestamp (where every count would be NaN), and fails
// when the buckets hold nothing but markers.
func TestClassicHistogramSkipsStaleMarkers(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	s := func(name, le string, v float64) prompb.TimeSeries {
		l := lbls("__name__", name, "job", "a")
		if le != "" {
			l = append(l, prompb.Label{Name: "le", Value: le})
		}
		return series(l, prompb.Sample{Timestamp: t1, Value: v}, prompb.Sample{Timestamp: t2, Value: staleNaN})
	}
	wr := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		s("lat_bucket", "1", 1), s("lat_bucket", "+Inf", 2), s("lat_sum", "", 1.5), s("lat_count", "", 2),
		series(lbls("__name__", "gone_bucket", "le", "+Inf"), prompb.Sample{Timestamp: t2, Value: staleNaN}),
	}}
	if r := mustPost(t, srv.URL(), v1Headers(), encodeV1(t, wr)); r.status != 204 {
		t.Fatalf("status %d (%s)", r.status, r.body)
	}
	h, err := srv.ClassicHistogram("lat", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Timestamp != t1 || h.Count != 2 || h.Sum != 1.5 || len(h.Buckets) != 2 || h.Buckets[0].CumulativeCount != 1 || h.Buckets[1].CumulativeCount != 2 {
		t.Errorf("ClassicHistogram = %+v, want the histogram at %d", h, t1)
	}
	if _, err := srv.ClassicHistogram("gone", nil); err == nil || !strings.Contains(err.Error(), "only staleness markers") {
		t.Errorf("ClassicHistogram of markers: err = %v, want it to say so", err)
	}
}

// recordThenShutdown follows the package documentation's recipe with the
// real sender: record with meter, then Shutdown the MeterProvider, which
// ends every series with a staleness marker after the values.
func recordThenShutdown(t *testing.T, record func(ctx context.Context, meter metric.Meter) error) *prwmetrictest.Server {
	t.Helper()
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	exp, err := prwmetric.New(prwmetric.WithoutEnvironment(), prwmetric.WithEndpoint(srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	ctx := context.Background()
	if err := record(ctx, mp.Meter("t")); err != nil {
		t.Fatal(err)
	}
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestLatestAfterShutdown: after the recipe, Latest returns the value
// recorded, not the staleness marker.
func TestLatestAfterShutdown(t *testing.T) {
	srv := recordThenShutdown(t, func(ctx context.Context, meter metric.Meter) error {
		c, err := meter.Int64Counter("requests")
		c.Add(ctx, 3, metric.WithAttributes(attribute.String("path", "/")))
		return err
	})
	got, err := srv.Latest("requests_total", map[string]string{"path": "/"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Value != 3 {
		t.Errorf("Latest after Shutdown = %v (stale marker: %v), want 3", got.Value, got.IsStale())
	}
}

// TestClassicHistogramAfterShutdown: after the recipe, ClassicHistogram
// returns the histogram recorded, not the staleness markers' NaN counts.
func TestClassicHistogramAfterShutdown(t *testing.T) {
	srv := recordThenShutdown(t, func(ctx context.Context, meter metric.Meter) error {
		h, err := meter.Float64Histogram("latency", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(1))
		h.Record(ctx, 0.5)
		return err
	})
	got, err := srv.ClassicHistogram("latency_seconds", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 1 || got.Sum != 0.5 || len(got.Buckets) != 2 || got.Buckets[0].CumulativeCount != 1 {
		t.Errorf("ClassicHistogram after Shutdown = %+v, want the recorded histogram", got)
	}
}
