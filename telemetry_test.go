package prwmetric

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// sumOf adds the int64 sum points of metric name whose attributes include
// kv.
func sumOf(t *testing.T, rm metricdata.ResourceMetrics, name string, kv ...attribute.KeyValue) int64 {
	t.Helper()
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is %T, want an int64 sum", name, m.Data)
			}
		points:
			for _, dp := range sum.DataPoints {
				for _, want := range kv {
					if got, ok := dp.Attributes.Value(want.Key); !ok || got != want.Value {
						continue points
					}
				}
				total += dp.Value
			}
		}
	}
	return total
}

func TestSelfObservability(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	reader := sdkmetric.NewManualReader()
	self := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer self.Shutdown(context.Background())

	exp := newTestExporter(t, srv, WithMeterProvider(self), WithoutStaleMarkers(), WithMaxSeriesPerRequest(2))
	ctx := context.Background()
	at := time.UnixMilli(1_700_000_000_000)
	if err := exp.Export(ctx, manyGauges(3, at)); err != nil { // two requests: 2 + 1 series
		t.Fatal(err)
	}
	srv.RespondWith(1, prwmetrictest.Response{Status: 503})
	if err := exp.Export(ctx, manyGauges(1, at.Add(time.Minute))); err == nil {
		t.Fatal("export against a 503 succeeded")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	outcome := func(v string) attribute.KeyValue { return attribute.String("outcome", v) }
	checks := []struct {
		name string
		got  int64
		want int64
	}{
		{"data points exported, all", sumOf(t, rm, "otel.sdk.exporter.metric_data_point.exported"), 4},
		{"data points exported, failed", sumOf(t, rm, "otel.sdk.exporter.metric_data_point.exported", attribute.String("error.type", "503")), 1},
		{"series sent", sumOf(t, rm, "prwmetric.exporter.series", outcome("sent")), 3},
		{"series failed", sumOf(t, rm, "prwmetric.exporter.series", outcome("failed")), 1},
		{"samples sent", sumOf(t, rm, "prwmetric.exporter.samples", outcome("sent")), 3},
		{"requests 2xx", sumOf(t, rm, "prwmetric.exporter.requests", attribute.String("http.response.status_class", "2xx")), 2},
		{"requests 5xx", sumOf(t, rm, "prwmetric.exporter.requests", attribute.String("http.response.status_class", "5xx")), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	var compressed int64
	for _, r := range srv.Requests() {
		compressed += int64(len(r.Body))
	}
	if got := sumOf(t, rm, "prwmetric.exporter.sent_bytes", attribute.String("encoding", "snappy")); got != compressed {
		t.Errorf("compressed bytes = %d, receiver got %d", got, compressed)
	}
	if sumOf(t, rm, "prwmetric.exporter.sent_bytes", attribute.String("encoding", "raw")) <= compressed/2 {
		t.Error("raw bytes implausibly small")
	}
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "otel.sdk.exporter.operation.duration" {
				var n uint64
				for _, dp := range h.DataPoints {
					n += dp.Count
				}
				found = n == 2
			}
		}
	}
	if !found {
		t.Error("operation.duration does not hold the two exports")
	}
}

// TestSelfObservabilityZstd: zstd bodies are counted under
// encoding="zstd", the snappy ones of a fallback under "snappy".
func TestSelfObservabilityZstd(t *testing.T) {
	cases := []struct {
		name       string
		opts       []prwmetrictest.Option
		wantZstd   bool
		wantSnappy bool
	}{
		{name: "receiver takes zstd", opts: []prwmetrictest.Option{prwmetrictest.WithZstd()}, wantZstd: true},
		{name: "receiver refuses zstd", wantZstd: true, wantSnappy: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer(tc.opts...)
			defer srv.Close()
			reader := sdkmetric.NewManualReader()
			self := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer self.Shutdown(context.Background())
			exp := newTestExporter(t, srv, WithMeterProvider(self), WithoutStaleMarkers(), WithCompression(CompressionZstd))
			ctx := context.Background()
			if err := exp.Export(ctx, manyGauges(3, time.UnixMilli(1_700_000_000_000))); err != nil {
				t.Fatal(err)
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(ctx, &rm); err != nil {
				t.Fatal(err)
			}
			bytes := map[string]int64{}
			for _, r := range srv.Requests() {
				bytes[r.Header.Get("Content-Encoding")] += int64(len(r.Body))
			}
			for _, enc := range []string{"zstd", "snappy"} {
				if got := sumOf(t, rm, "prwmetric.exporter.sent_bytes", attribute.String("encoding", enc)); got != bytes[enc] {
					t.Errorf("%s bytes = %d, receiver got %d", enc, got, bytes[enc])
				}
			}
			if (bytes["zstd"] > 0) != tc.wantZstd || (bytes["snappy"] > 0) != tc.wantSnappy {
				t.Errorf("bytes by encoding %v", bytes)
			}
		})
	}
}

// TestRefusedRequestsNotCountedFailed: a receiver that refuses 2.0
// (415) or zstd (415) gets every series again in the same export, as 1.0
// with snappy, and Export succeeds: nothing was dropped. The telemetry's
// series{outcome="failed"} counts the series dropped, as the WriteError
// does (TestDroppedRequestsCounted), so it must stay 0 and sent must count
// each series once; it counts the refused requests' series as failed (and
// then sent again), as many as happened to be in flight.
func TestRefusedRequestsNotCountedFailed(t *testing.T) {
	cases := []struct {
		name string
		srv  []prwmetrictest.Option
		opt  Option
	}{
		{"2.0 refused", []prwmetrictest.Option{prwmetrictest.WithRemoteWrite1Only()}, WithProtocol(ProtocolV2)},
		{"zstd refused", nil, WithCompression(CompressionZstd)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer(tc.srv...)
			t.Cleanup(srv.Close)
			reader := sdkmetric.NewManualReader()
			self := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer self.Shutdown(context.Background())
			exp := newTestExporter(t, srv, tc.opt, WithMeterProvider(self), WithoutStaleMarkers(),
				WithMaxSeriesPerRequest(1), WithMaxConcurrentRequests(1), WithoutMetadata())
			const n = 3
			if err := exp.Export(context.Background(), manyGauges(n, time.UnixMilli(1_700_000_000_000))); err != nil {
				t.Fatalf("Export: %v", err)
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			sent := sumOf(t, rm, "prwmetric.exporter.series", attribute.String("outcome", "sent"))
			failed := sumOf(t, rm, "prwmetric.exporter.series", attribute.String("outcome", "failed"))
			if sent != n || failed != 0 {
				t.Errorf("telemetry series sent=%d failed=%d; every one of the %d series was delivered and none dropped (Export returned nil)", sent, failed, n)
			}
		})
	}
}
