package prwmetric

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
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
		stale := 0
		for i := range b.records {
			if b.isMarker(i) {
				stale++
			}
		}
		series := len(b.records) - stale
		if series != tt.wantSeries || stale != tt.wantStale || len(sc.last) != tt.wantTracked || len(sc.byLabels) != tt.wantTracked {
			t.Errorf("%s: %d series, %d markers, %d tracked (%d interned); want %d, %d, %d",
				tt.name, series, stale, len(sc.last), len(sc.byLabels), tt.wantSeries, tt.wantStale, tt.wantTracked)
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
	// Each value new: the same value again at its own time would go at the
	// newest time, a duplicate (see restamp).
	rm := func(name string, v int64) *metricdata.ResourceMetrics {
		return &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
			{Name: name, Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{{Time: at, Value: v}}}},
		}}}}
	}
	var b batch
	for i, name := range []string{"a.b", "a_b", "a/b"} {
		b.reset()
		if err := sc.convert(rm(name, int64(i)), &b, at.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		got := cacheDecode(t, cacheRequests(&b, 100, 1<<20))
		if len(got) != 1 || got[0].Samples[0].Timestamp != at.UnixMilli()+int64(i) {
			t.Errorf("export of %q: %v; want one sample of a_b, 1 ms after the last", name, got)
		}
		sc.markDelivered(&b, b.allRecords())
	}
}

// TestCachePointsWhoseHashesCollide checks the points kept aside because
// another attribute set has their hash (metricEntry.collided), made to
// collide here: they are found again, swept when unused, and a new point
// whose hash is taken goes aside too.
func TestCachePointsWhoseHashesCollide(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo(), WithoutScopeInfo())
	sc := newSeriesCache(c, true)
	at := time.UnixMilli(1_700_000_000_000)
	set := func(v string) attribute.Set { return attribute.NewSet(attribute.String("k", v)) }
	a, b, x := set("a"), set("b"), set("x")
	var bt batch
	export := func(sets ...attribute.Set) map[string]float64 {
		t.Helper()
		at = at.Add(time.Second)
		var dps []metricdata.DataPoint[int64]
		for i, s := range sets {
			dps = append(dps, metricdata.DataPoint[int64]{Attributes: s, Time: at, Value: int64(i + 1)})
		}
		bt.reset()
		rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
			{Name: "g", Data: metricdata.Gauge[int64]{DataPoints: dps}},
		}}}}
		if err := sc.convert(rm, &bt, at.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		sc.markDelivered(&bt, bt.allRecords())
		got := map[string]float64{}
		for _, ts := range cacheDecode(t, cacheRequests(&bt, 100, 1<<20)) {
			for _, l := range ts.Labels {
				if l.Name == "k" {
					got[l.Value] = ts.Samples[0].Value
				}
			}
		}
		if sc.entries != sc.entriesSeen {
			t.Errorf("%d cache entries kept, %d used", sc.entries, sc.entriesSeen)
		}
		return got
	}
	metric := func() *metricEntry {
		for _, se := range sc.res.scopes {
			for _, me := range se.metrics {
				return me
			}
		}
		t.Fatal("no metric entry")
		return nil
	}
	export(a, b)
	// b's entry goes aside, as if a had its hash.
	me := metric()
	pb := me.points[b.Equivalent()]
	delete(me.points, b.Equivalent())
	me.collided = []*pointEntry{pb}

	tests := []struct {
		name     string
		sets     []attribute.Set
		want     map[string]float64
		collided int
	}{
		{"found aside", []attribute.Set{b, a}, map[string]float64{"b": 1, "a": 2}, 1},
		{"a unused, b aside kept", []attribute.Set{b}, map[string]float64{"b": 1, "a": staleNaN}, 1},
		{"a back in the table", []attribute.Set{a, b}, map[string]float64{"a": 1, "b": 2}, 1},
		{"b unused: swept aside", []attribute.Set{a}, map[string]float64{"a": 1, "b": staleNaN}, 0},
	}
	for _, tt := range tests {
		got := export(tt.sets...)
		if len(got) != len(tt.want) {
			t.Errorf("%s: series %v, want %v", tt.name, got, tt.want)
		}
		for k, v := range tt.want {
			if g, ok := got[k]; !ok || math.Float64bits(g) != math.Float64bits(v) {
				t.Errorf("%s: %s = %v, want %v", tt.name, k, g, v)
			}
		}
		if len(me.collided) != tt.collided {
			t.Errorf("%s: %d points aside, want %d", tt.name, len(me.collided), tt.collided)
		}
	}
	if pe := me.points[b.Equivalent()]; pe != nil && pe != pb {
		t.Error("b was added again")
	}

	// A new point whose hash is taken (here by a's entry) goes aside.
	me.points[x.Equivalent()] = me.points[a.Equivalent()]
	if got := export(a, x); got["x"] != 2 || got["a"] != 1 || len(me.collided) != 1 || !me.collided[0].attrs.Equals(&x) {
		t.Errorf("new point x: series %v, %d points aside", got, len(me.collided))
	}
	if got := export(a, x); got["x"] != 2 || len(me.collided) != 1 {
		t.Errorf("x again: series %v, %d points aside", got, len(me.collided))
	}
}

// TestPositionsKeepWhatStays: when points or metrics leave the cache, their
// places in the last export are emptied (a place never leads to an entry
// no longer in the cache), and only theirs: the others are still found at
// their place the next export.
func TestPositionsKeepWhatStays(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo())
	sc := newSeriesCache(c, true)
	at := time.UnixMilli(1_700_000_000_000)
	data := func(points int, metrics ...string) *metricdata.ResourceMetrics {
		var ms []metricdata.Metrics
		for _, name := range metrics {
			var dps []metricdata.DataPoint[int64]
			for i := range points {
				dps = append(dps, metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.Int("i", i)), Time: at, Value: 1})
			}
			ms = append(ms, metricdata.Metrics{Name: name, Data: metricdata.Gauge[int64]{DataPoints: dps}})
		}
		return &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: ms}}}
	}
	var b batch
	for _, rm := range []*metricdata.ResourceMetrics{data(4, "a", "b", "c"), data(3, "a", "c")} {
		b.reset()
		if err := sc.convert(rm, &b, at.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Second)
	}
	for _, se := range sc.res.scopes {
		for i, me := range se.byIndex.entries[:2] { // a and c, where the last export had them
			if me == nil || se.metrics[me.key] != me {
				t.Errorf("metric place %d leads to %v, not to an entry of the cache", i, me)
			}
		}
		for i, me := range se.byIndex.entries {
			if me != nil && se.metrics[me.key] != me {
				t.Errorf("metric place %d leads to an entry no longer in the cache", i)
			}
		}
		if len(se.metrics) != 2 {
			t.Errorf("%d metrics in the cache, want 2", len(se.metrics))
		}
		for _, me := range se.metrics {
			kept := 0
			for i, pe := range me.byIndex.entries {
				switch {
				case pe == nil:
				case me.points[pe.attrs.Equivalent()] != pe:
					t.Errorf("%s: point place %d leads to an entry no longer in the cache", me.key.name, i)
				default:
					kept++
				}
			}
			if kept != 3 {
				t.Errorf("%s: %d points at their place, want the 3 that stayed", me.key.name, kept)
			}
		}
	}
}

// TestFamilyNamesAcrossExports: a family name is kept by the first type
// sent in each export, whatever earlier exports sent, and the table of
// names holds only the names of the metrics in the cache, each name once,
// shared by every family of that name.
func TestFamilyNamesAcrossExports(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo(), WithoutScopeInfo())
	sc := newSeriesCache(c, true)
	at := time.UnixMilli(1_700_000_000_000)
	counter := func() metricdata.Metrics {
		return metricdata.Metrics{Name: "jobs", Data: convSum(true, metricdata.DataPoint[int64]{Time: at, Value: 1})}
	}
	gauge := func(name string) metricdata.Metrics {
		return metricdata.Metrics{Name: name, Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{{Time: at, Value: 2}}}}
	}
	const dropped = "a COUNTER of that name is already sent in this export; GAUGE dropped"
	const droppedCounter = "a GAUGE of that name is already sent in this export; COUNTER dropped"
	steps := []struct {
		metrics   []metricdata.Metrics
		wantTypes []string // the type of each series sent, in order
		wantErr   string
		wantNames []string
	}{
		{metrics: []metricdata.Metrics{counter(), gauge("jobs.total")}, wantTypes: []string{"COUNTER"}, wantErr: dropped, wantNames: []string{"jobs_total"}},
		// The counter is gone: the gauge has the name.
		{metrics: []metricdata.Metrics{gauge("jobs.total")}, wantTypes: []string{"GAUGE"}, wantNames: []string{"jobs_total"}},
		{metrics: []metricdata.Metrics{gauge("jobs.total"), counter()}, wantTypes: []string{"GAUGE"}, wantErr: droppedCounter, wantNames: []string{"jobs_total"}},
		{metrics: []metricdata.Metrics{counter(), gauge("jobs.total")}, wantTypes: []string{"COUNTER"}, wantErr: dropped, wantNames: []string{"jobs_total"}},
		// Names of metrics gone leave the table.
		{metrics: []metricdata.Metrics{gauge("a")}, wantTypes: []string{"GAUGE"}, wantNames: []string{"a"}},
		{metrics: []metricdata.Metrics{gauge("b"), gauge("c")}, wantTypes: []string{"GAUGE", "GAUGE"}, wantNames: []string{"b", "c"}},
	}
	var b batch
	for i, step := range steps {
		b.reset()
		rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: step.metrics}}}
		err := sc.convert(rm, &b, at.UnixMilli())
		at = at.Add(time.Second)
		if step.wantErr == "" && err != nil || step.wantErr != "" && (err == nil || !strings.Contains(err.Error(), step.wantErr)) {
			t.Errorf("export %d: error %v, want %q", i, err, step.wantErr)
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal([]byte(strings.Join(b.metadata, ""))); err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, m := range req.Metadata {
			types = append(types, m.Type.String())
		}
		sent := 0
		for _, r := range b.records {
			if math.Float64bits(r.value) != math.Float64bits(staleNaN) {
				sent++
			}
		}
		if !slices.Equal(types, step.wantTypes) || sent != len(step.wantTypes) {
			t.Errorf("export %d: %d series sent, metadata types %q, want %q", i, sent, types, step.wantTypes)
		}
		var names []string
		for name, slot := range sc.names {
			names = append(names, name)
			for _, se := range sc.res.scopes {
				for _, me := range se.metrics {
					if f := &me.families[familyMain]; f.name == name && f.slot != slot {
						t.Errorf("export %d: metric %s has a slot of its own for %q, not the table's", i, me.key.name, name)
					}
				}
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, step.wantNames) {
			t.Errorf("export %d: names table %q, want %q", i, names, step.wantNames)
		}
	}
}
