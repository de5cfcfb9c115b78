package e2e

import (
	"fmt"
	"math"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric"
)

// TestInitialZero checks WithInitialZero on real receivers: a counter, a
// classic histogram and a native histogram that appear in the middle of a
// run (the second export) with value 5 / five observations must show
// increase(x[1m]) == 5 at that export's time, which without a preceding 0
// Prometheus cannot compute (one sample has no increase). The 0 goes at the
// previous collection time, or at the series' start time when that is
// later: jobs{start="fresh"} starts between the two exports, so its 0 is
// at its start time; jobs{start="old"} (an attribute set first recorded
// mid-run of an instrument created before the first export) gets its 0 at
// the first export's time. A series already present in the first export
// gets no zero later. Prometheus must refuse nothing (its own /metrics: all
// writes 204, no out-of-order / out-of-bounds / too-old samples), and each
// series must hold exactly one 0, also with Remote Write 2.0 to a
// Prometheus 3 that itself stores a 0 at each 2.0 start timestamp
// (created-timestamp-zero-ingestion), and with 2.0 to one that does not.
// One thing is Prometheus' own and allowed exactly: 2.42's increase() on
// a native histogram extrapolates past the zero (7.5, not 5).
// Without the option the same data gives no increase at all at the second
// export: the test can fail.
func TestInitialZero(t *testing.T) {
	cases := []struct {
		name  string
		start func(*testing.T) *promServer
		v2    bool
		opts  []prwmetric.Option
		// zeroes is false for the control case without the option.
		zeroes bool
		// nativeIncrease is what histogram_count(increase()) gives at the
		// second export: 5, except on Prometheus 2.42, whose increase()
		// on native histograms extrapolates half an interval before the
		// zero (it does not stop at a count of 0 as it does for floats):
		// 5 × 1.5.
		nativeIncrease float64
	}{
		{name: "Prometheus 2.42", start: func(t *testing.T) *promServer { return startPrometheus2(t, promConfig{}) }, zeroes: true,
			opts: []prwmetric.Option{prwmetric.WithInitialZero()}, nativeIncrease: 7.5},
		{name: "Prometheus 3", start: func(t *testing.T) *promServer { return startPrometheus3(t, promConfig{}) }, zeroes: true,
			opts: []prwmetric.Option{prwmetric.WithInitialZero()}},
		{name: "Prometheus 3, Remote Write 2.0", v2: true, zeroes: true,
			start: func(t *testing.T) *promServer { return startPrometheus3(t, promConfig{}) },
			opts:  []prwmetric.Option{prwmetric.WithInitialZero()}},
		{name: "Prometheus 3, Remote Write 2.0, created-timestamp-zero-ingestion", v2: true, zeroes: true,
			start: func(t *testing.T) *promServer {
				return startPrometheus3(t, promConfig{extraArgs: []string{"--enable-feature=created-timestamp-zero-ingestion"}})
			},
			opts: []prwmetric.Option{prwmetric.WithInitialZero()}},
		{name: "Prometheus 3 without WithInitialZero (control)",
			start: func(t *testing.T) *promServer { return startPrometheus3(t, promConfig{}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.start(t)
			opts := tc.opts
			if tc.v2 {
				opts = append([]prwmetric.Option{prwmetric.WithProtocol(prwmetric.ProtocolV2)}, opts...)
			}
			exp, logs := newExporter(t, s.writeURL(), opts...)
			before := s.writeStats(t)

			c := newClock()
			st0 := c.next()
			t1 := c.next()
			fresh := c.next() // jobs{start="fresh"} and both histograms start here
			t2, t3 := c.next(), c.next()

			heartbeat := func(at time.Time, v float64) metricdata.Metrics {
				return metricdata.Metrics{Name: "e2e.iz.heartbeat", Data: metricdata.Sum[float64]{
					Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
					DataPoints: []metricdata.DataPoint[float64]{{StartTime: st0, Time: at, Value: v}},
				}}
			}
			mid := func(at time.Time, n uint64) []metricdata.Metrics {
				v := float64(n)
				return []metricdata.Metrics{
					{Name: "e2e.iz.jobs", Unit: "{job}", Data: metricdata.Sum[float64]{
						Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
						DataPoints: []metricdata.DataPoint[float64]{
							{Attributes: attrs("start", "fresh"), StartTime: fresh, Time: at, Value: v},
							{Attributes: attrs("start", "old"), StartTime: st0, Time: at, Value: v},
						},
					}},
					{Name: "e2e.iz.latency", Unit: "s", Data: metricdata.Histogram[float64]{
						Temporality: metricdata.CumulativeTemporality,
						DataPoints: []metricdata.HistogramDataPoint[float64]{{
							StartTime: fresh, Time: at, Bounds: []float64{1},
							BucketCounts: []uint64{n - 1, 1}, Count: n, Sum: 2 * v,
						}},
					}},
					{Name: "e2e.iz.size", Unit: "By", Data: metricdata.ExponentialHistogram[float64]{
						Temporality: metricdata.CumulativeTemporality,
						DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{{
							StartTime: fresh, Time: at, Count: n, Sum: 3 * v, Scale: 0,
							PositiveBucket: metricdata.ExponentialBucket{Offset: 1, Counts: []uint64{n}},
						}},
					}},
				}
			}
			export(t, exp, resourceMetrics(heartbeat(t1, 1)))
			export(t, exp, resourceMetrics(append(mid(t2, 5), heartbeat(t2, 2))...))
			export(t, exp, resourceMetrics(append(mid(t3, 7), heartbeat(t3, 3))...))

			// increase() at t2 over 1m sees the zero and the 5; with the
			// zero as the first sample, Prometheus extrapolates neither end
			// (not below zero at the start, none past t2), so exactly 5.
			queries := []struct{ query, key string }{
				{`increase(e2e_iz_jobs_total{start="fresh"}[1m])`, "fresh"},
				{`increase(e2e_iz_jobs_total{start="old"}[1m])`, "old"},
				{`increase(e2e_iz_latency_seconds_count[1m])`, "classic _count"},
				{`increase(e2e_iz_latency_seconds_bucket{le="+Inf"}[1m])`, "classic +Inf"},
				{`histogram_count(increase(e2e_iz_size_bytes[1m]))`, "native count"},
			}
			nativeIncrease := tc.nativeIncrease
			if nativeIncrease == 0 {
				nativeIncrease = 5
			}
			for _, q := range queries {
				want := 5.0
				if q.key == "native count" {
					want = nativeIncrease
				}
				res := s.queryVector(t, q.query, t2)
				var got []float64
				for _, v := range res {
					got = append(got, v)
				}
				switch {
				case !tc.zeroes && len(got) != 0:
					t.Errorf("%s at the export that first carries it: %v, want no result (one sample, no increase)", q.query, got)
				case tc.zeroes && (len(got) != 1 || math.Abs(got[0]-want) > 1e-9):
					t.Errorf("%s at the export that first carries it: %v, want [%v]", q.query, got, want)
				}
			}

			// The raw samples: one 0 per series, where the rule puts it
			// (on a created-timestamp-zero-ingestion server the 0 may be
			// the server's own, at the start time).
			got := s.readRange(t, `{__name__=~"e2e_iz_.*"}`, t3, time.Hour)
			wantZeroAt := map[string]time.Time{
				labelKey(seriesLabels("e2e_iz_jobs_total", "start", "fresh")): fresh,
				labelKey(seriesLabels("e2e_iz_jobs_total", "start", "old")):   t1,
			}
			for _, name := range []string{"e2e_iz_latency_seconds_count", "e2e_iz_latency_seconds_sum"} {
				wantZeroAt[labelKey(seriesLabels(name))] = fresh
			}
			for _, le := range []string{"1", "+Inf"} {
				wantZeroAt[labelKey(seriesLabels("e2e_iz_latency_seconds_bucket", "le", le))] = fresh
			}
			for k, zeroAt := range wantZeroAt {
				ss := got.Floats[k]
				var zeros []int64
				for _, smp := range ss {
					if smp.V == 0 {
						zeros = append(zeros, smp.T)
					}
				}
				if !tc.zeroes {
					if len(zeros) != 0 {
						t.Errorf("%s: zeros at %v without the option", k, zeros)
					}
					continue
				}
				if len(zeros) != 1 {
					t.Errorf("%s: %d zero samples (at %v), want exactly one; samples %v", k, len(zeros), zeros, ss)
				} else if zeros[0] != zeroAt.UnixMilli() && !(k == labelKey(seriesLabels("e2e_iz_jobs_total", "start", "old")) && zeros[0] == st0.UnixMilli()) {
					t.Errorf("%s: zero at %d, want %d (%s); samples %v", k, zeros[0], zeroAt.UnixMilli(), describeTime(zeroAt, st0, t1, fresh), ss)
				}
				if n := len(ss); n != 2+len(zeros) {
					t.Errorf("%s: %d samples %v, want the zero, 5 and 7", k, n, ss)
				}
			}
			sizeKey := labelKey(seriesLabels("e2e_iz_size_bytes"))
			var emptyNative int
			for _, h := range got.Histograms[sizeKey] {
				if h.Count == 0 {
					emptyNative++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tc.zeroes]; emptyNative != want {
				t.Errorf("%s: %d empty native histograms, want %d: %v", sizeKey, emptyNative, want, got.Histograms[sizeKey])
			}
			// A series present from the first export gets no zero later.
			hb := got.Floats[labelKey(seriesLabels("e2e_iz_heartbeat_total"))]
			for _, smp := range hb {
				if smp.V == 0 && smp.T > st0.UnixMilli() {
					t.Errorf("e2e_iz_heartbeat_total: a zero at %d, after its start: %v", smp.T, hb)
				}
			}

			after := s.writeStats(t)
			for code, n := range after.codes.sub(before.codes) {
				if code != "204" && n != 0 {
					t.Errorf("%s answered %v write requests with %s", s.name, n, code)
				}
			}
			// Nothing refused, nothing counted as out of order: with
			// created-timestamp-zero-ingestion Prometheus would append its
			// own zero at a 2.0 start timestamp equal to our zero's time
			// (for a native histogram counting it as out of order at
			// commit), which is why the zero and the first sample carry
			// none; later samples' start times are older than our zero, so
			// Prometheus skips them.
			for name, n := range after.rejected.sub(before.rejected) {
				if n != 0 {
					t.Errorf("%s rose by %v", name, n)
				}
			}
			requireNoWarnings(t, logs)
		})
	}
}

// describeTime names a test time for messages.
func describeTime(at, st0, t1, fresh time.Time) string {
	switch at {
	case st0:
		return "the start time of the old series"
	case t1:
		return "the previous collection time"
	case fresh:
		return "the fresh series' start time"
	}
	return fmt.Sprint(at)
}
