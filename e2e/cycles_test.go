package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric"
)

const (
	// cycleSeries bounds the series of one cycle's export (a counter, a
	// gauge and a histogram, classic: its buckets, _sum and _count).
	cycleSeries = 200
	// shutdownCycles is how many exporter lifetimes each server sees.
	shutdownCycles = 200
	// cycleInterval is the PeriodicReader's interval: short, so that a
	// cycle's exports, its final export and the next cycle's first one
	// come milliseconds apart.
	cycleInterval = 5 * time.Millisecond
)

// TestShutdownCycles runs demo-like exporter lifetimes back to back against
// one Prometheus 2.42: each cycle is a fresh exporter and MeterProvider with
// a PeriodicReader, records a counter, a gauge and an exponential
// histogram, waits for a periodic export carrying them, records more and
// shuts down (the reader's final export, then the exporter's staleness
// markers). Every cycle writes the same series, so consecutive lifetimes'
// samples meet within milliseconds. Every other cycle shuts down as soon as
// a periodic export with its first values has started: Shutdown then
// usually cancels that export in flight (its request may or may not have
// been stored) and collects the final one in the same millisecond, the
// case that used to end in a "duplicate sample for timestamp" 400.
//
// Every Export and Shutdown must return nil (except a periodic export that
// Shutdown itself cancels), and Prometheus must refuse nothing: its own
// /metrics, before and after, show only 204 answers on /api/v1/write (and,
// without native histograms, one 500 per fresh exporter, the refusal that
// makes it switch to classic histograms, plus at most one per cancelled
// export), and no out-of-order, out-of-bounds or too-old samples, but for
// a cancelled export's request that Prometheus handled after newer samples
// (at most one 400 per cancelled export; seen a few times in a hundred runs
// since an export's requests go side by side). The series then read back with
// every cycle's values in order.
func TestShutdownCycles(t *testing.T) {
	backends := []struct {
		name   string
		start  func(*testing.T) *promServer
		native bool
	}{
		{name: "Prometheus 2.42", start: func(t *testing.T) *promServer { return startPrometheus2(t, promConfig{}) }, native: true},
		{name: "Prometheus 2.42 without native histograms", start: startPrometheus2WithoutNativeHistograms},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.start(t)
			before := s.writeStats(t)
			began := time.Now()
			var interrupted, sameMilli int
			for i := range shutdownCycles {
				r := runCycle(t, s.writeURL(), i, b.native, i%2 == 1)
				if t.Failed() {
					t.Fatalf("cycle %d failed; stopping", i)
				}
				interrupted += r.interrupted
				if r.finalSameMilli {
					sameMilli++
				}
			}
			took := time.Since(began)
			after := s.writeStats(t)
			codes := after.codes.sub(before.codes)
			t.Logf("%d cycles in %v; %d periodic exports cancelled by Shutdown; %d final exports collected in the millisecond of the export before; write answers by status: %v",
				shutdownCycles, took.Round(time.Millisecond), interrupted, sameMilli, codes)

			// Without native histograms every fresh exporter is refused once
			// (500, nothing stored) before it switches; a cancelled export
			// may have been refused without the exporter seeing the answer.
			minRefusals, maxRefusals := 0.0, 0.0
			if !b.native {
				minRefusals, maxRefusals = shutdownCycles, float64(shutdownCycles+interrupted)
			}
			// A request Shutdown cancelled after its body went out is still
			// handled by Prometheus, possibly after the final export's newer
			// samples or the markers arrived on another connection: then it
			// is refused as out of order (400), an answer the exporter never
			// sees. Its values are superseded by those newer samples. At most
			// one such refusal per cancelled export, and only its samples.
			maxLate := float64(interrupted)
			for code, n := range codes {
				switch {
				case code == "204" && n > 0:
				case code == "500" && n >= minRefusals && n <= maxRefusals:
				case code == "400" && n <= maxLate:
				case n != 0:
					t.Errorf("Prometheus answered %v write requests with %s", n, code)
				}
			}
			if codes["204"] == 0 {
				t.Errorf("no write request answered 204: %v", codes)
			}
			if codes["500"] < minRefusals {
				t.Errorf("%v write requests answered 500, want at least %v (one refusal of native histograms per fresh exporter)", codes["500"], minRefusals)
			}
			for name, n := range after.rejected.sub(before.rejected) {
				late := strings.HasPrefix(name, "prometheus_tsdb_out_of_order_samples_total") && n <= codes["400"]*cycleSeries
				if n != 0 && !late {
					t.Errorf("%s rose by %v (%v late requests refused)", name, n, codes["400"])
				}
			}
			if after.appended <= before.appended {
				t.Errorf("prometheus_tsdb_head_samples_appended_total did not rise (%v → %v): is /metrics read right?", before.appended, after.appended)
			}

			// Cycle i's values in order: its first ones (counter 2i+2, gauge
			// i, histogram sum i+1), stored unless the export carrying them
			// was cancelled, then its final ones (2i+3, i+0.5, i+1.5). Stale
			// markers are left out by range queries.
			at := time.Now()
			window := time.Since(began) + time.Minute
			var wantCounter, wantGauge, wantSum []runValue
			for i := range shutdownCycles {
				early := i%2 == 1
				wantCounter = append(wantCounter, runValue{float64(2*i + 2), early}, runValue{float64(2*i + 3), false})
				wantGauge = append(wantGauge, runValue{float64(i), early}, runValue{float64(i) + 0.5, false})
				wantSum = append(wantSum, runValue{float64(i + 1), early}, runValue{float64(i) + 1.5, false})
			}
			compareRun(t, "e2e_cycle_requests_total", values(readOne(t, s, "e2e_cycle_requests_total", at, window)), wantCounter)
			compareRun(t, "e2e_cycle_level", values(readOne(t, s, "e2e_cycle_level", at, window)), wantGauge)

			// The histogram holds one observation (i+1) after the first
			// values, two (sum i+1.5) after the final ones.
			var sums, counts []sample
			if b.native {
				got := s.readRange(t, "e2e_cycle_size_bytes", at, window)
				if len(got.Histograms) != 1 || len(got.Floats) != 0 {
					t.Fatalf("%d native histogram and %d float series, want 1 native histogram", len(got.Histograms), len(got.Floats))
				}
				for _, hs := range got.Histograms {
					for _, h := range hs {
						sums, counts = append(sums, sample{T: h.T, V: h.Sum}), append(counts, sample{T: h.T, V: h.Count})
					}
				}
			} else {
				sums = readOne(t, s, "e2e_cycle_size_bytes_sum", at, window)
				counts = readOne(t, s, "e2e_cycle_size_bytes_count", at, window)
				if inf := readOne(t, s, `e2e_cycle_size_bytes_bucket{le="+Inf"}`, at, window); !samplesEqual(inf, counts) {
					t.Errorf("the +Inf bucket differs from _count:\n\t+Inf   %v\n\t_count %v", inf, counts)
				}
				if got := s.readRange(t, "e2e_cycle_size_bytes", at, window); len(got.Histograms) != 0 {
					t.Errorf("native histograms stored by a server that refuses them: %v", keysOf(got.Histograms))
				}
			}
			compareRun(t, "e2e_cycle_size_bytes sum", values(sums), wantSum)
			if len(sums) != len(counts) {
				t.Fatalf("%d sums, %d counts", len(sums), len(counts))
			}
			for i := range sums {
				want := 2.0
				if sums[i].V == math.Trunc(sums[i].V) {
					want = 1
				}
				if counts[i].T != sums[i].T || counts[i].V != want {
					t.Errorf("histogram at %d: count %v at %d with sum %v, want count %v", sums[i].T, counts[i].V, counts[i].T, sums[i].V, want)
				}
			}
		})
	}
}

// cycleResult is what one exporter lifetime saw.
type cycleResult struct {
	interrupted    int  // periodic exports Shutdown cancelled
	finalSameMilli bool // the final export collected in the previous export's millisecond
}

// runCycle is one exporter lifetime; i numbers the cycle and decides the
// values: counter 2i+2 then 2i+3, gauge i then i+0.5, histogram
// observations i+1 then 0.5.
func runCycle(t *testing.T, endpoint string, i int, native, early bool) cycleResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exp, logs := newExporter(t, endpoint)
	w := &cycleExporter{Exporter: exp, wantCounter: int64(2*i + 2), early: early, first: make(chan struct{})}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(testResource),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(w, sdkmetric.WithInterval(cycleInterval))),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "e2e.cycle.size"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}},
		)),
	)
	meter := mp.Meter(testScope.Name, metric.WithInstrumentationVersion(testScope.Version))
	counter, err1 := meter.Int64Counter("e2e.cycle.requests", metric.WithUnit("{request}"))
	gauge, err2 := meter.Float64Gauge("e2e.cycle.level")
	hist, err3 := meter.Float64Histogram("e2e.cycle.size", metric.WithUnit("By"))
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}

	hist.Record(ctx, float64(i+1))
	gauge.Record(ctx, float64(i))
	counter.Add(ctx, int64(2*i+2))
	// Wait for a periodic export that delivered all three, so that the
	// cycle's first values are stored; or, early, for one that started
	// with them, which Shutdown will then likely cancel in flight.
	select {
	case <-w.first:
	case <-ctx.Done():
		t.Fatalf("cycle %d: no periodic export carried the first values", i)
	}
	hist.Record(ctx, 0.5)
	gauge.Record(ctx, float64(i)+0.5)
	counter.Add(ctx, 1)

	w.shuttingDown.Store(true)
	if err := mp.Shutdown(ctx); err != nil {
		t.Errorf("cycle %d: Shutdown: %v", i, err)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	for _, err := range w.errs {
		t.Errorf("cycle %d: Export: %v", i, err)
	}
	if n := len(w.collected); n < 2 || w.collected[n-1] != int64(2*i+3) {
		t.Errorf("cycle %d: the final export carried counter values %v, want %d last", i, w.collected, 2*i+3)
	}
	refusals := 0
	for _, line := range logs.lines(slog.LevelWarn) {
		switch {
		case strings.Contains(line, "refuses native histograms"):
			refusals++
		case w.interrupted > 0 && strings.Contains(line, "context canceled"):
		default:
			t.Errorf("cycle %d: unexpected warning: %s", i, line)
		}
	}
	want := 1 // the first export with a native histogram is refused, then resent
	if native {
		want = 0
	}
	if refusals != want {
		t.Errorf("cycle %d: %d warnings about refused native histograms, want %d", i, refusals, want)
	}
	n := len(w.times)
	return cycleResult{
		interrupted:    w.interrupted,
		finalSameMilli: n >= 2 && w.times[n-1] == w.times[n-2],
	}
}

// cycleExporter passes exports on to prwmetric and keeps what the test
// needs: errors, the counter value and collection time of each export, and
// a signal once an export delivered the cycle's first values.
type cycleExporter struct {
	*prwmetric.Exporter
	wantCounter  int64
	early        bool          // signal first when an export starts, not when it succeeded
	first        chan struct{} // closed when an export delivered (early: started with) wantCounter and the histogram
	shuttingDown atomic.Bool

	mu          sync.Mutex
	once        sync.Once
	errs        []error // unexpected ones
	interrupted int
	collected   []int64 // counter value per export that carried it
	times       []int64 // collection time (ms) per export that carried the counter
}

func (w *cycleExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	counter, at, hasCounter, hasHist := int64(0), int64(0), false, false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					counter, at, hasCounter = dp.Value, dp.Time.UnixMilli(), true
				}
			case metricdata.ExponentialHistogram[float64]:
				hasHist = len(d.DataPoints) > 0
			}
		}
	}
	carriesFirst := hasCounter && hasHist && counter == w.wantCounter
	if w.early && carriesFirst {
		w.once.Do(func() { close(w.first) })
	}
	err := w.Exporter.Export(ctx, rm)

	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil:
	case w.shuttingDown.Load() && errors.Is(err, context.Canceled):
		// Shutdown stops the reader's loop by cancelling the export in
		// flight, then makes the final export.
		w.interrupted++
	default:
		w.errs = append(w.errs, err)
	}
	if hasCounter {
		w.collected = append(w.collected, counter)
		w.times = append(w.times, at)
	}
	if err == nil && carriesFirst {
		w.once.Do(func() { close(w.first) })
	}
	return err
}

// readOne returns the samples of the one series name selects.
func readOne(t *testing.T, s *promServer, name string, at time.Time, window time.Duration) []sample {
	t.Helper()
	got := s.readRange(t, name, at, window)
	if len(got.Floats) != 1 {
		t.Fatalf("%s: %d series, want 1: %v", name, len(got.Floats), keysOf(got.Floats))
	}
	for _, ss := range got.Floats {
		return ss
	}
	return nil
}

func values(ss []sample) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = s.V
	}
	return out
}

// runValue is one value a series must take, in order; an optional one may
// be missing.
type runValue struct {
	v        float64
	optional bool
}

// compareRun compares a series' values, runs of repeats collapsed, with
// want (whose values differ from their neighbours).
func compareRun(t *testing.T, name string, got []float64, want []runValue) {
	t.Helper()
	got = slices.Compact(slices.Clone(got))
	j := 0
	ok := true
	for _, v := range got {
		for j < len(want) && want[j].v != v && want[j].optional {
			j++
		}
		if j == len(want) || want[j].v != v {
			ok = false
			break
		}
		j++
	}
	for ; ok && j < len(want); j++ {
		ok = want[j].optional
	}
	if !ok {
		t.Errorf("%s: values in order (repeats collapsed)\n\tgot  %v\n\twant %v (optional ones starred)", name, got, renderRun(want))
	}
}

func renderRun(want []runValue) string {
	parts := make([]string, len(want))
	for i, w := range want {
		parts[i] = fmt.Sprint(w.v)
		if w.optional {
			parts[i] += "*"
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// writeStats is what Prometheus' own /metrics says about the writes it
// received.
type writeStats struct {
	codes    counts  // prometheus_http_requests_total{handler="/api/v1/write"} by code
	rejected counts  // samples the TSDB refused, by metric{type}
	appended float64 // prometheus_tsdb_head_samples_appended_total, all types
}

// rejectionCounters count samples the TSDB refused (Prometheus 2.42: the
// head appender's checks, and the exemplar storage's).
var rejectionCounters = []string{
	"prometheus_tsdb_out_of_order_samples_total",
	"prometheus_tsdb_out_of_bound_samples_total",
	"prometheus_tsdb_too_old_samples_total",
	"prometheus_tsdb_exemplar_out_of_order_exemplars_total",
}

type counts map[string]float64

// sub returns c - before for every key of either.
func (c counts) sub(before counts) counts {
	out := counts{}
	for k, v := range c {
		out[k] = v - before[k]
	}
	for k, v := range before {
		if _, ok := c[k]; !ok {
			out[k] = -v
		}
	}
	return out
}

func (s *promServer) writeStats(t *testing.T) writeStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s: GET /metrics: %v", s.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		t.Fatalf("%s: GET /metrics: %s: %s", s.name, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: parse /metrics: %v", s.name, err)
	}
	labels := func(m interface{ GetLabel() []*dto.LabelPair }) map[string]string {
		out := map[string]string{}
		for _, l := range m.GetLabel() {
			out[l.GetName()] = l.GetValue()
		}
		return out
	}
	st := writeStats{codes: counts{}, rejected: counts{}}
	for _, m := range families["prometheus_http_requests_total"].GetMetric() {
		if ls := labels(m); ls["handler"] == "/api/v1/write" {
			st.codes[ls["code"]] += m.GetCounter().GetValue()
		}
	}
	for _, name := range rejectionCounters {
		st.rejected[name] += 0 // absent counts as 0, but is still compared
		for _, m := range families[name].GetMetric() {
			st.rejected[fmt.Sprintf("%s{type=%q}", name, labels(m)["type"])] += m.GetCounter().GetValue()
		}
	}
	for _, m := range families["prometheus_tsdb_head_samples_appended_total"].GetMetric() {
		st.appended += m.GetCounter().GetValue()
	}
	return st
}
