// Package prwautoexport registers prwmetric with
// go.opentelemetry.io/contrib/exporters/autoexport under the name
// "prometheusremotewrite", so that operators can choose it with
//
//	OTEL_METRICS_EXPORTER=prometheusremotewrite
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT=http://prometheus:9090/api/v1/write
//
// and a program that builds its pipeline with autoexport.NewMetricReader.
// Import it for its side effect:
//
//	import _ "github.com/prwmetric/prwmetric/prwautoexport"
//
// The reader also honours OTEL_METRICS_PRODUCERS as autoexport's own
// readers (otlp, console, prometheus) do: a comma-separated list of
//
//	prometheus  the client_golang default registry (prometheus.DefaultGatherer),
//	            through the bridge go.opentelemetry.io/contrib/bridges/prometheus
//	none        nothing
//
// Unset or empty adds no producer; a name listed twice counts once. Names
// are taken as written, without trimming spaces, so "prometheus, none"
// fails here as it does in autoexport. Any other name makes
// NewMetricReader fail with an error naming the variable and the value.
// Producers added with autoexport.RegisterMetricProducer or
// autoexport.WithFallbackMetricProducer are not seen: autoexport keeps
// them to itself.
//
// It is a module of its own so that prwmetric itself does not depend on
// OpenTelemetry contrib.
package prwautoexport

import (
	"context"
	"fmt"
	"os"
	"strings"

	prombridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric"
)

// Name is the OTEL_METRICS_EXPORTER value that selects prwmetric.
const Name = "prometheusremotewrite"

// producersEnv lists the metric producers that feed the reader besides the
// SDK's own instruments (experimental in autoexport).
const producersEnv = "OTEL_METRICS_PRODUCERS"

func init() {
	autoexport.RegisterMetricReader(Name, NewMetricReader)
}

// NewMetricReader returns a sdkmetric.PeriodicReader around a prwmetric
// exporter configured from the OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_*
// variables, with the producers OTEL_METRICS_PRODUCERS names. The reader
// honours OTEL_METRIC_EXPORT_INTERVAL and OTEL_METRIC_EXPORT_TIMEOUT, as
// the SDK does for every periodic reader. It is what init registers with
// autoexport under Name, and is NewReader without options.
func NewMetricReader(ctx context.Context) (sdkmetric.Reader, error) {
	return NewReader(ctx)
}

// NewReader returns the reader NewMetricReader returns, with opts applied
// to the exporter after the OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_*
// variables, as prwmetric.New applies them. It is for the readers of
// prwmetric variants that register with autoexport under names of their
// own, such as prometheusremotewrite_sigv4 (package sigv4autoexport) and
// prometheusremotewrite_azuread (package azureadautoexport), so that they
// read OTEL_METRICS_PRODUCERS as NewMetricReader does. An unknown producer
// fails before the exporter is made.
func NewReader(_ context.Context, opts ...prwmetric.Option) (sdkmetric.Reader, error) {
	// Producers first, as autoexport does: a bad value then leaves no
	// exporter to shut down.
	producers, err := metricProducers(os.Getenv(producersEnv))
	if err != nil {
		return nil, err
	}
	exp, err := prwmetric.New(opts...)
	if err != nil {
		return nil, err
	}
	readerOpts := make([]sdkmetric.PeriodicReaderOption, 0, len(producers))
	for _, p := range producers {
		readerOpts = append(readerOpts, sdkmetric.WithProducer(p))
	}
	return sdkmetric.NewPeriodicReader(exp, readerOpts...), nil
}

// metricProducers parses an OTEL_METRICS_PRODUCERS value the way autoexport
// v0.72.0 does (producerRegistry.create in its metrics.go): split on ",",
// no trimming, duplicates dropped, "prometheus" and "none" known. autoexport
// has no public function for it. Unlike autoexport, whose error reads only
// "unknown exporter or metrics producer", the error names the variable, the
// value and the known names; the order is the first appearance of each
// name rather than a map's.
func metricProducers(value string) ([]sdkmetric.Producer, error) {
	if value == "" {
		return nil, nil
	}
	var producers []sdkmetric.Producer
	seen := make(map[string]bool)
	for name := range strings.SplitSeq(value, ",") {
		if seen[name] {
			continue
		}
		seen[name] = true
		switch name {
		case "prometheus":
			producers = append(producers, prombridge.NewMetricProducer())
		case "none":
		default:
			return nil, fmt.Errorf("prwautoexport: %s=%q: unknown metrics producer %q (known: prometheus, none)", producersEnv, value, name)
		}
	}
	return producers, nil
}
