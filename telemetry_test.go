package prwmetric

import (
	"context"
	"errors"
	"log/slog"
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

// selfTelemetry returns a provider for an exporter's own telemetry and a
// function that collects it.
func selfTelemetry(t *testing.T) (Option, func() metricdata.ResourceMetrics) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	self := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = self.Shutdown(context.Background()) })
	return WithMeterProvider(self), func() metricdata.ResourceMetrics {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		return rm
	}
}

// pointsWithoutError sums otel.sdk.exporter.metric_data_point.exported
// without error.type: the data points exported.
func pointsWithoutError(t *testing.T, rm metricdata.ResourceMetrics) int64 {
	t.Helper()
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "otel.sdk.exporter.metric_data_point.exported" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if _, ok := dp.Attributes.Value("error.type"); !ok {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// TestNativeHistogramRefusalCountedOnce: a receiver that refuses native
// histograms gets the whole export again with classic histograms, the
// series delivered before the refusal too, and Export returns nil. Each
// series counts once, sent: the refused send counts nothing.
func TestNativeHistogramRefusalCountedOnce(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithoutNativeHistograms())
	t.Cleanup(srv.Close)
	withTelemetry, collect := selfTelemetry(t)
	exp := newTestExporter(t, srv, withTelemetry, WithoutStaleMarkers(), WithoutMetadata(),
		WithMaxSeriesPerRequest(1), WithMaxConcurrentRequests(1))
	at := time.UnixMilli(1_700_000_000_000)
	rm := manyGauges(1, at) // sent first, then refused with the histogram
	rm.ScopeMetrics[0].Metrics = append(rm.ScopeMetrics[0].Metrics, metricdata.Metrics{Name: "lat", Data: convExpHist(
		metricdata.ExponentialHistogramDataPoint[float64]{
			Attributes: attribute.NewSet(attribute.String("k", "x")), StartTime: at.Add(-time.Minute), Time: at,
			Count: 5, Sum: 7.5, PositiveBucket: metricdata.ExponentialBucket{Counts: []uint64{5}},
		})})
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
	// The gauge and lat_bucket{le="1"}, {le="2"}, {le="+Inf"}, _sum, _count.
	const held = 6
	if got := len(srv.Series()); got != held {
		t.Fatalf("receiver holds %d series, want %d", got, held)
	}
	got := collect()
	outcome := func(v string) attribute.KeyValue { return attribute.String("outcome", v) }
	checks := []struct {
		name      string
		got, want int64
	}{
		{"series sent", sumOf(t, got, "prwmetric.exporter.series", outcome("sent")), held},
		{"series failed", sumOf(t, got, "prwmetric.exporter.series", outcome("failed")), 0},
		{"samples sent", sumOf(t, got, "prwmetric.exporter.samples", outcome("sent")), held},
		{"native histograms sent", sumOf(t, got, "prwmetric.exporter.histograms", outcome("sent")), 0},
		{"native histograms failed", sumOf(t, got, "prwmetric.exporter.histograms", outcome("failed")), 0},
		{"data points exported", pointsWithoutError(t, got), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d (requests made: %d)", c.name, c.got, c.want, srv.RequestCount())
		}
	}
}

// TestDataPointsFailedOnlyWhenNotExported: as the semantic conventions ask
// of partial success, otel.sdk.exporter.metric_data_point.exported counts
// failed only the points not exported, not every point of an export that
// returned an error.
func TestDataPointsFailedOnlyWhenNotExported(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	t.Run("one metric dropped by the conversion", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		t.Cleanup(srv.Close)
		withTelemetry, collect := selfTelemetry(t)
		exp := newTestExporter(t, srv, withTelemetry, WithoutStaleMarkers(), WithoutMetadata())
		rm := manyGauges(3, at)
		delta := metricdata.Sum[int64]{Temporality: metricdata.DeltaTemporality, IsMonotonic: true,
			DataPoints: []metricdata.DataPoint[int64]{{StartTime: at.Add(-time.Minute), Time: at, Value: 1}}}
		rm.ScopeMetrics[0].Metrics = append(rm.ScopeMetrics[0].Metrics, metricdata.Metrics{Name: "d", Data: delta})
		if err := exp.Export(context.Background(), rm); err == nil {
			t.Fatal("Export: want the error about the delta metric")
		}
		if got := len(srv.Series()); got != 3 {
			t.Fatalf("receiver holds %d series, want the 3 gauges", got)
		}
		got := collect()
		exported := pointsWithoutError(t, got)
		conversion := sumOf(t, got, "otel.sdk.exporter.metric_data_point.exported", attribute.String("error.type", "conversion"))
		all := sumOf(t, got, "otel.sdk.exporter.metric_data_point.exported")
		if exported != 3 || conversion != 1 || all != 4 {
			t.Errorf("data points: %d exported, %d failed by the conversion, %d in all; want 3, 1 and 4", exported, conversion, all)
		}
	})
	t.Run("zeros refused, samples delivered", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		t.Cleanup(srv.Close)
		withTelemetry, collect := selfTelemetry(t)
		exp := newTestExporter(t, srv, withTelemetry, WithoutStaleMarkers(), WithoutMetadata(), WithInitialZero())
		ctx := context.Background()
		// A zero goes only before a series new since a collection the
		// receiver holds.
		if err := exp.Export(ctx, zeroData(at.Add(-2*time.Minute), at.Add(-time.Minute), map[string]int64{"a": 1}, false, false)); err != nil {
			t.Fatalf("first Export: %v", err)
		}
		srv.RespondWith(1, prwmetrictest.Response{Status: 400, Body: "out of bounds"})
		before := srv.RequestCount()
		err := exp.Export(ctx, zeroData(at.Add(-2*time.Minute), at, map[string]int64{"a": 2, "b": 5}, false, false))
		if err == nil {
			t.Fatal("Export: want the zeros' failure")
		}
		if got := srv.RequestCount() - before; got != 2 {
			t.Fatalf("%d requests, want the zeros' and the samples'", got)
		}
		if got := samplesOf(t, srv, "c_total", map[string]string{"k": "b"}); len(got) != 1 {
			t.Fatalf("c_total{k=b} %v: want its sample delivered", got)
		}
		got := collect()
		exported := pointsWithoutError(t, got)
		all := sumOf(t, got, "otel.sdk.exporter.metric_data_point.exported")
		if exported != 6 || all != 6 {
			t.Errorf("data points: %d exported of %d, want all 6: every point's sample was delivered, only the zero before one was refused", exported, all)
		}
	})
}

// TestPartialWriteTelemetry: a 2.0 receiver that answers 200 but writes 1
// of the 3 samples of a request makes Export return a *PartialWriteError.
// The request is a 2xx, its bytes were sent, its series too; 2 samples and
// 2 data points failed, as partial_write, not conversion.
func TestPartialWriteTelemetry(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	withTelemetry, collect := selfTelemetry(t)
	exp := newTestExporter(t, srv, withTelemetry, WithoutStaleMarkers(), WithoutMetadata(), WithProtocol(ProtocolV2))
	srv.RespondWith(1, partialWrite200(1))
	err := exp.Export(context.Background(), manyGauges(3, time.UnixMilli(1_700_000_000_000)))
	var pw *PartialWriteError
	if !errorsAs(err, &pw) {
		t.Fatalf("Export: %v, want a *PartialWriteError", err)
	}
	var body int64
	for _, r := range srv.Requests() {
		body += int64(len(r.Body))
	}
	got := collect()
	outcome := func(v string) attribute.KeyValue { return attribute.String("outcome", v) }
	errorType := func(v string) attribute.KeyValue { return attribute.String("error.type", v) }
	status := func(v string) attribute.KeyValue { return attribute.String("http.response.status_class", v) }
	const points = "otel.sdk.exporter.metric_data_point.exported"
	checks := []struct {
		name      string
		got, want int64
	}{
		{"samples sent", sumOf(t, got, "prwmetric.exporter.samples", outcome("sent")), 1},
		{"samples failed", sumOf(t, got, "prwmetric.exporter.samples", outcome("failed")), 2},
		{"series sent", sumOf(t, got, "prwmetric.exporter.series", outcome("sent")), 3},
		{"series failed", sumOf(t, got, "prwmetric.exporter.series", outcome("failed")), 0},
		{"data points exported", pointsWithoutError(t, got), 1},
		{"data points partial_write", sumOf(t, got, points, errorType("partial_write")), 2},
		{"data points conversion", sumOf(t, got, points, errorType("conversion")), 0},
		{"requests 2xx", sumOf(t, got, "prwmetric.exporter.requests", status("2xx")), 1},
		{"requests none", sumOf(t, got, "prwmetric.exporter.requests", status("none")), 0},
		{"snappy bytes", sumOf(t, got, "prwmetric.exporter.sent_bytes", attribute.String("encoding", "snappy")), body},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestSentBytesOnlyWhenSent: a request whose connection is refused sent
// no byte: prwmetric.exporter.sent_bytes stays 0, while the request and
// its series count, failed.
func TestSentBytesOnlyWhenSent(t *testing.T) {
	withTelemetry, collect := selfTelemetry(t)
	exp, err := New(WithEndpoint(closedEndpoint(t)), WithoutEnvironment(), withTelemetry, WithoutStaleMarkers(),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	if err := exp.Export(context.Background(), manyGauges(3, time.UnixMilli(1_700_000_000_000))); err == nil {
		t.Fatal("Export to a closed port succeeded")
	}
	got := collect()
	checks := []struct {
		name      string
		got, want int64
	}{
		{"snappy bytes", sumOf(t, got, "prwmetric.exporter.sent_bytes", attribute.String("encoding", "snappy")), 0},
		{"raw bytes", sumOf(t, got, "prwmetric.exporter.sent_bytes", attribute.String("encoding", "raw")), 0},
		{"requests without answer", sumOf(t, got, "prwmetric.exporter.requests", attribute.String("http.response.status_class", "none")), 1},
		{"series failed", sumOf(t, got, "prwmetric.exporter.series", attribute.String("outcome", "failed")), 3},
		{"data points transport", sumOf(t, got, "otel.sdk.exporter.metric_data_point.exported", attribute.String("error.type", "transport")), 3},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestWrittenCountsOfA400Telemetry: a 2.0 receiver's 400 with written
// counts makes the WriteError count the series written as delivered and
// the rest dropped (TestWrittenCountsOfA400). The telemetry's series
// counters are to agree with the WriteError (TestDroppedRequestsCounted:
// sent = Delivered, failed = Series): 2 sent, 1 failed.
func TestWrittenCountsOfA400Telemetry(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	srv.RespondWith(1, partialCommit400(2))
	withTelemetry, collect := selfTelemetry(t)
	exp := newTestExporter(t, srv, withTelemetry, WithProtocol(ProtocolV2), WithoutMetadata(), WithoutStaleMarkers())
	err := exp.Export(context.Background(), manyGauges(3, time.UnixMilli(1_700_000_000_000)))
	var we *WriteError
	if !errors.As(err, &we) || we.Delivered != 2 || we.Series != 1 {
		t.Fatalf("Export = %v, want a *WriteError of 2 delivered and 1 dropped", err)
	}
	got := collect()
	sent := sumOf(t, got, "prwmetric.exporter.series", attribute.String("outcome", "sent"))
	failed := sumOf(t, got, "prwmetric.exporter.series", attribute.String("outcome", "failed"))
	if sent != int64(we.Delivered) || failed != int64(we.Series) {
		t.Errorf("telemetry series sent=%d failed=%d; the WriteError says delivered=%d dropped=%d", sent, failed, we.Delivered, we.Series)
	}
}
