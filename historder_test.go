package prwmetric

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestHistogramOrderFollowsThePoints checks the cached histogramOrder
// (pointOrder) against the reference through exports whose points come in
// another order, come and go, repeat themselves, change their bounds or
// collide (two attribute sets, one label set): the same bytes every time.
// And the series' labels lie in memory in the order they are sent
// (layOut), still interned under their labels, and their states too, when
// they were all built by that export (packStates), which leaves every
// reference to a state pointing to the one the table holds.
func TestHistogramOrderFollowsThePoints(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo())
	sc := newSeriesCache(c, true)
	at := time.UnixMilli(1_700_000_000_000)
	point := func(key, route string, bounds ...float64) metricdata.HistogramDataPoint[int64] {
		counts := make([]uint64, len(bounds)+1)
		counts[len(bounds)] = 2
		return metricdata.HistogramDataPoint[int64]{Attributes: attribute.NewSet(attribute.String(key, route)), Time: at,
			Bounds: bounds, BucketCounts: counts, Count: 2, Sum: int64(len(route))}
	}
	a, b, c2, d := point("route", "/a", 1), point("route", "/b", 1), point("route", "/c", 1), point("route", "/d", 1)
	// Attribute keys r.x and r_x both yield the label r_x; the values tell
	// which point was sent.
	x1, x2 := point("r.x", "/x", 1), point("r_x", "/x", 1)
	x2.Sum = 7
	tests := []struct {
		name   string
		points []metricdata.HistogramDataPoint[int64]
		// laidOut: the series' labels lie in memory in the order they are
		// sent, as after a first export or one with a quarter of its
		// points new (layoutDue).
		laidOut bool
	}{
		{"first", []metricdata.HistogramDataPoint[int64]{c2, a, b}, true},
		{"same order", []metricdata.HistogramDataPoint[int64]{c2, a, b}, true},
		{"another order", []metricdata.HistogramDataPoint[int64]{b, c2, a}, true},
		{"one point fewer", []metricdata.HistogramDataPoint[int64]{b, a}, false},
		{"a new point and a repeated one", []metricdata.HistogramDataPoint[int64]{b, a, d, b}, true},
		{"new bounds", []metricdata.HistogramDataPoint[int64]{a, point("route", "/b", 0.5, 1), c2}, true},
		{"colliding points", []metricdata.HistogramDataPoint[int64]{x1, a, x2}, true},
		{"colliding points swapped", []metricdata.HistogramDataPoint[int64]{x2, a, x1}, false},
		{"colliding points swapped again", []metricdata.HistogramDataPoint[int64]{x1, a, x2}, false},
	}
	var bt batch
	var first []prompb.TimeSeries
	for _, tt := range tests {
		rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
			{Name: "wait", Data: metricdata.Histogram[int64]{Temporality: metricdata.CumulativeTemporality, DataPoints: tt.points}},
		}}}}
		req, err := c.reference(rm)
		bt.reset()
		fastErr := sc.convert(rm, &bt, at.UnixMilli())
		if fmt.Sprint(fastErr) != fmt.Sprint(err) {
			t.Errorf("%s: error\n%v\nreference:\n%v", tt.name, fastErr, err)
		}
		got := cacheRequests(&bt, 1<<30, 1<<40)
		cacheCompare(t, tt.name, cacheMarshal(t, req, 1<<30, 1<<40), got)
		for i := range bt.records {
			s := bt.records[i].s
			if sc.byLabels[s.key] != s {
				t.Errorf("%s: series %d is not interned under its labels", tt.name, i)
			}
			if i > 0 && tt.laidOut {
				prev := bt.records[i-1].s.key
				if unsafe.StringData(s.key) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(prev)), len(prev))) {
					t.Errorf("%s: the labels of series %d do not follow those of series %d in memory", tt.name, i, i-1)
				}
			}
		}
		if len(sc.byLabels) != len(sc.last) {
			t.Errorf("%s: %d series interned, %d tracked", tt.name, len(sc.byLabels), len(sc.last))
		}
		tracked := map[*seriesState]bool{}
		for _, s := range sc.last {
			tracked[s] = true
			if sc.byLabels[s.key] != s {
				t.Errorf("%s: a tracked series is not the one interned under its labels", tt.name)
			}
		}
		for i := range bt.records {
			if !tracked[bt.records[i].s] {
				t.Errorf("%s: series %d is not tracked", tt.name, i)
			}
			if i > 0 && tt.name == "first" && uintptr(unsafe.Pointer(bt.records[i].s)) != uintptr(unsafe.Pointer(bt.records[i-1].s))+unsafe.Sizeof(seriesState{}) {
				t.Errorf("%s: the state of series %d does not follow that of series %d in memory", tt.name, i, i-1)
			}
		}
		// The order does not depend on the order of the points.
		switch tt.name {
		case "first":
			first = cacheDecode(t, got)
		case "another order":
			if diff := cmp.Diff(first, cacheDecode(t, got), convCmpOpts); diff != "" {
				t.Errorf("%s: series differ from the first export's (-first +got):\n%s", tt.name, diff)
			}
		}
	}
}

// TestLayoutOnlyWhenManyPointsAreNew: a histogram whose points mostly stay
// (one of eight replaced: churn) keeps its series' labels where they lie,
// which costs nothing; with a quarter of its points new they are laid out
// anew in the order they are sent. The requests are the reference's
// either way.
func TestLayoutOnlyWhenManyPointsAreNew(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo())
	sc := newSeriesCache(c, true)
	at := time.UnixMilli(1_700_000_000_000)
	points := func(routes ...int) []metricdata.HistogramDataPoint[int64] {
		var dps []metricdata.HistogramDataPoint[int64]
		for _, r := range routes {
			dps = append(dps, metricdata.HistogramDataPoint[int64]{Attributes: attribute.NewSet(attribute.Int("route", r)), Time: at,
				Bounds: []float64{1}, BucketCounts: []uint64{1, 1}, Count: 2, Sum: 3})
		}
		return dps
	}
	var bt batch
	keys := map[string]*byte{} // where each series' labels lay after the last export
	for _, step := range []struct {
		name    string
		routes  []int
		laidOut bool
	}{
		{"first", []int{0, 1, 2, 3, 4, 5, 6, 7}, true},
		{"one of eight replaced", []int{0, 1, 2, 3, 4, 5, 6, 8}, false},
		{"two of eight replaced", []int{0, 1, 2, 3, 4, 5, 9, 10}, true},
	} {
		rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
			{Name: "wait", Data: metricdata.Histogram[int64]{Temporality: metricdata.CumulativeTemporality, DataPoints: points(step.routes...)}},
		}}}}
		req, err := c.reference(rm)
		if err != nil {
			t.Fatal(err)
		}
		bt.reset()
		if err := sc.convert(rm, &bt, at.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		cacheCompare(t, step.name, cacheMarshal(t, req, 1<<30, 1<<40), cacheRequests(&bt, 1<<30, 1<<40))
		moved, contiguous := 0, true
		for i := range bt.records {
			s := bt.records[i].s
			if old, ok := keys[s.key]; ok && old != unsafe.StringData(s.key) {
				moved++
			}
			if i > 0 {
				prev := bt.records[i-1].s.key
				contiguous = contiguous && unsafe.StringData(s.key) == (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(prev)), len(prev)))
			}
		}
		if step.name != "first" && (moved > 0) != step.laidOut {
			t.Errorf("%s: the labels of %d series kept from the last export moved, want them moved: %v", step.name, moved, step.laidOut)
		}
		if contiguous != step.laidOut {
			t.Errorf("%s: labels laid out in the order sent: %v, want %v", step.name, contiguous, step.laidOut)
		}
		clear(keys)
		for i := range bt.records {
			keys[bt.records[i].s.key] = unsafe.StringData(bt.records[i].s.key)
		}
	}
}

// TestHistogramOrderUnderChurn: export after export a few points of a
// histogram come and go and the rest sometimes change their order (the
// order is then updated, not sorted anew, see pointOrder.update); now and
// then many change, or two collide. Every export is the reference's, byte
// for byte.
func TestHistogramOrderUnderChurn(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo())
	sc := newSeriesCache(c, true)
	at := time.UnixMilli(1_700_000_000_000)
	rng := rand.New(rand.NewPCG(3, 4))
	point := func(r int) metricdata.HistogramDataPoint[int64] {
		attrs := attribute.NewSet(attribute.Int("route", r))
		if r >= 1000 {
			// Points 1000 and 2000 collide: both have the labels r_x="x".
			attrs = attribute.NewSet(attribute.String(map[int]string{1000: "r.x", 2000: "r_x"}[r], "x"))
		}
		return metricdata.HistogramDataPoint[int64]{Attributes: attrs, Time: at,
			Bounds: []float64{1, 2}, BucketCounts: []uint64{1, 1, uint64(r % 7)}, Count: 2 + uint64(r%7), Sum: int64(r)}
	}
	routes := rng.Perm(40)[:30]
	var bt batch
	for step := range 200 {
		switch n := rng.IntN(10); {
		case n < 6: // churn: one or two points replaced
			for range 1 + rng.IntN(2) {
				routes[rng.IntN(len(routes))] = 40 + rng.IntN(60)
			}
		case n < 7: // one point more, or one fewer
			if len(routes) > 2 && rng.IntN(2) == 0 {
				routes = routes[1:]
			} else {
				routes = append(routes, 100+step)
			}
		case n < 8: // the SDK's order changes
			rng.Shuffle(len(routes), func(i, j int) { routes[i], routes[j] = routes[j], routes[i] })
		case n < 9: // many new points
			for i := range routes[:len(routes)/2] {
				routes[i] = 300 + rng.IntN(100)
			}
		default: // two points collide, or stop colliding
			if slices.Contains(routes, 1000) {
				routes = slices.DeleteFunc(routes, func(r int) bool { return r >= 1000 })
			} else {
				routes = append(routes, 1000, 2000)
			}
		}
		var dps []metricdata.HistogramDataPoint[int64]
		for _, r := range routes {
			dps = append(dps, point(r))
		}
		rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
			{Name: "wait", Data: metricdata.Histogram[int64]{Temporality: metricdata.CumulativeTemporality, DataPoints: dps}},
		}}}}
		req, err := c.reference(rm)
		bt.reset()
		fastErr := sc.convert(rm, &bt, at.UnixMilli())
		if fmt.Sprint(fastErr) != fmt.Sprint(err) {
			t.Fatalf("step %d: error\n%v\nreference:\n%v", step, fastErr, err)
		}
		cacheCompare(t, fmt.Sprintf("step %d", step), cacheMarshal(t, req, 1<<30, 1<<40), cacheRequests(&bt, 1<<30, 1<<40))
		if t.Failed() {
			t.Fatalf("step %d: routes %v", step, routes)
		}
	}
}
