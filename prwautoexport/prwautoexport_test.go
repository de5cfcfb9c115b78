package prwautoexport_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/prwautoexport"
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

// TestAutoexportMetricsProducers: OTEL_METRICS_PRODUCERS adds the
// client_golang default registry (through the Prometheus bridge) to what
// the reader pushes, as autoexport's own readers do; "none" and unset add
// nothing, and a name listed twice counts once.
func TestAutoexportMetricsProducers(t *testing.T) {
	const registryCounter = "prwautoexport_test_bridge_jobs_total"
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: registryCounter, Help: "Jobs done."})
	if err := prometheus.Register(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prometheus.Unregister(c) })
	c.Add(4)

	tests := []struct {
		name         string
		give         string
		wantRegistry bool
	}{
		{name: "unset", give: "", wantRegistry: false},
		{name: "none", give: "none", wantRegistry: false},
		{name: "prometheus", give: "prometheus", wantRegistry: true},
		{name: "prometheus twice", give: "prometheus,prometheus", wantRegistry: true},
		{name: "none and prometheus", give: "none,prometheus", wantRegistry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			defer srv.Close()
			t.Setenv("OTEL_METRICS_EXPORTER", "prometheusremotewrite")
			t.Setenv("OTEL_METRICS_PRODUCERS", tt.give)
			t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", srv.URL())
			t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000") // only Shutdown's final export runs

			ctx := context.Background()
			reader, err := autoexport.NewMetricReader(ctx)
			if err != nil {
				t.Fatalf("NewMetricReader: %v", err)
			}
			provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			counter, err := provider.Meter("shop").Int64Counter("orders")
			if err != nil {
				t.Fatal(err)
			}
			counter.Add(ctx, 3)
			if err := provider.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}

			// The SDK's own instruments arrive whatever the producers.
			if s, err := srv.Latest("orders_total", nil); err != nil || s.Value != 3 {
				t.Errorf("orders_total = %+v, %v; want 3", s, err)
			}
			samples, err := srv.Samples(registryCounter, nil)
			if !tt.wantRegistry {
				if err == nil {
					t.Errorf("%s arrived with OTEL_METRICS_PRODUCERS=%q: %+v", registryCounter, tt.give, samples)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The final export carries the registry's value; the exporter's
			// Shutdown then ends the series with a staleness marker.
			if len(samples) != 2 || samples[0].Value != 4 || !samples[1].IsStale() {
				t.Errorf("%s samples = %+v, want 4 then a staleness marker", registryCounter, samples)
			}
			if v := srv.Violations(); len(v) > 0 {
				t.Errorf("violations: %v", v)
			}
		})
	}
}

// TestAutoexportUnknownMetricsProducer: a value autoexport's own readers
// reject (here the console reader) fails NewMetricReader too, with an
// error naming the variable and the value, so a typo is not silently
// ignored. Names are taken as written, spaces included, as autoexport
// takes them.
func TestAutoexportUnknownMetricsProducer(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // the name the error points at
	}{
		{name: "typo", give: "promethues", want: `"promethues"`},
		{name: "unknown after a known one", give: "prometheus,otlp", want: `"otlp"`},
		{name: "space after the comma", give: "prometheus, none", want: `" none"`},
		{name: "trailing comma", give: "prometheus,", want: `""`},
		{name: "case differs", give: "Prometheus", want: `"Prometheus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			t.Setenv("OTEL_METRICS_PRODUCERS", tt.give)
			t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", "http://127.0.0.1:1/api/v1/write")

			t.Setenv("OTEL_METRICS_EXPORTER", "console")
			if r, err := autoexport.NewMetricReader(ctx); err == nil {
				_ = r.Shutdown(ctx)
				t.Fatalf("autoexport's console reader accepted OTEL_METRICS_PRODUCERS=%q; this case no longer matches autoexport", tt.give)
			}

			t.Setenv("OTEL_METRICS_EXPORTER", "prometheusremotewrite")
			r, err := autoexport.NewMetricReader(ctx)
			if err == nil {
				_ = r.Shutdown(ctx)
				t.Fatalf("NewMetricReader accepted OTEL_METRICS_PRODUCERS=%q", tt.give)
			}
			for _, want := range []string{fmt.Sprintf("OTEL_METRICS_PRODUCERS=%q", tt.give), "unknown metrics producer " + tt.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestNewReader: the options given to NewReader apply after the
// environment's, and the reader still takes OTEL_METRICS_PRODUCERS, as the
// readers of sigv4autoexport and azureadautoexport rely on.
func TestNewReader(t *testing.T) {
	const registryCounter = "prwautoexport_test_newreader_jobs_total"
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: registryCounter, Help: "Jobs done."})
	if err := prometheus.Register(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prometheus.Unregister(c) })
	c.Add(6)

	srv := prwmetrictest.NewServer()
	defer srv.Close()
	t.Setenv("OTEL_METRICS_PRODUCERS", "prometheus")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", srv.URL())
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_HEADERS", "X-Scope-OrgID=from-environment")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000") // only Shutdown's final export runs

	ctx := context.Background()
	reader, err := prwautoexport.NewReader(ctx, prwmetric.WithHeaders(map[string]string{"X-Scope-OrgID": "from-code"}))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	if err := provider.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	if s, err := srv.Latest(registryCounter, nil); err != nil || s.Value != 6 {
		t.Errorf("%s = %+v, %v; want 6", registryCounter, s, err)
	}
	for i, r := range srv.Requests() {
		if h := r.Header.Get("X-Scope-OrgID"); h != "from-code" {
			t.Errorf("request %d: X-Scope-OrgID = %q, want the option's value over the environment's", i, h)
		}
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}

	t.Setenv("OTEL_METRICS_PRODUCERS", "promethues")
	if r, err := prwautoexport.NewReader(ctx); err == nil {
		_ = r.Shutdown(ctx)
		t.Fatal("NewReader accepted an unknown metrics producer")
	} else if !strings.Contains(err.Error(), `OTEL_METRICS_PRODUCERS="promethues"`) {
		t.Errorf("error %q does not name the variable and its value", err)
	}
}
