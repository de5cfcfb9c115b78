package prwmetric

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
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

// TestPointsDroppedAtEmitCountFailed: two attribute sets that yield one
// label set (r.x and r_x) make one series; the conversion keeps the first
// point and drops the second ("sent twice in one export"), and the
// export's error says so. The telemetry counts the second failed by the
// conversion, not exported. A classic histogram's points are all looked
// up before any series is emitted (convertHistogram): each dropped one
// counts, once.
func TestPointsDroppedAtEmitCountFailed(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	hist := func(key, value string) metricdata.HistogramDataPoint[float64] {
		return metricdata.HistogramDataPoint[float64]{Attributes: attribute.NewSet(attribute.String(key, value)),
			StartTime: at.Add(-time.Minute), Time: at, Count: 2, Sum: 3, Bounds: []float64{1}, BucketCounts: []uint64{1, 1}}
	}
	for _, tt := range []struct {
		name                  string
		metric                metricdata.Metrics
		series, kept, dropped int64
	}{{
		name: "gauge",
		metric: metricdata.Metrics{Name: "g", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{
			{Attributes: attribute.NewSet(attribute.String("r.x", "a")), Time: at, Value: 1},
			{Attributes: attribute.NewSet(attribute.String("r_x", "a")), Time: at, Value: 2},
		}}},
		series: 1, kept: 1, dropped: 1,
	}, {
		name: "histogram colliding two by two",
		metric: metricdata.Metrics{Name: "h", Data: metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{
			hist("r.x", "a"), hist("r_x", "a"), hist("r.x", "b"), hist("r_x", "b"),
		}}},
		series: 2 * 4, kept: 2, dropped: 2, // 2 points of 2 buckets, _sum and _count
	}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			t.Cleanup(srv.Close)
			withTelemetry, collect := selfTelemetry(t)
			exp := newTestExporter(t, srv, withTelemetry, WithoutStaleMarkers(), WithoutMetadata(), WithoutTargetInfo())
			rm := &metricdata.ResourceMetrics{Resource: testResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{tt.metric}}}}
			err := exp.Export(context.Background(), rm)
			if err == nil {
				t.Fatal("Export: want the error about the series sent twice")
			}
			if got := int64(len(srv.Series())); got != tt.series {
				t.Fatalf("receiver holds %d series, want %d", got, tt.series)
			}
			checkConversionFailures(t, collect(), tt.kept, tt.dropped, err)
		})
	}
}

// TestFailedBesideARefusalCountedOnce: two requests in flight, one
// refused (zstd: 415) and one failed otherwise (503). The refusal decides
// what comes next (pipeline.fail): every series not delivered goes again
// as snappy, both are delivered, and Export returns nil. The 503's series
// go again too, so they count once, sent, not failed and then sent
// (TestRefusedRequestsNotCountedFailed's invariant).
func TestFailedBesideARefusalCountedOnce(t *testing.T) {
	var (
		mu       sync.Mutex
		arrivals int
		release  = make(chan struct{})
		got      []string
	)
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") == contentEncodingZstd {
			mu.Lock()
			arrivals++
			n := arrivals
			if n == 2 {
				close(release) // both requests are in flight
			}
			mu.Unlock()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			if n == 1 {
				http.Error(w, "unsupported content encoding", http.StatusUnsupportedMediaType)
			} else {
				http.Error(w, "down", http.StatusServiceUnavailable)
			}
			return
		}
		rec := (&recorder{}).record(r)
		mu.Lock()
		for _, s := range rec.Series {
			got = append(got, strings.Join(s.Labels, ","))
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	withTelemetry, collect := selfTelemetry(t)
	exp := newExporter(t, WithEndpoint(srv.URL+"/api/v1/write"), WithCompression(CompressionZstd), withTelemetry,
		WithLogger(discardLogger()), WithoutStaleMarkers(), WithoutMetadata(), WithoutTargetInfo(),
		WithMaxSeriesPerRequest(1), WithMaxConcurrentRequests(2))
	if err := exp.Export(context.Background(), manyGauges(2, time.UnixMilli(1_700_000_000_000))); err != nil {
		t.Fatalf("Export: %v; want nil: both series were delivered as snappy", err)
	}
	mu.Lock()
	sort.Strings(got)
	mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("receiver took %d series as snappy, want both: %v", len(got), got)
	}
	rm := collect()
	sent := sumOf(t, rm, "prwmetric.exporter.series", attribute.String("outcome", "sent"))
	failed := sumOf(t, rm, "prwmetric.exporter.series", attribute.String("outcome", "failed"))
	if sent != 2 || failed != 0 {
		t.Errorf("telemetry series sent=%d failed=%d; want 2 and 0: both were delivered and Export returned nil", sent, failed)
	}
}

// TestCountsBesideARefusal: 2.0, two requests in order, the second refused
// (415): what was not delivered goes again as 1.0 and counts then, so
// only what the failed requests counted is forgotten.
//   - A partial write (2xx, 1 of 3 samples written) was delivered and is
//     not sent again: its 2 unwritten samples stay failed, as the export's
//     PartialWriteError says.
//   - A 400 whose written counts say 1 of its 3 series was written goes
//     again whole: its series count once, sent.
func TestCountsBesideARefusal(t *testing.T) {
	for _, tt := range []struct {
		name                     string
		first                    prwmetrictest.Response
		partial                  bool // Export returns a PartialWriteError
		samplesSent, samplesFail int64
		seriesSent, seriesFail   int64
	}{
		{name: "partial write", first: partialWrite200(1), partial: true, samplesSent: 4, samplesFail: 2, seriesSent: 6},
		{name: "400 with written counts", first: partialCommit400(1), samplesSent: 6, seriesSent: 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			t.Cleanup(srv.Close)
			withTelemetry, collect := selfTelemetry(t)
			exp := newTestExporter(t, srv, withTelemetry, WithProtocol(ProtocolV2), WithoutStaleMarkers(), WithoutMetadata(),
				WithMaxSeriesPerRequest(3), WithMaxConcurrentRequests(1))
			srv.RespondWith(1, tt.first)
			srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusUnsupportedMediaType, Body: "unsupported"})
			err := exp.Export(context.Background(), manyGauges(6, time.UnixMilli(1_700_000_000_000)))
			var pw *PartialWriteError
			if tt.partial != errors.As(err, &pw) || tt.partial && pw.SamplesSent-pw.SamplesWritten != 2 || !tt.partial && err != nil {
				t.Fatalf("Export: %v; partial write of 2 samples wanted: %v", err, tt.partial)
			}
			got := collect()
			count := func(name, outcome string) int64 {
				return sumOf(t, got, name, attribute.String("outcome", outcome))
			}
			samplesSent, samplesFail := count("prwmetric.exporter.samples", "sent"), count("prwmetric.exporter.samples", "failed")
			seriesSent, seriesFail := count("prwmetric.exporter.series", "sent"), count("prwmetric.exporter.series", "failed")
			if samplesSent != tt.samplesSent || samplesFail != tt.samplesFail || seriesSent != tt.seriesSent || seriesFail != tt.seriesFail {
				t.Errorf("telemetry samples sent=%d failed=%d, series sent=%d failed=%d; want %d %d, %d %d",
					samplesSent, samplesFail, seriesSent, seriesFail, tt.samplesSent, tt.samplesFail, tt.seriesSent, tt.seriesFail)
			}
		})
	}
}

// TestCustomBucketPointDroppedCountsFailed: with
// WithNativeHistogramsForExplicitBuckets, a point whose bucket count does
// not fit in int64 passes checkBuckets but not buildCustomBuckets: it is
// dropped (the error says so) after its entry was looked up: it counts
// failed by the conversion, not exported.
func TestCustomBucketPointDroppedCountsFailed(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	withTelemetry, collect := selfTelemetry(t)
	exp := newTestExporter(t, srv, withTelemetry, WithProtocol(ProtocolV2), WithNativeHistogramsForExplicitBuckets(),
		WithoutStaleMarkers(), WithoutMetadata())
	at := time.UnixMilli(1_700_000_000_000)
	point := func(route string, n uint64) metricdata.HistogramDataPoint[float64] {
		return metricdata.HistogramDataPoint[float64]{Attributes: attribute.NewSet(attribute.String("route", route)),
			StartTime: at.Add(-time.Minute), Time: at, Count: n, Sum: 1, Bounds: []float64{1}, BucketCounts: []uint64{n, 0}}
	}
	rm := &metricdata.ResourceMetrics{Resource: testResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{{
		Name: "lat", Data: metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.HistogramDataPoint[float64]{point("/ok", 3), point("/huge", math.MaxInt64+1)}},
	}}}}}
	err := exp.Export(context.Background(), rm)
	if err == nil || !strings.Contains(err.Error(), "fit in int64") {
		t.Fatalf("Export = %v, want the /huge point reported dropped", err)
	}
	if _, ferr := srv.Find("lat", map[string]string{"route": "/huge"}); ferr == nil {
		t.Fatal("the /huge point was sent: test setup wrong")
	}
	checkConversionFailures(t, collect(), 1, 1, err)
}

// TestTooLargePointDroppedCountsFailed: a native histogram whose record
// passes maxRecordExtra is dropped at emit (the error says so), after its
// entry was looked up: it counts failed by the conversion, not exported.
func TestTooLargePointDroppedCountsFailed(t *testing.T) {
	defer func(old int) { maxRecordExtra = old }(maxRecordExtra)
	maxRecordExtra = 256
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	withTelemetry, collect := selfTelemetry(t)
	exp := newTestExporter(t, srv, withTelemetry, WithoutStaleMarkers(), WithoutMetadata())
	err := exp.Export(context.Background(), smallAndWideHistograms())
	if err == nil || !strings.Contains(err.Error(), "more than the 256 one series may") {
		t.Fatalf("Export = %v, want the wide series reported dropped", err)
	}
	checkConversionFailures(t, collect(), 1, 1, err)
}

// smallAndWideHistograms is an exponential histogram "wide" with two
// points: /small of 4 buckets, /wide of 600, whose native histogram takes
// more than 256 bytes.
func smallAndWideHistograms() *metricdata.ResourceMetrics {
	point := expPointOfBuckets
	return &metricdata.ResourceMetrics{Resource: testResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{{
		Name: "wide", Data: metricdata.ExponentialHistogram[int64]{Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.ExponentialHistogramDataPoint[int64]{point("/small", 4), point("/wide", 600)}},
	}}}}}
}

// TestSkippedByV1CountsFailed: a receiver of Remote Write 1.0 only gets no
// custom-bucket histograms (1.0 cannot carry them, and the export says
// so): their data points count failed by the conversion, not exported.
func TestSkippedByV1CountsFailed(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithRemoteWrite1Only())
	t.Cleanup(srv.Close)
	withTelemetry, collect := selfTelemetry(t)
	exp := newTestExporter(t, srv, withTelemetry, WithProtocol(ProtocolV2), WithNativeHistogramsForExplicitBuckets(),
		WithoutMetadata(), WithoutStaleMarkers())
	hp := convHistPoint[float64](12, []float64{1}, []uint64{2, 3})
	hp.Time = time.UnixMilli(1_700_000_000_000)
	cp := convPoint[int64](7)
	cp.Time = hp.Time
	rm := convRM(metricdata.Metrics{Name: "lat", Data: convHist(hp)}, metricdata.Metrics{Name: "c", Data: convSum(true, cp)})
	err := exp.Export(context.Background(), rm)
	if err == nil || !strings.Contains(err.Error(), "custom-bucket native histograms not sent") {
		t.Fatalf("Export = %v, want the histogram reported not sent", err)
	}
	checkConversionFailures(t, collect(), 1, 1, err)
}

// expPointOfBuckets is an exponential histogram point of route with that
// many positive buckets.
func expPointOfBuckets(route string, buckets int) metricdata.ExponentialHistogramDataPoint[int64] {
	counts := make([]uint64, buckets)
	var total uint64
	for i := range counts {
		counts[i] = uint64(1 + i%7)
		total += counts[i]
	}
	return metricdata.ExponentialHistogramDataPoint[int64]{Attributes: attribute.NewSet(attribute.String("route", route)),
		Time: testTime, StartTime: testStart, Count: total, Sum: 1, Scale: 0, PositiveBucket: metricdata.ExponentialBucket{Counts: counts}}
}

// checkConversionFailures checks the data points of an export in the
// telemetry got: exported without error, and failed by the conversion.
func checkConversionFailures(t *testing.T, got metricdata.ResourceMetrics, wantExported, wantConversion int64, err error) {
	t.Helper()
	exported := pointsWithoutError(t, got)
	conversion := sumOf(t, got, "otel.sdk.exporter.metric_data_point.exported", attribute.String("error.type", "conversion"))
	if exported != wantExported || conversion != wantConversion {
		t.Errorf("data points: %d exported, %d failed by the conversion; want %d and %d (Export: %v)", exported, conversion, wantExported, wantConversion, err)
	}
}
