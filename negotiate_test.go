package prwmetric

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// nativeData is a counter and an exponential histogram (scale 0: buckets
// (1,2] and (2,4] hold 1 and 2 observations, the zero bucket 1).
func nativeData(v int64) *metricdata.ResourceMetrics {
	return &metricdata.ResourceMetrics{
		Resource: testResource(),
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope: instrumentation.Scope{Name: "prwmetric/test"},
			Metrics: []metricdata.Metrics{
				counterData(v).ScopeMetrics[0].Metrics[0],
				{Name: "latency", Unit: "s", Data: metricdata.ExponentialHistogram[float64]{
					Temporality: metricdata.CumulativeTemporality,
					DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{{
						Attributes: attribute.NewSet(attribute.String("route", "/buy")),
						StartTime:  testStart, Time: testTime, Count: 4, Sum: 6.5, ZeroCount: 1,
						PositiveBucket: metricdata.ExponentialBucket{Offset: 0, Counts: []uint64{1, 2}},
					}},
				}},
			},
		}},
	}
}

// TestNativeHistogramsRefused: a receiver that refuses native histograms
// (as stock Prometheus 2.x does, rolling back the whole request) gets the
// same export again with the exponential histogram as a classic one, so
// the rest of the data gets through; one warning names the receiver's flag
// and the option; later exports go as classic histograms at once, and the
// refusal is never retried.
func TestNativeHistogramsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
		// wantFirst are the statuses of the first export's requests.
		wantFirst []int
		wantWarns int
	}{
		{name: "found out", wantFirst: []int{http.StatusInternalServerError, http.StatusNoContent}, wantWarns: 1},
		{name: "found out, retry on", opts: []Option{WithRetry(fastRetry)}, wantFirst: []int{http.StatusInternalServerError, http.StatusNoContent}, wantWarns: 1},
		{name: "chosen up front", opts: []Option{WithoutNativeHistograms()}, wantFirst: []int{http.StatusNoContent}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer(prwmetrictest.WithoutNativeHistograms())
			defer srv.Close()
			logger, logs := newLogCapture()
			exp := newTestExporter(t, srv, pinned(append([]Option{WithLogger(logger)}, tt.opts...)...)...)
			if err := exp.Export(t.Context(), nativeData(1)); err != nil {
				t.Fatalf("Export: %v", err)
			}
			var statuses []int
			for _, r := range srv.Requests() {
				statuses = append(statuses, r.Status)
			}
			if diff := cmp.Diff(tt.wantFirst, statuses); diff != "" {
				t.Errorf("first export's requests (-want +got):\n%s", diff)
			}
			if err := exp.Export(t.Context(), nativeData(2)); err != nil {
				t.Fatalf("second Export: %v", err)
			}
			if n := srv.RequestCount(); n != len(tt.wantFirst)+1 {
				t.Errorf("%d requests in all, want the second export in one", n)
			}

			if got, err := srv.Latest("requests_total", map[string]string{"method": "GET"}); err != nil || got.Value != 2 {
				t.Errorf("requests_total = %v, %v; want 2", got.Value, err)
			}
			h, err := srv.ClassicHistogram("latency_seconds", map[string]string{"route": "/buy"})
			if err != nil {
				t.Fatalf("classic histogram: %v", err)
			}
			wantBuckets := []prwmetrictest.Bucket{{UpperBound: 0, CumulativeCount: 1}, {UpperBound: 2, CumulativeCount: 2}, {UpperBound: 4, CumulativeCount: 4}, {UpperBound: math.Inf(1), CumulativeCount: 4}}
			if diff := cmp.Diff(wantBuckets, h.Buckets); diff != "" || h.Count != 4 || h.Sum != 6.5 {
				t.Errorf("latency_seconds: count %v, sum %v, buckets (-want +got):\n%s", h.Count, h.Sum, diff)
			}
			var warns []string
			for _, r := range logs.all() {
				warns = append(warns, r.Message)
			}
			if len(warns) != tt.wantWarns {
				t.Fatalf("warnings %q, want %d", warns, tt.wantWarns)
			}
			for _, w := range warns {
				for _, want := range []string{"refuses native histograms", "--enable-feature=native-histograms", "WithoutNativeHistograms"} {
					if !strings.Contains(w, want) {
						t.Errorf("warning %q does not say %q", w, want)
					}
				}
			}
		})
	}
}

// TestNativeHistogramsRefusedAfterAnUnansweredExport: a first export that
// got no answer may have been stored, native histogram included; when the
// receiver then turns out to refuse native histograms, no staleness marker
// of that histogram may follow (it would be refused too, every export).
func TestNativeHistogramsRefusedAfterAnUnansweredExport(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithoutNativeHistograms())
	defer srv.Close()
	// The first request is held past the export's timeout: no answer.
	srv.RespondWith(1, prwmetrictest.Response{Delay: time.Minute})
	// Staleness markers on: they are what would be refused.
	exp := newTestExporter(t, srv, WithoutScopeInfo(), WithoutTargetInfo(), WithoutMetadata(), WithTimeout(300*time.Millisecond), WithLogger(discardLogger()))
	if err := exp.Export(t.Context(), nativeData(1)); err == nil {
		t.Fatal("first Export succeeded, want no answer")
	}
	for v := int64(2); v <= 3; v++ {
		if err := exp.Export(t.Context(), nativeData(v)); err != nil {
			t.Fatalf("Export %d: %v", v, err)
		}
	}
	if err := exp.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got, err := srv.Samples("requests_total", map[string]string{"method": "GET"}); err != nil || len(got) == 0 || !got[len(got)-1].IsStale() {
		t.Errorf("requests_total samples = %v, %v; want them to end with a staleness marker", got, err)
	}
	if _, err := srv.ClassicHistogram("latency_seconds", map[string]string{"route": "/buy"}); err != nil {
		t.Errorf("classic histogram: %v", err)
	}
}

// TestNativeHistogramsRefusedAfterAnAcceptedRequest: the receiver accepts
// the export's first request (counters) and refuses the next, with the
// native histogram. The export is sent again as if nothing had arrived:
// the counters' samples go again unchanged, not moved 1 ms past themselves
// as they would be had the accepted request been marked delivered as it
// came back (see seriesCache.marksEarly).
func TestNativeHistogramsRefusedAfterAnAcceptedRequest(t *testing.T) {
	const counters = 7 // one request; the classic histogram's 6 series another
	srv := prwmetrictest.NewServer(prwmetrictest.WithoutNativeHistograms())
	defer srv.Close()
	exp := newTestExporter(t, srv, pinned(WithMaxSeriesPerRequest(counters), WithMaxConcurrentRequests(1), WithLogger(discardLogger()))...)
	rm := nativeData(1)
	sum := rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Sum[int64])
	point := sum.DataPoints[0]
	sum.DataPoints = nil
	for i := range counters {
		point.Attributes = attribute.NewSet(attribute.Int("i", i))
		point.Value = int64(i)
		sum.DataPoints = append(sum.DataPoints, point)
	}
	rm.ScopeMetrics[0].Metrics[0].Data = sum
	if err := exp.Export(t.Context(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
	var statuses []int
	for _, r := range srv.Requests() {
		statuses = append(statuses, r.Status)
	}
	if diff := cmp.Diff([]int{http.StatusNoContent, http.StatusInternalServerError, http.StatusNoContent, http.StatusNoContent}, statuses); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s\nwant the counters accepted, the native histogram refused, then the export again", diff)
	}
	for i := range counters {
		got, err := srv.Samples("requests_total", map[string]string{"i": fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		// Sent twice, the same sample.
		same := prwmetrictest.Sample{Timestamp: testTime.UnixMilli(), Value: float64(i)}
		want := []prwmetrictest.Sample{same, same}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("requests_total{i=%d} (-want +got):\n%s", i, diff)
		}
	}
}

// TestNoEmptyV1Requests: on 1.0 (after a refusal of 2.0) the custom-bucket
// histograms are left out of the requests and do not count toward
// WithMaxSeriesPerRequest: a run of them makes no empty request.
func TestNoEmptyV1Requests(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithRemoteWrite1Only())
	t.Cleanup(srv.Close)
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2), WithNativeHistogramsForExplicitBuckets(), WithMaxSeriesPerRequest(2), WithoutMetadata())
	var hps []metricdata.HistogramDataPoint[float64]
	for i := range 3 {
		hps = append(hps, convHistPoint[float64](12, []float64{1}, []uint64{2, 3}, attribute.Int("i", i)))
	}
	rm := convRM(
		metricdata.Metrics{Name: "lat", Data: convHist(hps...)},
		metricdata.Metrics{Name: "g", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{convPoint(1.0)}}},
	)
	// The error says the 3 custom-bucket histograms were left out.
	if err := exp.Export(context.Background(), rm); err == nil || !strings.Contains(err.Error(), "3 custom-bucket native histograms not sent") {
		t.Fatalf("Export: %v", err)
	}
	for _, r := range srv.Requests() {
		if r.Protocol == prwmetrictest.ProtocolV1 && r.V1 != nil && len(r.V1.Timeseries) == 0 && len(r.V1.Metadata) == 0 {
			t.Errorf("request %d is an empty 1.0 request", r.Seq)
		}
	}
}
