package prwmetric

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// exemplarCounter is counter "c" (one series) at time at, with one exemplar
// at each of the times in ex, as the SDK hands a cumulative point whose
// reservoir still holds older exemplars.
func exemplarCounter(v int64, at time.Time, ex ...time.Time) *metricdata.ResourceMetrics {
	dp := convPoint[int64](v)
	dp.Time = at
	for i, t := range ex {
		dp.Exemplars = append(dp.Exemplars, convExemplar[int64](int64(i+1), t, attribute.Int("n", i)))
	}
	return convRM(metricdata.Metrics{Name: "c", Data: convSum(true, dp)})
}

// v2ExemplarTimes returns the timestamps of the exemplars a 2.0 request
// carries.
func v2ExemplarTimes(t *testing.T, r prwmetrictest.Request) []int64 {
	t.Helper()
	if r.Protocol != prwmetrictest.ProtocolV2 || r.V2 == nil {
		t.Fatalf("request %d: protocol %v, want 2.0", r.Seq, r.Protocol)
	}
	var out []int64
	for _, ts := range r.V2.Timeseries {
		for _, e := range ts.Exemplars {
			out = append(out, e.Timestamp)
		}
	}
	return out
}

// TestExemplarsAfterUnknownOutcome: a 2.0 request that got no answer may
// have been stored, its exemplars too: the next export sends only newer
// ones (a receiver refuses an older one as out of order, with the whole
// request).
func TestExemplarsAfterUnknownOutcome(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	// The first request is stored, but its answer comes too late.
	srv.RespondWith(1, prwmetrictest.Response{Delay: 5 * time.Second})
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2), WithTimeout(300*time.Millisecond))
	ctx := context.Background()

	t1 := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	e1, e2 := t1.Add(-2*time.Second), t1.Add(-time.Second)
	if err := exp.Export(ctx, exemplarCounter(5, t1, e1, e2)); err == nil {
		t.Fatal("first export: want a timeout")
	}
	if reqs := srv.Requests(); len(reqs) != 1 || !reqs[0].Stored {
		t.Fatalf("first request not stored: %+v", reqs)
	}

	t2 := t1.Add(15 * time.Second)
	e3 := t2.Add(-time.Second)
	if err := exp.Export(ctx, exemplarCounter(6, t2, e1, e2, e3)); err != nil {
		t.Fatalf("second export: %v", err)
	}
	reqs := srv.Requests()
	got := v2ExemplarTimes(t, reqs[len(reqs)-1])
	// The receiver may hold e1 and e2 (the samples of that request are
	// treated as held): only e3 is news.
	if len(got) != 1 || got[0] != e3.UnixMilli() {
		t.Errorf("second export sent exemplars at %v; the receiver may already hold %d and %d, want only %d",
			got, e1.UnixMilli(), e2.UnixMilli(), e3.UnixMilli())
	}
}

// TestExemplarsAfterFallbackHour: the exemplars 1.0 delivers while the
// exporter falls back from 2.0 count as delivered: when 2.0 is tried again
// and taken, only newer ones are sent.
func TestExemplarsAfterFallbackHour(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusUnsupportedMediaType})
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2))
	ctx := context.Background()

	t1 := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	e1 := t1.Add(-time.Second)
	// 2.0 refused, sent as 1.0 in the same export.
	if err := exp.Export(ctx, exemplarCounter(5, t1, e1)); err != nil {
		t.Fatalf("export 1: %v", err)
	}
	t2 := t1.Add(15 * time.Second)
	e2, e2b := t2.Add(-2*time.Second), t2.Add(-time.Second)
	// On 1.0: e1, e2 and e2b delivered.
	if err := exp.Export(ctx, exemplarCounter(6, t2, e1, e2, e2b)); err != nil {
		t.Fatalf("export 2: %v", err)
	}
	if reqs := srv.Requests(); len(reqs) != 3 || reqs[2].Protocol != prwmetrictest.ProtocolV1 {
		t.Fatalf("requests %+v: want 2.0 (refused), 1.0, 1.0", reqs)
	}

	// An hour later the receiver speaks 2.0.
	later := time.Now().Add(refusalRetryAfter + time.Second)
	exp.negotiation.now = func() time.Time { return later }
	t3 := t2.Add(15 * time.Second)
	e3 := t3.Add(-time.Second)
	if err := exp.Export(ctx, exemplarCounter(7, t3, e1, e2, e2b, e3)); err != nil {
		t.Fatalf("export 3: %v", err)
	}
	reqs := srv.Requests()
	got := v2ExemplarTimes(t, reqs[len(reqs)-1])
	// e2 is older than e2b, which the receiver holds: out of order for it.
	if len(got) != 1 || got[0] != e3.UnixMilli() {
		t.Errorf("first 2.0 export after the fallback sent exemplars at %v; e2 (%d) and e2b (%d) were delivered by 1.0 already, want only %d",
			got, e2.UnixMilli(), e2b.UnixMilli(), e3.UnixMilli())
	}
}

// TestExemplarsAfterRefusedRequest: a 2.0 request the receiver answered
// with a failure may have been partly stored (Prometheus commits what it
// can before it answers 400): the next export sends only newer exemplars,
// so that the same old ones are not refused again export after export.
func TestExemplarsAfterRefusedRequest(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusBadRequest, Body: "out of order exemplar"})
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2))
	ctx := context.Background()

	t1 := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	e1, e2 := t1.Add(-2*time.Second), t1.Add(-time.Second)
	if err := exp.Export(ctx, exemplarCounter(5, t1, e1, e2)); err == nil {
		t.Fatal("first export: want the 400")
	}
	t2 := t1.Add(15 * time.Second)
	e3 := t2.Add(-time.Second)
	if err := exp.Export(ctx, exemplarCounter(6, t2, e1, e2, e3)); err != nil {
		t.Fatalf("second export: %v", err)
	}
	reqs := srv.Requests()
	if got := v2ExemplarTimes(t, reqs[len(reqs)-1]); len(got) != 1 || got[0] != e3.UnixMilli() {
		t.Errorf("second export sent exemplars at %v, want only the new %d", got, e3.UnixMilli())
	}
}

// TestExemplarsOfSeriesBornDuringFallback: a series that first came while
// the exporter sent 1.0 (2.0 refused) has nothing of 2.0 kept yet; when
// 2.0 is tried again and taken, the exemplars that went with its samples
// as 1.0 are not sent again.
func TestExemplarsOfSeriesBornDuringFallback(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusUnsupportedMediaType})
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2))
	ctx := context.Background()

	t1 := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	gauge := metricdata.Metrics{Name: "g", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{Time: t1, Value: 1}}}}
	if err := exp.Export(ctx, convRM(gauge)); err != nil { // 2.0 refused, sent as 1.0
		t.Fatalf("export 1: %v", err)
	}
	t2 := t1.Add(15 * time.Second)
	e2 := t2.Add(-time.Second)
	// The counter is born on 1.0, with an exemplar.
	if err := exp.Export(ctx, exemplarCounter(5, t2, e2)); err != nil {
		t.Fatalf("export 2: %v", err)
	}
	later := time.Now().Add(refusalRetryAfter + time.Second)
	exp.negotiation.now = func() time.Time { return later }
	t3 := t2.Add(15 * time.Second)
	e3 := t3.Add(-time.Second)
	if err := exp.Export(ctx, exemplarCounter(6, t3, e2, e3)); err != nil {
		t.Fatalf("export 3: %v", err)
	}
	reqs := srv.Requests()
	if got := v2ExemplarTimes(t, reqs[len(reqs)-1]); len(got) != 1 || got[0] != e3.UnixMilli() {
		t.Errorf("first 2.0 export sent exemplars at %v; %d went as 1.0 already, want only %d", got, e2.UnixMilli(), e3.UnixMilli())
	}
}

// storedV2ExemplarTimes returns the timestamps of the exemplars of every
// 2.0 request the receiver stored.
func storedV2ExemplarTimes(t *testing.T, srv *prwmetrictest.Server) []int64 {
	t.Helper()
	var out []int64
	for _, r := range srv.Requests() {
		if !r.Stored || r.Protocol != prwmetrictest.ProtocolV2 || r.V2 == nil {
			continue
		}
		for _, ts := range r.V2.Timeseries {
			for _, e := range ts.Exemplars {
				out = append(out, e.Timestamp)
			}
		}
	}
	return out
}

// TestExemplarsSentAgainAfterNativeHistogramRefusal: a 2.0 receiver
// that refuses native histograms (500 "native histograms are disabled",
// the whole request rolled back, as Prometheus does) gets the export again
// at once with classic histograms. The counter's exemplar was never stored,
// so the export sent again must carry it.
func TestExemplarsSentAgainAfterNativeHistogramRefusal(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithoutNativeHistograms())
	t.Cleanup(srv.Close)
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2), WithoutStaleMarkers())

	t1 := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	e1 := t1.Add(-time.Second)
	cp := convPoint[int64](5)
	cp.Time = t1
	cp.Exemplars = []metricdata.Exemplar[int64]{convExemplar[int64](1, e1, attribute.Int("n", 1))}
	hp := convExpPoint(0, 1, metricdata.ExponentialBucket{Offset: 0, Counts: []uint64{1, 2}}, metricdata.ExponentialBucket{}, 4.5)
	hp.Time = t1
	rm := convRM(
		metricdata.Metrics{Name: "c", Data: convSum(true, cp)},
		metricdata.Metrics{Name: "size", Unit: "By", Data: convExpHist(hp)},
	)
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) < 2 || reqs[0].Stored || !reqs[len(reqs)-1].Stored {
		t.Fatalf("want the refused request, then the export again stored: %+v", reqs)
	}
	got := storedV2ExemplarTimes(t, srv)
	if len(got) != 1 || got[0] != e1.UnixMilli() {
		t.Errorf("exemplars stored at %v, want the counter's at %d: the refused request stored nothing, yet the export sent again left its exemplar out", got, e1.UnixMilli())
	}
}

// TestExemplarsSentAgainAfter503: a 2.0 request answered 503 (a load
// balancer, an overloaded receiver: nothing stored) did not deliver its
// exemplars. The next export, which repeats them (the SDK keeps a
// cumulative point's exemplars), must send them; only a 400 may have been
// partly committed.
func TestExemplarsSentAgainAfter503(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusServiceUnavailable, Body: "upstream unavailable"})
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2), WithoutStaleMarkers())
	ctx := context.Background()

	t1 := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	e1 := t1.Add(-time.Second)
	if err := exp.Export(ctx, exemplarCounter(5, t1, e1)); err == nil {
		t.Fatal("first export: want the 503")
	}
	if reqs := srv.Requests(); len(reqs) != 1 || reqs[0].Stored {
		t.Fatalf("first request: %+v", reqs)
	}
	t2 := t1.Add(15 * time.Second)
	e2 := t2.Add(-time.Second)
	if err := exp.Export(ctx, exemplarCounter(6, t2, e1, e2)); err != nil {
		t.Fatalf("second export: %v", err)
	}
	got := storedV2ExemplarTimes(t, srv)
	if len(got) != 2 {
		t.Errorf("receiver holds exemplars at %v, want both %d (never stored: the 503 stored nothing) and %d", got, e1.UnixMilli(), e2.UnixMilli())
	}
}

// TestExemplarsOfOneMillisecond: a native histogram point whose reservoir
// holds exemplars of one millisecond (buckets hit at once under load) sends
// them all, in 1.0 and 2.0, in ascending value: Prometheus takes exemplars
// of one timestamp in that order ("to support multiple buckets of native
// histograms", tsdb/exemplar.go) and refuses the request for one out of
// it. 2.0 had left all but the first out.
func TestExemplarsOfOneMillisecond(t *testing.T) {
	t1 := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	e := t1.Add(-time.Second)
	hp := convExpPoint(0, 0, metricdata.ExponentialBucket{Offset: 0, Counts: []uint64{1, 1, 1}}, metricdata.ExponentialBucket{}, 7.5)
	hp.Time = t1
	hp.Exemplars = []metricdata.Exemplar[float64]{ // as the reservoir holds them: by bucket, not value
		convExemplar(3.0, e, attribute.Int("n", 3)),
		convExemplar(1.5, e, attribute.Int("n", 1)),
		convExemplar(2.0, e, attribute.Int("n", 2)),
	}
	rm := convRM(metricdata.Metrics{Name: "size", Unit: "By", Data: convExpHist(hp)})
	for _, proto := range []Protocol{ProtocolV1, ProtocolV2} {
		srv := prwmetrictest.NewServer()
		t.Cleanup(srv.Close)
		exp := newTestExporter(t, srv, WithProtocol(proto), WithoutStaleMarkers())
		if err := exp.Export(context.Background(), rm); err != nil {
			t.Fatalf("%v export: %v", proto, err)
		}
		var got []float64
		for _, r := range srv.Requests() {
			if r.V1 != nil {
				for _, ts := range r.V1.Timeseries {
					for _, x := range ts.Exemplars {
						if x.Timestamp == e.UnixMilli() {
							got = append(got, x.Value)
						}
					}
				}
			}
			if r.V2 != nil {
				for _, ts := range r.V2.Timeseries {
					for _, x := range ts.Exemplars {
						if x.Timestamp == e.UnixMilli() {
							got = append(got, x.Value)
						}
					}
				}
			}
		}
		if want := []float64{1.5, 2, 3}; !slices.Equal(got, want) {
			t.Errorf("%v: exemplars at %d: %v, want %v", proto, e.UnixMilli(), got, want)
		}
	}
}
