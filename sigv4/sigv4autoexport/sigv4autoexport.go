// Package sigv4autoexport registers prwmetric with AWS SigV4 signing (for
// Amazon Managed Service for Prometheus) with
// go.opentelemetry.io/contrib/exporters/autoexport under the name
// "prometheusremotewrite_sigv4", so that operators can turn it on without
// code changes:
//
//	OTEL_METRICS_EXPORTER=prometheusremotewrite_sigv4
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT=https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-…/api/v1/remote_write
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_REGION=us-east-1
//
// in a program that builds its pipeline with autoexport.NewMetricReader and
// imports this package for its side effect:
//
//	import _ "github.com/prwmetric/prwmetric/sigv4/sigv4autoexport"
//
// The other OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_* variables configure the
// exporter as usual; the signing settings are read by
// sigv4.ConfigFromEnvironment (_SIGV4_REGION, _SIGV4_SERVICE, _SIGV4_PROFILE,
// _SIGV4_ROLE_ARN, _SIGV4_EXTERNAL_ID), and credentials come from the AWS
// SDK's default chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, a web identity token
// file, ECS and EC2 roles). OTEL_METRICS_PRODUCERS adds metric producers as
// package github.com/prwmetric/prwmetric/prwautoexport describes.
//
// The reader is built by prwautoexport.NewReader, so importing this package
// also registers prwautoexport's "prometheusremotewrite"; a program must not
// register that name itself.
package sigv4autoexport

import (
	"context"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric/prwautoexport"
	"github.com/prwmetric/prwmetric/sigv4"
)

// Name is the OTEL_METRICS_EXPORTER value that selects prwmetric with SigV4.
const Name = "prometheusremotewrite_sigv4"

func init() {
	autoexport.RegisterMetricReader(Name, NewMetricReader)
}

// NewMetricReader returns a sdkmetric.PeriodicReader around a prwmetric
// exporter configured from the OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_*
// variables and signing with sigv4.WithSigV4(sigv4.ConfigFromEnvironment()),
// with the producers OTEL_METRICS_PRODUCERS names (prwautoexport.NewReader).
// The reader honours OTEL_METRIC_EXPORT_INTERVAL and
// OTEL_METRIC_EXPORT_TIMEOUT, as the SDK does for every periodic reader.
func NewMetricReader(ctx context.Context) (sdkmetric.Reader, error) {
	return prwautoexport.NewReader(ctx, sigv4.WithSigV4(sigv4.ConfigFromEnvironment()))
}
