package sigv4autoexport_test

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric/sigv4/internal/sigv4test"
	_ "github.com/prwmetric/prwmetric/sigv4/sigv4autoexport"
)

const roleARN = "arn:aws:iam::123456789012:role/prometheus-writer"

var (
	longTerm  = sigv4test.Credentials{AccessKey: "AKIAAUTOEXPORT000001", SecretKey: "aUtOeXpOrTsEcReT/00000000000000000000000000"}
	temporary = sigv4test.Credentials{AccessKey: "ASIAAUTOEXPORT000002", SecretKey: "aUtOeXpOrTtEmP/0000000000000000000000000000", SessionToken: "aUtOeXpOrTtOkEn////////00000000000000000000"}
)

// TestAutoexport configures everything from the environment, as an
// operator would, and finds the data, signed, at the receiver.
func TestAutoexport(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		service string
		signer  sigv4test.Credentials
		calls   []sigv4test.STSCall
	}{
		{
			name:    "AWS variables",
			env:     map[string]string{"OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_REGION": "eu-central-1"},
			service: "aps",
			signer:  longTerm,
		},
		{
			name: "role with external ID",
			env: map[string]string{
				"OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_REGION":      "eu-central-1",
				"OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_SERVICE":     "aps-test",
				"OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_ROLE_ARN":    roleARN,
				"OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_EXTERNAL_ID": "ext-7",
			},
			service: "aps-test",
			signer:  temporary,
			calls:   []sigv4test.STSCall{{Action: "AssumeRole", RoleARN: roleARN, ExternalID: "ext-7"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sigv4test.Isolate(t)
			sts := sigv4test.NewSTS(temporary)
			sts.Start()
			defer sts.Close()
			recv := sigv4test.NewReceiver(&sigv4test.Verifier{
				Region:      "eu-central-1",
				Service:     tc.service,
				Credentials: []sigv4test.Credentials{tc.signer},
				Require:     []string{"content-encoding", "content-length", "content-type"},
			})
			defer recv.Close()

			t.Setenv("OTEL_METRICS_EXPORTER", "prometheusremotewrite_sigv4")
			t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", recv.URL())
			t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000") // only Shutdown's final export runs
			t.Setenv("OTEL_SERVICE_NAME", "checkout")
			t.Setenv("AWS_ACCESS_KEY_ID", longTerm.AccessKey)
			t.Setenv("AWS_SECRET_ACCESS_KEY", longTerm.SecretKey)
			t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL())
			for k, v := range tc.env {
				t.Setenv(k, v)
			}

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
				t.Fatalf("Shutdown: %v (rejected: %q)", err, recv.Rejected())
			}

			// The final export carries the value; the exporter's Shutdown
			// then ends the series with a staleness marker. Both verified.
			if a, r := recv.Accepted(), recv.Rejected(); len(a) != 2 || len(r) != 0 {
				t.Fatalf("verified %d requests and rejected %q, want 2 verified", len(a), r)
			}
			for _, a := range recv.Accepted() {
				if a.AccessKey != tc.signer.AccessKey {
					t.Errorf("signed by %s, want %s", a.AccessKey, tc.signer.AccessKey)
				}
			}
			samples, err := recv.Store.Samples("orders_total", map[string]string{"region": "eu", "job": "checkout"})
			if err != nil {
				t.Fatal(err)
			}
			if len(samples) != 2 || samples[0].Value != 3 || math.Float64bits(samples[1].Value) != 0x7ff0000000000002 {
				t.Errorf("orders_total samples = %+v, want 3 then a staleness marker", samples)
			}
			calls := sts.Calls()
			for i := range calls {
				calls[i].RoleSessionName = ""
			}
			if len(calls)+len(tc.calls) > 0 && !reflect.DeepEqual(calls, tc.calls) {
				t.Errorf("STS calls = %+v, want %+v", calls, tc.calls)
			}
		})
	}
}

func TestAutoexportBadEnvironment(t *testing.T) {
	sigv4test.Isolate(t)
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheusremotewrite_sigv4")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", "http://127.0.0.1:1/api/v1/write")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_REGION", "eu-central-1")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_ROLE_ARN", "prometheus-writer")
	_, err := autoexport.NewMetricReader(context.Background())
	if err == nil || !strings.Contains(err.Error(), `RoleARN "prometheus-writer" is not an IAM role ARN`) {
		t.Fatalf("NewMetricReader error = %v, want one about the role ARN", err)
	}
}

// TestAutoexportMetricsProducers: with OTEL_METRICS_PRODUCERS=prometheus
// the client_golang default registry is pushed too, signed like the rest.
func TestAutoexportMetricsProducers(t *testing.T) {
	const registryCounter = "sigv4autoexport_test_bridge_jobs_total"
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: registryCounter, Help: "Jobs done."})
	if err := prometheus.Register(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prometheus.Unregister(c) })
	c.Add(4.25)

	sigv4test.Isolate(t)
	recv := sigv4test.NewReceiver(&sigv4test.Verifier{
		Region:      "eu-central-1",
		Service:     "aps",
		Credentials: []sigv4test.Credentials{longTerm},
		Require:     []string{"content-encoding", "content-length", "content-type"},
	})
	defer recv.Close()
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheusremotewrite_sigv4")
	t.Setenv("OTEL_METRICS_PRODUCERS", "prometheus")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", recv.URL())
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_REGION", "eu-central-1")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000") // only Shutdown's final export runs
	t.Setenv("AWS_ACCESS_KEY_ID", longTerm.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", longTerm.SecretKey)

	ctx := context.Background()
	reader, err := autoexport.NewMetricReader(ctx)
	if err != nil {
		t.Fatalf("NewMetricReader: %v", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	if err := provider.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (rejected: %q)", err, recv.Rejected())
	}

	if a, r := recv.Accepted(), recv.Rejected(); len(a) == 0 || len(r) != 0 {
		t.Fatalf("verified %d requests and rejected %q, want all verified", len(a), r)
	}
	// The final export carries the registry's value; the exporter's
	// Shutdown then ends the series with a staleness marker.
	samples, err := recv.Store.Samples(registryCounter, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || samples[0].Value != 4.25 || !samples[1].IsStale() {
		t.Errorf("%s samples = %+v, want 4.25 then a staleness marker", registryCounter, samples)
	}
}

// TestAutoexportUnknownMetricsProducer: a producer autoexport does not know
// fails NewMetricReader with an error naming the variable.
func TestAutoexportUnknownMetricsProducer(t *testing.T) {
	sigv4test.Isolate(t)
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheusremotewrite_sigv4")
	t.Setenv("OTEL_METRICS_PRODUCERS", "prometheus,otlp")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", "http://127.0.0.1:1/api/v1/write")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_REGION", "eu-central-1")
	t.Setenv("AWS_ACCESS_KEY_ID", longTerm.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", longTerm.SecretKey)
	ctx := context.Background()
	r, err := autoexport.NewMetricReader(ctx)
	if err == nil {
		_ = r.Shutdown(ctx)
		t.Fatal("NewMetricReader accepted OTEL_METRICS_PRODUCERS=prometheus,otlp")
	}
	if want := `OTEL_METRICS_PRODUCERS="prometheus,otlp": unknown metrics producer "otlp"`; !strings.Contains(err.Error(), want) {
		t.Errorf("NewMetricReader error %q does not contain %q", err, want)
	}
}
