package sigv4_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/sigv4"
	"github.com/prwmetric/prwmetric/sigv4/internal/sigv4test"
)

// TestNoRegionForHostIsNotSent: without a region anywhere, a request to
// a host that names none fails in the signing transport before it leaves.
// The transport says so (prwmetric.NotSent): WithRetry does not repeat a
// request that fails the same way every time, and the telemetry counts no
// bytes for it.
func TestNoRegionForHostIsNotSent(t *testing.T) {
	sigv4test.Isolate(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	reader := sdkmetric.NewManualReader()
	self := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = self.Shutdown(context.Background()) })
	exp, err := prwmetric.New(
		prwmetric.WithEndpoint(srv.URL+"/api/v1/write"),
		prwmetric.WithoutEnvironment(),
		prwmetric.WithoutStaleMarkers(),
		prwmetric.WithLogger(slog.New(slog.DiscardHandler)),
		prwmetric.WithMeterProvider(self),
		prwmetric.WithRetry(prwmetric.RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsedTime: 300 * time.Millisecond}),
		sigv4.WithSigV4(sigv4.Config{AccessKey: accessKey, SecretKey: secretKey}),
	)
	if err != nil {
		t.Fatalf("New without a region: %v", err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	at := time.UnixMilli(1_700_000_000_000)
	rm := &metricdata.ResourceMetrics{Resource: resource.Empty(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
		{Name: "g", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{{Attributes: attribute.NewSet(attribute.String("k", "v")), Time: at, Value: 1}}}},
	}}}}
	err = exp.Export(context.Background(), rm)
	var we *prwmetric.WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export = %v, want a *WriteError", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the receiver got %d requests, want none", hits.Load())
	}
	if we.Attempts != 1 {
		t.Errorf("the request that cannot be signed was tried %d times, want once (it fails the same way every time): %v", we.Attempts, err)
	}
	var got metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	var bytes int64
	for _, sm := range got.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "prwmetric.exporter.sent_bytes" {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					bytes += dp.Value
				}
			}
		}
	}
	if bytes != 0 {
		t.Errorf("prwmetric.exporter.sent_bytes = %d for requests that never left, want 0", bytes)
	}
}
