package prwmetric

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Label names and values with a fixed meaning in Prometheus or in the
// OpenTelemetry compatibility specification.
const (
	labelMetricName       = "__name__"
	labelJob              = "job"
	labelInstance         = "instance"
	labelBucketBound      = "le"
	labelQuantile         = "quantile"
	labelScopeName        = "otel_scope_name"
	labelScopeVersion     = "otel_scope_version"
	labelScopeSchemaURL   = "otel_scope_schema_url"
	labelScopeAttrPrefix  = "otel_scope_"
	attrServiceName       = "service.name"
	attrServiceNamespace  = "service.namespace"
	attrServiceInstanceID = "service.instance.id"
	targetInfoHelp        = "Target metadata"

	// maxExemplarRunes is the OpenMetrics limit on the runes of an
	// exemplar's label names and values together; Prometheus refuses
	// longer exemplars.
	maxExemplarRunes = 128
)

// converter turns the SDK's metric data into one Remote-Write 1.0 request,
// following SPEC §3: the names and labels the OpenTelemetry Go Prometheus
// (pull) exporter would expose for the same instruments and options, plus
// job/instance from the resource. It holds no state between exports, so
// concurrent exports are safe.
//
// convert is the reference conversion, kept straightforward: Export goes
// through the series cache (cache.go), which builds labels with the same
// functions the first time it sees a series, and the tests hold the bytes
// the cache sends to convert's request marshalled by prompb.
type converter struct {
	metricNamer  otlptranslator.MetricNamer
	labelNamer   otlptranslator.LabelNamer
	unitNamer    otlptranslator.UnitNamer
	withSuffixes bool

	withoutScopeInfo  bool
	withoutTargetInfo bool
	withoutMetadata   bool
	histogramMinMax   bool
	// customBuckets sends explicit histograms as native histograms with
	// custom buckets, and also as classic series with classicHistograms.
	customBuckets     bool
	classicHistograms bool
	resourceAsLabels  attribute.Filter
	externalLabels    map[string]string
	logger            *slog.Logger
}

func newConverter(cfg config) (*converter, error) {
	escape := cfg.translationStrategy.ShouldEscape()
	labelNamer := otlptranslator.LabelNamer{UTF8Allowed: !escape}
	// Like the pull exporter, the namespace is escaped as a label name first
	// (so "my.app" becomes "my_app" and "1app" becomes "key_1app"); only then
	// does the metric namer prefix it.
	namespace := cfg.namespace
	if namespace != "" {
		var err error
		if namespace, err = labelNamer.Build(namespace); err != nil {
			return nil, fmt.Errorf("prwmetric: WithNamespace(%q): %w; use letters, digits and underscores", cfg.namespace, err)
		}
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.Default()
	}
	external := make(map[string]string, len(cfg.externalLabels))
	for k, v := range cfg.externalLabels {
		external[k] = v
	}
	return &converter{
		metricNamer:       otlptranslator.NewMetricNamer(namespace, cfg.translationStrategy),
		labelNamer:        labelNamer,
		unitNamer:         otlptranslator.UnitNamer{UTF8Allowed: !escape},
		withSuffixes:      cfg.translationStrategy.ShouldAddSuffixes(),
		withoutScopeInfo:  cfg.withoutScopeInfo,
		withoutTargetInfo: cfg.withoutTargetInfo,
		withoutMetadata:   cfg.withoutMetadata,
		histogramMinMax:   cfg.histogramMinMax,
		customBuckets:     cfg.customBuckets,
		classicHistograms: cfg.classicHistograms,
		resourceAsLabels:  cfg.resourceAsLabels,
		externalLabels:    external,
		logger:            logger,
	}, nil
}

// convert turns rm into one write request. Data that Prometheus cannot accept
// is left out with one warning per metric, and the returned error lists it;
// the request then still carries everything else.
func (c *converter) convert(rm *metricdata.ResourceMetrics) (*prompb.WriteRequest, error) {
	req, _, err := c.convertInfo(rm)
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

// convertInfo is convert, also returning the seriesInfo of each series of
// the request.
func (c *converter) convertInfo(rm *metricdata.ResourceMetrics) (*prompb.WriteRequest, []seriesInfo, error) {
	cv := &conversion{
		c:        c,
		req:      &prompb.WriteRequest{},
		families: map[string]prompb.MetricMetadata_MetricType{},
		seen:     map[string]struct{}{},
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

// conversion is the state of one convert call.
type conversion struct {
	c   *converter
	req *prompb.WriteRequest

	// families maps each family name sent in this request to its type:
	// a later metric of another type with the same name is dropped.
	families map[string]prompb.MetricMetadata_MetricType
	// seen holds the label sets of the series in req, so that no series is
	// sent twice (Prometheus rejects conflicting duplicates).
	seen map[string]struct{}

	// low are the labels every series starts from (resource attributes
	// copied by WithResourceAsLabels); data point attributes override them.
	low map[string]string
	// job and instance come from the resource (SPEC §3).
	job, instance string

	newest    int64
	hasNewest bool

	dropped []string

	// infos has the seriesInfo of each series in req; start is that of
	// the next series emitted.
	infos []seriesInfo
	start int64

	// scratch is reused by pointLabels: a first export builds the labels
	// of every data point, and fresh maps and slices for each would more
	// than double the heap that export needs.
	scratch labelScratch
}

// labelScratch is the reusable space of conversion.pointLabels.
type labelScratch struct {
	m      map[string]string
	names  map[attribute.Key]string
	kvs    []attribute.KeyValue
	labels []prompb.Label
}

// problems collects what was dropped while converting one subject (a metric,
// the resource, a scope), so that it is reported in one warning.
type problems struct {
	reasons []string
	counts  map[string]int
}

func (p *problems) add(format string, args ...any) {
	p.addReason(fmt.Sprintf(format, args...), 1)
}

// addReason records reason n times.
func (p *problems) addReason(reason string, n int) {
	if p.counts == nil {
		p.counts = map[string]int{}
	}
	if p.counts[reason] == 0 {
		p.reasons = append(p.reasons, reason)
	}
	p.counts[reason] += n
}

// saved returns what p holds in a form that addAll replays: the series
// cache keeps the problems of labels it built once and replays them into
// every export that uses those labels, so that each export warns as the
// reference conversion does.
func (p *problems) saved() []savedProblem {
	if len(p.reasons) == 0 {
		return nil
	}
	out := make([]savedProblem, len(p.reasons))
	for i, r := range p.reasons {
		out[i] = savedProblem{reason: r, n: p.counts[r]}
	}
	return out
}

// addAll adds saved problems to p.
func (p *problems) addAll(saved []savedProblem) {
	for _, s := range saved {
		p.addReason(s.reason, s.n)
	}
}

// savedProblem is one reason and how often it occurred.
type savedProblem struct {
	reason string
	n      int
}

// maxReasons bounds the reasons listed per subject, so that one metric with
// many bad attributes cannot flood the log line and the error.
const maxReasons = 5

func (p *problems) String() string {
	var parts []string
	for i, r := range p.reasons {
		if i == maxReasons {
			parts = append(parts, fmt.Sprintf("and %d more", len(p.reasons)-maxReasons))
			break
		}
		if n := p.counts[r]; n > 1 {
			r = fmt.Sprintf("%s (%d times)", r, n)
		}
		parts = append(parts, r)
	}
	return strings.Join(parts, "; ")
}

// report logs one warning for subject if anything was dropped and
// remembers it for the error convert returns.
func (cv *conversion) report(subject string, p *problems, logAttrs ...any) {
	if len(p.reasons) == 0 {
		return
	}
	detail := p.String()
	cv.c.logger.Warn("prwmetric: dropped data that Prometheus cannot accept", append(logAttrs, "dropped", detail)...)
	cv.dropped = append(cv.dropped, subject+": "+detail)
}

func (cv *conversion) err() error {
	if len(cv.dropped) == 0 {
		return nil
	}
	return fmt.Errorf("prwmetric: dropped data that Prometheus cannot accept (the rest was converted): %s", strings.Join(cv.dropped, "; "))
}

// prepareResource derives job, instance and the resource labels from rm.
func (cv *conversion) prepareResource(rm *metricdata.ResourceMetrics) {
	var p problems
	cv.job, cv.instance, cv.low = cv.c.resourceLabels(rm.Resource.Set(), &p) // nil-safe: a nil resource is empty
	cv.reportResource(&p)
}

// reportResource reports the problems of the resource attributes copied by
// WithResourceAsLabels.
func (cv *conversion) reportResource(p *problems) {
	if cv.c.resourceAsLabels != nil {
		cv.report("resource attributes (WithResourceAsLabels)", p, "subject", "resource")
	}
}

// resourceLabels returns job and instance of the resource res, and the
// labels WithResourceAsLabels copies from it (nil without that option).
func (c *converter) resourceLabels(res *attribute.Set, p *problems) (job, instance string, low map[string]string) {
	str := func(key string) string {
		v, ok := res.Value(attribute.Key(key))
		if !ok {
			return ""
		}
		return v.String()
	}
	if name := str(attrServiceName); name != "" {
		job = name
		if ns := str(attrServiceNamespace); ns != "" {
			job = ns + "/" + name
		}
	}
	instance = str(attrServiceInstanceID)

	if c.resourceAsLabels != nil {
		filtered, _ := res.Filter(c.resourceAsLabels)
		low = map[string]string{}
		c.addAttrs(low, filtered.ToSlice(), "", p)
	}
	return job, instance, low
}

// scopeLabels returns the labels that win over data point attributes for
// every series of scope: scope labels, then job/instance, then external
// labels, each overriding the ones before.
func (cv *conversion) scopeLabels(scope instrumentation.Scope) map[string]string {
	var p problems
	high := cv.c.scopeLabels(scope, cv.job, cv.instance, &p)
	cv.reportScope(scope, &p)
	return high
}

// reportScope reports the problems of scope's attributes.
func (cv *conversion) reportScope(scope instrumentation.Scope, p *problems) {
	cv.report(fmt.Sprintf("scope %q attributes", scope.Name), p, "scope", scope.Name)
}

// scopeLabels is conversion.scopeLabels for a resource with job and
// instance, with the problems left in p.
func (c *converter) scopeLabels(scope instrumentation.Scope, job, instance string, p *problems) map[string]string {
	high := map[string]string{}
	if !c.withoutScopeInfo {
		scopeAttrs := map[string]string{}
		c.addAttrs(scopeAttrs, scope.Attributes.ToSlice(), labelScopeAttrPrefix, p)
		for k, v := range scopeAttrs {
			high[k] = v
		}
		high[labelScopeName] = scope.Name
		high[labelScopeVersion] = scope.Version
		high[labelScopeSchemaURL] = scope.SchemaURL
	}
	c.identity(high, job, instance)
	return high
}

// identity sets job, instance and the external labels, which win over all
// other labels except __name__, le and quantile.
func (c *converter) identity(dst map[string]string, job, instance string) {
	dst[labelJob] = job
	dst[labelInstance] = instance
	for k, v := range c.externalLabels {
		dst[k] = v
	}
}

// addAttrs translates kvs (sorted by key, as attribute.Set keeps them) to
// labels in dst, overriding what dst holds. Attributes whose names collide
// after translation are joined with ";" in the order of their original keys;
// empty values count as absent. With a prefix (scope attributes), the names
// "name", "version" and "schema_url" are left out, as the pull exporter does,
// since otel_scope_name etc. carry those.
func (c *converter) addAttrs(dst map[string]string, kvs []attribute.KeyValue, prefix string, p *problems) {
	c.addAttrsNamed(dst, kvs, prefix, p, nil)
}

// addAttrsNamed is addAttrs remembering in names (when not nil) the label
// names that attribute keys translate to: the same few keys recur on every
// data point, and translating one allocates.
func (c *converter) addAttrsNamed(dst map[string]string, kvs []attribute.KeyValue, prefix string, p *problems, names map[attribute.Key]string) {
	var order []string
	values := map[string]string{}
	for _, kv := range kvs {
		name, ok := names[kv.Key]
		if !ok {
			var err error
			name, err = c.labelNamer.Build(string(kv.Key))
			if err != nil {
				p.add("attribute %q: %v", kv.Key, err)
				continue
			}
			// UTF-8 names (2.0) pass through unescaped, so they must
			// be valid UTF-8 like values.
			name = labelValue(name)
			if names != nil {
				names[kv.Key] = name
			}
		}
		if prefix != "" {
			if name == "name" || name == "version" || name == "schema_url" {
				continue
			}
			name = prefix + name
		}
		if strings.HasPrefix(name, "__") {
			p.add("attribute %q: label name %q is reserved for Prometheus", kv.Key, name)
			continue
		}
		value := labelValue(kv.Value.String())
		if value == "" {
			continue
		}
		old, ok := values[name]
		if !ok {
			order = append(order, name)
			values[name] = value
			continue
		}
		values[name] = old + ";" + value
	}
	for _, name := range order {
		dst[name] = values[name]
	}
}

// labelValue makes s valid UTF-8, as Prometheus requires of label values.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// pointLabels returns the sorted labels of a data point without __name__:
// resource labels (WithResourceAsLabels), then the point's attributes, then
// the scope's labels, each overriding the ones before; empty values dropped.
// A label named reserved (le for histograms, quantile for summaries) is
// dropped and reported: the pull exporter refuses such points, and on _sum
// and _count it would be a label that means something else.
// The result is only valid until the next call: callers copy it (withLabels).
func (cv *conversion) pointLabels(attrs attribute.Set, high map[string]string, p *problems, reserved string) []prompb.Label {
	sc := &cv.scratch
	if sc.m == nil {
		sc.m = make(map[string]string, len(cv.low)+attrs.Len()+len(high))
	}
	m := sc.m
	clear(m)
	for k, v := range cv.low {
		m[k] = v
	}
	sc.kvs = sc.kvs[:0]
	for it := attrs.Iter(); it.Next(); {
		sc.kvs = append(sc.kvs, it.Attribute())
	}
	if sc.names == nil {
		sc.names = map[attribute.Key]string{}
	}
	cv.c.addAttrsNamed(m, sc.kvs, "", p, sc.names)
	clear(sc.kvs) // no references to attribute values outlive the call
	for k, v := range high {
		m[k] = v
	}
	if _, ok := m[reserved]; ok && reserved != "" {
		p.add("label %q dropped: Prometheus reserves it for histogram buckets and summary quantiles", reserved)
		delete(m, reserved)
	}
	sc.labels = appendSortedLabels(sc.labels[:0], m)
	return sc.labels
}

func sortedLabels(m map[string]string) []prompb.Label {
	return appendSortedLabels(make([]prompb.Label, 0, len(m)+2), m)
}

// appendSortedLabels appends the non-empty labels of m to out[:0], sorted
// by name.
func appendSortedLabels(out []prompb.Label, m map[string]string) []prompb.Label {
	for k, v := range m {
		if v != "" {
			out = append(out, prompb.Label{Name: k, Value: labelValue(v)})
		}
	}
	slices.SortFunc(out, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// withLabels returns a copy of the sorted labels base with extra set
// (overriding labels of the same name), still sorted.
func withLabels(base []prompb.Label, extra ...prompb.Label) []prompb.Label {
	return appendWithLabels(make([]prompb.Label, 0, len(base)+len(extra)), base, extra...)
}

// appendWithLabels is withLabels writing into dst[:0].
func appendWithLabels(dst, base []prompb.Label, extra ...prompb.Label) []prompb.Label {
	out := append(dst[:0], base...)
	for _, l := range extra {
		i, found := slices.BinarySearchFunc(out, l.Name, func(a prompb.Label, name string) int { return strings.Compare(a.Name, name) })
		if found {
			out[i].Value = l.Value
			continue
		}
		out = slices.Insert(out, i, l)
	}
	return out
}

func nameLabel(name string) prompb.Label { return prompb.Label{Name: labelMetricName, Value: name} }

// promValue keeps every float as it is, except that any NaN becomes the
// ordinary NaN: the bit pattern 0x7ff0000000000002 is Prometheus' staleness
// marker and must never be sent for a value that is merely NaN. And -0
// becomes 0, which is what protobuf delivers anyway (it omits zero fields).
func promValue(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return math.NaN()
	case v == 0:
		return 0
	}
	return v
}

// formatFloat is the label text of a bucket bound or quantile: the shortest
// decimal that round-trips, without exponent ("0.005", "1000000", "+Inf").
func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// metricCtx is what a metric's conversion needs besides its data.
type metricCtx struct {
	m    metricdata.Metrics
	high map[string]string
	p    problems
}

func (cv *conversion) metric(scope instrumentation.Scope, high map[string]string, m metricdata.Metrics) {
	mc := &metricCtx{m: m, high: high}
	cv.start = 0
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		convertSum(cv, mc, d)
	case metricdata.Sum[float64]:
		convertSum(cv, mc, d)
	case metricdata.Gauge[int64]:
		convertGauge(cv, mc, d)
	case metricdata.Gauge[float64]:
		convertGauge(cv, mc, d)
	case metricdata.Histogram[int64]:
		convertHistogram(cv, mc, d)
	case metricdata.Histogram[float64]:
		convertHistogram(cv, mc, d)
	case metricdata.ExponentialHistogram[int64]:
		convertExponentialHistogram(cv, mc, d)
	case metricdata.ExponentialHistogram[float64]:
		convertExponentialHistogram(cv, mc, d)
	case metricdata.Summary:
		convertSummary(cv, mc, d)
	default:
		mc.p.add("unsupported data type %T: the whole metric", m.Data)
	}
	cv.report(fmt.Sprintf("metric %q", m.Name), &mc.p, "metric", m.Name, "scope", scope.Name)
}

// family names m as a Prometheus metric family of type typ, or reports why it
// cannot be sent and returns "".
func (cv *conversion) family(mc *metricCtx, namingType otlptranslator.MetricType, typ prompb.MetricMetadata_MetricType) string {
	name, problem := cv.c.familyName(mc.m, namingType)
	if problem != "" {
		mc.p.addReason(problem, 1)
		return ""
	}
	if !cv.familyFree(mc, name, typ) {
		return ""
	}
	return name
}

// familyName is the Prometheus family name of m, or the problem why it has
// none.
func (c *converter) familyName(m metricdata.Metrics, namingType otlptranslator.MetricType) (name, problem string) {
	name, err := c.metricNamer.Build(otlptranslator.Metric{Name: m.Name, Unit: m.Unit, Type: namingType})
	if err != nil {
		return "", fmt.Sprintf("the whole metric: %v", err)
	}
	return labelValue(name), ""
}

// familyFree reports whether name may be used for a family of type typ in
// this request: a name already used by another type is kept for the first
// one, as the pull exporter does.
func (cv *conversion) familyFree(mc *metricCtx, name string, typ prompb.MetricMetadata_MetricType) bool {
	if have, ok := cv.families[name]; ok && have != typ {
		mc.p.add("series named %q: a %s of that name is already sent in this export; %s dropped", name, have, typ)
		return false
	}
	return true
}

// emit appends a series unless an identical label set was already sent,
// registering the family and its metadata with the first series.
func (cv *conversion) emit(mc *metricCtx, family string, typ prompb.MetricMetadata_MetricType, ts prompb.TimeSeries) {
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
	info := seriesInfo{family: family, typ: typ, help: mc.m.Description, unit: cv.c.unitNamer.Build(mc.m.Unit), start: cv.start}
	if t := ts.Samples; len(t) > 0 && info.start > t[0].Timestamp || len(ts.Histograms) > 0 && info.start > ts.Histograms[0].Timestamp {
		info.start = 0
	}
	cv.infos = append(cv.infos, info)
	if _, ok := cv.families[family]; ok {
		return
	}
	cv.families[family] = typ
	if !cv.c.withoutMetadata {
		cv.req.Metadata = append(cv.req.Metadata, prompb.MetricMetadata{
			Type:             typ,
			MetricFamilyName: family,
			Help:             mc.m.Description,
			Unit:             cv.c.unitNamer.Build(mc.m.Unit),
		})
	}
}

func (cv *conversion) observeTime(ms int64) {
	if !cv.hasNewest || ms > cv.newest {
		cv.newest, cv.hasNewest = ms, true
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

// seriesString formats labels the way Prometheus prints a series.
func seriesString(labels []prompb.Label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

func oneSample(v float64, t int64) []prompb.Sample {
	return []prompb.Sample{{Value: promValue(v), Timestamp: t}}
}

// checkTemporality drops delta data: the exporter asks the SDK for
// cumulative data, so delta can only come from a foreign producer, and a delta
// sent as a Prometheus counter or histogram would be read as resets.
func checkTemporality(mc *metricCtx, t metricdata.Temporality) bool {
	if t == metricdata.DeltaTemporality {
		mc.p.add("the whole metric: delta temporality cannot be sent as Prometheus series; configure the producer for cumulative temporality")
		return false
	}
	return true
}

func convertSum[N int64 | float64](cv *conversion, mc *metricCtx, d metricdata.Sum[N]) {
	if !checkTemporality(mc, d.Temporality) {
		return
	}
	var namingType otlptranslator.MetricType = otlptranslator.MetricTypeNonMonotonicCounter
	typ := prompb.MetricMetadata_GAUGE
	if d.IsMonotonic {
		typ = prompb.MetricMetadata_COUNTER
		// Like the pull exporter: without suffixes, a counter is named like
		// an up-down counter (no "_total").
		if cv.c.withSuffixes {
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
			ts.Exemplars = convertExemplars(cv.c, dp.Exemplars, dp.Time.UnixMilli(), &mc.p)
		}
		cv.emit(mc, name, typ, ts)
	}
}

func convertGauge[N int64 | float64](cv *conversion, mc *metricCtx, d metricdata.Gauge[N]) {
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

// checkBuckets reports why explicit bucket data cannot form a Prometheus
// histogram, or returns "". It allocates only to describe a problem.
func checkBuckets[N int64 | float64](dp *metricdata.HistogramDataPoint[N]) string {
	if len(dp.BucketCounts) != len(dp.Bounds)+1 {
		return fmt.Sprintf("data point with %d bucket counts for %d bounds (want %d)", len(dp.BucketCounts), len(dp.Bounds), len(dp.Bounds)+1)
	}
	for i, b := range dp.Bounds {
		if math.IsNaN(b) || math.IsInf(b, 1) || (i > 0 && !(b > dp.Bounds[i-1])) {
			return fmt.Sprintf("data point with bounds %v: bounds must increase strictly and be below +Inf", dp.Bounds)
		}
	}
	var total uint64
	for _, n := range dp.BucketCounts {
		if total+n < total {
			return "data point whose bucket counts overflow uint64"
		}
		total += n
	}
	return checkCount(total, dp.Count, float64(dp.Sum))
}

// checkCount applies Prometheus' rule for a histogram's count: it equals the
// observations in the buckets, or (with a NaN sum) is at least that.
func checkCount(inBuckets, count uint64, sum float64) string {
	if inBuckets == count || (math.IsNaN(sum) && inBuckets < count) {
		return ""
	}
	return fmt.Sprintf("data point with count %d but %d observations in its buckets", count, inBuckets)
}

func convertHistogram[N int64 | float64](cv *conversion, mc *metricCtx, d metricdata.Histogram[N]) {
	if !checkTemporality(mc, d.Temporality) {
		return
	}
	typ := prompb.MetricMetadata_HISTOGRAM
	name := cv.family(mc, otlptranslator.MetricTypeHistogram, typ)
	if name == "" {
		return
	}
	minName, maxName := name+"_min", name+"_max"
	minMax := cv.c.histogramMinMax &&
		cv.familyFree(mc, minName, prompb.MetricMetadata_GAUGE) && cv.familyFree(mc, maxName, prompb.MetricMetadata_GAUGE)
	classic := cv.c.classic()
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
		if cv.c.customBuckets {
			// In data point order, each as one native histogram.
			if h, msg := customBucketsHistogram(dp); msg != "" {
				mc.p.add("%s", msg)
			} else {
				cv.start = p.start
				cv.emit(mc, name, typ, prompb.TimeSeries{
					Labels:     withLabels(base, nameLabel(name)),
					Histograms: []prompb.Histogram{h},
					Exemplars:  convertExemplars(cv.c, dp.Exemplars, p.t, &mc.p),
				})
			}
		}
		if classic {
			p.count = withLabels(base, nameLabel(name+"_count"))
			p.key = string(appendLabels(nil, p.count))
			p.exemplars = bucketExemplars(cv.c, *dp, p.t, &mc.p)
			buckets = max(buckets, len(dp.BucketCounts))
		}
		points = append(points, p)
	}
	if classic {
		// Classic series go out in histogramOrder.
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
					le = formatFloat(p.dp.Bounds[i])
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
				Labels:  withLabels(p.base, nameLabel(minName)),
				Samples: oneSample(float64(v), p.t),
			})
		}
	}
	for _, p := range points {
		if v, ok := p.dp.Max.Value(); ok {
			cv.emit(mc, maxName, prompb.MetricMetadata_GAUGE, prompb.TimeSeries{
				Labels:  withLabels(p.base, nameLabel(maxName)),
				Samples: oneSample(float64(v), p.t),
			})
		}
	}
}

// classic reports whether explicit histograms are sent as classic series.
func (c *converter) classic() bool { return !c.customBuckets || c.classicHistograms }

// histogramOrder is the order of a histogram's classic series: its data
// points are sorted by their labels (by the encoded labels of their _count
// series, a fixed order if not quite an alphabetical one; ties stay in data
// point order), and their series go bucket by bucket across the points:
// every point's first bucket, then every point's second, …, +Inf, then
// every point's _sum, _count, _min and _max. Neighbouring series then
// differ in a label value and their sample, where point by point they
// differ in le, and between points in whatever the SDK's order puts there:
// W's payload compresses 6% smaller for it (8% with golang/snappy),
// whatever the order of the data points, which no longer changes the
// request either. Custom-bucket histograms go first, in data point order.

// bucketExemplars places each exemplar on the first bucket whose bound is
// at least its value (the +Inf bucket for larger values), as OpenMetrics
// does; the result has one entry per bucket.
func bucketExemplars[N int64 | float64](c *converter, dp metricdata.HistogramDataPoint[N], t int64, p *problems) [][]prompb.Exemplar {
	out := make([][]prompb.Exemplar, len(dp.BucketCounts))
	for _, e := range convertExemplars(c, dp.Exemplars, t, p) {
		i, _ := slices.BinarySearch(dp.Bounds, e.Value)
		out[i] = append(out[i], e)
	}
	return out
}

func convertExponentialHistogram[N int64 | float64](cv *conversion, mc *metricCtx, d metricdata.ExponentialHistogram[N]) {
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
			Exemplars:  convertExemplars(cv.c, dp.Exemplars, h.Timestamp, &mc.p),
		})
	}
}

func convertSummary(cv *conversion, mc *metricCtx, d metricdata.Summary) {
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
				Labels:  withLabels(base, nameLabel(name), prompb.Label{Name: labelQuantile, Value: formatFloat(q.Quantile)}),
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

// convertExemplars converts OpenTelemetry exemplars, sorted by time. Labels
// are trace_id and span_id in hex plus the filtered attributes, the
// attributes only if all labels together stay within 128 runes (the
// OpenMetrics limit; Prometheus refuses longer ones). An exemplar without a
// time gets the data point's time t.
func convertExemplars[N int64 | float64](c *converter, in []metricdata.Exemplar[N], t int64, p *problems) []prompb.Exemplar {
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
			attrs := slices.Clone(e.FilteredAttributes)
			slices.SortStableFunc(attrs, func(a, b attribute.KeyValue) int { return strings.Compare(string(a.Key), string(b.Key)) })
			m := map[string]string{}
			c.addAttrs(m, attrs, "", p)
			for k, v := range ids {
				m[k] = v
			}
			if all := sortedLabels(m); labelRunes(all) <= maxExemplarRunes {
				labels = all
			}
		}
		ts := t
		if !e.Time.IsZero() {
			ts = e.Time.UnixMilli()
		}
		out = append(out, prompb.Exemplar{Labels: labels, Value: promValue(float64(e.Value)), Timestamp: ts})
	}
	slices.SortStableFunc(out, func(a, b prompb.Exemplar) int { return cmpInt64(a.Timestamp, b.Timestamp) })
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func labelRunes(labels []prompb.Label) int {
	n := 0
	for _, l := range labels {
		n += utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.Value)
	}
	return n
}

// targetInfo adds the target_info series: the resource attributes other
// than those in job and instance, as labels of a gauge with value 1 (SPEC
// §3). It is sent only with other series, and only when it has attributes to
// carry; its timestamp is that of the newest sample in the request, so that
// it lines up with the data it describes and conversion stays deterministic.
func (cv *conversion) targetInfo(rm *metricdata.ResourceMetrics) {
	if cv.c.withoutTargetInfo || !cv.hasNewest {
		return
	}
	mc := targetInfoCtx()
	labels := cv.c.targetInfoLabels(rm.Resource.Set(), cv.job, cv.instance, &mc.p)
	if labels != nil && cv.familyFree(mc, otlptranslator.TargetInfoMetricName, prompb.MetricMetadata_GAUGE) {
		cv.start = 0
		cv.emit(mc, otlptranslator.TargetInfoMetricName, prompb.MetricMetadata_GAUGE, prompb.TimeSeries{
			Labels:  labels,
			Samples: oneSample(1, cv.newest),
		})
	}
	cv.report("target_info", &mc.p, "metric", otlptranslator.TargetInfoMetricName)
}

// targetInfoCtx is the metric target_info is described as.
func targetInfoCtx() *metricCtx {
	return &metricCtx{m: metricdata.Metrics{Name: otlptranslator.TargetInfoMetricName, Description: targetInfoHelp}}
}

// targetInfoLabels returns the labels of the target_info series of the
// resource res (with job and instance), or nil when the resource has no
// attributes for it, with the problems in p.
func (c *converter) targetInfoLabels(res *attribute.Set, job, instance string, p *problems) []prompb.Label {
	var attrs []attribute.KeyValue
	for _, kv := range res.ToSlice() {
		switch kv.Key {
		case attrServiceName, attrServiceNamespace, attrServiceInstanceID:
		default:
			attrs = append(attrs, kv)
		}
	}
	m := map[string]string{}
	c.addAttrs(m, attrs, "", p)
	if len(sortedLabels(m)) == 0 {
		return nil
	}
	c.identity(m, job, instance)
	return withLabels(sortedLabels(m), nameLabel(otlptranslator.TargetInfoMetricName))
}

// startMillis is a data point's start time in ms for 2.0 requests, 0 when
// unset.
func startMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
