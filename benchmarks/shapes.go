package benchmarks

import (
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// A Shape is one workload of the comparison: every library exports it in
// the same run, in the benchmark named Bench.
type Shape struct {
	// Name names the shape in tests and RESULTS.md.
	Name string
	// Key names it in the names of benchmarks that run several shapes.
	Key string
	// Bench is the benchmark that exports it; its sub-benchmarks are the
	// libraries.
	Bench string
	// New returns the workload with sets attribute sets per instrument;
	// Sets is the benchmarked size. Tests make smaller ones of the same
	// instruments.
	New  func(sets int) *Workload
	Sets int
	// Warmups are the exports before the timer starts: the first opens
	// connections and fills what a library caches, so that the benchmark
	// measures the steady state that follows.
	Warmups int
}

// The shapes, in the order of RESULTS.md. Apart from ShapeMillion they are
// sized like W, 40 000 to 45 000 series.
var (
	// ShapeW is workload W: 6 counters, 4 up-down counters, 6 gauges and
	// 4 histograms with 15 bounds × 500 HTTP attribute sets; 44 001 series.
	ShapeW = &Shape{Name: "W", Key: "W", Bench: "BenchmarkExport", New: func(sets int) *Workload { return NewWorkload(wInstruments, sets) }, Sets: WSets, Warmups: 2}
	// ShapeCounterHeavy is W with more counters and fewer gauges: 10
	// counters, 4 up-down counters, 2 gauges, the same 4 histograms × 500
	// sets; 44 001 series.
	ShapeCounterHeavy = &Shape{Name: "W, counter-heavy", Key: "counter_heavy", Bench: "BenchmarkExportCounterHeavy", New: func(sets int) *Workload { return NewWorkload(counterHeavyInstruments, sets) }, Sets: WSets, Warmups: 2}
	// ShapeCounters is counters alone with wide label sets: 20 counters ×
	// 2 200 sets of 10 attributes with 40-60 character values; 44 001
	// series.
	ShapeCounters = &Shape{Name: "counters, 10 long labels", Key: "counters", Bench: "BenchmarkExportCounters", New: NewCountersWorkload, Sets: 2200, Warmups: 2}
	// ShapeHistograms is histograms alone: 6 explicit-bucket histograms
	// with 30 bounds and 4 exponential histograms × 200 sets; 40 401 series
	// (39 600 classic, 800 native, target_info).
	ShapeHistograms = &Shape{Name: "histograms", Key: "histograms", Bench: "BenchmarkExportHistograms", New: NewHistogramsWorkload, Sets: 200, Warmups: 2}
	// ShapeManyMetrics is many metrics of few points: 2 000 instruments
	// (counters, up-down counters, gauges) × 20 sets; 40 001 series.
	ShapeManyMetrics = &Shape{Name: "many metrics", Key: "many_metrics", Bench: "BenchmarkExportManyMetrics", New: NewManyMetricsWorkload, Sets: 20, Warmups: 2}
	// ShapeMillion is the large export: 10 counters and 10 gauges × 50 000
	// sets; 1 000 001 series. One warm-up, since each export takes seconds.
	ShapeMillion = &Shape{Name: "1M series", Key: "1M", Bench: "BenchmarkExportMillion", New: NewLargeWorkload, Sets: largeSets, Warmups: 1}
)

// Shapes are all shapes, in the order of RESULTS.md.
var Shapes = []*Shape{ShapeW, ShapeCounterHeavy, ShapeCounters, ShapeHistograms, ShapeManyMetrics, ShapeMillion}

// largeSets makes the large workload 20 instruments × 50 000 attribute
// sets: 1 000 000 series.
const largeSets = 50_000

// counterHeavyInstruments are W's instruments with 4 of its 6 gauges
// replaced by counters.
var counterHeavyInstruments = func() []Instrument {
	ins := append([]Instrument(nil), wInstruments[:10]...) // 6 counters, 4 up-down counters
	ins = append(ins,
		Instrument{Name: "http.client.requests", Description: "Requests sent.", Unit: "{request}", Kind: Counter},
		Instrument{Name: "messaging.messages.consumed", Description: "Messages consumed.", Unit: "{message}", Kind: Counter},
		Instrument{Name: "app.jobs.completed", Description: "Jobs completed.", Unit: "{job}", Kind: Counter},
		Instrument{Name: "process.disk.io", Description: "Bytes read and written.", Unit: "By", Kind: Counter, Float: true},
	)
	ins = append(ins, wInstruments[10:12]...) // 2 gauges
	return append(ins, wInstruments[16:]...)  // 4 histograms
}()

// NewCountersWorkload returns 20 counters (5 of them float) × sets
// attribute sets of 10 attributes with long values (longSets).
func NewCountersWorkload(sets int) *Workload {
	ins := make([]Instrument, 20)
	for k := range ins {
		ins[k] = Instrument{
			Name:        fmt.Sprintf("app.pipeline.stage_%02d.records", k),
			Description: fmt.Sprintf("Records processed by pipeline stage %d.", k),
			Unit:        "{record}",
			Kind:        Counter,
			Float:       k%4 == 3,
		}
	}
	return newWorkload(ins, longSets(sets))
}

// longAttributes are the 10 attributes of longSets: key, the start of the
// value, and how many distinct values the attribute takes (0: one per set,
// which keeps the sets distinct).
var longAttributes = []struct {
	key, prefix string
	distinct    int
}{
	{"k8s.cluster.name", "prod-eu-west-1-primary-kubernetes-cluster-", 1},
	{"k8s.namespace.name", "payments-checkout-and-order-processing-", 4},
	{"k8s.deployment.name", "checkout-service-api-gateway-deployment-", 10},
	{"k8s.node.name", "ip-10-0-12-34.eu-west-1.compute.internal-", 25},
	{"container.image.name", "registry.example.com/platform/checkout-service-", 3},
	{"service.version", "v2.31.4-build.20250101.abcdef0123456789-", 5},
	{"http.route", "/api/v2/catalog/products/{product_id}/variants-", 40},
	{"server.address", "checkout-api.payments.svc.cluster.local-", 8},
	{"user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36-", 12},
	{"k8s.pod.name", "checkout-service-api-gateway-deployment-7d9f8b6c5-", 0},
}

// longSets returns n attribute sets of the 10 longAttributes. The value of
// attribute j in set i is its prefix and a number, padded or cut to a
// length between 40 and 60 characters that varies with the value.
func longSets(n int) []attribute.Set {
	const pad = "-abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz"
	sets := make([]attribute.Set, n)
	kvs := make([]attribute.KeyValue, len(longAttributes))
	for i := range sets {
		for j, a := range longAttributes {
			v := i
			if a.distinct > 0 {
				v = i % a.distinct
			}
			length := 40 + (7*j+3*v)%21
			num := fmt.Sprintf("%06d", v)
			s := a.prefix[:min(len(a.prefix), length-len(num))] + num
			s += pad[:length-len(s)]
			kvs[j] = attribute.String(a.key, s)
		}
		sets[i] = attribute.NewSet(kvs...)
	}
	return sets
}

// durationBounds30 are 30 explicit boundaries for durations in seconds.
var durationBounds30 = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1,
	0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1, 1.5,
	2, 2.5, 3, 4, 5, 7.5, 10, 15, 30, 60,
}

// sizeBounds30 are 30 explicit boundaries for sizes in bytes: 64 B to
// 32 GiB in powers of two.
var sizeBounds30 = func() []float64 {
	b := make([]float64, 30)
	for k := range b {
		b[k] = float64(int64(64) << k)
	}
	return b
}()

// NewHistogramsWorkload returns 6 explicit-bucket histograms with 30 bounds
// and 4 exponential histograms × sets HTTP attribute sets.
func NewHistogramsWorkload(sets int) *Workload {
	h := func(name, desc, unit string, bounds []float64) Instrument {
		return Instrument{Name: name, Description: desc, Unit: unit, Kind: Histogram, Float: true, Bounds: bounds}
	}
	e := func(name, desc, unit string) Instrument {
		return Instrument{Name: name, Description: desc, Unit: unit, Kind: ExponentialHistogram, Float: true}
	}
	return NewWorkload([]Instrument{
		h("http.server.request.duration", "Duration of requests.", "s", durationBounds30),
		h("http.server.response.body.size", "Size of response bodies.", "By", sizeBounds30),
		h("db.client.operation.duration", "Duration of database operations.", "s", durationBounds30),
		h("messaging.process.duration", "Duration of message processing.", "s", durationBounds30),
		h("rpc.server.request.size", "Size of incoming calls.", "By", sizeBounds30),
		h("rpc.client.duration", "Duration of outgoing calls.", "s", durationBounds30),
		e("http.client.request.duration", "Duration of outgoing requests.", "s"),
		e("app.job.duration", "Duration of background jobs.", "s"),
		e("cache.lookup.duration", "Duration of cache lookups.", "s"),
		e("queue.wait.duration", "Time messages waited in the queue.", "s"),
	}, sets)
}

// manyMetrics is the number of instruments of NewManyMetricsWorkload.
const manyMetrics = 2000

// NewManyMetricsWorkload returns 2 000 instruments × sets HTTP attribute
// sets: per component, an int and a float counter, an up-down counter and
// a gauge, each with its own description and unit.
func NewManyMetricsWorkload(sets int) *Workload {
	kinds := []struct {
		suffix, desc, unit string
		kind               Kind
		float              bool
	}{
		{"operations", "Operations handled by component %d.", "{operation}", Counter, false},
		{"cpu.time", "CPU time spent by component %d.", "s", Counter, true},
		{"inflight", "Operations in flight in component %d.", "{operation}", UpDownCounter, false},
		{"utilization", "Utilization of component %d.", "1", Gauge, true},
	}
	ins := make([]Instrument, manyMetrics)
	for k := range ins {
		c := kinds[k%len(kinds)]
		ins[k] = Instrument{
			Name:        fmt.Sprintf("app.component_%03d.%s", k/len(kinds), c.suffix),
			Description: fmt.Sprintf(c.desc, k/len(kinds)),
			Unit:        c.unit,
			Kind:        c.kind,
			Float:       c.float,
		}
	}
	return NewWorkload(ins, sets)
}

// describe says what a workload is made of, for test failures.
func describe(w *Workload) string {
	count := map[Kind]int{}
	for _, in := range w.Instruments {
		count[in.Kind]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d instruments (%d counters, %d up-down counters, %d gauges, %d histograms, %d exponential) × %d sets",
		len(w.Instruments), count[Counter], count[UpDownCounter], count[Gauge], count[Histogram], count[ExponentialHistogram], len(w.Sets))
	return b.String()
}
