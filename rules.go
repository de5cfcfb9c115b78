package prwmetric

import (
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
	labelType             = "__type__"
	labelUnit             = "__unit__"
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

// rules are what the options decide of the conversion (SPEC §3): the
// names and labels the OpenTelemetry Go Prometheus (pull) exporter would
// expose for the same instruments and options, plus job/instance from the
// resource. They hold no state, so concurrent use is safe. The conversion
// (convert.go) builds a series' labels by them the first time it sees the
// series, and the reference conversion of the tests builds every series by
// them.
type rules struct {
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
	// classicExponential sends exponential histograms as classic ones
	// (WithoutNativeHistograms, or a receiver that refused them).
	classicExponential bool
	resourceAsLabels   attribute.Filter
	externalLabels     map[string]string
	// keepIdentifying keeps service.* on target_info
	// (WithIdentifyingResourceAttributes).
	keepIdentifying   bool
	typeAndUnitLabels bool
	openMetricsFloats bool
	// collectorLabels, otlpLabels: see profile.
	collectorLabels, otlpLabels bool
	// targetInfoName is target_info, with the namespace for the Collector.
	targetInfoName string
	logger         *slog.Logger
}

// escapedNamespace is WithNamespace's namespace as metric names are
// prefixed with it. Like the pull exporter, the namespace is escaped as a
// label name first (so "my.app" becomes "my_app" and "1app" becomes
// "key_1app"); only then does the metric namer prefix it. One that escapes
// to nothing is an error, which validate reports with the others.
func (c *config) escapedNamespace() (string, error) {
	if c.namespace == "" {
		return "", nil
	}
	plain := otlptranslator.LabelNamer{UTF8Allowed: !c.translationStrategy.ShouldEscape()}
	namespace, err := plain.Build(c.namespace)
	if err != nil {
		return "", fmt.Errorf("prwmetric: WithNamespace(%q): %w; use letters, digits and underscores", c.namespace, err)
	}
	return namespace, nil
}

func newRules(cfg config) (*rules, error) {
	escape := cfg.translationStrategy.ShouldEscape()
	prof := cfg.compatibility.profile()
	labelNamer := otlptranslator.LabelNamer{
		UTF8Allowed:                 !escape,
		UnderscoreLabelSanitization: prof.keyPrefixUnderscore,
		PreserveMultipleUnderscores: prof.keepUnderscoreRuns,
	}
	namespace, err := cfg.escapedNamespace()
	if err != nil {
		return nil, err
	}
	logger := cfg.failureLogger()
	external := make(map[string]string, len(cfg.externalLabels))
	for k, v := range cfg.externalLabels {
		external[k] = v
	}
	return &rules{
		metricNamer:        otlptranslator.NewMetricNamer(namespace, cfg.translationStrategy),
		labelNamer:         labelNamer,
		unitNamer:          otlptranslator.UnitNamer{UTF8Allowed: !escape},
		withSuffixes:       cfg.translationStrategy.ShouldAddSuffixes(),
		withoutScopeInfo:   cfg.withoutScopeInfo,
		withoutTargetInfo:  cfg.withoutTargetInfo,
		withoutMetadata:    cfg.withoutMetadata,
		histogramMinMax:    cfg.histogramMinMax,
		customBuckets:      cfg.customBuckets,
		classicHistograms:  cfg.classicHistograms,
		classicExponential: cfg.withoutNativeHistograms,
		resourceAsLabels:   cfg.resourceAsLabels,
		keepIdentifying:    cfg.keepIdentifying,
		typeAndUnitLabels:  cfg.typeAndUnitLabels,
		openMetricsFloats:  cfg.openMetricsFloats,
		collectorLabels:    prof.collectorLabels,
		otlpLabels:         prof.otlpLabels,
		targetInfoName:     targetInfoName(namespace, prof),
		externalLabels:     external,
		logger:             logger,
	}, nil
}

// classic reports whether explicit histograms are sent as classic series.
func (c *rules) classic() bool { return !c.customBuckets || c.classicHistograms }

// familyName is the Prometheus family name of m, or the problem why it has
// none.
func (c *rules) familyName(m metricdata.Metrics, namingType otlptranslator.MetricType) (name, problem string) {
	name, err := c.metricNamer.Build(otlptranslator.Metric{Name: m.Name, Unit: m.Unit, Type: namingType})
	if err != nil {
		return "", fmt.Sprintf("the whole metric: %v", err)
	}
	return labelValue(name), ""
}

// resourceLabels returns job and instance of the resource res, and the
// labels WithResourceAsLabels copies from it (nil without that option).
func (c *rules) resourceLabels(res *attribute.Set, p *problems) (job, instance string, low map[string]string) {
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
// every series of scope, under a resource with job and instance: scope
// labels, then job/instance, then external labels, each overriding the
// ones before. Problems are left in p.
func (c *rules) scopeLabels(scope instrumentation.Scope, job, instance string, p *problems) map[string]string {
	high := map[string]string{}
	if !c.withoutScopeInfo {
		scopeAttrs := map[string]string{}
		c.addAttrs(scopeAttrs, scope.Attributes.ToSlice(), labelScopeAttrPrefix, p)
		for k, v := range scopeAttrs {
			high[k] = v
		}
		high[labelScopeName] = scope.Name
		high[labelScopeVersion] = scope.Version
		if !c.collectorLabels {
			high[labelScopeSchemaURL] = scope.SchemaURL
		}
	}
	c.identity(high, job, instance)
	return high
}

// identity sets job, instance and the external labels, which win over all
// other labels except __name__, le and quantile. Prometheus' OTLP receiver
// and the Collector set job and instance only when the resource makes them
// (service.name, service.instance.id), so that a point's own job or
// instance attribute stays when it does not; the OpenTelemetry
// specification sets an empty instance, which removes it.
func (c *rules) identity(dst map[string]string, job, instance string) {
	if job != "" || !c.otlpLabels {
		dst[labelJob] = job
	}
	if instance != "" || !c.otlpLabels {
		dst[labelInstance] = instance
	}
	for k, v := range c.externalLabels {
		dst[k] = v
	}
}

// targetInfoLabels returns the labels of the target_info series of the
// resource res (with job and instance), or nil when the resource has no
// attributes for it, with the problems in p.
func (c *rules) targetInfoLabels(res *attribute.Set, job, instance string, p *problems) []prompb.Label {
	var attrs []attribute.KeyValue
	for _, kv := range res.ToSlice() {
		switch kv.Key {
		case attrServiceName, attrServiceNamespace, attrServiceInstanceID:
			if c.keepIdentifying {
				attrs = append(attrs, kv)
			}
		default:
			attrs = append(attrs, kv)
		}
	}
	if c.otlpLabels && job == "" && instance == "" {
		return nil // nothing to join it on
	}
	m := map[string]string{}
	c.addAttrs(m, attrs, "", p)
	if len(sortedLabels(m)) == 0 {
		return nil
	}
	c.identity(m, job, instance)
	return withLabels(sortedLabels(m), nameLabel(c.targetInfoName))
}

// addAttrs translates kvs (sorted by key, as attribute.Set keeps them) to
// labels in dst, overriding what dst holds. Attributes whose names collide
// after translation are joined with ";" in the order of their original keys;
// empty values count as absent. With a prefix (scope attributes), the names
// "name", "version" and "schema_url" are left out, as the pull exporter does,
// since otel_scope_name etc. carry those.
func (c *rules) addAttrs(dst map[string]string, kvs []attribute.KeyValue, prefix string, p *problems) {
	c.addAttrsNamed(dst, kvs, prefix, p, nil)
}

// addAttrsNamed is addAttrs remembering in names (when not nil) the label
// names that attribute keys translate to: the same few keys recur on every
// data point, and translating one allocates.
func (c *rules) addAttrsNamed(dst map[string]string, kvs []attribute.KeyValue, prefix string, p *problems, names map[attribute.Key]string) {
	var order []string
	values := map[string]string{}
	for _, kv := range kvs {
		name, ok := names[kv.Key]
		addPrefix := prefix
		if prefix != "" && c.collectorLabels {
			// The Collector translates the prefixed name, and leaves out
			// the keys (not label names) of the scope's own fields.
			switch kv.Key {
			case "name", "version", "schema_url":
				continue
			}
			var err error
			if name, err = c.labelNamer.Build(prefix + string(kv.Key)); err != nil {
				p.add("attribute %q: %v", kv.Key, err)
				continue
			}
			name = labelValue(name) // UTF-8 names pass through unescaped
			ok, addPrefix = true, ""
		}
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
		if addPrefix != "" {
			if name == "name" || name == "version" || name == "schema_url" {
				continue
			}
			name = addPrefix + name
		}
		if strings.HasPrefix(name, "__") && (!c.otlpLabels || name == labelMetricName) {
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
		if c.collectorLabels && old == value {
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
// decimal that round-trips, without exponent ("0.005", "1000000", "+Inf"),
// or with WithOpenMetricsFloatLabels the OpenMetrics form Prometheus 3
// gives scraped series ("1.0", "1e+06": Go's %g, with ".0" when it has
// neither "." nor an exponent).
func (c *rules) formatFloat(f float64) string {
	if !c.openMetricsFloats || math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// startMillis is a data point's start time in ms for 2.0 requests, 0 when
// unset.
func startMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
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

// withImplicitBuckets returns d with each point that has neither bounds nor
// bucket counts given its one implicit bucket, +Inf, holding its count:
// OTLP allows such a point (only count and sum; metrics.proto,
// HistogramDataPoint.bucket_counts), which the Collector and Prometheus'
// OTLP receiver send as _bucket{le="+Inf"}, _sum and _count. The Go SDK
// never makes one; d's points are copied only when a producer did.
func withImplicitBuckets[N int64 | float64](d metricdata.Histogram[N]) metricdata.Histogram[N] {
	for i := range d.DataPoints {
		if dp := &d.DataPoints[i]; len(dp.BucketCounts) == 0 && len(dp.Bounds) == 0 {
			d.DataPoints = slices.Clone(d.DataPoints)
			for k := i; k < len(d.DataPoints); k++ {
				if dp := &d.DataPoints[k]; len(dp.BucketCounts) == 0 && len(dp.Bounds) == 0 {
					dp.BucketCounts = []uint64{dp.Count}
				}
			}
			return d
		}
	}
	return d
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
