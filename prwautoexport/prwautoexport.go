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
// It is a module of its own so that prwmetric itself does not depend on
// OpenTelemetry contrib.
package prwautoexport

import (
	"context"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric"
)

// Name is the OTEL_METRICS_EXPORTER value that selects prwmetric.
const Name = "prometheusremotewrite"

func init() {
	autoexport.RegisterMetricReader(Name, NewMetricReader)
}

// NewMetricReader returns a sdkmetric.PeriodicReader around a prwmetric
// exporter configured from the OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_*
// variables. The reader honours OTEL_METRIC_EXPORT_INTERVAL and
// OTEL_METRIC_EXPORT_TIMEOUT, as the SDK does for every periodic reader.
func NewMetricReader(context.Context) (sdkmetric.Reader, error) {
	exp, err := prwmetric.New()
	if err != nil {
		return nil, err
	}
	return sdkmetric.NewPeriodicReader(exp), nil
}
