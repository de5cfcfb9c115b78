package prwmetric

import (
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// conversion is the state of one export's conversion through the series
// cache: the bookkeeping of exportState, and the batch the series go to.
type conversion struct {
	sc  *seriesCache
	b   *batch
	gen generation
	exportState
	res *resourceEntry
	// start is the start time (ms) of the series emitted next, for 2.0
	// requests: 0 for gauges; customBuckets marks it as a native histogram
	// with custom buckets.
	start         int64
	customBuckets bool
	// histogramCount is the _count series of the histogram point whose
	// classic series are emitted next, nil for other series: it stands for
	// the point in zeroBefore (WithInitialZero).
	histogramCount *seriesState
	// emitting is the data point whose series are emitted next, nil for
	// target_info; pointNew says this export had not used its entry
	// before. dropped holds the points emit dropped a series of, so that
	// each counts dropped once (seriesCache.pointsDropped).
	emitting *pointEntry
	pointNew bool
	dropped  map[*pointEntry]struct{}
}

// convert converts rm into b, through the cache. It leaves out what
// Prometheus cannot accept, with one warning per metric,
// and returns an error listing it. It also ends with staleness markers the
// series that were delivered before and are missing now (see sweep), at
// time now (ms) or later.
func (sc *seriesCache) convert(rm *metricdata.ResourceMetrics, b *batch, now int64) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.gen = sc.gen.next()
	sc.seenCount, sc.entriesSeen, sc.pointsDropped = 0, 0, 0
	cc := &conversion{sc: sc, b: b, gen: sc.gen, exportState: exportState{rules: sc.rules}}
	b.collectV2, b.labels = sc.collectV2, &sc.labels
	if sc.zeros != nil {
		sc.zeros.begin(sc.collectV2, &sc.labels)
	}
	if rm != nil {
		sc.reserve(b, estimateSeries(rm))
		cc.resourceMetrics(rm)
	}
	sc.sweep(b, now)
	if sc.zeros != nil {
		sc.zeros.end(cc.gen, cc.newest, cc.hasNewest)
	}
	return cc.err()
}

// reserve makes room for n series in b and, on a first export, in the
// series table, before they are added one by one: growing by append would
// leave the outgrown copies behind as garbage, which on a first export of
// a million series costs as much heap as the series themselves.
func (sc *seriesCache) reserve(b *batch, n int) {
	if cap(b.records)-len(b.records) < n {
		b.records = slices.Grow(b.records, n)
	}
	if len(sc.byLabels) == 0 && n > 0 {
		sc.byLabels = make(map[string]*seriesState, n)
	}
	if cap(sc.last) < n {
		sc.last = slices.Grow(sc.last, n-len(sc.last))
	}
}

// estimateSeries is about the number of series rm converts to (see
// dataPoints); only used to size buffers.
func estimateSeries(rm *metricdata.ResourceMetrics) int {
	n := 1 // target_info
	for i := range rm.ScopeMetrics {
		for j := range rm.ScopeMetrics[i].Metrics {
			_, series := dataPoints(rm.ScopeMetrics[i].Metrics[j].Data)
			n += series
		}
	}
	return n
}

// dataPoints returns how many data points data holds, and about how many
// series they convert to: exact for valid data with WithHistogramMinMax
// off. It only sizes tables and counts for telemetry.
func dataPoints(data metricdata.Aggregation) (points, series int) {
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		return len(d.DataPoints), len(d.DataPoints)
	case metricdata.Sum[float64]:
		return len(d.DataPoints), len(d.DataPoints)
	case metricdata.Gauge[int64]:
		return len(d.DataPoints), len(d.DataPoints)
	case metricdata.Gauge[float64]:
		return len(d.DataPoints), len(d.DataPoints)
	case metricdata.ExponentialHistogram[int64]:
		return len(d.DataPoints), len(d.DataPoints)
	case metricdata.ExponentialHistogram[float64]:
		return len(d.DataPoints), len(d.DataPoints)
	case metricdata.Histogram[int64]:
		return len(d.DataPoints), classicSeries(d.DataPoints)
	case metricdata.Histogram[float64]:
		return len(d.DataPoints), classicSeries(d.DataPoints)
	case metricdata.Summary:
		for k := range d.DataPoints {
			series += len(d.DataPoints[k].QuantileValues) + 2
		}
		return len(d.DataPoints), series
	}
	return 0, 0
}

// classicSeries is the number of classic series of a histogram's points:
// one per bucket (at least the implicit +Inf: see withImplicitBuckets),
// _sum and _count.
func classicSeries[N int64 | float64](dps []metricdata.HistogramDataPoint[N]) int {
	n := 0
	for k := range dps {
		n += max(len(dps[k].BucketCounts), 1) + 2
	}
	return n
}

// restampWindow bounds how far a sample may be moved forward: further than
// a few same-millisecond collections in a row could push it, moving it
// would hide a clock that went back behind invented timestamps.
const restampWindow = 10

// maxMoved is the furthest restamp moves a sample: the most a record
// holds (recordMoved).
const maxMoved = recordMoved >> recordMovedShift

// movedSample is the own time and value (its bits) of a series' newest
// sample delivered, which restamp moved.
type movedSample struct {
	own   int64
	value uint64
}

// restamp returns the timestamp to send a sample of s taken at ms with
// value v, and how far it moved it. The receiver refuses a request holding
// a sample before the newest one it holds of its series, or at that time
// with another value; at that time with the same value it is a duplicate,
// ignored.
//   - A sample at or just before the newest one delivered (collections
//     within one millisecond, such as ForceFlush right before Shutdown)
//     moves to 1 ms after it.
//   - Once moved, the same point again (a producer that repeats a point with
//     its own timestamp, as client_golang's bridge does for a metric with
//     one) goes at the newest time, a duplicate: moved again each export, it
//     would leave the window and go before the newest, refused in every
//     export from then on. Another value at that own time is one more
//     collection in its millisecond, moved 1 ms further, up to maxMoved.
//   - One older still is genuinely out of order (the clock went back): it
//     goes as it is, and the receiver's rejection is reported.
//
// emit calls it only for a sample at or before the newest delivered (the
// rest go as they are): the common case costs no call.
func (cc *conversion) restamp(s *seriesState, ms int64, v float64) (int64, int64) {
	newest := s.newest()
	if s.is(flagMoved) && ms == cc.sc.moved[s].own {
		switch {
		case math.Float64bits(v) == cc.sc.moved[s].value:
			return newest, newest - ms
		case newest+1-ms <= maxMoved:
			return newest + 1, newest + 1 - ms
		}
		return ms, 0
	}
	if newest-ms < restampWindow {
		return newest + 1, newest + 1 - ms
	}
	return ms, 0
}

func (cc *conversion) resourceMetrics(rm *metricdata.ResourceMetrics) {
	res := cc.resource(rm.Resource)
	cc.res = res
	cc.job, cc.instance, cc.low = res.job, res.instance, res.low
	var p problems
	p.addAll(res.problems)
	cc.reportResource(&p)
	for i := range rm.ScopeMetrics {
		sm := &rm.ScopeMetrics[i]
		se := cc.scope(sm.Scope)
		if len(se.problems) > 0 {
			var p problems
			p.addAll(se.problems)
			cc.reportScope(sm.Scope, &p)
		}
		for j := range sm.Metrics {
			cc.metric(sm.Scope, se, &sm.Metrics[j], j)
		}
	}
	cc.targetInfo()
}

// metric converts the scope's metric j, reporting what it drops in one
// warning.
func (cc *conversion) metric(scope instrumentation.Scope, se *scopeEntry, m *metricdata.Metrics, j int) {
	mc := metricCtx{m: *m, high: se.high}
	kind := kindOf(m.Data)
	if kind == kindUnsupported {
		mc.p.add("unsupported data type %T: the whole metric", m.Data)
	} else {
		me := cc.metricEntry(se, m, kind, j)
		if me.high != nil {
			mc.high = me.high
		}
		cc.start = 0
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			convertSum(cc, &mc, me, d)
		case metricdata.Sum[float64]:
			convertSum(cc, &mc, me, d)
		case metricdata.Gauge[int64]:
			convertGauge(cc, &mc, me, d)
		case metricdata.Gauge[float64]:
			convertGauge(cc, &mc, me, d)
		case metricdata.Histogram[int64]:
			convertHistogram(cc, &mc, me, d)
		case metricdata.Histogram[float64]:
			convertHistogram(cc, &mc, me, d)
		case metricdata.ExponentialHistogram[int64]:
			convertExponentialHistogram(cc, &mc, me, d)
		case metricdata.ExponentialHistogram[float64]:
			convertExponentialHistogram(cc, &mc, me, d)
		case metricdata.Summary:
			convertSummary(cc, &mc, me, d)
		}
		cc.sc.exemplars.reset()
	}
	if len(mc.p.reasons) > 0 {
		cc.report(fmt.Sprintf("metric %q", m.Name), &mc.p, "metric", m.Name, "scope", scope.Name)
	}
}

// mainFamily returns the metric's cached family name, or ""
// when the metric cannot be sent (the problem is added to mc).
func (cc *conversion) mainFamily(mc *metricCtx, me *metricEntry) string {
	if me.problem != "" {
		mc.p.addReason(me.problem, 1)
		return ""
	}
	f := &me.families[familyMain]
	if !cc.nameFree(mc, f) {
		return ""
	}
	return f.name
}

// singlePoint returns the entry of data point i, with one series named
// name.
func (cc *conversion) singlePoint(mc *metricCtx, me *metricEntry, attrs *attribute.Set, i int, name string) *pointEntry {
	pe := cc.point(me, attrs, i)
	if pe == nil {
		var base []prompb.Label
		pe, base = cc.newPoint(mc, me, nil, *attrs, "")
		pe.series = cc.sc.internWith(base, nameLabel(name))
		me.byIndex.set(i, pe)
	}
	mc.p.addAll(pe.problems())
	return pe
}

// emit adds the series *slot to the batch with value v at ms, and the
// exemplars: a series already sent in this export is
// dropped with a problem; the family is registered with its first series.
// A native histogram h (v unused) is sent instead of a sample when not nil.
func (cc *conversion) emit(mc *metricCtx, f *family, slot **seriesState, v float64, ms int64, exemplars []prompb.Exemplar, h *nativeParts) {
	s := *slot
	if s.is(flagEvicted) {
		s = cc.sc.revive(s)
		*slot = s
	}
	if s.seen() == cc.gen {
		mc.p.add("series %s sent twice in one export: kept the first", seriesString(decodeLabels(cc.sc.encodedLabels(s))))
		cc.pointDropped()
		return
	}
	seen := s.seen()
	s.setSeen(cc.gen)
	cc.sc.seenCount++
	cc.observeTime(ms)
	if h != nil {
		v = h.identity() // a native histogram has no value: restamp compares this
	}
	var moved int64
	if s.is(flagDelivered) && ms <= s.newest() {
		ms, moved = cc.restamp(s, ms, v)
	}
	start := cc.start
	var zeros zeroMark
	if z := cc.sc.zeros; z != nil {
		zeros = z.mark()
		start = cc.zeroBefore(f, s, seen, ms, start, h)
	}
	r := record{s: s, key: s.key, value: v, ts: ms}
	if len(exemplars) > 0 || h != nil {
		b := cc.b
		start := len(b.extra)
		for i := range exemplars {
			b.extra = appendExemplar(b.extra, &exemplars[i])
		}
		if len(exemplars) > 0 {
			b.exemplars = append(b.exemplars, exemplarCount{record: len(b.records), n: len(exemplars)})
		}
		if h != nil {
			h.timestamp = ms
			b.extra = appendHistogram(b.extra, h, true)
		}
		var tooLarge string
		switch n := len(b.extra) - start; {
		case n > maxRecordExtra:
			tooLarge = fmt.Sprintf("its native histogram and exemplars take %d bytes, more than the %d one series may", n, maxRecordExtra)
		case len(b.extra) > maxBatchExtra:
			tooLarge = fmt.Sprintf("the export's native histograms and exemplars take more than the %d bytes one export may", maxBatchExtra)
		}
		if tooLarge != "" {
			b.extra = b.extra[:start]
			if len(exemplars) > 0 {
				b.exemplars = b.exemplars[:len(b.exemplars)-1]
			}
			mc.p.add("series %s dropped: %s", seriesString(decodeLabels(cc.sc.encodedLabels(s))), tooLarge)
			if z := cc.sc.zeros; z != nil {
				z.undo(zeros) // no zero before a sample that does not go
			}
			cc.pointDropped()
			return
		}
		r.extra, r.extraLen = uint32(start), uint32(len(b.extra)-start)
		if h != nil {
			r.extraLen |= recordHistogram
			b.native = true
		}
	}
	r.extraLen |= uint32(moved) << recordMovedShift
	cc.b.records = append(cc.b.records, r)
	if st := cc.b.stream; st != nil && len(cc.b.records) >= st.at {
		st.advance(cc.b)
	}
	if cc.b.collectV2 {
		info := recordV2{start: start, fam: f, customBuckets: cc.customBuckets, v2: s.v2}
		if cc.sc.rules.withoutMetadata {
			info.fam = nil
		}
		if info.start > ms {
			info.start = 0 // not a start; receivers would refuse it
		}
		cc.b.v2 = append(cc.b.v2, info)
	}
	if f.registered != cc.gen {
		f.registered = cc.gen
		cc.register(f)
	}
}

// pointDropped counts the data point being emitted (emitting) dropped by
// the conversion, once, though a series of it was looked up: its entry
// made it count kept (pointsKept). A point whose entry this export used
// already (the same attributes twice) was not counted kept at all.
func (cc *conversion) pointDropped() {
	if cc.emitting == nil || !cc.pointNew {
		return
	}
	if cc.dropped == nil {
		cc.dropped = make(map[*pointEntry]struct{})
	}
	if _, ok := cc.dropped[cc.emitting]; !ok {
		cc.dropped[cc.emitting] = struct{}{}
		cc.sc.pointsDropped++
	}
}

// register adds f to the families of this export, with its metadata,
// unless a family of that name is already there.
func (cc *conversion) register(f *family) {
	s := f.slot
	if s.gen == cc.gen {
		return
	}
	s.gen, s.typ = cc.gen, f.typ
	if !cc.sc.rules.withoutMetadata {
		cc.b.metadata = append(cc.b.metadata, f.metadata)
	}
}

func convertSum[N int64 | float64](cc *conversion, mc *metricCtx, me *metricEntry, d metricdata.Sum[N]) {
	if !checkTemporality(mc, d.Temporality) {
		return
	}
	name := cc.mainFamily(mc, me)
	if name == "" {
		return
	}
	f := &me.families[familyMain]
	for i := range d.DataPoints {
		dp := &d.DataPoints[i]
		pe := cc.singlePoint(mc, me, &dp.Attributes, i, name)
		t := dp.Time.UnixMilli()
		if d.IsMonotonic {
			cc.start = startMillis(dp.StartTime)
		}
		var exemplars []prompb.Exemplar
		if d.IsMonotonic && len(dp.Exemplars) > 0 {
			// OpenMetrics allows exemplars on counters and histogram
			// buckets only.
			exemplars = convertExemplars(cc.sc.rules, dp.Exemplars, t, &mc.p, &cc.sc.exemplars)
		}
		cc.emit(mc, f, &pe.series, promValue(float64(dp.Value)), t, exemplars, nil)
	}
}

func convertGauge[N int64 | float64](cc *conversion, mc *metricCtx, me *metricEntry, d metricdata.Gauge[N]) {
	name := cc.mainFamily(mc, me)
	if name == "" {
		return
	}
	f := &me.families[familyMain]
	for i := range d.DataPoints {
		dp := &d.DataPoints[i]
		pe := cc.singlePoint(mc, me, &dp.Attributes, i, name)
		cc.emit(mc, f, &pe.series, promValue(float64(dp.Value)), dp.Time.UnixMilli(), nil, nil)
	}
}

func convertExponentialHistogram[N int64 | float64](cc *conversion, mc *metricCtx, me *metricEntry, d metricdata.ExponentialHistogram[N]) {
	if cc.sc.rules.classicExponential {
		convertHistogram(cc, mc, me, classicFromExponential(d))
		return
	}
	if !checkTemporality(mc, d.Temporality) {
		return
	}
	name := cc.mainFamily(mc, me)
	if name == "" {
		return
	}
	f := &me.families[familyMain]
	for i := range d.DataPoints {
		dp := &d.DataPoints[i]
		h, msg := buildNative(dp, &cc.sc.native)
		if msg != "" {
			mc.p.addReason(msg, 1)
			continue
		}
		pe := cc.singlePoint(mc, me, &dp.Attributes, i, name)
		cc.start = startMillis(dp.StartTime)
		var exemplars []prompb.Exemplar
		if len(dp.Exemplars) > 0 {
			exemplars = convertExemplars(cc.sc.rules, dp.Exemplars, h.timestamp, &mc.p, &cc.sc.exemplars)
		}
		cc.emit(mc, f, &pe.series, 0, h.timestamp, exemplars, &h)
	}
}

func convertSummary(cc *conversion, mc *metricCtx, me *metricEntry, d metricdata.Summary) {
	name := cc.mainFamily(mc, me)
	if name == "" {
		return
	}
	f := &me.families[familyMain]
	for i := range d.DataPoints {
		dp := &d.DataPoints[i]
		pe := cc.point(me, &dp.Attributes, i)
		if pe == nil || pe.more == nil || !sameQuantiles(pe.more.quantiles, dp.QuantileValues) {
			pe = cc.summaryPoint(mc, me, pe, dp, name)
			me.byIndex.set(i, pe)
		}
		ps := pe.more
		mc.p.addAll(ps.problems)
		t := dp.Time.UnixMilli()
		cc.start = startMillis(dp.StartTime)
		for j, q := range dp.QuantileValues {
			cc.emit(mc, f, &ps.series[j], promValue(q.Value), t, nil, nil)
		}
		k := len(dp.QuantileValues)
		cc.emit(mc, f, &ps.series[k], promValue(dp.Sum), t, nil, nil)
		cc.emit(mc, f, &ps.series[k+1], float64(dp.Count), t, nil, nil)
	}
}

func (cc *conversion) summaryPoint(mc *metricCtx, me *metricEntry, pe *pointEntry, dp *metricdata.SummaryDataPoint, name string) *pointEntry {
	pe, base := cc.newPoint(mc, me, pe, dp.Attributes, labelQuantile)
	if pe.more == nil {
		pe.more = &pointMore{}
	}
	ps := pe.more
	sc := cc.sc
	for _, q := range dp.QuantileValues {
		ps.quantiles = append(ps.quantiles, q.Quantile)
		ps.series = append(ps.series, sc.internWith(base, nameLabel(name), prompb.Label{Name: labelQuantile, Value: sc.rules.formatFloat(q.Quantile)}))
	}
	ps.series = append(ps.series,
		sc.internWith(base, nameLabel(name+"_sum")),
		sc.internWith(base, nameLabel(name+"_count")))
	return pe
}

func sameQuantiles(cached []float64, qs []metricdata.QuantileValue) bool {
	if len(cached) != len(qs) {
		return false
	}
	for i := range qs {
		if math.Float64bits(cached[i]) != math.Float64bits(qs[i].Quantile) {
			return false
		}
	}
	return true
}

// targetInfo adds the target_info series: the resource attributes other
// than those in job and instance, as labels of a gauge with value 1 (SPEC
// §3). It is sent only with other series, and only when it has attributes to
// carry; its timestamp is that of the newest sample in the export, so that
// it lines up with the data it describes and conversion stays deterministic.
func (cc *conversion) targetInfo() {
	if cc.sc.rules.withoutTargetInfo || !cc.hasNewest {
		return
	}
	res := cc.res
	mc := metricCtx{m: metricdata.Metrics{Name: cc.sc.rules.targetInfoName, Description: targetInfoHelp}}
	mc.p.addAll(res.targetProblems)
	if res.target != nil && cc.nameFree(&mc, &res.targetFamily) {
		cc.start, cc.emitting = 0, nil
		cc.emit(&mc, &res.targetFamily, &res.target, 1, cc.newest, nil, nil)
	}
	if len(mc.p.reasons) > 0 {
		cc.report("target_info", &mc.p, "metric", cc.sc.rules.targetInfoName)
	}
}
