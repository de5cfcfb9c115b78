package prwmetric

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestExemplarCountAfterSkippedRecord: on 1.0 (2.0 refused), a
// custom-bucket histogram with exemplars is left out of the requests; the
// exemplars of the series after it are still sent, and counted under
// prwmetric.exporter.exemplars{outcome="sent"}.
func TestExemplarCountAfterSkippedRecord(t *testing.T) {
	t.Run("histogram with exemplar", func(t *testing.T) { exemplarCountAfterSkipped(t, true) })
	t.Run("control: histogram without exemplar", func(t *testing.T) { exemplarCountAfterSkipped(t, false) })
}

func exemplarCountAfterSkipped(t *testing.T, histExemplar bool) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithRemoteWrite1Only())
	t.Cleanup(srv.Close)
	reader := sdkmetric.NewManualReader()
	self := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer self.Shutdown(context.Background())
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2), WithNativeHistogramsForExplicitBuckets(),
		WithoutMetadata(), WithoutStaleMarkers(), WithMeterProvider(self))

	build := func(at time.Time) *metricdata.ResourceMetrics {
		hp := convHistPoint[float64](12, []float64{1}, []uint64{2, 3})
		hp.Time = at
		if histExemplar {
			hp.Exemplars = []metricdata.Exemplar[float64]{convExemplar[float64](0.5, at, attribute.Int("h", 1))}
		}
		cp := convPoint[int64](7)
		cp.Time = at
		cp.Exemplars = []metricdata.Exemplar[int64]{convExemplar[int64](1, at, attribute.Int("n", 1))}
		return convRM(
			metricdata.Metrics{Name: "lat", Data: convHist(hp)},
			metricdata.Metrics{Name: "c", Data: convSum(true, cp)},
		)
	}
	at := time.UnixMilli(1_700_000_000_000)
	for i := range 2 {
		_ = exp.Export(context.Background(), build(at.Add(time.Duration(i)*time.Minute)))
	}
	var received int64
	for _, r := range srv.Requests() {
		if r.Protocol == prwmetrictest.ProtocolV1 && r.V1 != nil && r.Stored {
			for _, ts := range r.V1.Timeseries {
				received += int64(len(ts.Exemplars))
			}
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sent := sumOf(t, rm, "prwmetric.exporter.exemplars", attribute.String("outcome", "sent"))
	t.Logf("receiver stored %d exemplars in 1.0 requests; telemetry says %d sent", received, sent)
	if received == 0 {
		t.Fatal("no exemplar reached the receiver: test setup wrong")
	}
	if sent != received {
		t.Errorf("exemplars sent = %d, the receiver got %d", sent, received)
	}
}

// TestDroppedRequestsCounted: after the first request of an export fails,
// the requests not yet started are dropped; the telemetry's
// series{outcome="failed"} counts every series dropped, as the WriteError
// does, so that sent+failed are the series of the export.
func TestDroppedRequestsCounted(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	reader := sdkmetric.NewManualReader()
	self := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer self.Shutdown(context.Background())
	exp := newTestExporter(t, srv, WithMeterProvider(self), WithoutStaleMarkers(),
		WithMaxSeriesPerRequest(1), WithMaxConcurrentRequests(1), WithoutMetadata())
	srv.RespondWith(1, prwmetrictest.Response{Status: 503})
	err := exp.Export(context.Background(), manyGauges(3, time.UnixMilli(1_700_000_000_000)))
	var we *WriteError
	if !errorsAs(err, &we) {
		t.Fatalf("Export: %v", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sent := sumOf(t, rm, "prwmetric.exporter.series", attribute.String("outcome", "sent"))
	failed := sumOf(t, rm, "prwmetric.exporter.series", attribute.String("outcome", "failed"))
	t.Logf("requests made: %d; WriteError: Series(dropped)=%d Delivered=%d; telemetry sent=%d failed=%d", srv.RequestCount(), we.Series, we.Delivered, sent, failed)
	if int64(we.Series) != failed || int64(we.Delivered) != sent {
		t.Errorf("telemetry sent=%d failed=%d, the error says delivered=%d dropped=%d", sent, failed, we.Delivered, we.Series)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
