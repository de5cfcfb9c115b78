package prwmetric

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// The series cache is how Export avoids redoing, every few seconds, work
// whose result never changes: a data point's attribute set, under the same
// resource, scope and metric, always yields the same Prometheus series with
// the same labels. So the first export of a series builds its labels with
// the reference converter (convert.go) and keeps them protobuf-encoded;
// later exports look the data point up by its attribute set and only write
// value and timestamp next to the cached bytes.
//
// The cache is a tree: resource → scope → metric → data point (by
// attribute set) → the point's series. The series themselves are interned
// by their encoded labels, which is their identity for the receiver: that
// table also carries what staleness and timestamp ordering need (the
// seriesTracker of old), see stale.go. Entries not used by an export are
// dropped at its end, so memory follows the live series, plus those whose
// staleness marker has not been delivered yet.

// seriesState is one Prometheus series as the receiver knows it.
type seriesState struct {
	// labels are the series' labels encoded as TimeSeries label fields,
	// ready to be copied into a request; they are also its identity.
	labels string
	// newest is the newest timestamp delivered, when delivered is set.
	newest int64
	// bits holds the generation of the last export that sent it (the low
	// genBits) and the flags below: packed so that, with v2, a seriesState
	// fits a 32-byte allocation.
	bits uint32
	// v2 indexes what 2.0 requests keep of the series in
	// seriesCache.v2series; 0 until it is first sent as 2.0.
	v2 uint32
}

const (
	genBits = 24
	genMask = 1<<genBits - 1

	// delivered: the series was in the last successful export, so the
	// receiver holds it; it must be ended by a staleness marker when it
	// disappears, and its next sample must be later than newest.
	delivered = 1 << (genBits + iota)
	// histogram: its last delivered sample was a native histogram, so its
	// staleness marker must be one too.
	histogram
	// evicted: the series left the table. Cache entries that still point
	// to it look it up again by its labels.
	evicted
)

func (s *seriesState) seen() generation { return generation(s.bits & genMask) }

func (s *seriesState) setSeen(g generation) { s.bits = s.bits&^genMask | uint32(g) }

func (s *seriesState) is(flag uint32) bool { return s.bits&flag != 0 }

func (s *seriesState) set(flag uint32, on bool) {
	if on {
		s.bits |= flag
	} else {
		s.bits &^= flag
	}
}

// seriesCache holds what exports reuse. One export converts at a time (the
// Exporter admits one), but Shutdown may read it concurrently, so it is
// guarded by mu.
type seriesCache struct {
	c         *converter
	markStale bool

	mu sync.Mutex
	// gen numbers the exports (conversions), so that "seen in this export"
	// is one comparison.
	gen generation
	// byLabels interns series by their encoded labels. last lists the same
	// series, for the sweep at the end of each conversion: after it, they
	// are those of the last export and those the receiver still holds
	// from before (their staleness marker not delivered yet).
	byLabels map[string]*seriesState
	last     []*seriesState
	// seenCount is how many series the current export sent: when it equals
	// len(last), no series disappeared and the sweep is skipped.
	seenCount int

	res *resourceEntry
	// entries and entriesSeen count the scope, metric and point entries,
	// in all and those the current export used, to skip their sweep too.
	entries, entriesSeen int

	// families is reused by every conversion (see conversion.families).
	families map[string]prompb.MetricMetadata_MetricType
	// native, labelBuf, labels and histPoints are scratch space of the conversion.
	native   nativeScratch
	labelBuf []byte
	labels   []prompb.Label
	// histPoints are a histogram's points being converted.
	histPoints []histPoint

	// withV2 makes conversions record what 2.0 requests need (batch.v2).
	withV2 bool
	// symbols number the label strings of 2.0 requests; v2series holds
	// what 2.0 keeps of each series (seriesState.v2; 0 is unused), v2free
	// the indexes of evicted series, for reuse (v2.go).
	symbols  symbolTable
	v2series []seriesV2
	v2free   []uint32
}

// generation numbers conversions, in genBits bits, which keep the
// per-series state small. Wrapping around is harmless: an entry keeps an
// old generation only while the export that would end it keeps failing, and
// 2^24 exports take half a year at one per second. 0 is skipped: new
// entries hold it.
type generation uint32

func (g generation) next() generation {
	if g = (g + 1) & genMask; g == 0 {
		g++
	}
	return g
}

func newSeriesCache(c *converter, markStale bool) *seriesCache {
	return &seriesCache{
		c:         c,
		markStale: markStale,
		byLabels:  map[string]*seriesState{},
		families:  map[string]prompb.MetricMetadata_MetricType{},
	}
}

// intern returns the series with the given encoded labels, adding it if
// it is new. Looking up with string(labels) does not allocate.
func (sc *seriesCache) intern(labels []byte) *seriesState {
	if s, ok := sc.byLabels[string(labels)]; ok {
		return s
	}
	return sc.internString(string(labels))
}

// internString is intern for labels held in a string.
func (sc *seriesCache) internString(labels string) *seriesState {
	if s, ok := sc.byLabels[labels]; ok {
		return s
	}
	s := &seriesState{labels: labels}
	sc.byLabels[labels] = s
	sc.last = append(sc.last, s)
	return s
}

// internLabels encodes labels and interns the series.
func (sc *seriesCache) internLabels(labels []prompb.Label) *seriesState {
	sc.labelBuf = appendLabels(sc.labelBuf[:0], labels)
	return sc.intern(sc.labelBuf)
}

// internWith interns the series withLabels(base, extra...) without
// allocating the labels.
func (sc *seriesCache) internWith(base []prompb.Label, extra ...prompb.Label) *seriesState {
	sc.labels = appendWithLabels(sc.labels[:0], base, extra...)
	s := sc.internLabels(sc.labels)
	clear(sc.labels) // keep no label strings alive
	return s
}

// resourceEntry is what a resource yields, and the cache below it.
type resourceEntry struct {
	res *resource.Resource
	set attribute.Set

	job, instance string
	low           map[string]string
	problems      []savedProblem

	// target is the target_info series (nil when the resource has no
	// attributes for it), with its problems and family.
	target         *seriesState
	targetProblems []savedProblem
	targetFamily   family

	scopes map[scopeKey]*scopeEntry
}

type scopeKey struct {
	name, version, schemaURL string
	attrs                    attribute.Distinct
}

// scopeEntry is what an instrumentation scope yields: the labels that win
// over data point attributes (conversion.scopeLabels), and its metrics.
type scopeEntry struct {
	attrs    attribute.Set
	high     map[string]string
	problems []savedProblem
	seen     generation
	metrics  map[metricKey]*metricEntry
}

// metricKey is everything of a metric the conversion reads besides its data
// points: its data type decides the naming and the series of a point.
type metricKey struct {
	name, unit, description string
	kind                    metricKind
}

type metricKind uint8

const (
	kindUnsupported metricKind = iota
	kindSumInt
	kindSumFloat
	kindMonotonicSumInt
	kindMonotonicSumFloat
	kindGaugeInt
	kindGaugeFloat
	kindHistogramInt
	kindHistogramFloat
	kindExponentialInt
	kindExponentialFloat
	kindSummary
)

func kindOf(data metricdata.Aggregation) metricKind {
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		if d.IsMonotonic {
			return kindMonotonicSumInt
		}
		return kindSumInt
	case metricdata.Sum[float64]:
		if d.IsMonotonic {
			return kindMonotonicSumFloat
		}
		return kindSumFloat
	case metricdata.Gauge[int64]:
		return kindGaugeInt
	case metricdata.Gauge[float64]:
		return kindGaugeFloat
	case metricdata.Histogram[int64]:
		return kindHistogramInt
	case metricdata.Histogram[float64]:
		return kindHistogramFloat
	case metricdata.ExponentialHistogram[int64]:
		return kindExponentialInt
	case metricdata.ExponentialHistogram[float64]:
		return kindExponentialFloat
	case metricdata.Summary:
		return kindSummary
	}
	return kindUnsupported
}

// family is a Prometheus metric family a metric sends series of.
type family struct {
	name string
	typ  prompb.MetricMetadata_MetricType
	// metadata is its encoded WriteRequest.metadata field.
	metadata string
	// help and unit are its metadata for 2.0 requests, helpID and unitID
	// their numbers in the symbol table of symEpoch (when symbolized).
	help, unit     string
	helpID, unitID uint32
	symEpoch       uint32
	symbolized     bool
	// registered is the export in which this metric already made sure the
	// family is registered, so that only its first series looks it up.
	registered generation
}

// The families of a metric, by index.
const (
	familyMain = iota
	// familyMin and familyMax are the _min and _max gauges of
	// WithHistogramMinMax.
	familyMin
	familyMax
)

// metricEntry is what a metric yields: its family names and metadata, and
// its data points by attribute set.
type metricEntry struct {
	// problem says why the metric has no name; families are unset then.
	problem  string
	families [3]family
	seen     generation
	// points holds the data points by the hash of their attribute set;
	// colliding sets are chained.
	points map[attribute.Distinct]*pointEntry
	// bounds are the explicit bucket bounds most recently cached, which
	// points with equal bounds share.
	bounds []float64
	// order is the order of a histogram's points.
	order pointOrder
}

// pointEntry is what one data point yields. It is kept small: there is one
// per data point, as many as series for sums and gauges.
type pointEntry struct {
	attrs attribute.Set
	next  *pointEntry
	seen  generation
	// series is the series of a sum, gauge or exponential histogram point.
	series *seriesState
	// more is what other points have, and problems: nil for most.
	more *pointMore
}

type pointMore struct {
	// problems are those of building the point's labels, replayed at each
	// export.
	problems []savedProblem
	// series are the series of a histogram point, one per bucket (+Inf
	// last), _sum and _count, or of a summary point, one per quantile,
	// _sum and _count.
	series []*seriesState
	// bounds or quantiles are those the series were built for.
	bounds    []float64
	quantiles []float64
	// min and max are the _min and _max series (WithHistogramMinMax).
	min, max *seriesState
}

// problems returns the saved problems of the point.
func (pe *pointEntry) problems() []savedProblem {
	if pe.more == nil {
		return nil
	}
	return pe.more.problems
}

// cachedConversion is the state of one conversion through the cache: the
// reference conversion's bookkeeping (families, problems, newest sample)
// with series appended to a batch instead of a prompb request.
type cachedConversion struct {
	sc  *seriesCache
	b   *batch
	gen generation
	// cv supplies the reference converter's rules for what is built anew
	// (labels, family conflicts, reports).
	cv  conversion
	res *resourceEntry
	// start is the start time (ms) of the series emitted next, for 2.0
	// requests: 0 for gauges; customBuckets marks it as a native histogram
	// with custom buckets.
	start         int64
	customBuckets bool
}

// convert converts rm into b, through the cache. Like converter.convert,
// it leaves out what Prometheus cannot accept, with one warning per metric,
// and returns an error listing it. It also ends with staleness markers the
// series that were delivered before and are missing now (see sweep), at
// time now (ms) or later.
func (sc *seriesCache) convert(rm *metricdata.ResourceMetrics, b *batch, now int64) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.gen = sc.gen.next()
	sc.seenCount, sc.entriesSeen = 0, 0
	clear(sc.families)
	cc := &cachedConversion{sc: sc, b: b, gen: sc.gen, cv: conversion{c: sc.c, families: sc.families}}
	b.withV2 = sc.withV2
	if rm != nil {
		sc.reserve(b, estimateSeries(rm))
		cc.resourceMetrics(rm)
	}
	sc.sweep(b, now)
	return cc.cv.err()
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

// estimateSeries is about the number of series rm converts to: exact for
// valid data (and WithHistogramMinMax off); only used to size buffers.
func estimateSeries(rm *metricdata.ResourceMetrics) int {
	n := 1 // target_info
	for i := range rm.ScopeMetrics {
		for j := range rm.ScopeMetrics[i].Metrics {
			switch d := rm.ScopeMetrics[i].Metrics[j].Data.(type) {
			case metricdata.Sum[int64]:
				n += len(d.DataPoints)
			case metricdata.Sum[float64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[int64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[float64]:
				n += len(d.DataPoints)
			case metricdata.ExponentialHistogram[int64]:
				n += len(d.DataPoints)
			case metricdata.ExponentialHistogram[float64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[int64]:
				for k := range d.DataPoints {
					n += len(d.DataPoints[k].BucketCounts) + 2
				}
			case metricdata.Histogram[float64]:
				for k := range d.DataPoints {
					n += len(d.DataPoints[k].BucketCounts) + 2
				}
			case metricdata.Summary:
				for k := range d.DataPoints {
					n += len(d.DataPoints[k].QuantileValues) + 2
				}
			}
		}
	}
	return n
}

// forget drops every entry above the series, after a conversion failed
// half-way (it panicked): the series table stays consistent, the rest is
// rebuilt by the next export.
func (sc *seriesCache) forget() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.res, sc.entries = nil, 0
}

// restampWindow bounds how far back a sample may be moved forward: further
// than a few same-millisecond collections in a row could push it, moving it
// would hide a clock that went back behind invented timestamps.
const restampWindow = 10

func (cc *cachedConversion) resourceMetrics(rm *metricdata.ResourceMetrics) {
	res := cc.resource(rm.Resource)
	cc.res = res
	cc.cv.job, cc.cv.instance, cc.cv.low = res.job, res.instance, res.low
	var p problems
	p.addAll(res.problems)
	cc.cv.reportResource(&p)
	for i := range rm.ScopeMetrics {
		sm := &rm.ScopeMetrics[i]
		se := cc.scope(sm.Scope)
		if len(se.problems) > 0 {
			var p problems
			p.addAll(se.problems)
			cc.cv.reportScope(sm.Scope, &p)
		}
		for j := range sm.Metrics {
			cc.metric(sm.Scope, se, &sm.Metrics[j])
		}
	}
	cc.targetInfo()
}

// resource returns the entry of r, building it when r differs from the
// last resource (which drops the cache below it: another resource means
// other labels).
func (cc *cachedConversion) resource(r *resource.Resource) *resourceEntry {
	sc := cc.sc
	if e := sc.res; e != nil && (e.res == r || e.set.Equals(r.Set())) {
		e.res = r
		return e
	}
	set := r.Set() // nil-safe: a nil resource is empty
	e := &resourceEntry{res: r, set: *set, scopes: map[scopeKey]*scopeEntry{}}
	var p problems
	e.job, e.instance, e.low = sc.c.resourceLabels(set, &p)
	e.problems = p.saved()

	if !sc.c.withoutTargetInfo {
		p = problems{}
		if labels := sc.c.targetInfoLabels(set, e.job, e.instance, &p); labels != nil {
			e.target = sc.internLabels(labels)
		}
		e.targetProblems = p.saved()
		e.targetFamily = sc.family(otlptranslator.TargetInfoMetricName, prompb.MetricMetadata_GAUGE, targetInfoHelp, "")
	}
	sc.res, sc.entries = e, 0
	return e
}

// family returns the family name of type typ with the metadata of a metric
// with description help and unit.
func (sc *seriesCache) family(name string, typ prompb.MetricMetadata_MetricType, help, unit string) family {
	unit = sc.c.unitNamer.Build(unit)
	return family{name: name, typ: typ, metadata: string(appendMetadata(nil, typ, name, help, unit)), help: help, unit: unit}
}

func (cc *cachedConversion) touch(seen *generation) {
	if *seen != cc.gen {
		*seen = cc.gen
		cc.sc.entriesSeen++
	}
}

func (cc *cachedConversion) scope(scope instrumentation.Scope) *scopeEntry {
	key := scopeKey{name: scope.Name, version: scope.Version, schemaURL: scope.SchemaURL, attrs: scope.Attributes.Equivalent()}
	se := cc.res.scopes[key]
	if se == nil || !se.attrs.Equals(&scope.Attributes) {
		// A replaced entry (its key collided) stays counted: counting
		// too many only makes the sweep run and recount.
		se = &scopeEntry{attrs: scope.Attributes, metrics: map[metricKey]*metricEntry{}}
		var p problems
		se.high = cc.sc.c.scopeLabels(scope, cc.res.job, cc.res.instance, &p)
		se.problems = p.saved()
		cc.res.scopes[key] = se
		cc.sc.entries++
	}
	cc.touch(&se.seen)
	return se
}

// metric converts one metric, like conversion.metric.
func (cc *cachedConversion) metric(scope instrumentation.Scope, se *scopeEntry, m *metricdata.Metrics) {
	mc := metricCtx{m: *m, high: se.high}
	kind := kindOf(m.Data)
	if kind == kindUnsupported {
		mc.p.add("unsupported data type %T: the whole metric", m.Data)
	} else {
		me := cc.metricEntry(se, m, kind)
		cc.start = 0
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			cachedSum(cc, &mc, me, d)
		case metricdata.Sum[float64]:
			cachedSum(cc, &mc, me, d)
		case metricdata.Gauge[int64]:
			cachedGauge(cc, &mc, me, d)
		case metricdata.Gauge[float64]:
			cachedGauge(cc, &mc, me, d)
		case metricdata.Histogram[int64]:
			cachedHistogram(cc, &mc, me, d)
		case metricdata.Histogram[float64]:
			cachedHistogram(cc, &mc, me, d)
		case metricdata.ExponentialHistogram[int64]:
			cachedExponentialHistogram(cc, &mc, me, d)
		case metricdata.ExponentialHistogram[float64]:
			cachedExponentialHistogram(cc, &mc, me, d)
		case metricdata.Summary:
			cachedSummary(cc, &mc, me, d)
		}
	}
	if len(mc.p.reasons) > 0 {
		cc.cv.report(fmt.Sprintf("metric %q", m.Name), &mc.p, "metric", m.Name, "scope", scope.Name)
	}
}

func (cc *cachedConversion) metricEntry(se *scopeEntry, m *metricdata.Metrics, kind metricKind) *metricEntry {
	key := metricKey{name: m.Name, unit: m.Unit, description: m.Description, kind: kind}
	me := se.metrics[key]
	if me == nil {
		me = cc.newMetricEntry(m, kind)
		se.metrics[key] = me
		cc.sc.entries++
	}
	cc.touch(&me.seen)
	return me
}

// newMetricEntry names the metric's families as conversion.family does.
func (cc *cachedConversion) newMetricEntry(m *metricdata.Metrics, kind metricKind) *metricEntry {
	c := cc.sc.c
	var namingType otlptranslator.MetricType = otlptranslator.MetricTypeGauge
	typ := prompb.MetricMetadata_GAUGE
	switch kind {
	case kindSumInt, kindSumFloat:
		namingType = otlptranslator.MetricTypeNonMonotonicCounter
	case kindMonotonicSumInt, kindMonotonicSumFloat:
		namingType, typ = otlptranslator.MetricTypeNonMonotonicCounter, prompb.MetricMetadata_COUNTER
		// Like the pull exporter: without suffixes, a counter is named
		// like an up-down counter (no "_total").
		if c.withSuffixes {
			namingType = otlptranslator.MetricTypeMonotonicCounter
		}
	case kindHistogramInt, kindHistogramFloat, kindExponentialInt, kindExponentialFloat:
		namingType, typ = otlptranslator.MetricTypeHistogram, prompb.MetricMetadata_HISTOGRAM
	case kindSummary:
		namingType, typ = otlptranslator.MetricTypeSummary, prompb.MetricMetadata_SUMMARY
	}
	me := &metricEntry{points: make(map[attribute.Distinct]*pointEntry, dataPoints(m.Data))}
	name, problem := c.familyName(*m, namingType)
	if problem != "" {
		me.problem = problem
		return me
	}
	me.families[familyMain] = cc.sc.family(name, typ, m.Description, m.Unit)
	if kind == kindHistogramInt || kind == kindHistogramFloat {
		me.families[familyMin] = cc.sc.family(name+"_min", prompb.MetricMetadata_GAUGE, m.Description, m.Unit)
		me.families[familyMax] = cc.sc.family(name+"_max", prompb.MetricMetadata_GAUGE, m.Description, m.Unit)
	}
	return me
}

// dataPoints is the number of data points of data, to size a new metric's
// point table at once.
func dataPoints(data metricdata.Aggregation) int {
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		return len(d.DataPoints)
	case metricdata.Sum[float64]:
		return len(d.DataPoints)
	case metricdata.Gauge[int64]:
		return len(d.DataPoints)
	case metricdata.Gauge[float64]:
		return len(d.DataPoints)
	case metricdata.Histogram[int64]:
		return len(d.DataPoints)
	case metricdata.Histogram[float64]:
		return len(d.DataPoints)
	case metricdata.ExponentialHistogram[int64]:
		return len(d.DataPoints)
	case metricdata.ExponentialHistogram[float64]:
		return len(d.DataPoints)
	case metricdata.Summary:
		return len(d.DataPoints)
	}
	return 0
}

// mainFamily is conversion.family on a cached name: the family name, or ""
// when the metric cannot be sent (the problem is added to mc).
func (cc *cachedConversion) mainFamily(mc *metricCtx, me *metricEntry) string {
	if me.problem != "" {
		mc.p.addReason(me.problem, 1)
		return ""
	}
	f := &me.families[familyMain]
	if !cc.cv.familyFree(mc, f.name, f.typ) {
		return ""
	}
	return f.name
}

// point returns the cached entry of the data point with attributes attrs,
// or nil.
func (cc *cachedConversion) point(me *metricEntry, attrs *attribute.Set) *pointEntry {
	for pe := me.points[attrs.Equivalent()]; pe != nil; pe = pe.next {
		if pe.attrs.Equals(attrs) {
			cc.touch(&pe.seen)
			return pe
		}
	}
	return nil
}

// newPoint adds an entry for attrs, or resets pe (the entry of attrs whose
// buckets or quantiles changed), and returns its base labels:
// conversion.pointLabels with the problems saved in the entry.
func (cc *cachedConversion) newPoint(mc *metricCtx, me *metricEntry, pe *pointEntry, attrs attribute.Set, reserved string) (*pointEntry, []prompb.Label) {
	if pe == nil {
		key := attrs.Equivalent()
		pe = &pointEntry{attrs: attrs, next: me.points[key]}
		me.points[key] = pe
		cc.sc.entries++
		cc.touch(&pe.seen)
	}
	var p problems
	base := cc.cv.pointLabels(attrs, mc.high, &p, reserved)
	if saved := p.saved(); saved != nil || pe.more != nil {
		pe.more = &pointMore{problems: saved}
	}
	return pe, base
}

// singlePoint returns the entry of a point with one series named name.
func (cc *cachedConversion) singlePoint(mc *metricCtx, me *metricEntry, attrs *attribute.Set, name string) *pointEntry {
	pe := cc.point(me, attrs)
	if pe == nil {
		var base []prompb.Label
		pe, base = cc.newPoint(mc, me, nil, *attrs, "")
		pe.series = cc.sc.internWith(base, nameLabel(name))
	}
	mc.p.addAll(pe.problems())
	return pe
}

// emit adds the series *slot to the batch with value v at ms, and the
// exemplars, like conversion.emit: a series already sent in this export is
// dropped with a problem; the family is registered with its first series.
// A native histogram h (v unused) is sent instead of a sample when not nil.
func (cc *cachedConversion) emit(mc *metricCtx, f *family, slot **seriesState, v float64, ms int64, exemplars []prompb.Exemplar, h *nativeParts) {
	s := *slot
	if s.is(evicted) {
		s = cc.sc.internString(s.labels)
		*slot = s
	}
	if s.seen() == cc.gen {
		mc.p.add("series %s sent twice in one export: kept the first", seriesString(decodeLabels(s.labels)))
		return
	}
	s.setSeen(cc.gen)
	cc.sc.seenCount++
	cc.cv.observeTime(ms)
	// A sample at or just before the newest one delivered (collections
	// within one millisecond, such as ForceFlush right before Shutdown)
	// moves to 1 ms after it: the receiver would reject the request. One
	// that is older still is genuinely out of order (the clock went back);
	// it goes as it is, and the receiver's rejection is reported.
	if s.is(delivered) && ms <= s.newest && s.newest-ms < restampWindow {
		ms = s.newest + 1
	}
	r := record{s: s, value: v, ts: ms}
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
		r.extra, r.extraLen = uint32(start), uint32(len(b.extra)-start)
		if h != nil {
			r.extraLen |= recordHistogram
		}
	}
	cc.b.records = append(cc.b.records, r)
	if cc.b.withV2 {
		info := recordV2{start: cc.start, fam: f, customBuckets: cc.customBuckets}
		if cc.sc.c.withoutMetadata {
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

// register adds f to the families of this export, with its metadata,
// unless a family of that name is already there.
func (cc *cachedConversion) register(f *family) {
	if _, ok := cc.cv.families[f.name]; ok {
		return
	}
	cc.cv.families[f.name] = f.typ
	if !cc.sc.c.withoutMetadata {
		cc.b.metadata = append(cc.b.metadata, f.metadata)
	}
}

func cachedSum[N int64 | float64](cc *cachedConversion, mc *metricCtx, me *metricEntry, d metricdata.Sum[N]) {
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
		pe := cc.singlePoint(mc, me, &dp.Attributes, name)
		t := dp.Time.UnixMilli()
		if d.IsMonotonic {
			cc.start = startMillis(dp.StartTime)
		}
		var exemplars []prompb.Exemplar
		if d.IsMonotonic && len(dp.Exemplars) > 0 {
			// OpenMetrics allows exemplars on counters and histogram
			// buckets only.
			exemplars = convertExemplars(cc.sc.c, dp.Exemplars, t, &mc.p)
		}
		cc.emit(mc, f, &pe.series, promValue(float64(dp.Value)), t, exemplars, nil)
	}
}

func cachedGauge[N int64 | float64](cc *cachedConversion, mc *metricCtx, me *metricEntry, d metricdata.Gauge[N]) {
	name := cc.mainFamily(mc, me)
	if name == "" {
		return
	}
	f := &me.families[familyMain]
	for i := range d.DataPoints {
		dp := &d.DataPoints[i]
		pe := cc.singlePoint(mc, me, &dp.Attributes, name)
		cc.emit(mc, f, &pe.series, promValue(float64(dp.Value)), dp.Time.UnixMilli(), nil, nil)
	}
}

func cachedHistogram[N int64 | float64](cc *cachedConversion, mc *metricCtx, me *metricEntry, d metricdata.Histogram[N]) {
	if !checkTemporality(mc, d.Temporality) {
		return
	}
	name := cc.mainFamily(mc, me)
	if name == "" {
		return
	}
	f := &me.families[familyMain]
	fmin, fmax := &me.families[familyMin], &me.families[familyMax]
	minMax := cc.sc.c.histogramMinMax &&
		cc.cv.familyFree(mc, fmin.name, fmin.typ) && cc.cv.familyFree(mc, fmax.name, fmax.typ)
	classic := cc.sc.c.classic()
	// The points are looked up in their order, which is also the order of
	// their problems and of their custom-bucket histograms; the classic
	// series are then sent in histogramOrder.
	points := cc.sc.histPoints[:0]
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
		pe := cc.point(me, &dp.Attributes)
		if pe == nil || pe.more == nil || !sameFloats(pe.more.bounds, dp.Bounds) {
			pe = cc.histogramPoint(mc, me, pe, dp.Attributes, dp.Bounds, name)
		}
		ps := pe.more
		mc.p.addAll(ps.problems)
		hp := histPoint{ps: ps, i: i, t: dp.Time.UnixMilli(), start: startMillis(dp.StartTime)}
		if cc.sc.c.customBuckets {
			cc.start = hp.start
			cachedCustomBuckets(cc, mc, f, pe, dp, hp.t)
		}
		if classic {
			if len(dp.Exemplars) > 0 {
				hp.exemplars = bucketExemplars(cc.sc.c, *dp, hp.t, &mc.p)
			}
			buckets = max(buckets, len(dp.BucketCounts))
		}
		points = append(points, hp)
	}
	// order is histogramOrder, when there are classic series; the rest
	// go in data point order.
	var order []int
	if classic {
		var sorted bool
		order, sorted = me.order.sorted(points)
		if sorted {
			// Lay the series' labels out in the order they are sent,
			// once they are.
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
				cc.start = p.start
				cc.emit(mc, f, &p.ps.series[j], float64(n), p.t, ex, nil)
			}
		}
		for _, k := range order {
			p := &points[k]
			dp := &d.DataPoints[p.i]
			cc.start = p.start
			cc.emit(mc, f, &p.ps.series[len(dp.BucketCounts)], promValue(float64(dp.Sum)), p.t, nil, nil)
		}
		for _, k := range order {
			p := &points[k]
			dp := &d.DataPoints[p.i]
			cc.start = p.start
			cc.emit(mc, f, &p.ps.series[len(dp.BucketCounts)+1], float64(dp.Count), p.t, nil, nil)
		}
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
			cc.emit(mc, fmin, &p.ps.min, promValue(float64(v)), p.t, nil, nil)
		}
	}
	for k := range points {
		p := &points[k]
		if order != nil {
			p = &points[order[k]]
		}
		if v, ok := d.DataPoints[p.i].Max.Value(); ok {
			cc.emit(mc, fmax, &p.ps.max, promValue(float64(v)), p.t, nil, nil)
		}
	}
}

// pointOrder keeps the histogramOrder of a histogram's points. Sorting
// them is most of the cost of a histogram's conversion, and needless: the
// SDK reports a metric's points in the same order export after export
// (until points come or go), so the order is only sorted anew when the
// points differ from the last export's; their labels are then laid out
// anew in memory too (layOut).
type pointOrder struct {
	// from are the points of the last export, in the order they came.
	from []*pointMore
	// perm are their indices, in histogramOrder.
	perm []int
}

// sorted returns the indices of points in histogramOrder, and whether it
// sorted them anew.
func (o *pointOrder) sorted(points []histPoint) (order []int, sorted bool) {
	same := len(points) == len(o.from)
	for k := 0; same && k < len(points); k++ {
		same = points[k].ps == o.from[k]
	}
	if same {
		return o.perm, false
	}
	o.from, o.perm = o.from[:0], o.perm[:0]
	for k := range points {
		o.from = append(o.from, points[k].ps)
		o.perm = append(o.perm, k)
	}
	clear(o.from[len(o.from):cap(o.from)]) // keep no dropped points alive
	slices.SortFunc(o.perm, func(a, b int) int {
		// The _count series, last, has the point's sort key as its
		// labels; ties stay in data point order.
		sa, sb := o.from[a].series, o.from[b].series
		if c := strings.Compare(sa[len(sa)-1].labels, sb[len(sb)-1].labels); c != 0 {
			return c
		}
		return a - b
	})
	return o.perm, true
}

// layOut copies the labels of the series of records into blocks of memory,
// one after the other: histogramOrder sends a histogram's series in an
// order other than the one they were built in, and encoding them reads the
// labels far faster in sequence than scattered over the heap.
func (sc *seriesCache) layOut(records []record) {
	for start := 0; start < len(records); {
		n, end := 0, start
		for ; end < len(records) && (end == start || n+len(records[end].s.labels) <= layoutBlock); end++ {
			n += len(records[end].s.labels)
		}
		var b strings.Builder
		b.Grow(n)
		for i := start; i < end; i++ {
			b.WriteString(records[i].s.labels)
		}
		block := b.String()
		for i := start; i < end; i++ {
			s := records[i].s
			n := len(s.labels)
			// The table's key must be the new string too, or it would
			// keep the old one.
			delete(sc.byLabels, s.labels)
			s.labels, block = block[:n], block[n:]
			sc.byLabels[s.labels] = s
		}
		start = end
	}
}

// layoutBlock is the size of layOut's blocks: a block stays in memory as
// long as one of its series does.
const layoutBlock = 256 << 10

// histPoint is a valid data point of the histogram being converted, in
// seriesCache.histPoints.
type histPoint struct {
	ps *pointMore
	// i is the point's index in the data points.
	i int
	// t and start are its time and start time in ms.
	t, start int64
	// n is the cumulative count of the point's buckets sent so far.
	n         uint64
	exemplars [][]prompb.Exemplar
}

// cachedCustomBuckets emits dp as a native histogram with custom buckets
// (WithNativeHistogramsForExplicitBuckets), as the series pe.series.
func cachedCustomBuckets[N int64 | float64](cc *cachedConversion, mc *metricCtx, f *family, pe *pointEntry, dp *metricdata.HistogramDataPoint[N], t int64) {
	h, msg := buildCustomBuckets(dp, &cc.sc.native)
	if msg != "" {
		mc.p.addReason(msg, 1)
		return
	}
	var exemplars []prompb.Exemplar
	if len(dp.Exemplars) > 0 {
		exemplars = convertExemplars(cc.sc.c, dp.Exemplars, t, &mc.p)
	}
	cc.customBuckets = true
	cc.emit(mc, f, &pe.series, 0, t, exemplars, &h)
	cc.customBuckets = false
}

// histogramPoint builds the series of a histogram point with bounds, as
// convertHistogram labels them.
func (cc *cachedConversion) histogramPoint(mc *metricCtx, me *metricEntry, pe *pointEntry, attrs attribute.Set, bounds []float64, name string) *pointEntry {
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
	if sc.c.customBuckets {
		pe.series = sc.internWith(base, nameLabel(name))
	}
	ps.series = nil
	if !sc.c.classic() {
		ps.min, ps.max = nil, nil
		if sc.c.histogramMinMax {
			ps.min = sc.internWith(base, nameLabel(me.families[familyMin].name))
			ps.max = sc.internWith(base, nameLabel(me.families[familyMax].name))
		}
		return pe
	}
	ps.series = make([]*seriesState, 0, len(bounds)+3)
	bucketName := nameLabel(name + "_bucket")
	for i := 0; i <= len(bounds); i++ {
		le := "+Inf"
		if i < len(bounds) {
			le = formatFloat(bounds[i])
		}
		ps.series = append(ps.series, sc.internWith(base, bucketName, prompb.Label{Name: labelBucketBound, Value: le}))
	}
	ps.series = append(ps.series,
		sc.internWith(base, nameLabel(name+"_sum")),
		sc.internWith(base, nameLabel(name+"_count")))
	if sc.c.histogramMinMax {
		ps.min = sc.internWith(base, nameLabel(me.families[familyMin].name))
		ps.max = sc.internWith(base, nameLabel(me.families[familyMax].name))
	}
	return pe
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

func cachedExponentialHistogram[N int64 | float64](cc *cachedConversion, mc *metricCtx, me *metricEntry, d metricdata.ExponentialHistogram[N]) {
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
		pe := cc.singlePoint(mc, me, &dp.Attributes, name)
		cc.start = startMillis(dp.StartTime)
		var exemplars []prompb.Exemplar
		if len(dp.Exemplars) > 0 {
			exemplars = convertExemplars(cc.sc.c, dp.Exemplars, h.timestamp, &mc.p)
		}
		cc.emit(mc, f, &pe.series, 0, h.timestamp, exemplars, &h)
	}
}

func cachedSummary(cc *cachedConversion, mc *metricCtx, me *metricEntry, d metricdata.Summary) {
	name := cc.mainFamily(mc, me)
	if name == "" {
		return
	}
	f := &me.families[familyMain]
	for i := range d.DataPoints {
		dp := &d.DataPoints[i]
		pe := cc.point(me, &dp.Attributes)
		if pe == nil || pe.more == nil || !sameQuantiles(pe.more.quantiles, dp.QuantileValues) {
			pe = cc.summaryPoint(mc, me, pe, dp, name)
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

func (cc *cachedConversion) summaryPoint(mc *metricCtx, me *metricEntry, pe *pointEntry, dp *metricdata.SummaryDataPoint, name string) *pointEntry {
	pe, base := cc.newPoint(mc, me, pe, dp.Attributes, labelQuantile)
	if pe.more == nil {
		pe.more = &pointMore{}
	}
	ps := pe.more
	sc := cc.sc
	for _, q := range dp.QuantileValues {
		ps.quantiles = append(ps.quantiles, q.Quantile)
		ps.series = append(ps.series, sc.internWith(base, nameLabel(name), prompb.Label{Name: labelQuantile, Value: formatFloat(q.Quantile)}))
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

// targetInfo is conversion.targetInfo on the cached labels.
func (cc *cachedConversion) targetInfo() {
	if cc.sc.c.withoutTargetInfo || !cc.cv.hasNewest {
		return
	}
	res := cc.res
	mc := metricCtx{m: metricdata.Metrics{Name: otlptranslator.TargetInfoMetricName, Description: targetInfoHelp}}
	mc.p.addAll(res.targetProblems)
	if res.target != nil && cc.cv.familyFree(&mc, res.targetFamily.name, res.targetFamily.typ) {
		cc.start = 0
		cc.emit(&mc, &res.targetFamily, &res.target, 1, cc.cv.newest, nil, nil)
	}
	if len(mc.p.reasons) > 0 {
		cc.cv.report("target_info", &mc.p, "metric", otlptranslator.TargetInfoMetricName)
	}
}
