package prwmetric

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// staleIn returns the values of label i of the series that the n-th request
// (1-based) ends with a staleness marker.
func staleIn(t *testing.T, srv *prwmetrictest.Server, n int) []string {
	t.Helper()
	reqs := srv.Requests()
	if len(reqs) < n {
		t.Fatalf("%d requests, want at least %d", len(reqs), n)
	}
	var stale []string
	for _, ts := range reqs[n-1].V1.Timeseries {
		for _, s := range ts.Samples {
			if math.Float64bits(s.Value) == prwmetrictest.StaleNaN {
				for _, l := range ts.Labels {
					if l.Name == "i" {
						stale = append(stale, l.Value)
					}
				}
			}
		}
	}
	sort.Strings(stale)
	return stale
}

func TestStaleMarkers(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp, err := New(WithEndpoint(srv.URL()), WithoutEnvironment(), WithoutTargetInfo(), WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_700_000_000_000)
	ctx := context.Background()

	if err := exp.Export(ctx, manyGauges(3, at)); err != nil { // i = 0, 1, 2
		t.Fatal(err)
	}
	if got := staleIn(t, srv, 1); len(got) != 0 {
		t.Errorf("first export marks %v stale", got)
	}

	// Series 2 disappears: it is ended once, in the next request.
	before := time.Now().UnixMilli()
	if err := exp.Export(ctx, manyGauges(2, at.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if got := staleIn(t, srv, 2); len(got) != 1 || got[0] != "2" {
		t.Errorf("second export: stale %v, want [2]", got)
	}
	samples, err := srv.Samples("load", map[string]string{"i": "2"}) // Latest skips markers
	if err != nil || len(samples) == 0 {
		t.Fatal(samples, err)
	}
	if s := samples[len(samples)-1]; !s.IsStale() || s.Timestamp < before {
		t.Errorf("marker %+v: want the stale NaN at the time of the export (≥ %d)", s, before)
	}

	// A failed export does not count as delivered: after it, series 1's
	// disappearance is still measured against the last success.
	srv.RespondWith(1, prwmetrictest.Response{Status: 500})
	if err := exp.Export(ctx, manyGauges(1, at.Add(2*time.Minute))); err == nil {
		t.Fatal("export against a 500 succeeded")
	}
	if err := exp.Export(ctx, manyGauges(1, at.Add(3*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if got := staleIn(t, srv, 4); len(got) != 1 || got[0] != "1" {
		t.Errorf("export after a failure: stale %v, want [1]", got)
	}

	// Shutdown ends every remaining series, once.
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := staleIn(t, srv, 5); len(got) != 1 || got[0] != "0" {
		t.Errorf("Shutdown: stale %v, want [0]", got)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if n := srv.RequestCount(); n != 5 {
		t.Errorf("%d requests, want 5: a second Shutdown sends nothing", n)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

func TestWithoutStaleMarkers(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp, err := New(WithEndpoint(srv.URL()), WithoutEnvironment(), WithoutStaleMarkers())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.UnixMilli(1_700_000_000_000)
	if err := exp.Export(ctx, manyGauges(3, at)); err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(ctx, manyGauges(1, at.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := staleIn(t, srv, 2); len(got) != 0 {
		t.Errorf("stale markers %v sent with WithoutStaleMarkers", got)
	}
	if n := srv.RequestCount(); n != 2 {
		t.Errorf("%d requests, want 2: Shutdown sends nothing", n)
	}
}

// A marker never shares a timestamp with the series' last sample, even when
// the data is stamped at or after the moment of Shutdown.
func TestStaleMarkerAfterNewestSample(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv)
	future := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := exp.Export(context.Background(), manyGauges(1, future)); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	samples, err := srv.Samples("load", map[string]string{"i": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || !samples[1].IsStale() || samples[1].Timestamp != future.UnixMilli()+1 {
		t.Errorf("samples = %+v, want the value then a marker 1 ms after it", samples)
	}
}

// Two collections within one millisecond (ForceFlush right before Shutdown)
// must not send two different values at one timestamp.
func TestSameMillisecondExportsStayOrdered(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers())
	at := time.UnixMilli(1_700_000_000_000)
	ctx := context.Background()
	first, second := manyGauges(1, at), manyGauges(1, at)
	second.ScopeMetrics[0].Metrics[0].Data.(metricdata.Gauge[float64]).DataPoints[0].Value = 42
	for _, rm := range []*metricdata.ResourceMetrics{first, second} {
		if err := exp.Export(ctx, rm); err != nil {
			t.Fatalf("Export: %v", err)
		}
	}
	samples, err := srv.Samples("load", map[string]string{"i": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || samples[0].Timestamp != at.UnixMilli() || samples[1].Timestamp != at.UnixMilli()+1 || samples[1].Value != 42 {
		t.Errorf("samples = %+v, want 0@T then 42@T+1ms", samples)
	}
}

// A producer that stamps its points with the observation's time (the
// client_golang bridge, for a metric with an explicit timestamp) repeats
// the same point until the observation changes. Moved 1 ms forward once,
// as a second collection in the same millisecond would be, it then goes at
// that time, a duplicate Prometheus accepts: it was moved 1 ms further each
// export, then, 10 exports on, sent at its own time, older than the newest,
// and every export after that was refused (400). A later point goes as it
// is. The strict receiver refuses what Prometheus refuses.
func TestRepeatedPointIsNotMovedAgain(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers())
	at := time.UnixMilli(1_700_000_000_000)
	ctx := context.Background()
	for i := range 2 * restampWindow {
		if err := exp.Export(ctx, manyGauges(1, at)); err != nil {
			t.Fatalf("export %d of the same point: %v", i+1, err)
		}
	}
	later := at.Add(15 * time.Second)
	if err := exp.Export(ctx, manyGauges(1, later)); err != nil {
		t.Fatalf("export of a later point: %v", err)
	}
	samples, err := srv.Samples("load", map[string]string{"i": "0"})
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{at.UnixMilli()}
	for range 2*restampWindow - 1 {
		want = append(want, at.UnixMilli()+1)
	}
	want = append(want, later.UnixMilli())
	var got []int64
	for _, smp := range samples {
		got = append(got, smp.Timestamp)
	}
	if !slices.Equal(got, want) {
		t.Errorf("timestamps sent %v, want %v", got, want)
	}
	if n := len(exp.series.moved); n != 0 {
		t.Errorf("%d moved samples kept after a sample that was not moved", n)
	}
}

// The same for a native histogram and a counter repeated with their own
// timestamp (nativeData: testTime).
func TestRepeatedNativeHistogramIsNotMovedAgain(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers(), WithoutMetadata())
	for i := range 2 * restampWindow {
		if err := exp.Export(t.Context(), nativeData(1)); err != nil {
			t.Fatalf("export %d of the same points: %v", i+1, err)
		}
	}
	hs, err := srv.NativeHistograms("latency_seconds", map[string]string{"route": "/buy"})
	if err != nil {
		t.Fatal(err)
	}
	own := testTime.UnixMilli()
	for i, h := range hs {
		if want := own + min(int64(i), 1); h.Timestamp != want {
			t.Errorf("histogram %d at %d, want %d", i, h.Timestamp, want)
		}
	}
	if len(hs) != 2*restampWindow {
		t.Errorf("%d histograms, want %d", len(hs), 2*restampWindow)
	}
}

// Collections within one millisecond each with a new value move 1 ms
// further each, up to maxMoved; one more goes at its own time, refused as
// out of order (reported), rather than further from it.
func TestSameMillisecondNewValuesMoveUpToMaxMoved(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers())
	at := time.UnixMilli(1_700_000_000_000)
	export := func(v float64) error {
		rm := manyGauges(1, at)
		rm.ScopeMetrics[0].Metrics[0].Data.(metricdata.Gauge[float64]).DataPoints[0].Value = v
		return exp.Export(t.Context(), rm)
	}
	for i := range maxMoved + 1 {
		if err := export(float64(i)); err != nil {
			t.Fatalf("export %d: %v", i, err)
		}
	}
	var we *WriteError
	if err := export(-1); !errors.As(err, &we) || we.StatusCode != 400 {
		t.Errorf("export past maxMoved: %v, want the receiver's 400", err)
	}
	samples, err := srv.Samples("load", map[string]string{"i": "0"})
	if err != nil {
		t.Fatal(err)
	}
	for i, smp := range samples {
		if smp.Timestamp != at.UnixMilli()+int64(i) || smp.Value != float64(i) {
			t.Errorf("sample %d: %v@%d, want %d@%d", i, smp.Value, smp.Timestamp, i, at.UnixMilli()+int64(i))
		}
	}
	if len(samples) != maxMoved+1 {
		t.Errorf("%d samples stored, want %d", len(samples), maxMoved+1)
	}
}

func TestStaleMarkerForNativeHistogram(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv)
	at := time.UnixMilli(1_700_000_000_000)
	rm := &metricdata.ResourceMetrics{
		Resource: resource.Empty(),
		ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{{
			Name: "latency",
			Data: metricdata.ExponentialHistogram[float64]{
				Temporality: metricdata.CumulativeTemporality,
				DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{{
					StartTime: at.Add(-time.Minute), Time: at, Count: 2, Sum: 3, Scale: 1,
					PositiveBucket: metricdata.ExponentialBucket{Offset: 0, Counts: []uint64{1, 1}},
				}},
			},
		}}}},
	}
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs, err := srv.NativeHistograms("latency", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].IsStale() || !hs[1].IsStale() || hs[1].Timestamp <= hs[0].Timestamp {
		t.Errorf("histograms = %+v, want a histogram then a later stale histogram", hs)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// A sample older than the delivered one by more than a few same-millisecond
// collections is a clock that went back: it is sent as it is, and the
// receiver's rejection is reported, rather than hidden behind an invented
// timestamp.
func TestOlderSampleIsNotRestamped(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers())
	at := time.UnixMilli(1_700_000_000_000)
	if err := exp.Export(context.Background(), manyGauges(1, at)); err != nil {
		t.Fatal(err)
	}
	err := exp.Export(context.Background(), manyGauges(1, at.Add(-time.Second)))
	var we *WriteError
	if !errors.As(err, &we) || we.StatusCode != 400 {
		t.Fatalf("err = %v, want the receiver's 400 for an out-of-order sample", err)
	}
	reqs := srv.Requests()
	if got := reqs[1].V1.Timeseries[0].Samples[0].Timestamp; got != at.Add(-time.Second).UnixMilli() {
		t.Errorf("second request stamped %d, want the sample's own %d", got, at.Add(-time.Second).UnixMilli())
	}
}

// TestMarkDeliveredLargeExport: a large export, cut into several requests
// during its conversion, records every series as delivered: those that
// then stop get their staleness marker.
func TestMarkDeliveredLargeExport(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	exp := newTestExporter(t, srv)
	const series = 30000
	at := time.UnixMilli(1_700_000_000_000)
	ctx := context.Background()
	if err := exp.Export(ctx, manyGauges(series, at)); err != nil {
		t.Fatal(err)
	}
	// The next export keeps the first quarter: the rest, from both halves,
	// ends.
	if err := exp.Export(ctx, manyGauges(series/4, at.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{series/4 - 1, series / 4, series/2 + 1, series - 1} {
		samples, err := srv.Samples("load", map[string]string{"i": strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ended := i >= series/4
		if len(samples) != 2 || samples[0].Value != float64(i) || math.Float64bits(samples[1].Value) == math.Float64bits(staleNaN) != ended {
			t.Errorf("series %d: samples %+v; want its value, then %s", i, samples, map[bool]string{true: "a staleness marker", false: "its value again"}[ended])
		}
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("receiver violations: %v", v)
	}
}

// TestSubtractSpans holds subtractSpans to a record-by-record model on
// random sorted, disjoint spans.
func TestSubtractSpans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomSpans := func(n int) ([]span, []bool) {
		var spans []span
		in := make([]bool, n)
		for at := rng.IntN(3); at < n; {
			end := min(n, at+1+rng.IntN(4))
			spans = append(spans, span{at, end})
			for i := at; i < end; i++ {
				in[i] = true
			}
			at = end + 1 + rng.IntN(3)
		}
		return spans, in
	}
	for range 1000 {
		n := rng.IntN(30)
		a, inA := randomSpans(n)
		b, inB := randomSpans(n)
		var want []span
		for i := range n {
			if inA[i] && !inB[i] {
				want = addSpan(want, span{i, i + 1})
			}
		}
		if got := subtractSpans(nil, a, b); !slices.Equal(got, want) {
			t.Fatalf("subtractSpans(%v, %v) = %v, want %v", a, b, got, want)
		}
	}
}
