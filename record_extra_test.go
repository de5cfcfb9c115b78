package prwmetric

import (
	"context"
	"strings"
	"testing"

	"github.com/prwmetric/prwmetric/prwmetrictest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestSeriesBeyondMaxRecordExtraDropped: a series whose native histogram
// and exemplars take more than maxRecordExtra bytes (64 MiB: its length
// would run into the record's flags, and a truncated histogram go out) is
// dropped and reported; the others go. The limit is lowered here, so that
// the test need not build a histogram of 64 MiB.
func TestSeriesBeyondMaxRecordExtraDropped(t *testing.T) {
	defer func(old int) { maxRecordExtra = old }(maxRecordExtra)
	maxRecordExtra = 256
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers(), WithoutMetadata())
	point := func(route string, buckets int) metricdata.ExponentialHistogramDataPoint[int64] {
		counts := make([]uint64, buckets)
		for i := range counts {
			counts[i] = uint64(1 + i%7)
		}
		var total uint64
		for _, c := range counts {
			total += c
		}
		return metricdata.ExponentialHistogramDataPoint[int64]{Attributes: attribute.NewSet(attribute.String("route", route)),
			Time: testTime, StartTime: testStart, Count: total, Sum: 1, Scale: 0, PositiveBucket: metricdata.ExponentialBucket{Counts: counts}}
	}
	rm := &metricdata.ResourceMetrics{Resource: testResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{{
		Name: "wide",
		Data: metricdata.ExponentialHistogram[int64]{Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.ExponentialHistogramDataPoint[int64]{point("/small", 4), point("/wide", 600)}},
	}}}}}
	err := exp.Export(context.Background(), rm)
	if err == nil || !strings.Contains(err.Error(), `route="/wide"`) || !strings.Contains(err.Error(), "more than the 256 one series may") {
		t.Errorf("Export = %v, want the wide series reported dropped", err)
	}
	if hs, err := srv.NativeHistograms("wide", map[string]string{"route": "/small"}); err != nil || len(hs) != 1 {
		t.Errorf("the small series: %v, %v; want it sent", hs, err)
	}
	if _, err := srv.Find("wide", map[string]string{"route": "/wide"}); err == nil {
		t.Error("the wide series was sent")
	}
}

// TestSeriesBeyondMaxBatchExtraDropped: once an export's native histograms
// and exemplars pass maxBatchExtra bytes (4 GiB, the most a record's
// offset reaches), the series past it are dropped and reported; those
// before go whole. Each histogram here takes 100 to 150 bytes (100 buckets
// of one-byte deltas), so a limit of 300 keeps two of three.
func TestSeriesBeyondMaxBatchExtraDropped(t *testing.T) {
	defer func(old int) { maxBatchExtra = old }(maxBatchExtra)
	maxBatchExtra = 300
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers(), WithoutMetadata())
	point := func(route string) metricdata.ExponentialHistogramDataPoint[int64] {
		return expPointOfBuckets(route, 100)
	}
	rm := &metricdata.ResourceMetrics{Resource: testResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{{
		Name: "wide",
		Data: metricdata.ExponentialHistogram[int64]{Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.ExponentialHistogramDataPoint[int64]{point("/a"), point("/b"), point("/c")}},
	}}}}}
	err := exp.Export(context.Background(), rm)
	if err == nil || !strings.Contains(err.Error(), `route="/c"`) || !strings.Contains(err.Error(), "more than the 300 bytes one export may") {
		t.Errorf("Export = %v, want the third series reported dropped", err)
	}
	for _, route := range []string{"/a", "/b"} {
		hs, err := srv.NativeHistograms("wide", map[string]string{"route": route})
		if err != nil || len(hs) != 1 {
			t.Fatalf("series %s: %v, %v; want it sent", route, hs, err)
		}
		h := hs[0].Histogram
		var buckets []float64
		for it := h.PositiveBucketIterator(); it.Next(); {
			buckets = append(buckets, it.At().Count)
		}
		want := point(route)
		if h.Count != float64(want.Count) || len(buckets) != 100 || buckets[0] != 1 || buckets[99] != 2 {
			t.Errorf("series %s arrived as count %v with buckets %v, want all 100 buckets of %d observations", route, h.Count, buckets, want.Count)
		}
	}
	if _, err := srv.Find("wide", map[string]string{"route": "/c"}); err == nil {
		t.Error("the series past the limit was sent")
	}
}
