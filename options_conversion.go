package prwmetric

import (
	"maps"
	"slices"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// The options of the conversion: names, labels and what is sent of each
// data point. The others are in options.go.

// WithNamespace prefixes every metric name with namespace and "_", as the
// pull exporter does: all but target_info, which only
// CompatibilityCollector prefixes too. It is escaped like a label name
// ("my.app" → "my_app"), and one that escapes to nothing fails New.
// Default: none.
func WithNamespace(namespace string) Option {
	return optionFunc(func(c config) config { c.namespace = namespace; return c })
}

// WithTranslationStrategy chooses how names are translated (default: the
// WithCompatibility profile's, otlptranslator.UnderscoreEscapingWithSuffixes
// for all but CompatibilityMimirOTLP: "_" for invalid characters, unit and
// _total suffixes). Strategies that keep UTF-8 names need
// WithProtocol(ProtocolV2); after a fallback to 1.0 the receiver may refuse
// them, which Export reports.
func WithTranslationStrategy(strategy otlptranslator.TranslationStrategyOption) Option {
	return optionFunc(func(c config) config { c.translationStrategy = strategy; return c })
}

// WithoutScopeInfo leaves out the otel_scope_* labels. Default: included,
// unless the WithCompatibility profile leaves them out.
func WithoutScopeInfo() Option {
	return optionFunc(func(c config) config { c.withoutScopeInfo = true; return c })
}

// WithoutTargetInfo leaves out the target_info series. Default: one per
// export.
func WithoutTargetInfo() Option {
	return optionFunc(func(c config) config { c.withoutTargetInfo = true; return c })
}

// WithResourceAsLabels copies the resource attributes filter keeps (nil:
// all) onto every series. Default: none; they are on target_info. Not
// with WithResourceConstantLabels; a later WithResourceAsLabels replaces
// it.
func WithResourceAsLabels(filter attribute.Filter) Option {
	return optionFunc(func(c config) config {
		if filter == nil {
			filter = func(attribute.KeyValue) bool { return true }
		}
		c.resourceAsLabels = filter
		c.resourceLabelsBy = withResourceLabelsBy(c.resourceLabelsBy, "WithResourceAsLabels")
		return c
	})
}

// WithResourceConstantLabels copies onto every series the resource
// attributes whose keys match a pattern of included (all when empty) and
// none of excluded, as the OpenTelemetry configuration's
// resource_constant_labels (Prometheus: promote_resource_attributes); "*"
// matches any run of characters, "?" one. They stay on target_info too.
// Default: none. Not with WithResourceAsLabels; a later
// WithResourceConstantLabels replaces it.
func WithResourceConstantLabels(included, excluded []string) Option {
	included, excluded = slices.Clone(included), slices.Clone(excluded)
	return optionFunc(func(c config) config {
		c.resourceAsLabels = resourceConstantLabels(included, excluded)
		c.resourceLabelsBy = withResourceLabelsBy(c.resourceLabelsBy, "WithResourceConstantLabels")
		return c
	})
}

// withResourceLabelsBy returns by, the options that chose the resource
// attributes copied onto every series, once option has too: a repeated
// option replaces itself, so only the two different options conflict.
func withResourceLabelsBy(by []string, option string) []string {
	by = slices.DeleteFunc(slices.Clone(by), func(o string) bool { return o == option })
	return append(by, option)
}

// WithIdentifyingResourceAttributes keeps service.name, service.namespace
// and service.instance.id on target_info as well as in job and instance
// (Prometheus and Mimir: keep_identifying_resource_attributes), so that
// they can be joined on by their own names. Default: only in job and
// instance.
func WithIdentifyingResourceAttributes() Option {
	return optionFunc(func(c config) config { c.keepIdentifying = true; return c })
}

// WithTypeAndUnitLabels adds the __type__ ("counter", "gauge",
// "histogram", "summary") and __unit__ labels to every series but
// target_info, as
// Prometheus' type-and-unit-labels feature does. Default: off.
func WithTypeAndUnitLabels() Option {
	return optionFunc(func(c config) config { c.typeAndUnitLabels = true; return c })
}

// WithOpenMetricsFloatLabels writes le and quantile values as Prometheus 3
// stores scraped series ("1.0", "1e+06"), so that pushed series equal
// scraped ones (a client_golang registry's). Default: the shortest decimal
// ("1", "1000000"), as the Collector and Prometheus' OTLP receiver write.
func WithOpenMetricsFloatLabels() Option {
	return optionFunc(func(c config) config { c.openMetricsFloats = true; return c })
}

// WithCompatibility names and labels series as another path into
// Prometheus does (see Compatibility); individual options apply on top.
// Default: CompatibilityPullExporter.
func WithCompatibility(profile Compatibility) Option {
	return optionFunc(func(c config) config { c.compatibility = profile; return c })
}

// WithExternalLabels adds constant labels to every series, like
// Prometheus' external_labels; they win over attributes. Names must be
// valid, values non-empty, or New fails; several options merge.
func WithExternalLabels(labels map[string]string) Option {
	labels = maps.Clone(labels)
	return optionFunc(func(c config) config { c.externalLabels = merge(c.externalLabels, labels); return c })
}

// WithoutMetadata leaves out the metadata (type, help, unit) otherwise sent
// once per family in each export: with Remote Write 1.0 in the export's last
// request (in a request of their own when they would take it past
// WithMaxRequestBytes), with 2.0 on each series.
func WithoutMetadata() Option {
	return optionFunc(func(c config) config { c.withoutMetadata = true; return c })
}

// WithHistogramMinMax adds <name>_min and <name>_max gauges from the
// extrema histograms recorded. Off by default, as the specification has it.
func WithHistogramMinMax() Option {
	return optionFunc(func(c config) config { c.histogramMinMax = true; return c })
}

// WithAggregationSelector chooses the aggregation per instrument kind, e.g.
// base-2 exponential histograms (sent as native histograms). Default:
// sdkmetric.DefaultAggregationSelector.
func WithAggregationSelector(selector sdkmetric.AggregationSelector) Option {
	return optionFunc(func(c config) config { c.aggregationSelector = selector; return c })
}

// WithoutNativeHistograms sends exponential histograms as classic ones (an
// le bound at each bucket boundary) for receivers that refuse native
// histograms. Without it the exporter switches by itself at the first
// refusal, with one warning, resending that export. Not with
// WithNativeHistogramsForExplicitBuckets. Default: native histograms.
func WithoutNativeHistograms() Option {
	return optionFunc(func(c config) config { c.withoutNativeHistograms = true; return c })
}
