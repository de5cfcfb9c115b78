package prwautoexport_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	_ "github.com/prwmetric/prwmetric/prwautoexport"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestAutoexport configures everything from the environment, as an operator
// would, and finds the data in the receiver.
func TestAutoexport(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheusremotewrite")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", srv.URL())
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_HEADERS", "X-Scope-OrgID=team%20a")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000") // only Shutdown's final export runs
	t.Setenv("OTEL_SERVICE_NAME", "checkout")

	ctx := context.Background()
	reader, err := autoexport.NewMetricReader(ctx)
	if err != nil {
		t.Fatalf("NewMetricReader: %v", err)
	}
	if _, ok := reader.(*sdkmetric.PeriodicReader); !ok {
		t.Fatalf("reader is %T, want a *sdkmetric.PeriodicReader", reader)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	counter, err := provider.Meter("shop").Int64Counter("orders")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(ctx, 3, metric.WithAttributes(attribute.String("region", "eu")))
	if err := provider.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	// The final export carries the value; the exporter's Shutdown then ends
	// the series with a staleness marker.
	samples, err := srv.Samples("orders_total", map[string]string{"region": "eu", "job": "checkout"})
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || samples[0].Value != 3 || !samples[1].IsStale() {
		t.Errorf("orders_total samples = %+v, want 3 then a staleness marker", samples)
	}
	if h := srv.Requests()[0].Header.Get("X-Scope-OrgID"); h != "team a" {
		t.Errorf("X-Scope-OrgID = %q, want the decoded header from the environment", h)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

func TestAutoexportBadEnvironment(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheusremotewrite")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", "http://127.0.0.1:1/api/v1/write")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_TIMEOUT", "ten seconds")
	if _, err := autoexport.NewMetricReader(context.Background()); err == nil {
		t.Fatal("NewMetricReader accepted a malformed timeout")
	}
}
