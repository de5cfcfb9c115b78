package prwmetric

import (
	"fmt"
	"strings"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
)

// Compatibility names another path from OpenTelemetry into Prometheus whose
// metric names and labels the exporter reproduces, so that dashboards and
// alerts keep working when a service moves between paths. Each path's rules
// come from its configuration reference, with its defaults:
//
//	profile                      leading "_" in a label   runs of "_"   otel_scope_* labels   unit and type suffixes
//	CompatibilityPullExporter    kept: _a                 collapsed     yes                   yes
//	CompatibilityPrometheusOTLP  key_a                    kept          no                    yes
//	CompatibilityMimirOTLP       key_a                    kept          no                    no
//	CompatibilityCollector       kept: _a                 kept          yes                   yes
//
// For example, a counter "http.requests" with unit "{request}", attribute
// "_tenant.__id" and scope "shop" is
//
//	CompatibilityPullExporter    http_requests_total{_tenant_id="7",otel_scope_name="shop",…}
//	CompatibilityPrometheusOTLP  http_requests_total{key_tenant___id="7",…}
//	CompatibilityMimirOTLP       http_requests{key_tenant___id="7",…}
//	CompatibilityCollector       http_requests_total{_tenant___id="7",otel_scope_name="shop",…}
//
// Every profile keeps job and instance from service.name,
// service.namespace and service.instance.id, and target_info with the other
// resource attributes, as all four paths do. The three paths other than the
// pull exporter set job and instance only when the resource makes them (a
// data point's own job or instance attribute stays otherwise, where the
// pull exporter drops it), keep attributes starting with "__" as labels
// (but __name__), which the pull exporter's rules refuse, and send no
// target_info for a resource with neither job nor instance.
type Compatibility int

const (
	// CompatibilityPullExporter names series as the OpenTelemetry Go
	// Prometheus (pull) exporter exposes them for a scrape: the
	// specification's rules. The default.
	CompatibilityPullExporter Compatibility = iota
	// CompatibilityPrometheusOTLP names series as Prometheus' OTLP receiver
	// (/api/v1/otlp/v1/metrics) stores them with its default otlp:
	// settings (label_name_underscore_sanitization and
	// label_name_preserve_multiple_underscores on, promote_scope_metadata
	// off, translation_strategy UnderscoreEscapingWithSuffixes).
	CompatibilityPrometheusOTLP
	// CompatibilityMimirOTLP names series as Grafana Mimir's OTLP endpoint
	// stores them with its defaults: as CompatibilityPrometheusOTLP, but
	// without unit and type suffixes (-distributor.otel-metric-suffixes-enabled
	// is false).
	CompatibilityMimirOTLP
	// CompatibilityCollector names series as the OpenTelemetry Collector's
	// prometheusremotewrite exporter sends them with its defaults: like the
	// pull exporter, except that runs of "_" in label names are kept, scope
	// labels leave out otel_scope_schema_url, and attributes whose names
	// collide are joined only when their values differ.
	CompatibilityCollector
)

// String returns the name OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_COMPATIBILITY
// accepts for c.
func (c Compatibility) String() string {
	switch c {
	case CompatibilityPullExporter:
		return "pull-exporter"
	case CompatibilityPrometheusOTLP:
		return "prometheus-otlp"
	case CompatibilityMimirOTLP:
		return "mimir-otlp"
	case CompatibilityCollector:
		return "collector"
	}
	return fmt.Sprintf("Compatibility(%d)", int(c))
}

func parseCompatibility(s string) (Compatibility, error) {
	for c := CompatibilityPullExporter; c <= CompatibilityCollector; c++ {
		if strings.EqualFold(s, c.String()) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown compatibility %q; use pull-exporter, prometheus-otlp, mimir-otlp or collector", s)
}

// profile is what a Compatibility decides.
type profile struct {
	// keyPrefixUnderscore turns a label name's leading "_" into "key_".
	keyPrefixUnderscore bool
	// keepUnderscoreRuns keeps runs of "_" in label names.
	keepUnderscoreRuns bool
	withoutScopeInfo   bool
	strategy           otlptranslator.TranslationStrategyOption
	// collectorLabels are the Collector's own ways with labels: no
	// otel_scope_schema_url, a scope attribute's label name translated
	// with its otel_scope_ prefix ("1x" → otel_scope_1x, not
	// otel_scope_key_1x), and colliding attributes joined only when the
	// value differs from the label's so far.
	collectorLabels bool
	// otlpLabels are what Prometheus' OTLP receiver and the Collector do
	// alike: attributes starting with "__" kept as labels (but __name__),
	// and no target_info for a resource without job and instance.
	otlpLabels bool
}

func (c Compatibility) profile() profile {
	switch c {
	case CompatibilityPrometheusOTLP:
		return profile{keyPrefixUnderscore: true, keepUnderscoreRuns: true, withoutScopeInfo: true, otlpLabels: true, strategy: otlptranslator.UnderscoreEscapingWithSuffixes}
	case CompatibilityMimirOTLP:
		return profile{keyPrefixUnderscore: true, keepUnderscoreRuns: true, withoutScopeInfo: true, otlpLabels: true, strategy: otlptranslator.UnderscoreEscapingWithoutSuffixes}
	case CompatibilityCollector:
		return profile{keepUnderscoreRuns: true, otlpLabels: true, collectorLabels: true, strategy: otlptranslator.UnderscoreEscapingWithSuffixes}
	}
	return profile{strategy: otlptranslator.UnderscoreEscapingWithSuffixes}
}

// resourceConstantLabels is the attribute filter of
// WithResourceConstantLabels: a key is kept when it matches a pattern of
// included (or included is empty) and none of excluded.
func resourceConstantLabels(included, excluded []string) attribute.Filter {
	return func(kv attribute.KeyValue) bool {
		key := string(kv.Key)
		return (len(included) == 0 || matchesAny(included, key)) && !matchesAny(excluded, key)
	}
}

func matchesAny(patterns []string, key string) bool {
	for _, p := range patterns {
		if wildcardMatch(p, key) {
			return true
		}
	}
	return false
}

// wildcardMatch reports whether s matches pattern, in which "*" stands for
// any run of characters (none included) and "?" for one character, as in
// the OpenTelemetry configuration's include/exclude lists.
func wildcardMatch(pattern, s string) bool {
	// Greedy with backtracking to the last "*": linear for patterns with
	// one "*", quadratic at worst.
	p, i := []rune(pattern), []rune(s)
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(i) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == i[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// applyCompatibility fills in what the profile decides and no option set:
// individual options win over the profile.
func (c *config) applyCompatibility() {
	p := c.compatibility.profile()
	if c.translationStrategy == "" {
		c.translationStrategy = p.strategy
	}
	c.withoutScopeInfo = c.withoutScopeInfo || p.withoutScopeInfo
}

func (c *config) validateCompatibility() []error {
	var errs []error
	if c.compatibility < CompatibilityPullExporter || c.compatibility > CompatibilityCollector {
		errs = append(errs, fmt.Errorf("prwmetric: WithCompatibility(%d): unknown profile; use CompatibilityPullExporter, CompatibilityPrometheusOTLP, CompatibilityMimirOTLP or CompatibilityCollector", int(c.compatibility)))
	}
	if len(c.resourceLabelsBy) > 1 {
		errs = append(errs, fmt.Errorf("prwmetric: %s: both choose the resource attributes copied onto every series; keep one", strings.Join(c.resourceLabelsBy, " and ")))
	}
	return errs
}

// targetInfoName is the name of target_info under the profile prof: the
// Collector prefixes the namespace, as it does every metric name.
func targetInfoName(namespace string, prof profile) string {
	if prof.collectorLabels && namespace != "" {
		return namespace + "_" + otlptranslator.TargetInfoMetricName
	}
	return otlptranslator.TargetInfoMetricName
}

// withTypeAndUnit returns high with the __type__ and __unit__ labels of a
// family of type typ and unit (already translated) for
// WithTypeAndUnitLabels, or high itself without that option.
func (c *rules) withTypeAndUnit(high map[string]string, typ prompb.MetricMetadata_MetricType, unit string) map[string]string {
	if !c.typeAndUnitLabels {
		return high
	}
	m := make(map[string]string, len(high)+2)
	for k, v := range high {
		m[k] = v
	}
	m[labelType] = typeLabelValue(typ)
	m[labelUnit] = unit // an empty unit is no label
	return m
}

// gaugeNameLabels are the extra labels of the _min and _max gauges of a
// histogram: their name and, with WithTypeAndUnitLabels, their own type.
func (c *rules) gaugeNameLabels(name string) []prompb.Label {
	if !c.typeAndUnitLabels {
		return []prompb.Label{nameLabel(name)}
	}
	return []prompb.Label{nameLabel(name), {Name: labelType, Value: typeLabelValue(prompb.MetricMetadata_GAUGE)}}
}

// typeLabelValue is the __type__ of typ: Prometheus' lower-case type names.
func typeLabelValue(typ prompb.MetricMetadata_MetricType) string {
	return strings.ToLower(typ.String())
}
