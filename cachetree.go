package prwmetric

import (
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

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
// over data point attributes (rules.scopeLabels), and its metrics.
type scopeEntry struct {
	attrs    attribute.Set
	high     map[string]string
	problems []savedProblem
	seen     generation
	metrics  map[metricKey]*metricEntry
	// byIndex are the entries of the metrics by their place in the
	// scope's last export (see positions).
	byIndex positions[*metricEntry]
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
	// slot is its name's, shared with every family of that name.
	slot *nameSlot
}

// nameSlot is a family name's state in the current export, which every
// family of that name shares (seriesCache.names): whether a family of that
// name was sent in the export numbered gen, and its type. A later family
// of the same name and another type is dropped, as the pull exporter does.
// A metric's families find it through a pointer: looking names up in a map
// made anew by each export cost 3 map operations per metric, a third of the
// export of 40 000 metrics of one point.
type nameSlot struct {
	gen generation // 0: none yet
	typ prompb.MetricMetadata_MetricType
}

// nameSlot returns the slot of family name.
func (sc *seriesCache) nameSlot(name string) *nameSlot {
	s := sc.names[name]
	if s == nil {
		if sc.names == nil {
			sc.names = map[string]*nameSlot{}
		}
		s = &nameSlot{}
		sc.names[name] = s
	}
	return s
}

// nameFree reports whether f may be sent in this export: no family of its
// name and another type was sent before it (exportState.familyFree, which
// the reference conversion of the tests uses).
func (cc *conversion) nameFree(mc *metricCtx, f *family) bool {
	if s := f.slot; s.gen == cc.gen && s.typ != f.typ {
		mc.p.add("series named %q: a %s of that name is already sent in this export; %s dropped", f.name, s.typ, f.typ)
		return false
	}
	return true
}

// dropEntries drops every entry above the series, and their names.
func (sc *seriesCache) dropEntries() {
	sc.res, sc.entries, sc.names = nil, 0, nil
}

// renameEntries makes the names table hold the names of the entries left
// (after the sweep dropped some), so that it does not grow with every
// metric that ever was.
func (sc *seriesCache) renameEntries() {
	sc.names = nil
	res := sc.res
	if res == nil {
		return
	}
	rename := func(f *family) {
		if f.slot != nil {
			f.slot = sc.nameSlot(f.name)
		}
	}
	rename(&res.targetFamily)
	for _, se := range res.scopes {
		for _, me := range se.metrics {
			for i := range me.families {
				rename(&me.families[i])
			}
		}
	}
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
	key metricKey
	// problem says why the metric has no name; families are unset then.
	problem  string
	families [3]family
	// high is the scope's labels with __type__ and __unit__
	// (WithTypeAndUnitLabels), nil without.
	high map[string]string
	seen generation
	// seenPoints counts the point entries this export used (when seen is
	// its generation): the sweep skips a metric that used all of them.
	seenPoints int
	// points holds the data points by the hash of their attribute set;
	// collided holds those whose hash another set in points has (64-bit
	// hashes: next to never), so that a pointEntry needs no chain.
	points   map[attribute.Distinct]*pointEntry
	collided []*pointEntry
	// all are the entries of points and collided in the order they were
	// made, which is their order in memory: the sweep walks them there,
	// not in the map's hash order, a cache miss per entry (50 ms of a
	// million-point export with 1% of its points replaced).
	all []*pointEntry
	// byIndex are the entries of the points by their place in the
	// metric's last export (see positions).
	byIndex positions[*pointEntry]
	// bounds are the explicit bucket bounds most recently cached, which
	// points with equal bounds share.
	bounds []float64
	// order is the order of a histogram's points.
	order pointOrder
}

// pointEntry is what one data point yields. It is kept small, 48 bytes:
// there is one per data point, as many as series for sums and gauges.
type pointEntry struct {
	attrs attribute.Set
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
	// laidOut: the keys of series have been laid out (layOut) since they
	// were built.
	laidOut bool
	// at is the point's index + 1 while pointOrder.update runs, else 0.
	at int
}

// problems returns the saved problems of the point.
func (pe *pointEntry) problems() []savedProblem {
	if pe.more == nil {
		return nil
	}
	return pe.more.problems
}

// resource returns the entry of r, building it when r differs from the
// last resource (which drops the cache below it: another resource means
// other labels).
func (cc *conversion) resource(r *resource.Resource) *resourceEntry {
	sc := cc.sc
	if e := sc.res; e != nil && (e.res == r || e.set.Equals(r.Set())) {
		e.res = r
		return e
	}
	sc.dropEntries() // those of the resource before
	set := r.Set()   // nil-safe: a nil resource is empty
	e := &resourceEntry{res: r, set: *set, scopes: map[scopeKey]*scopeEntry{}}
	var p problems
	e.job, e.instance, e.low = sc.rules.resourceLabels(set, &p)
	e.problems = p.saved()

	if !sc.rules.withoutTargetInfo {
		p = problems{}
		if labels := sc.rules.targetInfoLabels(set, e.job, e.instance, &p); labels != nil {
			e.target = sc.internLabels(labels)
		}
		e.targetProblems = p.saved()
		e.targetFamily = sc.family(sc.rules.targetInfoName, prompb.MetricMetadata_GAUGE, targetInfoHelp, "")
	}
	sc.res, sc.entries = e, 0
	return e
}

// family returns the family name of type typ with the metadata of a metric
// with description help and unit.
func (sc *seriesCache) family(name string, typ prompb.MetricMetadata_MetricType, help, unit string) family {
	unit = sc.rules.unitNamer.Build(unit)
	return family{name: name, typ: typ, metadata: string(appendMetadata(nil, typ, name, help, unit)), help: help, unit: unit, slot: sc.nameSlot(name)}
}

func (cc *conversion) touch(seen *generation) {
	if *seen != cc.gen {
		*seen = cc.gen
		cc.sc.entriesSeen++
	}
}

func (cc *conversion) scope(scope instrumentation.Scope) *scopeEntry {
	key := scopeKey{name: scope.Name, version: scope.Version, schemaURL: scope.SchemaURL, attrs: scope.Attributes.Equivalent()}
	se := cc.res.scopes[key]
	if se == nil || !se.attrs.Equals(&scope.Attributes) {
		// A replaced entry (its key collided) stays counted: counting
		// too many only makes the sweep run and recount.
		se = &scopeEntry{attrs: scope.Attributes, metrics: map[metricKey]*metricEntry{}}
		var p problems
		se.high = cc.sc.rules.scopeLabels(scope, cc.res.job, cc.res.instance, &p)
		se.problems = p.saved()
		cc.res.scopes[key] = se
		cc.sc.entries++
	}
	cc.touch(&se.seen)
	cc.sc.baseMemo.use(se)
	return se
}

func (cc *conversion) metricEntry(se *scopeEntry, m *metricdata.Metrics, kind metricKind, i int) *metricEntry {
	key := metricKey{name: m.Name, unit: m.Unit, description: m.Description, kind: kind}
	if me := se.byIndex.at(i); me != nil && me.key == key {
		cc.touchMetric(me)
		return me
	}
	me := se.metrics[key]
	if me == nil {
		me = cc.newMetricEntry(m, kind)
		me.key = key
		if f := &me.families[familyMain]; me.problem == "" && cc.sc.rules.typeAndUnitLabels {
			me.high = cc.sc.rules.withTypeAndUnit(se.high, f.typ, f.unit)
		}
		se.metrics[key] = me
		cc.sc.entries++
	}
	se.byIndex.set(i, me)
	cc.touchMetric(me)
	return me
}

// touchMetric marks me used by this export; its points are counted anew.
func (cc *conversion) touchMetric(me *metricEntry) {
	if me.seen != cc.gen {
		me.seenPoints = 0
	}
	cc.touch(&me.seen)
}

// touchPoint marks pe, a point entry of me, used by this export.
func (cc *conversion) touchPoint(me *metricEntry, pe *pointEntry) {
	cc.emitting, cc.pointNew = pe, pe.seen != cc.gen
	if cc.pointNew {
		me.seenPoints++
	}
	cc.touch(&pe.seen)
}

// newMetricEntry names the metric's families.
func (cc *conversion) newMetricEntry(m *metricdata.Metrics, kind metricKind) *metricEntry {
	c := cc.sc.rules
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
	points, _ := dataPoints(m.Data)
	me := &metricEntry{points: make(map[attribute.Distinct]*pointEntry, points)}
	name, problem := c.familyName(*m, namingType)
	if problem != "" {
		me.problem = problem
		return me
	}
	me.families[familyMain] = cc.sc.family(name, typ, m.Description, m.Unit)
	if typ == prompb.MetricMetadata_HISTOGRAM {
		// Exponential histograms too: sent as classic ones, they have
		// _min and _max (WithoutNativeHistograms).
		me.families[familyMin] = cc.sc.family(name+"_min", prompb.MetricMetadata_GAUGE, m.Description, m.Unit)
		me.families[familyMax] = cc.sc.family(name+"_max", prompb.MetricMetadata_GAUGE, m.Description, m.Unit)
	}
	return me
}

// point returns the cached entry of data point i, with attributes attrs,
// or nil.
func (cc *conversion) point(me *metricEntry, attrs *attribute.Set, i int) *pointEntry {
	if pe := me.byIndex.at(i); pe != nil && sameSet(&pe.attrs, attrs) {
		cc.touchPoint(me, pe)
		return pe
	}
	pe := me.points[attrs.Equivalent()]
	if pe == nil || !sameSet(&pe.attrs, attrs) {
		pe = collidedPoint(me, attrs)
		if pe == nil {
			return nil
		}
	}
	me.byIndex.set(i, pe)
	cc.touchPoint(me, pe)
	return pe
}

// collidedPoint returns the entry of attrs among me.collided, or nil.
func collidedPoint(me *metricEntry, attrs *attribute.Set) *pointEntry {
	for _, pe := range me.collided {
		if pe.attrs.Equals(attrs) {
			return pe
		}
	}
	return nil
}

// newPoint adds an entry for attrs, or resets pe (the entry of attrs whose
// buckets or quantiles changed), and returns its base labels:
// exportState.pointLabels with the problems saved in the entry.
func (cc *conversion) newPoint(mc *metricCtx, me *metricEntry, pe *pointEntry, attrs attribute.Set, reserved string) (*pointEntry, []prompb.Label) {
	if pe == nil {
		key := attrs.Equivalent()
		pe = &pointEntry{attrs: attrs}
		if me.points[key] == nil {
			me.points[key] = pe
		} else {
			me.collided = append(me.collided, pe)
		}
		me.all = append(me.all, pe)
		cc.sc.entries++
		cc.touchPoint(me, pe)
	}
	base, saved := cc.baseLabels(mc, attrs, reserved)
	if saved != nil || pe.more != nil {
		pe.more = &pointMore{problems: saved}
	}
	return pe, base
}

// sweepEntries drops the scope, metric and point entries the current export
// did not use, and recounts the rest.
func (sc *seriesCache) sweepEntries() {
	n := 0
	dropped := false // a scope or metric, whose names may go
	droppedMetric := func(me *metricEntry) bool { return me.seen != sc.gen }
	droppedPoint := func(pe *pointEntry) bool { return pe.seen != sc.gen }
	if res := sc.res; res != nil {
		for sk, se := range res.scopes {
			if se.seen != sc.gen {
				delete(res.scopes, sk)
				dropped = true
				continue
			}
			n++
			metrics := len(se.metrics)
			for mk, me := range se.metrics {
				if me.seen != sc.gen {
					delete(se.metrics, mk)
					dropped = true
					continue
				}
				n++
				if me.seenPoints == len(me.all) {
					n += len(me.all) // all used: none to drop
					continue
				}
				all := me.all[:0]
				for _, pe := range me.all {
					if pe.seen == sc.gen {
						all = append(all, pe)
					} else if key := pe.attrs.Equivalent(); me.points[key] == pe {
						delete(me.points, key)
					}
				}
				if len(all) == len(me.all) {
					n += len(all)
					continue
				}
				clear(me.all[len(all):])
				me.all = all
				n += len(all)
				collided := me.collided[:0]
				for _, pe := range me.collided {
					if pe.seen == sc.gen {
						collided = append(collided, pe)
					}
				}
				clear(me.collided[len(collided):])
				me.collided = collided
				me.byIndex.drop(droppedPoint)
			}
			if len(se.metrics) < metrics {
				se.byIndex.drop(droppedMetric)
			}
		}
	}
	sc.entries = n
	if dropped {
		sc.renameEntries()
	}
}

// forget drops every entry above the series, after a conversion failed
// half-way (it panicked): the series table stays consistent, the rest is
// rebuilt by the next export.
func (sc *seriesCache) forget() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.dropEntries()
}

// sendsNativeHistograms reports whether the conversion may send native
// histograms.
func (sc *seriesCache) sendsNativeHistograms() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return !sc.rules.classicExponential || sc.rules.customBuckets
}

// dropNativeHistograms makes the conversion send exponential (and
// custom-bucket) histograms as classic ones from now on, for a receiver
// that refuses native histograms; false when it already does. The cache of
// labels starts afresh, as after a change of resource.
func (sc *seriesCache) dropNativeHistograms() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.rules.classicExponential && !sc.rules.customBuckets {
		return false
	}
	r := *sc.rules
	r.classicExponential, r.customBuckets = true, false
	sc.rules = &r
	sc.dropEntries()
	// The receiver refuses native histograms: it holds none (a request
	// with no answer may have counted one as stored), so none needs a
	// staleness marker, which it would refuse as well.
	for _, s := range sc.last {
		if s.is(flagHistogram) {
			s.set(flagDelivered, false)
			s.set(flagHistogram, false)
		}
	}
	return true
}
