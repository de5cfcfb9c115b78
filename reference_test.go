package prwmetric

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The 2.0 encoding (v2.go) is held to a reference built the plain way: the
// reference conversion's 1.0 request and series infos, turned into a
// writev2.Request with writev2's own symbol table, marshalled by gogo.

// referenceV2 converts rm with c into the 2.0 request the exporter should
// send in one piece.
func referenceV2(c *rules, rm *metricdata.ResourceMetrics) (*writev2.Request, error) {
	req, infos, err := c.referenceInfo(rm)
	return toV2(c, req.Timeseries, infos), err
}

// toV2 turns 1.0 series and their infos into a 2.0 request: symbols in the
// order of first use (labels, exemplar labels, help, unit), metadata per
// series, start times on samples and histograms. Exemplars before the
// previous one of their series are left out, as 2.0 receivers refuse them;
// those of one millisecond go, in ascending value.
func toV2(c *rules, series []prompb.TimeSeries, infos []seriesInfo) *writev2.Request {
	st := writev2.NewSymbolTable()
	out := &writev2.Request{}
	for i, ts := range series {
		info := infos[i]
		var v2 writev2.TimeSeries
		for _, l := range ts.Labels {
			v2.LabelsRefs = append(v2.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		for _, s := range ts.Samples {
			v2.Samples = append(v2.Samples, writev2.Sample{Value: s.Value, Timestamp: s.Timestamp, StartTimestamp: info.start})
		}
		for _, h := range ts.Histograms {
			v2.Histograms = append(v2.Histograms, histogramV2(h, info.start))
		}
		var newest int64
		for _, e := range ts.Exemplars {
			if e.Timestamp < newest {
				continue
			}
			newest = e.Timestamp
			ex := writev2.Exemplar{Value: e.Value, Timestamp: e.Timestamp}
			for _, l := range e.Labels {
				ex.LabelsRefs = append(ex.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
			}
			v2.Exemplars = append(v2.Exemplars, ex)
		}
		if !c.withoutMetadata && info.family != "" {
			v2.Metadata = writev2.Metadata{
				Type:    writev2.Metadata_MetricType(info.typ),
				HelpRef: st.Symbolize(info.help),
				UnitRef: st.Symbolize(info.unit),
			}
		}
		out.Timeseries = append(out.Timeseries, v2)
	}
	out.Symbols = st.Symbols()
	return out
}

func histogramV2(h prompb.Histogram, start int64) writev2.Histogram {
	out := writev2.Histogram{
		Sum: h.Sum, Schema: h.Schema, ZeroThreshold: h.ZeroThreshold,
		NegativeDeltas: h.NegativeDeltas, NegativeCounts: h.NegativeCounts,
		PositiveDeltas: h.PositiveDeltas, PositiveCounts: h.PositiveCounts,
		ResetHint: writev2.Histogram_ResetHint(h.ResetHint), Timestamp: h.Timestamp,
		CustomValues: h.CustomValues, StartTimestamp: start,
	}
	switch c := h.Count.(type) {
	case *prompb.Histogram_CountInt:
		out.Count = &writev2.Histogram_CountInt{CountInt: c.CountInt}
	case *prompb.Histogram_CountFloat:
		out.Count = &writev2.Histogram_CountFloat{CountFloat: c.CountFloat}
	}
	switch z := h.ZeroCount.(type) {
	case *prompb.Histogram_ZeroCountInt:
		out.ZeroCount = &writev2.Histogram_ZeroCountInt{ZeroCountInt: z.ZeroCountInt}
	case *prompb.Histogram_ZeroCountFloat:
		out.ZeroCount = &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: z.ZeroCountFloat}
	}
	for _, s := range h.NegativeSpans {
		out.NegativeSpans = append(out.NegativeSpans, writev2.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	for _, s := range h.PositiveSpans {
		out.PositiveSpans = append(out.PositiveSpans, writev2.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	return out
}

// refConversion is the state of one reference conversion.
type refConversion struct {
	exportState
	// families maps each family name sent in this export to its type:
	// a later metric of another type with the same name is dropped (the
	// cache's conversion keeps this in nameSlots).
	families map[string]prompb.MetricMetadata_MetricType
	req      *prompb.WriteRequest
	// seen holds the label sets of the series in req, so that no series is
	// sent twice (Prometheus rejects conflicting duplicates).
	seen map[string]struct{}
	// infos has the seriesInfo of each series in req; start is that of
	// the next series emitted.
	infos []seriesInfo
	start int64
}

// convert turns rm into one write request. Data that Prometheus cannot accept
// is left out with one warning per metric, and the returned error lists it;
// the request then still carries everything else.
func (c *rules) reference(rm *metricdata.ResourceMetrics) (*prompb.WriteRequest, error) {
	req, _, err := c.referenceInfo(rm)
	return req, err
}

// seriesInfo is what a 2.0 request carries of a series beyond its 1.0
// message: its family's metadata and its start time (0 for gauges).
type seriesInfo struct {
	family     string
	typ        prompb.MetricMetadata_MetricType
	help, unit string
	start      int64
}

// referenceInfo is reference, also returning the seriesInfo of each series of
// the request.
func (c *rules) referenceInfo(rm *metricdata.ResourceMetrics) (*prompb.WriteRequest, []seriesInfo, error) {
	cv := &refConversion{
		exportState: exportState{rules: c},
		families:    map[string]prompb.MetricMetadata_MetricType{},
		req:         &prompb.WriteRequest{},
		seen:        map[string]struct{}{},
	}
	cv.prepareResource(rm)
	for _, sm := range rm.ScopeMetrics {
		scope := cv.scopeLabels(sm.Scope)
		for _, m := range sm.Metrics {
			cv.metric(sm.Scope, scope, m)
		}
	}
	cv.targetInfo(rm)
	return cv.req, cv.infos, cv.err()
}

// prepareResource derives job, instance and the resource labels from rm.
func (cv *refConversion) prepareResource(rm *metricdata.ResourceMetrics) {
	var p problems
	cv.job, cv.instance, cv.low = cv.rules.resourceLabels(rm.Resource.Set(), &p) // nil-safe: a nil resource is empty
	cv.reportResource(&p)
}

// scopeLabels returns the labels that win over data point attributes for
// every series of scope: scope labels, then job/instance, then external
// labels, each overriding the ones before.
func (cv *refConversion) scopeLabels(scope instrumentation.Scope) map[string]string {
	var p problems
	high := cv.rules.scopeLabels(scope, cv.job, cv.instance, &p)
	cv.reportScope(scope, &p)
	return high
}

// refType is the Prometheus type of data's family.
func refType(data metricdata.Aggregation) prompb.MetricMetadata_MetricType {
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		if d.IsMonotonic {
			return prompb.MetricMetadata_COUNTER
		}
	case metricdata.Sum[float64]:
		if d.IsMonotonic {
			return prompb.MetricMetadata_COUNTER
		}
	case metricdata.Histogram[int64], metricdata.Histogram[float64], metricdata.ExponentialHistogram[int64], metricdata.ExponentialHistogram[float64]:
		return prompb.MetricMetadata_HISTOGRAM
	case metricdata.Summary:
		return prompb.MetricMetadata_SUMMARY
	}
	return prompb.MetricMetadata_GAUGE
}

func oneSample(v float64, t int64) []prompb.Sample {
	return []prompb.Sample{{Value: promValue(v), Timestamp: t}}
}

func (cv *refConversion) metric(scope instrumentation.Scope, high map[string]string, m metricdata.Metrics) {
	mc := &metricCtx{m: m, high: cv.rules.withTypeAndUnit(high, refType(m.Data), cv.rules.unitNamer.Build(m.Unit))}
	cv.start = 0
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		refSum(cv, mc, d)
	case metricdata.Sum[float64]:
		refSum(cv, mc, d)
	case metricdata.Gauge[int64]:
		refGauge(cv, mc, d)
	case metricdata.Gauge[float64]:
		refGauge(cv, mc, d)
	case metricdata.Histogram[int64]:
		refHistogram(cv, mc, d)
	case metricdata.Histogram[float64]:
		refHistogram(cv, mc, d)
	case metricdata.ExponentialHistogram[int64]:
		refExponentialHistogram(cv, mc, d)
	case metricdata.ExponentialHistogram[float64]:
		refExponentialHistogram(cv, mc, d)
	case metricdata.Summary:
		refSummary(cv, mc, d)
	default:
		mc.p.add("unsupported data type %T: the whole metric", m.Data)
	}
	cv.report(fmt.Sprintf("metric %q", m.Name), &mc.p, "metric", m.Name, "scope", scope.Name)
}

// family names m as a Prometheus metric family of type typ, or reports why it
// cannot be sent and returns "".
func (cv *refConversion) family(mc *metricCtx, namingType otlptranslator.MetricType, typ prompb.MetricMetadata_MetricType) string {
	name, problem := cv.rules.familyName(mc.m, namingType)
	if problem != "" {
		mc.p.addReason(problem, 1)
		return ""
	}
	if !cv.familyFree(mc, name, typ) {
		return ""
	}
	return name
}

// emit appends a series unless an identical label set was already sent,
// registering the family and its metadata with the first series.
func (cv *refConversion) emit(mc *metricCtx, family string, typ prompb.MetricMetadata_MetricType, ts prompb.TimeSeries) {
	key := identityKey(ts.Labels)
	if _, dup := cv.seen[key]; dup {
		mc.p.add("series %s sent twice in one export: kept the first", seriesString(ts.Labels))
		return
	}
	cv.seen[key] = struct{}{}
	for _, s := range ts.Samples {
		cv.observeTime(s.Timestamp)
	}
	for _, h := range ts.Histograms {
		cv.observeTime(h.Timestamp)
	}
	cv.req.Timeseries = append(cv.req.Timeseries, ts)
	info := seriesInfo{family: family, typ: typ, help: mc.m.Description, unit: cv.rules.unitNamer.Build(mc.m.Unit), start: cv.start}
	if t := ts.Samples; len(t) > 0 && info.start > t[0].Timestamp || len(ts.Histograms) > 0 && info.start > ts.Histograms[0].Timestamp {
		info.start = 0
	}
	cv.infos = append(cv.infos, info)
	if _, ok := cv.families[family]; ok {
		return
	}
	cv.families[family] = typ
	if !cv.rules.withoutMetadata {
		cv.req.Metadata = append(cv.req.Metadata, prompb.MetricMetadata{
			Type:             typ,
			MetricFamilyName: family,
			Help:             mc.m.Description,
			Unit:             cv.rules.unitNamer.Build(mc.m.Unit),
		})
	}
}

// identityKey is an exact key of a label set: names are ASCII and values
// valid UTF-8, so neither contains the byte 0xff that separates them.
func identityKey(labels []prompb.Label) string {
	n := 0
	for _, l := range labels {
		n += len(l.Name) + len(l.Value) + 2
	}
	b := make([]byte, 0, n)
	for _, l := range labels {
		b = append(b, l.Name...)
		b = append(b, 0xff)
		b = append(b, l.Value...)
		b = append(b, 0xff)
	}
	return string(b)
}

func refSum[N int64 | float64](cv *refConversion, mc *metricCtx, d metricdata.Sum[N]) {
	if !checkTemporality(mc, d.Temporality) {
		return
	}
	var namingType otlptranslator.MetricType = otlptranslator.MetricTypeNonMonotonicCounter
	typ := prompb.MetricMetadata_GAUGE
	if d.IsMonotonic {
		typ = prompb.MetricMetadata_COUNTER
		// Like the pull exporter: without suffixes, a counter is named like
		// an up-down counter (no "_total").
		if cv.rules.withSuffixes {
			namingType = otlptranslator.MetricTypeMonotonicCounter
		}
	}
	name := cv.family(mc, namingType, typ)
	if name == "" {
		return
	}
	for _, dp := range d.DataPoints {
		base := cv.pointLabels(dp.Attributes, mc.high, &mc.p, "")
		ts := prompb.TimeSeries{
			Labels:  withLabels(base, nameLabel(name)),
			Samples: oneSample(float64(dp.Value), dp.Time.UnixMilli()),
		}
		if d.IsMonotonic {
			cv.start = startMillis(dp.StartTime)
			// OpenMetrics allows exemplars on counters and histogram
			// buckets only.
			ts.Exemplars = refConvertExemplars(cv.rules, dp.Exemplars, dp.Time.UnixMilli(), &mc.p)
		}
		cv.emit(mc, name, typ, ts)
	}
}

func refGauge[N int64 | float64](cv *refConversion, mc *metricCtx, d metricdata.Gauge[N]) {
	name := cv.family(mc, otlptranslator.MetricTypeGauge, prompb.MetricMetadata_GAUGE)
	if name == "" {
		return
	}
	for _, dp := range d.DataPoints {
		base := cv.pointLabels(dp.Attributes, mc.high, &mc.p, "")
		cv.emit(mc, name, prompb.MetricMetadata_GAUGE, prompb.TimeSeries{
			Labels:  withLabels(base, nameLabel(name)),
			Samples: oneSample(float64(dp.Value), dp.Time.UnixMilli()),
		})
	}
}

func refHistogram[N int64 | float64](cv *refConversion, mc *metricCtx, d metricdata.Histogram[N]) {
	if !checkTemporality(mc, d.Temporality) {
		return
	}
	d = withImplicitBuckets(d)
	typ := prompb.MetricMetadata_HISTOGRAM
	name := cv.family(mc, otlptranslator.MetricTypeHistogram, typ)
	if name == "" {
		return
	}
	minName, maxName := name+"_min", name+"_max"
	minMax := cv.rules.histogramMinMax &&
		cv.familyFree(mc, minName, prompb.MetricMetadata_GAUGE) && cv.familyFree(mc, maxName, prompb.MetricMetadata_GAUGE)
	classic := cv.rules.classic()
	type point struct {
		dp        *metricdata.HistogramDataPoint[N]
		base      []prompb.Label
		count     []prompb.Label // the _count series' labels
		key       string         // count encoded, the sort key
		t, start  int64
		exemplars [][]prompb.Exemplar
		n         uint64 // cumulative count of the buckets sent
	}
	var points []point
	buckets := 0
	for i := range d.DataPoints {
		dp := &d.DataPoints[i]
		if msg := checkBuckets(dp); msg != "" {
			mc.p.add("%s", msg)
			continue
		}
		base := slices.Clone(cv.pointLabels(dp.Attributes, mc.high, &mc.p, labelBucketBound))
		p := point{dp: dp, base: base, t: dp.Time.UnixMilli(), start: startMillis(dp.StartTime)}
		if cv.rules.customBuckets {
			// In data point order, each as one native histogram.
			if h, msg := customBucketsHistogram(dp); msg != "" {
				mc.p.add("%s", msg)
			} else {
				cv.start = p.start
				cv.emit(mc, name, typ, prompb.TimeSeries{
					Labels:     withLabels(base, nameLabel(name)),
					Histograms: []prompb.Histogram{h},
					Exemplars:  refConvertExemplars(cv.rules, dp.Exemplars, p.t, &mc.p),
				})
			}
		}
		if classic {
			p.count = withLabels(base, nameLabel(name+"_count"))
			p.key = string(appendLabels(nil, p.count))
			p.exemplars = refBucketExemplars(cv.rules, *dp, p.t, &mc.p)
			buckets = max(buckets, len(dp.BucketCounts))
		}
		points = append(points, p)
	}
	if classic {
		// Classic series go out in the histogram order.
		slices.SortStableFunc(points, func(a, b point) int { return strings.Compare(a.key, b.key) })
		bucketName := nameLabel(name + "_bucket")
		for i := range buckets {
			for k := range points {
				p := &points[k]
				if i >= len(p.dp.BucketCounts) {
					continue
				}
				p.n += p.dp.BucketCounts[i]
				n, le := p.n, "+Inf"
				if i < len(p.dp.Bounds) {
					le = cv.rules.formatFloat(p.dp.Bounds[i])
				} else {
					// The +Inf bucket is the count, which exceeds the
					// buckets' sum when the sum is NaN (see checkCount).
					n = p.dp.Count
				}
				cv.start = p.start
				cv.emit(mc, name, typ, prompb.TimeSeries{
					Labels:    withLabels(p.base, bucketName, prompb.Label{Name: labelBucketBound, Value: le}),
					Samples:   oneSample(float64(n), p.t),
					Exemplars: p.exemplars[i],
				})
			}
		}
		for _, p := range points {
			cv.start = p.start
			cv.emit(mc, name, typ, prompb.TimeSeries{
				Labels:  withLabels(p.base, nameLabel(name+"_sum")),
				Samples: oneSample(float64(p.dp.Sum), p.t),
			})
		}
		for _, p := range points {
			cv.start = p.start
			cv.emit(mc, name, typ, prompb.TimeSeries{
				Labels:  p.count,
				Samples: oneSample(float64(p.dp.Count), p.t),
			})
		}
	}
	if !minMax {
		return
	}
	cv.start = 0 // gauges
	for _, p := range points {
		if v, ok := p.dp.Min.Value(); ok {
			cv.emit(mc, minName, prompb.MetricMetadata_GAUGE, prompb.TimeSeries{
				Labels:  withLabels(p.base, cv.rules.gaugeNameLabels(minName)...),
				Samples: oneSample(float64(v), p.t),
			})
		}
	}
	for _, p := range points {
		if v, ok := p.dp.Max.Value(); ok {
			cv.emit(mc, maxName, prompb.MetricMetadata_GAUGE, prompb.TimeSeries{
				Labels:  withLabels(p.base, cv.rules.gaugeNameLabels(maxName)...),
				Samples: oneSample(float64(v), p.t),
			})
		}
	}
}

func refExponentialHistogram[N int64 | float64](cv *refConversion, mc *metricCtx, d metricdata.ExponentialHistogram[N]) {
	if cv.rules.classicExponential {
		refHistogram(cv, mc, classicFromExponential(d))
		return
	}
	if !checkTemporality(mc, d.Temporality) {
		return
	}
	typ := prompb.MetricMetadata_HISTOGRAM
	name := cv.family(mc, otlptranslator.MetricTypeHistogram, typ)
	if name == "" {
		return
	}
	for _, dp := range d.DataPoints {
		h, msg := nativeHistogram(dp)
		if msg != "" {
			mc.p.add("%s", msg)
			continue
		}
		base := cv.pointLabels(dp.Attributes, mc.high, &mc.p, "")
		cv.start = startMillis(dp.StartTime)
		cv.emit(mc, name, typ, prompb.TimeSeries{
			Labels:     withLabels(base, nameLabel(name)),
			Histograms: []prompb.Histogram{h},
			Exemplars:  refConvertExemplars(cv.rules, dp.Exemplars, h.Timestamp, &mc.p),
		})
	}
}

func refSummary(cv *refConversion, mc *metricCtx, d metricdata.Summary) {
	typ := prompb.MetricMetadata_SUMMARY
	name := cv.family(mc, otlptranslator.MetricTypeSummary, typ)
	if name == "" {
		return
	}
	for _, dp := range d.DataPoints {
		base := cv.pointLabels(dp.Attributes, mc.high, &mc.p, labelQuantile)
		t := dp.Time.UnixMilli()
		cv.start = startMillis(dp.StartTime)
		for _, q := range dp.QuantileValues {
			cv.emit(mc, name, typ, prompb.TimeSeries{
				Labels:  withLabels(base, nameLabel(name), prompb.Label{Name: labelQuantile, Value: cv.rules.formatFloat(q.Quantile)}),
				Samples: oneSample(q.Value, t),
			})
		}
		cv.emit(mc, name, typ, prompb.TimeSeries{
			Labels:  withLabels(base, nameLabel(name+"_sum")),
			Samples: oneSample(dp.Sum, t),
		})
		cv.emit(mc, name, typ, prompb.TimeSeries{
			Labels:  withLabels(base, nameLabel(name+"_count")),
			Samples: oneSample(float64(dp.Count), t),
		})
	}
}

// targetInfo adds the target_info series: the resource attributes other
// than those in job and instance, as labels of a gauge with value 1 (SPEC
// §3). It is sent only with other series, and only when it has attributes to
// carry; its timestamp is that of the newest sample in the request, so that
// it lines up with the data it describes and refConversion stays deterministic.
func (cv *refConversion) targetInfo(rm *metricdata.ResourceMetrics) {
	if cv.rules.withoutTargetInfo || !cv.hasNewest {
		return
	}
	mc := targetInfoCtx(cv.rules)
	labels := cv.rules.targetInfoLabels(rm.Resource.Set(), cv.job, cv.instance, &mc.p)
	name := cv.rules.targetInfoName
	if labels != nil && cv.familyFree(mc, name, prompb.MetricMetadata_GAUGE) {
		cv.start = 0
		cv.emit(mc, name, prompb.MetricMetadata_GAUGE, prompb.TimeSeries{
			Labels:  labels,
			Samples: oneSample(1, cv.newest),
		})
	}
	cv.report("target_info", &mc.p, "metric", name)
}

// targetInfoCtx is the metric target_info is described as.
func targetInfoCtx(c *rules) *metricCtx {
	return &metricCtx{m: metricdata.Metrics{Name: c.targetInfoName, Description: targetInfoHelp}}
}

// nativeHistogram converts dp, or returns why Prometheus would refuse it.
// Scales finer than 8 are merged down to 8; scales coarser than -4 cannot be
// represented.
func nativeHistogram[N int64 | float64](dp metricdata.ExponentialHistogramDataPoint[N]) (prompb.Histogram, string) {
	var scratch nativeScratch
	h, msg := buildNative(&dp, &scratch)
	if msg != "" {
		return prompb.Histogram{}, msg
	}
	return prompb.Histogram{
		Count:          &prompb.Histogram_CountInt{CountInt: h.count},
		Sum:            h.sum,
		Schema:         h.schema,
		ZeroThreshold:  h.zeroThreshold,
		ZeroCount:      &prompb.Histogram_ZeroCountInt{ZeroCountInt: h.zeroCount},
		NegativeSpans:  toPromSpans(h.negSpans),
		NegativeDeltas: h.negDeltas,
		PositiveSpans:  toPromSpans(h.posSpans),
		PositiveDeltas: h.posDeltas,
		ResetHint:      prompb.Histogram_UNKNOWN,
		Timestamp:      h.timestamp,
	}, ""
}

// customBucketsHistogram is buildCustomBuckets as a prompb.Histogram, for
// the reference refConversion.
func customBucketsHistogram[N int64 | float64](dp *metricdata.HistogramDataPoint[N]) (prompb.Histogram, string) {
	var scratch nativeScratch
	h, msg := buildCustomBuckets(dp, &scratch)
	if msg != "" {
		return prompb.Histogram{}, msg
	}
	return prompb.Histogram{
		Count:          &prompb.Histogram_CountInt{CountInt: h.count},
		Sum:            h.sum,
		Schema:         h.schema,
		ZeroCount:      &prompb.Histogram_ZeroCountInt{ZeroCountInt: 0},
		PositiveSpans:  toPromSpans(h.posSpans),
		PositiveDeltas: h.posDeltas,
		Timestamp:      h.timestamp,
		CustomValues:   h.customValues,
	}, ""
}

// toPromSpans and fromPromSpans convert the conversion's spans to and from
// prompb's.
func toPromSpans(spans []bucketSpan) []prompb.BucketSpan {
	var out []prompb.BucketSpan
	for _, s := range spans {
		out = append(out, prompb.BucketSpan{Offset: s.offset, Length: s.length})
	}
	return out
}

func fromPromSpans(spans []prompb.BucketSpan) []bucketSpan {
	var out []bucketSpan
	for _, s := range spans {
		out = append(out, bucketSpan{offset: s.Offset, length: s.Length})
	}
	return out
}

// refConvertExemplars is the reference conversion of exemplars, which
// convertExemplars must match: it converts OpenTelemetry exemplars, sorted
// by time, then value. Labels
// are trace_id and span_id in hex plus the filtered attributes, the
// attributes only if all labels together stay within 128 runes (the
// OpenMetrics limit; Prometheus refuses longer ones). An exemplar without a
// time gets the data point's time t.
func refConvertExemplars[N int64 | float64](c *rules, in []metricdata.Exemplar[N], t int64, p *problems) []prompb.Exemplar {
	if len(in) == 0 {
		return nil
	}
	out := make([]prompb.Exemplar, 0, len(in))
	for _, e := range in {
		ids := map[string]string{}
		if len(e.TraceID) > 0 {
			ids[otlptranslator.ExemplarTraceIDKey] = hex.EncodeToString(e.TraceID)
		}
		if len(e.SpanID) > 0 {
			ids[otlptranslator.ExemplarSpanIDKey] = hex.EncodeToString(e.SpanID)
		}
		labels := sortedLabels(ids)
		if labelRunes(labels) > maxExemplarRunes {
			p.add("exemplar whose trace and span ids exceed %d runes", maxExemplarRunes)
			continue
		}
		if len(e.FilteredAttributes) > 0 {
			// The filtered attributes, unchanged from the code this
			// reference was: shared.
			labels = withFilteredAttributes(c, labels, e.FilteredAttributes, p)
		}
		ts := t
		if !e.Time.IsZero() {
			ts = e.Time.UnixMilli()
		}
		out = append(out, prompb.Exemplar{Labels: labels, Value: promValue(float64(e.Value)), Timestamp: ts})
	}
	slices.SortStableFunc(out, func(a, b prompb.Exemplar) int {
		if c := cmp.Compare(a.Timestamp, b.Timestamp); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	return out
}

// refBucketExemplars is the reference of bucketExemplars: it places each
// exemplar on the first bucket whose bound is
// at least its value (the +Inf bucket for larger values), as OpenMetrics
// does; the result has one entry per bucket.
func refBucketExemplars[N int64 | float64](c *rules, dp metricdata.HistogramDataPoint[N], t int64, p *problems) [][]prompb.Exemplar {
	out := make([][]prompb.Exemplar, len(dp.BucketCounts))
	for _, e := range refConvertExemplars(c, dp.Exemplars, t, p) {
		i, _ := slices.BinarySearch(dp.Bounds, e.Value)
		out[i] = append(out[i], e)
	}
	return out
}

// familyFree reports whether name may be used for a family of type typ in
// this request: a name already used by another type is kept for the first
// one, as the pull exporter does.
func (cv *refConversion) familyFree(mc *metricCtx, name string, typ prompb.MetricMetadata_MetricType) bool {
	if have, ok := cv.families[name]; ok && have != typ {
		mc.p.add("series named %q: a %s of that name is already sent in this export; %s dropped", name, have, typ)
		return false
	}
	return true
}
