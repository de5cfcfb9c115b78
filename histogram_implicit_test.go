package prwmetric

import (
	"context"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prwmetric/prwmetric/prwmetrictest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestHistogramWithoutBuckets: OTLP allows a histogram point with neither
// bounds nor bucket counts (count and sum only), which a producer other than
// the SDK may hand over; the Collector and Prometheus' OTLP receiver send it
// as its +Inf bucket, _sum and _count. It was dropped as malformed. The
// user's data is not changed.
func TestHistogramWithoutBuckets(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers())
	points := []metricdata.HistogramDataPoint[float64]{
		{Attributes: attribute.NewSet(attribute.String("op", "bare")), StartTime: convStart, Time: convTime, Count: 2, Sum: 5},
		{Attributes: attribute.NewSet(attribute.String("op", "full")), StartTime: convStart, Time: convTime, Count: 3, Sum: 4,
			Bounds: []float64{1}, BucketCounts: []uint64{1, 2}},
	}
	rm := &metricdata.ResourceMetrics{Resource: testResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
		{Name: "rpc.latency", Unit: "s", Data: metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality, DataPoints: points}},
	}}}}
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
	for _, tc := range []struct {
		op    string
		want  []prwmetrictest.Bucket
		count float64
		sum   float64
	}{
		{"bare", []prwmetrictest.Bucket{{UpperBound: math.Inf(1), CumulativeCount: 2}}, 2, 5},
		{"full", []prwmetrictest.Bucket{{UpperBound: 1, CumulativeCount: 1}, {UpperBound: math.Inf(1), CumulativeCount: 3}}, 3, 4},
	} {
		h, err := srv.ClassicHistogram("rpc_latency_seconds", map[string]string{"op": tc.op})
		if err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		if diff := cmp.Diff(tc.want, h.Buckets); diff != "" || h.Count != tc.count || h.Sum != tc.sum {
			t.Errorf("%s: count %v, sum %v, buckets (-want +got):\n%s", tc.op, h.Count, h.Sum, diff)
		}
	}
	if points[0].BucketCounts != nil {
		t.Errorf("the user's point was changed: bucket counts %v", points[0].BucketCounts)
	}
}
