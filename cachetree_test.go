package prwmetric

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestCacheFollowsLiveSeries checks that the cache forgets series that
// stop reporting once their end is delivered, so that its size follows the
// live series, and that it keeps them while the receiver still needs their
// staleness marker.
func TestCacheFollowsLiveSeries(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo())
	sc := newSeriesCache(c, true)
	at := time.UnixMilli(1_700_000_000_000)
	var b batch
	export := func(from, to int, ok bool) {
		t.Helper()
		b.reset()
		var dps []metricdata.DataPoint[int64]
		for i := from; i < to; i++ {
			dps = append(dps, metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.Int("i", i)), Time: at, Value: 1})
		}
		rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
			{Name: "g", Data: metricdata.Gauge[int64]{DataPoints: dps}},
		}}}}
		if err := sc.convert(rm, &b, at.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if ok {
			sc.markDelivered(&b, b.allRecords())
		}
	}
	tests := []struct {
		name                  string
		from, to              int
		ok                    bool
		wantSeries, wantStale int
		wantTracked           int
	}{
		{"first export", 0, 100, true, 100, 0, 100},
		{"half the series end", 50, 100, true, 50, 50, 100},
		{"their markers were delivered: forgotten", 50, 100, true, 50, 0, 50},
		{"all new series, export fails", 1000, 1050, false, 50, 50, 100},
		{"old ones still held by the receiver, failed ones forgotten", 2000, 2010, true, 10, 50, 60},
		{"steady", 2000, 2010, true, 10, 0, 10},
	}
	for _, tt := range tests {
		export(tt.from, tt.to, tt.ok)
		stale := len(b.records) - b.markers
		if b.markers != tt.wantSeries || stale != tt.wantStale || len(sc.last) != tt.wantTracked || len(sc.byLabels) != tt.wantTracked {
			t.Errorf("%s: %d series, %d markers, %d tracked (%d interned); want %d, %d, %d",
				tt.name, b.markers, stale, len(sc.last), len(sc.byLabels), tt.wantSeries, tt.wantStale, tt.wantTracked)
		}
		if sc.entries != sc.entriesSeen {
			t.Errorf("%s: %d cache entries kept, %d used", tt.name, sc.entries, sc.entriesSeen)
		}
	}
}

// TestCacheIdentityIsTheLabelSet checks that a series is the same series
// for staleness and ordering whichever metric it comes from: when a metric
// is renamed into another that yields the same labels, no marker ends the
// series that goes on.
func TestCacheIdentityIsTheLabelSet(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo(), WithoutScopeInfo())
	sc := newSeriesCache(c, true)
	at := time.UnixMilli(1_700_000_000_000)
	rm := func(name string) *metricdata.ResourceMetrics {
		return &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
			{Name: name, Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{{Time: at, Value: 1}}}},
		}}}}
	}
	var b batch
	for i, name := range []string{"a.b", "a_b", "a/b"} {
		b.reset()
		if err := sc.convert(rm(name), &b, at.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		got := cacheDecode(t, cacheRequests(&b, 100, 1<<20))
		if len(got) != 1 || got[0].Samples[0].Timestamp != at.UnixMilli()+int64(i) {
			t.Errorf("export of %q: %v; want one sample of a_b, 1 ms after the last", name, got)
		}
		sc.markDelivered(&b, b.allRecords())
	}
}
