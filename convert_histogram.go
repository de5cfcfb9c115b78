package prwmetric

import (
	"math"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func convertHistogram[N int64 | float64](cc *conversion, mc *metricCtx, me *metricEntry, d metricdata.Histogram[N]) {
	if !checkTemporality(mc, d.Temporality) {
		return
	}
	d = withImplicitBuckets(d)
	name := cc.mainFamily(mc, me)
	if name == "" {
		return
	}
	f := &me.families[familyMain]
	fmin, fmax := &me.families[familyMin], &me.families[familyMax]
	minMax := cc.sc.rules.histogramMinMax &&
		cc.nameFree(mc, fmin) && cc.nameFree(mc, fmax)
	classic := cc.sc.rules.classic()
	// The points are looked up in their order, which is also the order of
	// their problems and of their custom-bucket histograms; the classic
	// series are then sent in the histogram order.
	points := cc.sc.histPoints[:0]
	fresh := len(cc.sc.last) // the series interned from here on are this histogram's
	defer func() {
		clear(points) // keep no exemplars alive
		cc.sc.histPoints = points[:0]
	}()
	buckets := 0
	for i := range d.DataPoints {
		dp := &d.DataPoints[i]
		if msg := checkBuckets(dp); msg != "" {
			mc.p.addReason(msg, 1)
			continue
		}
		pe := cc.point(me, &dp.Attributes, i)
		if pe == nil || pe.more == nil || !sameFloats(pe.more.bounds, dp.Bounds) {
			pe = cc.histogramPoint(mc, me, pe, dp.Attributes, dp.Bounds, name)
			me.byIndex.set(i, pe)
		}
		ps := pe.more
		mc.p.addAll(ps.problems)
		hp := histPoint{ps: ps, pe: cc.emitting, fresh: cc.pointNew, i: i, t: dp.Time.UnixMilli(), start: startMillis(dp.StartTime)}
		if cc.sc.rules.customBuckets {
			cc.start = hp.start
			convertCustomBuckets(cc, mc, f, pe, dp, hp.t)
		}
		if classic {
			if len(dp.Exemplars) > 0 {
				hp.exemplars = bucketExemplars(cc.sc.rules, *dp, hp.t, &mc.p, &cc.sc.exemplars)
			}
			buckets = max(buckets, len(dp.BucketCounts))
		}
		points = append(points, hp)
	}
	// order is the histogram order, when there are classic series; the rest
	// go in data point order.
	var order []int
	if classic {
		var sorted bool
		order, sorted = me.order.sorted(points, &cc.sc.labels)
		if sorted && layoutDue(points) {
			// Lay the series' states and labels out in the order they
			// are sent, the states now, the labels once they are sent.
			cc.sc.packStates(fresh, histogramSlots(cc.sc, points, order, d.DataPoints, buckets))
			first := len(cc.b.records)
			defer func() { cc.sc.layOut(cc.b.records[first:]) }()
		}
		for j := range buckets {
			for _, k := range order {
				p := &points[k]
				dp := &d.DataPoints[p.i]
				if j >= len(dp.BucketCounts) {
					continue
				}
				p.n += dp.BucketCounts[j]
				n := p.n
				if j == len(dp.Bounds) {
					// The +Inf bucket is the count, which exceeds the
					// buckets' sum when the sum is NaN (see checkCount).
					n = dp.Count
				}
				var ex []prompb.Exemplar
				if p.exemplars != nil {
					ex = p.exemplars[j]
				}
				cc.start, cc.histogramCount = p.start, p.ps.series[len(dp.BucketCounts)+1]
				cc.emitting, cc.pointNew = p.pe, p.fresh
				cc.emit(mc, f, &p.ps.series[j], float64(n), p.t, ex, nil)
			}
		}
		for _, k := range order {
			p := &points[k]
			dp := &d.DataPoints[p.i]
			cc.start, cc.histogramCount = p.start, p.ps.series[len(dp.BucketCounts)+1]
			cc.emitting, cc.pointNew = p.pe, p.fresh
			cc.emit(mc, f, &p.ps.series[len(dp.BucketCounts)], promValue(float64(dp.Sum)), p.t, nil, nil)
		}
		for _, k := range order {
			p := &points[k]
			dp := &d.DataPoints[p.i]
			cc.start, cc.histogramCount = p.start, p.ps.series[len(dp.BucketCounts)+1]
			cc.emitting, cc.pointNew = p.pe, p.fresh
			cc.emit(mc, f, &p.ps.series[len(dp.BucketCounts)+1], float64(dp.Count), p.t, nil, nil)
		}
		cc.histogramCount = nil
	}
	if !minMax {
		return
	}
	cc.start = 0 // gauges
	for k := range points {
		p := &points[k]
		if order != nil {
			p = &points[order[k]]
		}
		if v, ok := d.DataPoints[p.i].Min.Value(); ok {
			cc.emitting, cc.pointNew = p.pe, p.fresh
			cc.emit(mc, fmin, &p.ps.min, promValue(float64(v)), p.t, nil, nil)
		}
	}
	for k := range points {
		p := &points[k]
		if order != nil {
			p = &points[order[k]]
		}
		if v, ok := d.DataPoints[p.i].Max.Value(); ok {
			cc.emitting, cc.pointNew = p.pe, p.fresh
			cc.emit(mc, fmax, &p.ps.max, promValue(float64(v)), p.t, nil, nil)
		}
	}
}

// convertCustomBuckets emits dp as a native histogram with custom buckets
// (WithNativeHistogramsForExplicitBuckets), as the series pe.series.
func convertCustomBuckets[N int64 | float64](cc *conversion, mc *metricCtx, f *family, pe *pointEntry, dp *metricdata.HistogramDataPoint[N], t int64) {
	h, msg := buildCustomBuckets(dp, &cc.sc.native)
	if msg != "" {
		mc.p.addReason(msg, 1)
		cc.pointDropped()
		return
	}
	var exemplars []prompb.Exemplar
	if len(dp.Exemplars) > 0 {
		exemplars = convertExemplars(cc.sc.rules, dp.Exemplars, t, &mc.p, &cc.sc.exemplars)
	}
	cc.customBuckets = true
	cc.emit(mc, f, &pe.series, 0, t, exemplars, &h)
	cc.customBuckets = false
}

// histogramPoint builds the series of a histogram point with bounds: one
// per bucket (+Inf last), _sum and _count, and _min and _max.
func (cc *conversion) histogramPoint(mc *metricCtx, me *metricEntry, pe *pointEntry, attrs attribute.Set, bounds []float64, name string) *pointEntry {
	pe, base := cc.newPoint(mc, me, pe, attrs, labelBucketBound)
	if pe.more == nil {
		pe.more = &pointMore{}
	}
	ps := pe.more
	if !sameFloats(me.bounds, bounds) {
		me.bounds = append([]float64(nil), bounds...)
	}
	ps.bounds = me.bounds
	sc := cc.sc
	if sc.rules.customBuckets {
		pe.series = sc.internWith(base, nameLabel(name))
	}
	ps.series = nil
	if !sc.rules.classic() {
		ps.min, ps.max = nil, nil
		if sc.rules.histogramMinMax {
			ps.min = sc.internWith(base, sc.rules.gaugeNameLabels(me.families[familyMin].name)...)
			ps.max = sc.internWith(base, sc.rules.gaugeNameLabels(me.families[familyMax].name)...)
		}
		return pe
	}
	ps.series = make([]*seriesState, 0, len(bounds)+3)
	ps.laidOut = false
	bucketName := nameLabel(name + "_bucket")
	for i := 0; i <= len(bounds); i++ {
		le := "+Inf"
		if i < len(bounds) {
			le = sc.rules.formatFloat(bounds[i])
		}
		ps.series = append(ps.series, sc.internWith(base, bucketName, prompb.Label{Name: labelBucketBound, Value: le}))
	}
	ps.series = append(ps.series,
		sc.internWith(base, nameLabel(name+"_sum")),
		sc.internWith(base, nameLabel(name+"_count")))
	if sc.zeros != nil {
		// The point may continue a native histogram the receiver held.
		sc.zeros.continueNative(sc, base, name, ps.series[len(ps.series)-1])
	}
	if sc.rules.histogramMinMax {
		ps.min = sc.internWith(base, sc.rules.gaugeNameLabels(me.families[familyMin].name)...)
		ps.max = sc.internWith(base, sc.rules.gaugeNameLabels(me.families[familyMax].name)...)
	}
	return pe
}

// histogramSlots returns the slots of the classic series of points in the
// order the conversion sends them (convertHistogram), in scratch space of
// sc.
func histogramSlots[N int64 | float64](sc *seriesCache, points []histPoint, order []int, dps []metricdata.HistogramDataPoint[N], buckets int) []**seriesState {
	slots := sc.slots[:0]
	for j := range buckets {
		for _, k := range order {
			if j < len(dps[points[k].i].BucketCounts) {
				slots = append(slots, &points[k].ps.series[j])
			}
		}
	}
	for extra := range 2 { // _sum, then _count
		for _, k := range order {
			slots = append(slots, &points[k].ps.series[len(dps[points[k].i].BucketCounts)+extra])
		}
	}
	sc.slots = slots
	return slots
}

// sameFloats reports whether a and b hold the same numbers, bit for bit
// (0 and -0 make different labels).
func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}
