package prwmetric

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// zeroData is one collection: counter "c" with the given series (k → value),
// gauge "g" with the same series, histogram "h" with series "x", native
// histogram "n" with series "x" when native is set, all at time at, started
// at start.
func zeroData(start, at time.Time, counters map[string]int64, histogram, native bool) *metricdata.ResourceMetrics {
	var cps, gps []metricdata.DataPoint[int64]
	for k, v := range counters {
		dp := metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.String("k", k)), StartTime: start, Time: at, Value: v}
		cps, gps = append(cps, dp), append(gps, dp)
	}
	metrics := []metricdata.Metrics{
		{Name: "c", Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: cps}},
		{Name: "g", Data: metricdata.Gauge[int64]{DataPoints: gps}},
	}
	if histogram {
		metrics = append(metrics, metricdata.Metrics{Name: "h", Data: metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.HistogramDataPoint[float64]{{Attributes: attribute.NewSet(attribute.String("k", "x")), StartTime: start, Time: at,
				Count: 2, Sum: 3, Bounds: []float64{1}, BucketCounts: []uint64{1, 1}}}}})
	}
	if native {
		metrics = append(metrics, metricdata.Metrics{Name: "n", Data: metricdata.ExponentialHistogram[float64]{Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{{Attributes: attribute.NewSet(attribute.String("k", "x")), StartTime: start, Time: at,
				Count: 3, Sum: 6, Scale: 1, ZeroThreshold: 1e-9, PositiveBucket: metricdata.ExponentialBucket{Offset: 2, Counts: []uint64{1, 2}}}}}})
	}
	return &metricdata.ResourceMetrics{
		Resource:     resource.NewSchemaless(attribute.String("service.name", "svc")),
		ScopeMetrics: []metricdata.ScopeMetrics{{Scope: instrumentation.Scope{Name: "test"}, Metrics: metrics}},
	}
}

// samplesOf returns the samples (timestamp → value) the receiver holds of
// a series, staleness markers left out.
func samplesOf(t *testing.T, srv *prwmetrictest.Server, name string, match map[string]string) [][2]float64 {
	t.Helper()
	ss, err := srv.Samples(name, match)
	if err != nil {
		t.Fatalf("%s%v: %v", name, match, err)
	}
	var out [][2]float64
	for _, s := range ss {
		if !s.IsStale() {
			out = append(out, [2]float64{float64(s.Timestamp), s.Value})
		}
	}
	return out
}

func TestInitialZero(t *testing.T) {
	for _, proto := range []Protocol{ProtocolV1, ProtocolV2} {
		t.Run(proto.String(), func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			defer srv.Close()
			exp, err := New(WithEndpoint(srv.URL()), WithoutEnvironment(), WithoutTargetInfo(), WithoutScopeInfo(), WithInitialZero(), WithProtocol(proto))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			// Markers go at the wall clock's now or later: the data is
			// in the future of it, as an export's is.
			start := time.Now().Truncate(time.Millisecond)
			t1, t2, t3, t4 := start.Add(time.Minute), start.Add(2*time.Minute), start.Add(3*time.Minute), start.Add(4*time.Minute)
			ms := func(t time.Time) float64 { return float64(t.UnixMilli()) }

			// First export: zeros at the start time, in a request before
			// the samples.
			if err := exp.Export(ctx, zeroData(start, t1, map[string]int64{"a": 5}, true, true)); err != nil {
				t.Fatal(err)
			}
			if n := srv.RequestCount(); n != 2 {
				t.Fatalf("%d requests after the first export, want 2 (zeros, then samples)", n)
			}
			// A counter created mid-run: its zero is at the previous
			// collection.
			if err := exp.Export(ctx, zeroData(start, t2, map[string]int64{"a": 6, "b": 5}, true, true)); err != nil {
				t.Fatal(err)
			}
			// b vanishes, then comes back continuing its value: no zero
			// (it would count all of 9 as an increase).
			if err := exp.Export(ctx, zeroData(start, t3, map[string]int64{"a": 7}, true, true)); err != nil {
				t.Fatal(err)
			}
			if err := exp.Export(ctx, zeroData(start, t4, map[string]int64{"a": 8, "b": 9}, true, true)); err != nil {
				t.Fatal(err)
			}

			want := map[string][][2]float64{
				"a": {{ms(start), 0}, {ms(t1), 5}, {ms(t2), 6}, {ms(t3), 7}, {ms(t4), 8}},
				"b": {{ms(t1), 0}, {ms(t2), 5}, {ms(t4), 9}},
			}
			for k, w := range want {
				if diff := cmp.Diff(w, samplesOf(t, srv, "c_total", map[string]string{"k": k})); diff != "" {
					t.Errorf("counter %s (-want +got):\n%s", k, diff)
				}
			}
			// Gauges never get a zero.
			if diff := cmp.Diff([][2]float64{{ms(t1), 5}, {ms(t2), 6}, {ms(t3), 7}, {ms(t4), 8}}, samplesOf(t, srv, "g", map[string]string{"k": "a"})); diff != "" {
				t.Errorf("gauge (-want +got):\n%s", diff)
			}
			// Every classic histogram series starts at 0.
			for _, s := range []struct {
				name  string
				match map[string]string
				v     float64
			}{{"h_bucket", map[string]string{"le": "1"}, 1}, {"h_bucket", map[string]string{"le": "+Inf"}, 2}, {"h_sum", nil, 3}, {"h_count", nil, 2}} {
				got := samplesOf(t, srv, s.name, s.match)
				if len(got) != 5 || got[0] != [2]float64{ms(start), 0} || got[1] != [2]float64{ms(t1), s.v} {
					t.Errorf("%s%v: %v, want 0 at the start, then %v", s.name, s.match, got, s.v)
				}
			}
			// A native histogram starts with an empty one of its schema.
			hs, err := srv.NativeHistograms("n", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(hs) != 5 || hs[0].Timestamp != start.UnixMilli() || hs[0].Histogram.Count != 0 || hs[0].Histogram.Schema != 1 || hs[1].Histogram.Count != 3 {
				t.Errorf("native histograms %+v: want an empty one of schema 1 at the start, then count 3", hs)
			}
			if proto == ProtocolV2 {
				// The zero and the first sample carry no start time, so
				// that a receiver deriving zeros from start times adds
				// none; later ones the true start.
				all, _ := srv.Samples("c_total", map[string]string{"k": "b"})
				var ss []prwmetrictest.Sample
				for _, s := range all {
					if !s.IsStale() {
						ss = append(ss, s)
					}
				}
				if len(ss) != 3 || ss[0].StartTimestamp != 0 || ss[1].StartTimestamp != 0 || ss[2].StartTimestamp != start.UnixMilli() {
					t.Errorf("2.0 start times %+v: want none, none, %d", ss, start.UnixMilli())
				}
			}
			if v := srv.Violations(); len(v) > 0 {
				t.Errorf("violations: %v", v)
			}
		})
	}
}

// TestInitialZeroFailure: zeros the receiver refuses are reported, and the
// samples still go.
func TestInitialZeroFailure(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp, err := New(WithEndpoint(srv.URL()), WithoutEnvironment(), WithoutTargetInfo(), WithoutScopeInfo(), WithInitialZero())
	if err != nil {
		t.Fatal(err)
	}
	start := time.UnixMilli(1_700_000_000_000)
	srv.RespondWith(1, prwmetrictest.Response{Status: 400, Body: "out of bounds"})
	err = exp.Export(context.Background(), zeroData(start, start.Add(time.Minute), map[string]int64{"a": 5}, false, false))
	if err == nil || !strings.Contains(err.Error(), "WithInitialZero: the zeros before 1 new series' first samples") {
		t.Fatalf("Export: %v, want the zeros' failure", err)
	}
	if got := samplesOf(t, srv, "c_total", map[string]string{"k": "a"}); !cmp.Equal(got, [][2]float64{{float64(start.Add(time.Minute).UnixMilli()), 5}}) {
		t.Errorf("samples %v: want the sample without its zero", got)
	}
}

// TestInitialZeroNeedsTime: a series whose first sample is at its start
// time has nothing to put a zero before.
func TestInitialZeroNeedsTime(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp, err := New(WithEndpoint(srv.URL()), WithoutEnvironment(), WithoutTargetInfo(), WithoutScopeInfo(), WithInitialZero())
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_700_000_000_000)
	if err := exp.Export(context.Background(), zeroData(at, at, map[string]int64{"a": 5}, false, false)); err != nil {
		t.Fatal(err)
	}
	if n := srv.RequestCount(); n != 1 {
		t.Errorf("%d requests, want 1: no zero", n)
	}
}

// TestZerosDoNotReportSkippedHistograms: on 1.0, the custom-bucket
// histograms left out are reported once per export, by the export's own
// batch, not again for WithInitialZero's zeros of the same series.
func TestZerosDoNotReportSkippedHistograms(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithRemoteWrite1Only())
	t.Cleanup(srv.Close)
	logger, logs := newLogCapture()
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2), WithNativeHistogramsForExplicitBuckets(), WithInitialZero(), WithLogger(logger))
	rm := convRM(metricdata.Metrics{Name: "lat", Data: convHist(convHistPoint[float64](12, []float64{1}, []uint64{2, 3}))})
	err := exp.Export(context.Background(), rm)
	if err == nil {
		t.Fatal("Export: want the error saying the custom-bucket histogram was left out")
	}
	if strings.Contains(err.Error(), "WithInitialZero") {
		t.Errorf("Export: %v; the zeros did not fail, the histogram is left out by 1.0", err)
	}
	n := 0
	for _, w := range logs.all() {
		if strings.Contains(w.String(), "custom-bucket native histograms not sent") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d warnings about the custom-bucket histograms left out, want 1: %v", n, logs.lines())
	}
}

// TestNativeRefusalAfterZerosFailed: when WithInitialZero's zeros request
// fails (a transient 503) and the export's own request is then refused for
// its native histograms, the refusal is still recognised: the export goes
// again with classic histograms, and a warning says why.
func TestNativeRefusalAfterZerosFailed(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithoutNativeHistograms())
	t.Cleanup(srv.Close)
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusServiceUnavailable, Body: "busy"})
	logger, logs := newLogCapture()
	exp := newTestExporter(t, srv, WithInitialZero(), WithLogger(logger))
	start := time.Now().Truncate(time.Millisecond)
	t1 := start.Add(time.Minute)
	err := exp.Export(context.Background(), zeroData(start, t1, map[string]int64{"a": 5}, false, true))
	t.Logf("Export: %v", err)
	for _, r := range srv.Requests() {
		t.Logf("request %d: status %d", r.Seq, r.Status)
	}
	if got, _ := srv.Samples("c_total", map[string]string{"k": "a"}); len(got) == 0 {
		t.Errorf("c_total holds nothing: the export refused for its native histograms was not sent again as classic")
	}
	refusal := false
	for _, l := range logs.lines() {
		if strings.Contains(l, "refuses native histograms") {
			refusal = true
		}
	}
	if !refusal {
		t.Errorf("no warning about the refused native histograms: %v", logs.lines())
	}
}

// zeroCounters is counter "c" with series i in [from, to), value i, at
// time at, started at start.
func zeroCounters(from, to int, start, at time.Time) *metricdata.ResourceMetrics {
	dps := make([]metricdata.DataPoint[int64], 0, to-from)
	for i := from; i < to; i++ {
		dps = append(dps, metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.Int("i", i)), StartTime: start, Time: at, Value: int64(i)})
	}
	return convRM(metricdata.Metrics{Name: "c", Data: convSum(true, dps...)})
}

// TestZerosCutDoesNotRebuildSymbols: the cut of WithInitialZero's zeros (a
// few series) does not rebuild the symbol table, however many strings it
// holds: only a batch of most live series measures which strings requests
// still need, and a rebuild makes the next cut number every label again.
func TestZerosCutDoesNotRebuildSymbols(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2), WithInitialZero(), WithoutStaleMarkers(), WithoutMetadata())
	ctx := context.Background()
	const n = 70000
	start := time.Now().Truncate(time.Millisecond)
	at := start.Add(time.Minute)
	if err := exp.Export(ctx, zeroCounters(0, n, start, at)); err != nil {
		t.Fatalf("first export: %v", err)
	}
	epoch := exp.series.symbols.epoch
	for k := 1; k <= 3; k++ {
		at = at.Add(15 * time.Second)
		// The same series and one more.
		if err := exp.Export(ctx, zeroCounters(0, n+k, start, at)); err != nil {
			t.Fatalf("export %d: %v", k+1, err)
		}
	}
	if got := exp.series.symbols.epoch; got != epoch {
		t.Errorf("symbol table rebuilt %d times in 3 exports of the same %d series and one new one each", got-epoch, n)
	}
}

// zeroExpHist is counter "c" {k="a"} with value 1 and, when counts is not
// nil, exponential histogram "lat" {k="x"} of the given scale with those
// positive counts from offset 0 (at scale 0, bucket j spans (2^j, 2^(j+1)])
// and sum, all at time at, started at start.
func zeroExpHist(start, at time.Time, scale int32, counts []uint64, sum float64) *metricdata.ResourceMetrics {
	attrs := attribute.NewSet(attribute.String("k", "a"))
	metrics := []metricdata.Metrics{{Name: "c", Data: convSum(true, metricdata.DataPoint[int64]{Attributes: attrs, StartTime: start, Time: at, Value: 1})}}
	if counts != nil {
		var n uint64
		for _, c := range counts {
			n += c
		}
		dp := metricdata.ExponentialHistogramDataPoint[float64]{
			Attributes: attribute.NewSet(attribute.String("k", "x")), StartTime: start, Time: at,
			Count: n, Sum: sum, Scale: scale,
			PositiveBucket: metricdata.ExponentialBucket{Offset: 0, Counts: counts},
		}
		metrics = append(metrics, metricdata.Metrics{Name: "lat", Data: convExpHist(dp)})
	}
	return convRM(metrics...)
}

// zeroSeries is a series of a test below and the samples it must hold.
type zeroSeries struct {
	name  string
	match map[string]string
	want  [][2]float64
}

// checkZeroSeries compares what srv holds of each series with its want.
func checkZeroSeries(t *testing.T, srv *prwmetrictest.Server, series []zeroSeries) {
	t.Helper()
	for _, s := range series {
		if diff := cmp.Diff(s.want, samplesOf(t, srv, s.name, s.match)); diff != "" {
			t.Errorf("%s%v (-want +got):\n%s", s.name, s.match, diff)
		}
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// TestZeroOnlyBeforeANewPoint: exponential histograms sent as classic ones
// grow a new `le` series when observations reach a new bucket, and change
// every bound when the SDK downscales. Such a series is new, but its point
// is not: its first value counts every observation up to its bound since
// the start. A zero before it would make increase() count all of them in
// one interval (non-monotonic buckets for histogram_quantile): only the
// series of a new point get a zero.
func TestZeroOnlyBeforeANewPoint(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	t1, t2 := start.Add(time.Minute), start.Add(2*time.Minute)
	ms := func(t time.Time) float64 { return float64(t.UnixMilli()) }
	tests := []struct {
		name       string
		first      *metricdata.ResourceMetrics
		second     *metricdata.ResourceMetrics
		wantSeries []zeroSeries
	}{{
		// Five observations in (1, 2], then one in (2, 4]: le="4"
		// appears, holding 6.
		name:   "new bucket",
		first:  zeroExpHist(start, t1, 0, []uint64{5}, 7.5),
		second: zeroExpHist(start, t2, 0, []uint64{5, 1}, 10.5),
		wantSeries: []zeroSeries{
			{"lat_bucket", map[string]string{"le": "0"}, [][2]float64{{ms(start), 0}, {ms(t1), 0}, {ms(t2), 0}}},
			{"lat_bucket", map[string]string{"le": "2"}, [][2]float64{{ms(start), 0}, {ms(t1), 5}, {ms(t2), 5}}},
			{"lat_bucket", map[string]string{"le": "4"}, [][2]float64{{ms(t2), 6}}},
			{"lat_bucket", map[string]string{"le": "+Inf"}, [][2]float64{{ms(start), 0}, {ms(t1), 5}, {ms(t2), 6}}},
			{"lat_sum", nil, [][2]float64{{ms(start), 0}, {ms(t1), 7.5}, {ms(t2), 10.5}}},
			{"lat_count", nil, [][2]float64{{ms(start), 0}, {ms(t1), 5}, {ms(t2), 6}}},
		},
	}, {
		// Five observations in (1, √2] at scale 1, then one in (2, 4]
		// makes the SDK downscale to 0: le="2" and le="4" replace
		// le="1.414213562373095".
		name:   "downscale",
		first:  zeroExpHist(start, t1, 1, []uint64{5}, 6),
		second: zeroExpHist(start, t2, 0, []uint64{5, 1}, 9),
		wantSeries: []zeroSeries{
			{"lat_bucket", map[string]string{"le": "1.414213562373095"}, [][2]float64{{ms(start), 0}, {ms(t1), 5}}},
			{"lat_bucket", map[string]string{"le": "2"}, [][2]float64{{ms(t2), 5}}},
			{"lat_bucket", map[string]string{"le": "4"}, [][2]float64{{ms(t2), 6}}},
			{"lat_bucket", map[string]string{"le": "+Inf"}, [][2]float64{{ms(start), 0}, {ms(t1), 5}, {ms(t2), 6}}},
			{"lat_count", nil, [][2]float64{{ms(start), 0}, {ms(t1), 5}, {ms(t2), 6}}},
		},
	}, {
		// The histogram's first point, after a collection without it:
		// every series gets its zero, at that collection.
		name:   "new point",
		first:  zeroExpHist(start, t1, 0, nil, 0),
		second: zeroExpHist(start, t2, 0, []uint64{5}, 7.5),
		wantSeries: []zeroSeries{
			{"lat_bucket", map[string]string{"le": "2"}, [][2]float64{{ms(t1), 0}, {ms(t2), 5}}},
			{"lat_bucket", map[string]string{"le": "+Inf"}, [][2]float64{{ms(t1), 0}, {ms(t2), 5}}},
			{"lat_sum", nil, [][2]float64{{ms(t1), 0}, {ms(t2), 7.5}}},
			{"lat_count", nil, [][2]float64{{ms(t1), 0}, {ms(t2), 5}}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			t.Cleanup(srv.Close)
			exp := newTestExporter(t, srv, WithInitialZero(), WithoutNativeHistograms(), WithoutStaleMarkers(), WithoutMetadata())
			ctx := context.Background()
			if err := exp.Export(ctx, tt.first); err != nil {
				t.Fatal(err)
			}
			if err := exp.Export(ctx, tt.second); err != nil {
				t.Fatal(err)
			}
			checkZeroSeries(t, srv, tt.wantSeries)
		})
	}
}

// TestZeroAfterAFailedExport: the zero of a new series goes at the last
// collection the receiver holds, when the series did not exist yet. A
// collection whose export failed does not count: the series may have
// existed then (b held 5 at t2), and a zero there would make increase()
// over (t2, t3] count 6 where the counter grew by 1.
func TestZeroAfterAFailedExport(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	t1, t2, t3 := start.Add(time.Minute), start.Add(2*time.Minute), start.Add(3*time.Minute)
	ms := func(t time.Time) float64 { return float64(t.UnixMilli()) }
	down := prwmetrictest.Response{Status: http.StatusServiceUnavailable, Body: "down"}
	tests := []struct {
		name string
		// fail answers the requests of the export of t2: its zeros, then
		// its samples.
		fail       []prwmetrictest.Response
		wantSeries []zeroSeries
	}{{
		name: "zeros and samples fail",
		fail: []prwmetrictest.Response{down, down},
		wantSeries: []zeroSeries{
			{"c_total", map[string]string{"k": "a"}, [][2]float64{{ms(start), 0}, {ms(t1), 1}, {ms(t3), 3}}},
			{"c_total", map[string]string{"k": "b"}, [][2]float64{{ms(t1), 0}, {ms(t3), 6}}},
		},
	}, {
		// The zero arrived: b's first sample follows it at t3.
		name: "samples fail",
		fail: []prwmetrictest.Response{{}, down},
		wantSeries: []zeroSeries{
			{"c_total", map[string]string{"k": "a"}, [][2]float64{{ms(start), 0}, {ms(t1), 1}, {ms(t3), 3}}},
			{"c_total", map[string]string{"k": "b"}, [][2]float64{{ms(t1), 0}, {ms(t3), 6}}},
		},
	}}
	for _, tt := range tests {
		for _, proto := range []Protocol{ProtocolV1, ProtocolV2} {
			t.Run(tt.name+"/"+proto.String(), func(t *testing.T) {
				srv := prwmetrictest.NewServer()
				t.Cleanup(srv.Close)
				exp := newTestExporter(t, srv, WithInitialZero(), WithoutStaleMarkers(), WithoutMetadata(), WithProtocol(proto))
				ctx := context.Background()
				if err := exp.Export(ctx, zeroData(start, t1, map[string]int64{"a": 1}, false, false)); err != nil {
					t.Fatal(err)
				}
				for _, r := range tt.fail {
					srv.RespondWith(1, r)
				}
				if err := exp.Export(ctx, zeroData(start, t2, map[string]int64{"a": 2, "b": 5}, false, false)); err == nil {
					t.Fatal("export against 503s succeeded")
				}
				if err := exp.Export(ctx, zeroData(start, t3, map[string]int64{"a": 3, "b": 6}, false, false)); err != nil {
					t.Fatal(err)
				}
				checkZeroSeries(t, srv, tt.wantSeries)
			})
		}
	}
}

// TestZeroWhenNativeHistogramsTurnClassic: after a receiver refuses native
// histograms, the export goes again with classic histograms, whose series
// are all new. A point whose native histogram series the receiver held
// (it accepted native histograms before being reconfigured) is not new:
// its classic series get no zero, even when their first export fails. A
// point the receiver never held is new: its series get their zeros.
func TestZeroWhenNativeHistogramsTurnClassic(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	t1, t2, t3 := start.Add(time.Minute), start.Add(2*time.Minute), start.Add(3*time.Minute)
	ms := func(t time.Time) float64 { return float64(t.UnixMilli()) }
	refused := prwmetrictest.Response{Status: http.StatusBadRequest, Body: "native histograms are disabled"}
	down := prwmetrictest.Response{Status: http.StatusServiceUnavailable, Body: "down"}
	// The classic series at time at, with five observations in (1, 2] and
	// one in (2, 4], preceded by zeros at zero when it is not 0.
	classic := func(zero, at time.Time) []zeroSeries {
		samples := func(v float64) [][2]float64 {
			if zero.IsZero() {
				return [][2]float64{{ms(at), v}}
			}
			return [][2]float64{{ms(zero), 0}, {ms(at), v}}
		}
		return []zeroSeries{
			{"lat_bucket", map[string]string{"le": "0"}, samples(0)},
			{"lat_bucket", map[string]string{"le": "2"}, samples(5)},
			{"lat_bucket", map[string]string{"le": "4"}, samples(6)},
			{"lat_bucket", map[string]string{"le": "+Inf"}, samples(6)},
			{"lat_sum", nil, samples(10.5)},
			{"lat_count", nil, samples(6)},
		}
	}
	tests := []struct {
		name string
		// first is the histogram's counts at t1 (nil: none yet).
		first []uint64
		// noNative makes the receiver refuse native histograms from the
		// start; else answer answers the requests from t2 on.
		noNative   bool
		answer     []prwmetrictest.Response
		last       time.Time
		wantSeries []zeroSeries
	}{{
		name:       "held as native",
		first:      []uint64{5},
		answer:     []prwmetrictest.Response{refused},
		last:       t2,
		wantSeries: classic(time.Time{}, t2),
	}, {
		name:       "held as native, the first classic export fails",
		first:      []uint64{5},
		answer:     []prwmetrictest.Response{refused, down},
		last:       t3,
		wantSeries: classic(time.Time{}, t3),
	}, {
		name:       "never held",
		noNative:   true,
		last:       t2,
		wantSeries: classic(t1, t2),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []prwmetrictest.Option
			if tt.noNative {
				opts = append(opts, prwmetrictest.WithoutNativeHistograms())
			}
			srv := prwmetrictest.NewServer(opts...)
			t.Cleanup(srv.Close)
			exp := newTestExporter(t, srv, WithInitialZero(), WithoutStaleMarkers(), WithoutMetadata())
			ctx := context.Background()
			if err := exp.Export(ctx, zeroExpHist(start, t1, 0, tt.first, 7.5)); err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.answer {
				srv.RespondWith(1, r)
			}
			for at := t2; !at.After(tt.last); at = at.Add(time.Minute) {
				err := exp.Export(ctx, zeroExpHist(start, at, 0, []uint64{5, 1}, 10.5))
				if at.Equal(tt.last) && err != nil {
					t.Fatal(err)
				}
			}
			checkZeroSeries(t, srv, tt.wantSeries)
		})
	}
}

// TestZeroAfterMarkersOnlyExport: the zero of a new series goes at the
// last collection the receiver holds; a collection whose export failed does
// not count (TestZeroAfterAFailedExport). After a failed export at t2, an
// export of nothing but staleness markers arrives at t3: its conversion
// has no newest sample, so lastNewest is still t2's, and arrived makes t2
// the held collection. A new series at t4 then gets its zero at t2, a
// collection the receiver never got, instead of at t1.
func TestZeroAfterMarkersOnlyExport(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	t1, t2, t3, t4 := start.Add(time.Minute), start.Add(2*time.Minute), start.Add(3*time.Minute), start.Add(4*time.Minute)
	ms := func(t time.Time) float64 { return float64(t.UnixMilli()) }
	counter := func(at time.Time, values map[string]int64) *metricdata.ResourceMetrics {
		var dps []metricdata.DataPoint[int64]
		for k, v := range values {
			dps = append(dps, metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.String("k", k)), StartTime: start, Time: at, Value: v})
		}
		var metrics []metricdata.Metrics
		if len(dps) > 0 {
			metrics = append(metrics, metricdata.Metrics{Name: "c", Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: dps}})
		}
		return &metricdata.ResourceMetrics{Resource: testResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: metrics}}}
	}
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	exp := newTestExporter(t, srv, WithInitialZero(), WithoutMetadata(), WithoutTargetInfo())
	ctx := context.Background()
	if err := exp.Export(ctx, counter(t1, map[string]int64{"a": 1})); err != nil {
		t.Fatal(err)
	}
	down := prwmetrictest.Response{Status: http.StatusServiceUnavailable, Body: "down"}
	srv.RespondWith(2, down) // the zeros of t2, then its samples
	if err := exp.Export(ctx, counter(t2, map[string]int64{"a": 2, "b": 5})); err == nil {
		t.Fatal("export against 503s succeeded")
	}
	// Nothing at t3: a's staleness marker only.
	if err := exp.Export(ctx, counter(t3, nil)); err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(ctx, counter(t4, map[string]int64{"b": 6})); err != nil {
		t.Fatal(err)
	}
	checkZeroSeries(t, srv, []zeroSeries{
		{"c_total", map[string]string{"k": "b"}, [][2]float64{{ms(t1), 0}, {ms(t4), 6}}},
	})
}

// TestEndedSeriesKeepsTheLatest: the memory of ended series is bounded, and
// when it is full it forgets the series that ended first, never those that
// ended last (it once forgot them all at once, so that every series coming
// back got a zero that counted its whole value as an increase).
func TestEndedSeriesKeepsTheLatest(t *testing.T) {
	e := endedSeries{limit: 8}
	for h := uint64(1); h <= 100; h++ {
		e.add(h)
		if n := len(e.recent) + len(e.older); n > e.limit {
			t.Fatalf("after %d: %d remembered, limit %d", h, n, e.limit)
		}
		for back := uint64(0); back < uint64(e.limit/2) && back < h; back++ {
			if !e.has(h - back) {
				t.Fatalf("after adding 1..%d, %d is forgotten; the last %d must be kept", h, h-back, e.limit/2)
			}
		}
	}
	if e.has(1) || e.has(50) {
		t.Error("the oldest are still remembered past the limit")
	}
	if (&endedSeries{limit: 8}).has(1) || !(&endedSeries{limit: 8}).empty() {
		t.Error("a new set is not empty")
	}
}

// TestZeroUnderAPersistentPartialFailure: a receiver refuses one series in
// every export (k="bad", 400), so no export arrives whole after t1. A
// series new at t5 did not exist at t4, the collection before: its zero
// goes there. It went at t1, the last export that arrived whole, which
// after an hour of such failures is older than Prometheus accepts.
func TestZeroUnderAPersistentPartialFailure(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	at := func(i int) time.Time { return start.Add(time.Duration(i) * time.Minute) }
	endpoint, accepted := refusingReceiver(t, func(s series) (int, string) {
		if slices.Contains(s.Labels, "k=bad") {
			return http.StatusBadRequest, "bad series"
		}
		return 0, ""
	})
	exp := newExporter(t, WithEndpoint(endpoint), WithInitialZero(), WithLogger(discardLogger()),
		WithoutStaleMarkers(), WithoutMetadata(), WithoutTargetInfo(), WithMaxSeriesPerRequest(1))
	ctx := context.Background()
	if err := exp.Export(ctx, zeroData(start, at(1), map[string]int64{"a": 1}, false, false)); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 4; i++ {
		if err := exp.Export(ctx, zeroData(start, at(i), map[string]int64{"a": int64(i), "bad": 1}, false, false)); err == nil {
			t.Fatalf("export %d: the bad series was refused, want an error", i)
		}
	}
	_ = exp.Export(ctx, zeroData(start, at(5), map[string]int64{"a": 5, "bad": 1, "c": 7}, false, false))
	got := counterSamples(accepted(), "c")
	want := []sample{{Value: 0, Millis: at(4).UnixMilli()}, {Value: 7, Millis: at(5).UnixMilli()}}
	if !slices.Equal(got, want) {
		t.Errorf("c_total{k=c} received %v, want its zero at t4, the collection before it appeared: %v", got, want)
	}
}

// refusingReceiver starts a 1.0 receiver that answers a request with the
// status and body refuse returns for one of its series (status 0: it takes
// the series), and keeps the series of the requests it takes.
func refusingReceiver(t *testing.T, refuse func(s series) (status int, body string)) (endpoint string, accepted func() []series) {
	var (
		mu   sync.Mutex
		took []series
	)
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := (&recorder{}).record(r)
		for _, s := range got.Series {
			if status, body := refuse(s); status != 0 {
				http.Error(w, body, status)
				return
			}
		}
		mu.Lock()
		took = append(took, got.Series...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	return srv.URL + "/api/v1/write", func() []series {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(took)
	}
}

// counterSamples returns the samples of all the c_total{k=k} series (those
// of zeroData) in all.
func counterSamples(all []series, k string) []sample {
	var out []sample
	for _, s := range all {
		if s.name() == "c_total" && slices.Contains(s.Labels, "k="+k) {
			out = append(out, s.Samples...)
		}
	}
	return out
}

// TestZeroAfterNativeRefusalKeepsTheSeriesTime: k=bad is refused
// (400) in the first export, which the receiver otherwise processed
// whole. In the second, k=bad is taken: its zero goes at the start time,
// as k=bad existed at t1 (TestZeroUnderAPersistentPartialFailure's rule
// puts zeros at t1 only for series not in that export). When the second
// export also brings a native histogram the receiver refuses, the export
// is converted again; the refused conversion has stamped k=bad as seen,
// so the export converted again cannot tell it was at t1, and must not
// put its zero there, where the series had the value 1: increase() would
// count 2, not 1.
func TestZeroAfterNativeRefusalKeepsTheSeriesTime(t *testing.T) {
	for _, native := range []bool{false, true} {
		name := "control"
		if native {
			name = "native refused"
		}
		t.Run(name, func(t *testing.T) {
			start := time.UnixMilli(1_700_000_000_000)
			t1, t2 := start.Add(time.Minute), start.Add(2*time.Minute)
			var refuseBad, nativeSeen atomic.Bool
			refuseBad.Store(true)
			endpoint, accepted := refusingReceiver(t, func(s series) (int, string) {
				switch {
				case s.Histograms > 0:
					nativeSeen.Store(true)
					return http.StatusBadRequest, "native histograms are disabled"
				case refuseBad.Load() && slices.Contains(s.Labels, "k=bad"):
					return http.StatusBadRequest, "out of order sample"
				}
				return 0, ""
			})
			exp := newExporter(t, WithEndpoint(endpoint), WithInitialZero(), WithLogger(discardLogger()),
				WithoutStaleMarkers(), WithoutMetadata(), WithoutTargetInfo(), WithMaxSeriesPerRequest(1), WithMaxConcurrentRequests(1))
			ctx := context.Background()
			if err := exp.Export(ctx, zeroData(start, t1, map[string]int64{"a": 1, "bad": 1}, false, false)); err == nil {
				t.Fatal("export 1: k=bad was refused, want an error")
			}
			refuseBad.Store(false)
			if err := exp.Export(ctx, zeroData(start, t2, map[string]int64{"a": 2, "bad": 2}, false, native)); err != nil {
				t.Fatalf("export 2: %v", err)
			}
			if native && !nativeSeen.Load() {
				t.Fatal("the native histogram was never refused")
			}
			got := counterSamples(accepted(), "bad")
			for _, smp := range got {
				if smp.Millis == t1.UnixMilli() {
					t.Errorf("c_total{k=bad} got %v: a zero at t1, where the series was 1 (refused); want its zero at the start time only", got)
				}
			}
			if !slices.Contains(got, sample{Value: 2, Millis: t2.UnixMilli()}) {
				t.Errorf("c_total{k=bad} got %v: its sample at t2 is missing", got)
			}
		})
	}
}

// TestNoZeroForADroppedSeries: WithInitialZero. A native histogram
// dropped for passing maxRecordExtra gets no zero either: the receiver
// would hold a series of a lone zero the export reported dropped.
func TestNoZeroForADroppedSeries(t *testing.T) {
	defer func(old int) { maxRecordExtra = old }(maxRecordExtra)
	maxRecordExtra = 256
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	exp := newTestExporter(t, srv, WithInitialZero(), WithoutStaleMarkers(), WithoutMetadata())
	err := exp.Export(context.Background(), smallAndWideHistograms())
	if err == nil || !strings.Contains(err.Error(), "more than the 256 one series may") {
		t.Fatalf("Export = %v, want the wide series reported dropped", err)
	}
	if hs, herr := srv.NativeHistograms("wide", map[string]string{"route": "/small"}); herr != nil || len(hs) != 2 {
		t.Fatalf("the small series: %v, %v; want its zero and its sample", hs, herr)
	}
	if hs, herr := srv.NativeHistograms("wide", map[string]string{"route": "/wide"}); herr == nil {
		t.Errorf("the dropped series /wide reached the receiver: %d histograms (its zero), want none", len(hs))
	}
}
