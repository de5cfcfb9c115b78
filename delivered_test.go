package prwmetric

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric/prwmetrictest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// TestWithoutStaleMarkersForgetsEndedSeries: with WithoutStaleMarkers,
// a series that stops reporting is ended by the first export that arrives
// without it (markDelivered, b.ended), and the next sweep forgets it, also
// when every request was marked delivered as it came back (markSent).
func TestWithoutStaleMarkersForgetsEndedSeries(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers())
	ctx := context.Background()
	at := time.UnixMilli(1_700_000_000_000)
	if err := exp.Export(ctx, manyGauges(100, at)); err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 3; k++ {
		if err := exp.Export(ctx, manyGauges(1, at.Add(time.Duration(k)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	sc := exp.series
	sc.mu.Lock()
	last, table := len(sc.last), len(sc.byLabels)
	delivered := 0
	for _, s := range sc.last {
		if s.is(flagDelivered) {
			delivered++
		}
	}
	sc.mu.Unlock()
	if last != 1 || table != 1 || delivered != 1 {
		t.Errorf("after 3 exports of 1 series (99 gone): %d series in the cache, %d in the table, %d flagged delivered; want 1, 1, 1",
			last, table, delivered)
	}
}

// TestDeliveredMatchesReceiver holds the marking of delivered series (as
// requests return, markSent, and at the export's end, markDelivered) to
// what the receiver holds: after every export, each series the exporter
// keeps is flagged delivered exactly when the receiver's newest sample of it
// is an ordinary one, with that timestamp as newest (checkDelivered).
// Requests fail at random (500), several go side by side, points come and
// go, and the 2.0 -> 1.0 and zstd -> snappy fallbacks resend.
func TestDeliveredMatchesReceiver(t *testing.T) {
	cases := []struct {
		name    string
		srvOpts []prwmetrictest.Option
		opts    []Option
	}{
		{"1.0 stream", nil, nil},
		{"2.0", nil, []Option{WithProtocol(ProtocolV2)}},
		{"2.0 refused", []prwmetrictest.Option{prwmetrictest.WithRemoteWrite1Only()}, []Option{WithProtocol(ProtocolV2)}},
		{"zstd refused", nil, []Option{WithCompression(CompressionZstd)}},
		{"zstd", []prwmetrictest.Option{prwmetrictest.WithZstd()}, []Option{WithCompression(CompressionZstd)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer(tc.srvOpts...)
			defer srv.Close()
			exp := newTestExporter(t, srv, append([]Option{WithMaxSeriesPerRequest(3), WithMaxConcurrentRequests(3), WithoutMetadata()}, tc.opts...)...)
			rng := rand.New(rand.NewPCG(7, 8))
			// Data stamped from now on: the markers are stamped with the wall
			// clock, or just after the series' newest sample.
			base := time.Now().Truncate(time.Millisecond)
			clock := base
			exp.negotiation.now = func() time.Time { return clock }
			live := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
			for step := range 40 {
				clock = clock.Add(2 * time.Hour) // the fallbacks try again
				for range rng.IntN(3) {
					live[rng.IntN(len(live))] = 10 + rng.IntN(20)
				}
				slices.Sort(live)
				live = slices.Compact(live)
				for len(live) < 6 {
					live = append(live, 30+step)
				}
				srv.ClearResponses()
				for range rng.IntN(6) {
					srv.RespondWith(1, prwmetrictest.Response{})
				}
				if rng.IntN(2) == 0 {
					srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusInternalServerError})
				}
				at := base.Add(time.Duration(step) * time.Minute)
				dps := make([]metricdata.DataPoint[float64], 0, len(live))
				for _, i := range live {
					dps = append(dps, metricdata.DataPoint[float64]{Attributes: attribute.NewSet(attribute.Int("i", i)), Time: at, Value: float64(step)})
				}
				rm := &metricdata.ResourceMetrics{
					Resource: resource.NewSchemaless(attribute.String("service.name", "svc")),
					ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
						{Name: "load", Data: metricdata.Gauge[float64]{DataPoints: dps}},
					}}},
				}
				_ = exp.Export(context.Background(), rm) // failures are part of the test
				checkDelivered(t, fmt.Sprintf("export %d", step), exp, srv)
			}
			if v := srv.Violations(); len(v) > 0 {
				t.Errorf("violations: %v", v)
			}
		})
	}
}

func checkDelivered(t *testing.T, where string, exp *Exporter, srv *prwmetrictest.Server) {
	t.Helper()
	latest := map[string]prwmetrictest.Sample{}
	for _, s := range srv.Series() {
		if n := len(s.Samples); n > 0 {
			latest[s.Labels.String()] = s.Samples[n-1]
		}
	}
	sc := exp.series
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, s := range sc.last {
		l := prwmetrictest.Labels{}
		for _, lb := range decodeLabels(sc.encodedLabels(s)) {
			l[lb.Name] = lb.Value
		}
		got, ok := latest[l.String()]
		holds := ok && !got.IsStale()
		if s.is(flagDelivered) != holds || holds && s.newest() != got.Timestamp {
			t.Errorf("%s: %s flagged delivered %v with newest %d; the receiver's newest sample: %+v (found: %v)",
				where, l, s.is(flagDelivered), s.newest(), got, ok)
		}
	}
}

// TestFailedConversionKeepsWhatWasDelivered: when a 1.0 conversion fails
// part-way (it panicked, here in the logger that reports a dropped metric),
// the requests it had already streamed are marked delivered as data, not
// as staleness markers (which only the finished conversion appends).
func TestFailedConversionKeepsWhatWasDelivered(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	var panicked atomic.Bool
	// The conversion fails once a request it streamed has arrived: how far
	// the requests got before it would otherwise depend on scheduling.
	arrived := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.WaitForRequests(ctx, 1); err != nil {
			t.Errorf("no streamed request arrived before the conversion failed: %v", err)
		}
	}
	logger := slog.New(panicOnce{done: &panicked, before: arrived})
	exp := newTestExporter(t, srv, WithMaxRequestBytes(4096), WithLogger(logger))
	at := time.UnixMilli(1_700_000_000_000)
	rm := manyGauges(2000, at)
	// After the gauges, a metric the conversion drops with a warning.
	rm.ScopeMetrics[0].Metrics = append(rm.ScopeMetrics[0].Metrics, metricdata.Metrics{Name: "delta",
		Data: metricdata.Sum[int64]{Temporality: metricdata.DeltaTemporality, IsMonotonic: true,
			DataPoints: []metricdata.DataPoint[int64]{{Time: at, Value: 1}}}})
	if err := exp.Export(context.Background(), rm); err == nil {
		t.Fatal("the export succeeded; want its conversion to fail")
	}
	if !panicked.Load() {
		t.Fatal("the logger never panicked")
	}
	if len(srv.Requests()) == 0 {
		t.Fatal("no request went before the failure")
	}
	checkDelivered(t, "after the failed conversion", exp, srv)
}

// panicOnce is a slog handler that panics at its first record.
// panicOnce is a logger that panics at its first record, after calling
// before, when set.
type panicOnce struct {
	done   *atomic.Bool
	before func()
}

func (h panicOnce) Enabled(context.Context, slog.Level) bool { return true }
func (h panicOnce) Handle(context.Context, slog.Record) error {
	if h.done.CompareAndSwap(false, true) {
		if h.before != nil {
			h.before()
		}
		panic("a logger that panics")
	}
	return nil
}
func (h panicOnce) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicOnce) WithGroup(string) slog.Handler      { return h }

// TestShutdownMarkersAreMarkers: Shutdown's staleness markers (endAll),
// once delivered, leave their series flagged not delivered: the receiver
// holds a staleness marker for each (checkDelivered). Each marker record
// says it is one (recordMarker), whichever path made its batch.
func TestShutdownMarkersAreMarkers(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	if err := exp.Export(context.Background(), manyGauges(5, at)); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, "after the export", exp, srv)
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	stale := 0
	for _, s := range srv.Series() {
		if n := len(s.Samples); n > 0 && s.Samples[n-1].IsStale() {
			stale++
		}
	}
	if stale != 5 {
		t.Fatalf("%d series ended at the receiver, want 5", stale)
	}
	checkDelivered(t, "after Shutdown", exp, srv)
}
