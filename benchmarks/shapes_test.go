package benchmarks

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	dto "github.com/prometheus/client_model/go"
)

// testSets are the sizes the tests make of each shape: the same
// instruments, fewer attribute sets, so that every library's export can be
// decoded and compared quickly, under -race too. W's still spans several
// prwmetric requests (2 000 series each).
var testSets = map[*Shape]int{
	ShapeW:            30,
	ShapeCounterHeavy: 20,
	ShapeCounters:     60,
	ShapeHistograms:   8,
	ShapeManyMetrics:  1,
	ShapeMillion:      60,
}

// kinds counts w's instruments by kind.
func kinds(w *Workload) map[Kind]int {
	count := map[Kind]int{}
	for _, in := range w.Instruments {
		count[in.Kind]++
	}
	return count
}

// countSeries counts the Prometheus series of rm from the data itself, the
// way a 1.0 export lays them out: independent of Workload.Series.
func countSeries(rm *metricdata.ResourceMetrics) int {
	n := 1 // target_info
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					n += len(dp.BucketCounts) + 2
				}
			case metricdata.ExponentialHistogram[float64]:
				n += len(d.DataPoints)
			case metricdata.Sum[int64]:
				n += len(d.DataPoints)
			case metricdata.Sum[float64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[int64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[float64]:
				n += len(d.DataPoints)
			}
		}
	}
	return n
}

// TestShapes checks that each shape at its benchmarked size is what its
// documentation says: instruments, attribute sets and their labels,
// histogram bounds, and series, counted from the metric data as well.
func TestShapes(t *testing.T) {
	wKinds := kinds(NewWorkloadW())
	for _, tc := range []struct {
		shape       *Shape
		instruments int
		sets        int
		series      int
		check       func(t *testing.T, w *Workload)
	}{
		{shape: ShapeW, instruments: 20, sets: 500, series: 44_001, check: func(t *testing.T, w *Workload) {
			if got, want := kinds(w), (map[Kind]int{Counter: 6, UpDownCounter: 4, Gauge: 6, Histogram: 4}); !maps(got, want) {
				t.Errorf("kinds %v, want %v", got, want)
			}
			for _, in := range w.Instruments {
				if in.Kind == Histogram && len(in.Bounds) != 15 {
					t.Errorf("%s has %d bounds, want 15", in.Name, len(in.Bounds))
				}
			}
		}},
		{shape: ShapeCounterHeavy, instruments: 20, sets: 500, series: 44_001, check: func(t *testing.T, w *Workload) {
			k := kinds(w)
			if k[Counter] <= wKinds[Counter] || k[Gauge] >= wKinds[Gauge] || k[Histogram] != wKinds[Histogram] {
				t.Errorf("kinds %v: want more counters and fewer gauges than W's %v, as many histograms", k, wKinds)
			}
		}},
		{shape: ShapeCounters, instruments: 20, sets: 2200, series: 44_001, check: func(t *testing.T, w *Workload) {
			if k := kinds(w); k[Counter] != len(w.Instruments) {
				t.Errorf("kinds %v: want counters only", k)
			}
			for i, set := range w.Sets {
				if set.Len() != 10 {
					t.Fatalf("set %d has %d attributes, want 10", i, set.Len())
				}
				for it := set.Iter(); it.Next(); {
					if v := it.Attribute().Value.AsString(); len(v) < 40 || len(v) > 60 {
						t.Fatalf("set %d: %s is %d characters (%q), want 40 to 60", i, it.Attribute().Key, len(v), v)
					}
				}
			}
		}},
		{shape: ShapeHistograms, instruments: 10, sets: 200, series: 40_401, check: func(t *testing.T, w *Workload) {
			if got, want := kinds(w), (map[Kind]int{Histogram: 6, ExponentialHistogram: 4}); !maps(got, want) {
				t.Errorf("kinds %v, want %v", got, want)
			}
			for _, in := range w.Instruments {
				if in.Kind == Histogram && (len(in.Bounds) != 30 || !increasing(in.Bounds)) {
					t.Errorf("%s has bounds %v, want 30 increasing", in.Name, in.Bounds)
				}
			}
			rm := w.ResourceMetrics(w.Time())
			for _, m := range rm.ScopeMetrics[0].Metrics {
				d, ok := m.Data.(metricdata.ExponentialHistogram[float64])
				if !ok {
					continue
				}
				for _, dp := range d.DataPoints {
					var n uint64
					for _, c := range dp.PositiveBucket.Counts {
						n += c
					}
					if dp.Count != exponentialObservationsPerPoint || n != dp.Count || dp.Scale < 0 || dp.Scale > 8 || len(dp.PositiveBucket.Counts) < 20 {
						t.Fatalf("%s: point with count %d, %d in buckets, scale %d, %d buckets; want %d observations over 20+ buckets at scale 0-8",
							m.Name, dp.Count, n, dp.Scale, len(dp.PositiveBucket.Counts), exponentialObservationsPerPoint)
					}
				}
			}
		}},
		{shape: ShapeManyMetrics, instruments: 2000, sets: 20, series: 40_001, check: func(t *testing.T, w *Workload) {
			names := map[string]bool{}
			for _, in := range w.Instruments {
				names[in.Name] = true
				if in.Kind == Histogram || in.Kind == ExponentialHistogram {
					t.Errorf("%s is a histogram; want one series per point", in.Name)
				}
			}
			if len(names) != len(w.Instruments) {
				t.Errorf("%d distinct names for %d instruments", len(names), len(w.Instruments))
			}
		}},
		{shape: ShapeMillion, instruments: 20, sets: 50_000, series: 1_000_001},
	} {
		t.Run(tc.shape.Name, func(t *testing.T) {
			w := tc.shape.New(tc.shape.Sets)
			if len(w.Instruments) != tc.instruments || len(w.Sets) != tc.sets {
				t.Errorf("%s; want %d instruments × %d sets", describe(w), tc.instruments, tc.sets)
			}
			if got := w.Series(); got != tc.series {
				t.Errorf("%s: %d series, want %d", describe(w), got, tc.series)
			}
			if tc.shape != ShapeMillion && (tc.series < 40_000 || tc.series > 50_000) {
				t.Errorf("%d series; want W's size, 40 000 to 50 000", tc.series)
			}
			distinct := map[attribute.Distinct]bool{}
			for _, set := range w.Sets {
				distinct[set.Equivalent()] = true
			}
			if len(distinct) != len(w.Sets) {
				t.Errorf("%d distinct attribute sets of %d", len(distinct), len(w.Sets))
			}
			if tc.shape != ShapeMillion { // 1M points take long to make under -race
				if got := countSeries(w.ResourceMetrics(w.Time())); got != tc.series {
					t.Errorf("the metric data has %d series, want %d", got, tc.series)
				}
			}
			if tc.check != nil {
				tc.check(t, w)
			}
		})
	}
}

func maps(a, b map[Kind]int) bool { return cmp.Equal(a, b) }

func increasing(b []float64) bool {
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			return false
		}
	}
	return true
}

// seriesKey is a series' labels, sorted.
func seriesKey(labels []prompb.Label) string {
	ls := make([]string, len(labels))
	for i, l := range labels {
		ls[i] = l.Name + "=" + l.Value
	}
	slices.Sort(ls)
	return strings.Join(ls, ",")
}

// seriesValues maps each series (its labels, sorted) to its one sample or
// native histogram (count, sum and schema).
func seriesValues(t *testing.T, tss []prompb.TimeSeries) map[string]string {
	t.Helper()
	out := make(map[string]string, len(tss))
	for _, ts := range tss {
		key := seriesKey(ts.Labels)
		var v string
		switch {
		case len(ts.Samples) == 1 && len(ts.Histograms) == 0:
			v = strconv.FormatFloat(ts.Samples[0].Value, 'g', -1, 64)
		case len(ts.Histograms) == 1 && len(ts.Samples) == 0:
			h := ts.Histograms[0]
			v = fmt.Sprintf("histogram count %d sum %g schema %d", h.GetCountInt(), h.Sum, h.Schema)
		default:
			t.Fatalf("series %s: %d samples and %d histograms, want one of either", key, len(ts.Samples), len(ts.Histograms))
		}
		if _, dup := out[key]; dup {
			t.Fatalf("series %s sent twice", key)
		}
		out[key] = v
	}
	return out
}

// countKinds counts the samples and the histograms of a series map.
func countKinds(m map[string]string) (samples, histograms int) {
	for _, v := range m {
		if strings.HasPrefix(v, "histogram") {
			histograms++
		} else {
			samples++
		}
	}
	return samples, histograms
}

// blocks keeps each Write as one block: a request body, or a compressor's
// output for one payload.
type blocks struct{ b [][]byte }

func (w *blocks) Write(p []byte) (int, error) {
	w.b = append(w.b, bytes.Clone(p))
	return len(p), nil
}

// all returns the blocks so far and forgets them.
func (w *blocks) all() [][]byte {
	b := w.b
	w.b = nil
	return b
}

func peerNamed(tb testing.TB, name string) peer {
	tb.Helper()
	for _, p := range peers {
		if p.name == name {
			return p
		}
	}
	tb.Fatalf("no peer %q", name)
	return peer{}
}

// TestPeers checks that every library's benchmark body does the work the
// table says, on every shape: it runs the same export as the benchmark
// (twice; the second, steady one is checked) against a receiver that keeps
// what it got, decodes it, and compares it with the workload. The
// remote-write libraries must send the same series with the same values as
// prwmetric 1.0, whose series must be the workload's.
func TestPeers(t *testing.T) {
	ctx := context.Background()
	for _, s := range Shapes {
		t.Run(s.Name, func(t *testing.T) {
			fx := newFixture(s.New(testSets[s]), s.Warmups)
			var want map[string]string // prwmetric 1.0's series, the first peer's
			for _, p := range peers {
				if !p.runs(fx.w) {
					continue
				}
				t.Run(p.name, func(t *testing.T) {
					var out blocks
					var export exportFunc
					var srv *CaptureServer
					if p.push != nil {
						srv = NewCaptureServer()
						t.Cleanup(srv.Close)
						export = p.push(t, fx, srv.URL+p.path())
					} else {
						export, _ = p.local(t, fx, &out)
					}
					for i := range 2 {
						if srv != nil {
							srv.Bodies()
						}
						out.all()
						if err := export(ctx); err != nil {
							t.Fatalf("export %d: %v", i, err)
						}
					}
					got := out.all()
					if srv != nil {
						got = srv.Bodies()
					}
					if len(got) == 0 {
						t.Fatal("the export produced nothing")
					}
					switch p.out {
					case outRemoteWrite, outSnappy:
						series := seriesValues(t, decodePRW(t, got))
						checkCounts(t, series, fx.w, false)
						if want == nil {
							want = series
						} else if diff := cmp.Diff(want, series); diff != "" {
							t.Errorf("the series differ from prwmetric's (-prwmetric +%s):\n%s", p.name, diff)
						}
					case outRemoteWriteV2:
						series := seriesValues(t, decodeV2(t, got))
						checkCounts(t, series, fx.w, p.nhcb)
						for k, v := range series {
							if !strings.HasPrefix(v, "histogram") && want[k] != v {
								t.Errorf("series %s: %s, want %q as in 1.0", k, v, want[k])
							}
						}
						if !p.nhcb {
							if diff := cmp.Diff(want, series); diff != "" {
								t.Errorf("the 2.0 series differ from 1.0 (-1.0 +2.0):\n%s", diff)
							}
						}
					case outOTLP, outOTLPGzip:
						if len(got) != 1 {
							t.Fatalf("%d OTLP requests, want 1", len(got))
						}
						body := got[0]
						if p.out == outOTLPGzip {
							var err error
							if body, err = gunzip(body); err != nil {
								t.Fatal(err)
							}
						}
						if n := otlpPoints(t, body); n != fx.w.DataPoints() {
							t.Errorf("the OTLP request carries %d data points, want %d", n, fx.w.DataPoints())
						}
					case outExposition:
						if n := expositionSeries(t, bytes.Join(got, nil), fx.w.Has(ExponentialHistogram)); n != fx.w.Series() {
							t.Errorf("the scrape exposes %d series, want %d", n, fx.w.Series())
						}
					default:
						t.Fatalf("output %d not checked", p.out)
					}
				})
			}
		})
	}
}

// checkCounts checks that a decoded export has the workload's samples and
// histograms.
func checkCounts(t *testing.T, series map[string]string, w *Workload, nhcb bool) {
	t.Helper()
	samples, histograms := countKinds(series)
	wantSamples, wantHistograms := w.Expect(nhcb)
	if samples != wantSamples || histograms != wantHistograms {
		t.Errorf("%d series with a sample and %d with a histogram; %s want %d and %d",
			samples, histograms, describe(w), wantSamples, wantHistograms)
	}
}

// otlpPoints counts the data points of an OTLP request.
func otlpPoints(t *testing.T, body []byte) int {
	t.Helper()
	var req colmetricpb.ExportMetricsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		t.Fatalf("OTLP request: %v", err)
	}
	points := 0
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				points += len(m.GetSum().GetDataPoints()) + len(m.GetGauge().GetDataPoints()) +
					len(m.GetHistogram().GetDataPoints()) + len(m.GetExponentialHistogram().GetDataPoints())
			}
		}
	}
	return points
}

// expositionSeries counts the series of a scrape: lines of the text format,
// or, in delimited protobuf, a series per counter and gauge, buckets+2 per
// classic histogram and one per native histogram.
func expositionSeries(t *testing.T, b []byte, protobuf bool) int {
	t.Helper()
	n := 0
	if !protobuf {
		for sc := bufio.NewScanner(bytes.NewReader(b)); sc.Scan(); {
			if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
				n++
			}
		}
		return n
	}
	dec := expfmt.NewDecoder(bytes.NewReader(b), expfmt.NewFormat(expfmt.TypeProtoDelim))
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err == io.EOF {
			return n
		} else if err != nil {
			t.Fatalf("decoding the scrape: %v", err)
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			switch {
			case h == nil:
				n++
			case len(h.GetBucket()) == 0: // native
				n++
			default:
				n += len(h.GetBucket()) + 2
				if !math.IsInf(h.GetBucket()[len(h.GetBucket())-1].GetUpperBound(), 1) {
					n++ // +Inf, implied
				}
			}
		}
	}
}

// TestPullBeyondCardinalityLimit checks that the pull exporter's
// MeterProvider keeps every attribute set of the large shapes: beyond the
// SDK's default limit of 2 000 per instrument it would expose an overflow
// series instead, and scrape far fewer series than the others send.
func TestPullBeyondCardinalityLimit(t *testing.T) {
	w := NewWorkload(wInstruments[:1], 2500)
	var out bytes.Buffer
	if err := newPull(t, w).scrape(&out); err != nil {
		t.Fatal(err)
	}
	if n := expositionSeries(t, out.Bytes(), false); n != w.Series() {
		t.Errorf("the scrape exposes %d series, want %d", n, w.Series())
	}
}
