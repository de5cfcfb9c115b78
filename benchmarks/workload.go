package benchmarks

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Kind is the kind of an instrument of a Workload.
type Kind int

// The instrument kinds of a Workload.
const (
	Counter Kind = iota
	UpDownCounter
	Gauge
	Histogram
	// ExponentialHistogram is a float64 histogram that a view (see
	// Workload.ProviderOptions) aggregates as a base-2 exponential histogram with the
	// SDK's default limits: at most 160 buckets, scale at most 20.
	ExponentialHistogram
)

// Instrument describes one instrument of a Workload.
type Instrument struct {
	Name, Description, Unit string
	Kind                    Kind
	// Float selects float64 values; int64 otherwise. Histograms (both
	// kinds) are float.
	Float bool
	// Bounds are the explicit bucket boundaries of a Histogram.
	Bounds []float64
}

// observationsPerHistogramPoint is how many values each histogram data
// point has recorded.
const observationsPerHistogramPoint = 8

// Workload is a deterministic set of metrics: every instrument reports one
// data point for every attribute set. The same Workload can be rendered as
// metricdata (ResourceMetrics), as pdata (ToPdata) and recorded into a real
// MeterProvider (Record); all three carry the same values.
type Workload struct {
	Resource    *resource.Resource
	Scope       instrumentation.Scope
	Instruments []Instrument
	Sets        []attribute.Set
	// Start is every data point's start time; Time returns the end times.
	Start time.Time

	// exponential holds, for each ExponentialHistogram instrument (by
	// index), its data points in the order of Sets, as the SDK aggregated
	// them when the workload was made (see exponentialPoints).
	exponential map[int][]metricdata.ExponentialHistogramDataPoint[float64]

	tick atomic.Int64
}

// durationBounds are 15 explicit boundaries for durations in seconds.
var durationBounds = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// sizeBounds are 15 explicit boundaries for sizes in bytes.
var sizeBounds = []float64{64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576}

// defaultBounds are the SDK's default boundaries (15 of them).
var defaultBounds = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}

// wInstruments are the 20 instruments of workload W: 6 counters, 4
// up-down counters, 6 gauges and 4 histograms of 16 buckets (15 bounds).
var wInstruments = []Instrument{
	{Name: "http.server.requests", Description: "Requests served.", Unit: "{request}", Kind: Counter},
	{Name: "http.server.errors", Description: "Requests that failed.", Unit: "{error}", Kind: Counter},
	{Name: "http.server.request.body.size", Description: "Bytes received in request bodies.", Unit: "By", Kind: Counter},
	{Name: "http.server.response.body.size", Description: "Bytes sent in response bodies.", Unit: "By", Kind: Counter},
	{Name: "app.cache.hits", Description: "Cache hits.", Unit: "{hit}", Kind: Counter},
	{Name: "process.cpu.time", Description: "CPU time spent serving.", Unit: "s", Kind: Counter, Float: true},
	{Name: "http.server.active_requests", Description: "Requests in flight.", Unit: "{request}", Kind: UpDownCounter},
	{Name: "db.client.connection.count", Description: "Open database connections.", Unit: "{connection}", Kind: UpDownCounter},
	{Name: "messaging.queue.depth", Description: "Messages waiting.", Unit: "{message}", Kind: UpDownCounter},
	{Name: "app.memory.reserved", Description: "Memory reserved for buffers.", Unit: "By", Kind: UpDownCounter, Float: true},
	{Name: "app.temperature", Description: "Board temperature.", Unit: "Cel", Kind: Gauge, Float: true},
	{Name: "app.cache.hit_ratio", Description: "Share of lookups served from cache.", Unit: "1", Kind: Gauge, Float: true},
	{Name: "app.workers.busy", Description: "Busy workers.", Unit: "{worker}", Kind: Gauge},
	{Name: "app.heap.size", Description: "Heap size.", Unit: "By", Kind: Gauge},
	{Name: "app.config.generation", Description: "Generation of the loaded configuration.", Unit: "{generation}", Kind: Gauge},
	{Name: "system.load.average", Description: "Load average over one minute.", Unit: "1", Kind: Gauge, Float: true},
	{Name: "http.server.request.duration", Description: "Duration of requests.", Unit: "s", Kind: Histogram, Float: true, Bounds: durationBounds},
	{Name: "http.server.response.size", Description: "Size of responses.", Unit: "By", Kind: Histogram, Float: true, Bounds: sizeBounds},
	{Name: "db.client.operation.duration", Description: "Duration of database operations.", Unit: "s", Kind: Histogram, Float: true, Bounds: durationBounds},
	{Name: "rpc.client.duration", Description: "Duration of outgoing calls.", Unit: "ms", Kind: Histogram, Float: true, Bounds: defaultBounds},
}

// WSets is the number of attribute sets of workload W.
const WSets = 500

// NewWorkloadW returns workload W: a resource with 6 attributes, 20
// instruments × 500 attribute sets, 44 000 Prometheus series (plus
// target_info).
func NewWorkloadW() *Workload {
	return NewWorkload(wInstruments, WSets)
}

// NewLargeWorkload returns 20 instruments (10 counters, 10 gauges) × sets
// attribute sets: 20 × sets Prometheus series (plus target_info).
func NewLargeWorkload(sets int) *Workload {
	ins := make([]Instrument, 0, 20)
	for i := range 10 {
		ins = append(ins, Instrument{Name: fmt.Sprintf("app.jobs.processed.%02d", i), Description: "Jobs processed.", Unit: "{job}", Kind: Counter})
	}
	for i := range 10 {
		ins = append(ins, Instrument{Name: fmt.Sprintf("app.queue.fill.%02d", i), Description: "Queue fill level.", Unit: "1", Kind: Gauge, Float: true})
	}
	return NewWorkload(ins, sets)
}

var methods = [...]string{"GET", "POST", "PUT", "DELETE", "PATCH"}

var statusCodes = [...]int{200, 201, 404, 500}

// NewWorkload returns a Workload of the given instruments, each reporting
// nSets attribute sets of 4 HTTP attributes (httpSets).
func NewWorkload(instruments []Instrument, nSets int) *Workload {
	return newWorkload(instruments, httpSets(nSets))
}

// httpSets returns n attribute sets of method, status code, route and
// protocol version. Set i has its own combination of method, status code
// and route, so the sets are distinct for any n.
func httpSets(n int) []attribute.Set {
	sets := make([]attribute.Set, n)
	for i := range sets {
		sets[i] = attribute.NewSet(
			attribute.String("http.request.method", methods[i%len(methods)]),
			attribute.Int("http.response.status_code", statusCodes[(i/len(methods))%len(statusCodes)]),
			attribute.String("http.route", fmt.Sprintf("/api/v1/catalog/items/%04d/{id}", i/(len(methods)*len(statusCodes)))),
			attribute.String("network.protocol.version", "1.1"),
		)
	}
	return sets
}

// newWorkload returns a Workload of the given instruments, each reporting
// every set, under W's resource and scope.
func newWorkload(instruments []Instrument, sets []attribute.Set) *Workload {
	w := &Workload{
		Resource: resource.NewSchemaless(
			attribute.String("service.name", "checkout"),
			attribute.String("service.namespace", "shop"),
			attribute.String("service.instance.id", "checkout-7d9f8b6c5-x2x4p"),
			attribute.String("host.name", "ip-10-0-12-34.eu-west-1.compute.internal"),
			attribute.String("deployment.environment", "production"),
			attribute.String("cloud.region", "eu-west-1"),
		),
		Scope:       instrumentation.Scope{Name: "github.com/prwmetric/prwmetric/benchmarks", Version: "v1.0.0"},
		Instruments: instruments,
		Sets:        sets,
		Start:       time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	if slices.ContainsFunc(instruments, func(in Instrument) bool { return in.Kind == ExponentialHistogram }) {
		exp, err := w.exponentialPoints()
		if err != nil {
			// The workloads are fixed: this is a bug in this module.
			panic(fmt.Sprintf("benchmarks: aggregating the exponential histograms through the SDK: %v", err))
		}
		w.exponential = exp
	}
	return w
}

// Series is the number of Prometheus series one export of w yields in
// Remote Write 1.0 (and 2.0 with classic histograms): one per counter,
// up-down counter and gauge point, buckets+2 per explicit-bucket histogram
// point (every bucket including +Inf, _sum, _count), one native histogram
// per exponential histogram point, and target_info. It is the per-series
// divisor of every library's figures.
func (w *Workload) Series() int {
	samples, histograms := w.Expect(false)
	return samples + histograms
}

// Expect returns how many float samples and how many native histograms one
// export of w carries, target_info included: with nhcb, explicit-bucket
// histograms go as custom-bucket native histograms, one per point, instead
// of classic series.
func (w *Workload) Expect(nhcb bool) (samples, histograms int) {
	for _, in := range w.Instruments {
		switch {
		case in.Kind == ExponentialHistogram, in.Kind == Histogram && nhcb:
			histograms += len(w.Sets)
		case in.Kind == Histogram:
			samples += (len(in.Bounds) + 3) * len(w.Sets)
		default:
			samples += len(w.Sets)
		}
	}
	return samples + 1, histograms
}

// DataPoints is the number of OpenTelemetry data points of w.
func (w *Workload) DataPoints() int {
	return len(w.Instruments) * len(w.Sets)
}

// Has reports whether w has an instrument of kind k.
func (w *Workload) Has(k Kind) bool {
	return slices.ContainsFunc(w.Instruments, func(in Instrument) bool { return in.Kind == k })
}

// Time returns a new end time for the data points, 15 s after the last one
// it returned, so that every export carries newer samples than the last.
func (w *Workload) Time() time.Time {
	return w.Start.Add(time.Minute + time.Duration(w.tick.Add(1))*15*time.Second)
}

// value is the deterministic value of instrument m at attribute set i.
func value(m, i int, in Instrument) float64 {
	switch in.Kind {
	case UpDownCounter:
		v := float64(i%50 - 10)
		if in.Float {
			v *= 1024.5
		}
		return v
	case Gauge:
		if in.Float {
			return 20 + float64(i%100)*0.25 + float64(m)
		}
		return float64(1000 + i%64*m)
	default: // Counter
		v := float64(1000 + 37*i + 1009*m)
		if in.Float {
			v /= 8
		}
		return v
	}
}

// observations are the deterministic values a histogram data point has
// recorded, spread over its buckets, +Inf included. They are multiples of
// 1/1024, so their sum is exact in any order, as the SDK's is.
func observations(m, i int, bounds []float64) []float64 {
	out := make([]float64, observationsPerHistogramPoint)
	for k := range out {
		j := (i*7 + k*3 + m) % (len(bounds) + 2)
		if j < len(bounds) {
			out[k] = math.Round(bounds[j]*0.75*1024) / 1024
		} else {
			out[k] = bounds[len(bounds)-1] * float64(j-len(bounds)+2)
		}
	}
	return out
}

// ResourceMetrics renders w as the SDK's metric data, as a cumulative
// PeriodicReader would hand it to an exporter, with end time at.
func (w *Workload) ResourceMetrics(at time.Time) *metricdata.ResourceMetrics {
	ms := make([]metricdata.Metrics, len(w.Instruments))
	for m, in := range w.Instruments {
		ms[m] = metricdata.Metrics{Name: in.Name, Description: in.Description, Unit: in.Unit, Data: w.aggregation(m, in, at)}
	}
	return &metricdata.ResourceMetrics{
		Resource:     w.Resource,
		ScopeMetrics: []metricdata.ScopeMetrics{{Scope: w.Scope, Metrics: ms}},
	}
}

func (w *Workload) aggregation(m int, in Instrument, at time.Time) metricdata.Aggregation {
	switch {
	case in.Kind == ExponentialHistogram:
		dps := slices.Clone(w.exponential[m])
		for i := range dps {
			dps[i].StartTime, dps[i].Time = w.Start, at
		}
		return metricdata.ExponentialHistogram[float64]{DataPoints: dps, Temporality: metricdata.CumulativeTemporality}
	case in.Kind == Histogram:
		dps := make([]metricdata.HistogramDataPoint[float64], len(w.Sets))
		for i := range dps {
			dps[i] = histogramPoint(m, i, in.Bounds)
			dps[i].Attributes, dps[i].StartTime, dps[i].Time = w.Sets[i], w.Start, at
		}
		return metricdata.Histogram[float64]{DataPoints: dps, Temporality: metricdata.CumulativeTemporality}
	case in.Float:
		return numberAggregation[float64](w, m, in, at)
	default:
		return numberAggregation[int64](w, m, in, at)
	}
}

func numberAggregation[N int64 | float64](w *Workload, m int, in Instrument, at time.Time) metricdata.Aggregation {
	dps := make([]metricdata.DataPoint[N], len(w.Sets))
	for i := range dps {
		dps[i] = metricdata.DataPoint[N]{Attributes: w.Sets[i], StartTime: w.Start, Time: at, Value: N(value(m, i, in))}
	}
	if in.Kind == Gauge {
		return metricdata.Gauge[N]{DataPoints: dps}
	}
	return metricdata.Sum[N]{DataPoints: dps, Temporality: metricdata.CumulativeTemporality, IsMonotonic: in.Kind == Counter}
}

// histogramPoint aggregates the observations as the SDK does: a value
// equal to a boundary falls into the bucket that boundary closes.
func histogramPoint(m, i int, bounds []float64) metricdata.HistogramDataPoint[float64] {
	counts := make([]uint64, len(bounds)+1)
	var sum float64
	obs := observations(m, i, bounds)
	lo, hi := obs[0], obs[0]
	for _, v := range obs {
		counts[sort.SearchFloat64s(bounds, v)]++
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	return metricdata.HistogramDataPoint[float64]{
		Count:        uint64(len(obs)),
		Bounds:       bounds,
		BucketCounts: counts,
		Min:          metricdata.NewExtrema(lo),
		Max:          metricdata.NewExtrema(hi),
		Sum:          sum,
	}
}

// SetTime sets the end time of every data point of rm, and the time of
// its exemplars, to at, in place.
func SetTime(rm *metricdata.ResourceMetrics, at time.Time) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				setPointTime(d.DataPoints, at)
			case metricdata.Sum[float64]:
				setPointTime(d.DataPoints, at)
			case metricdata.Gauge[int64]:
				setPointTime(d.DataPoints, at)
			case metricdata.Gauge[float64]:
				setPointTime(d.DataPoints, at)
			case metricdata.Histogram[float64]:
				for i := range d.DataPoints {
					d.DataPoints[i].Time = at
					setExemplarTime(d.DataPoints[i].Exemplars, at)
				}
			case metricdata.ExponentialHistogram[float64]:
				for i := range d.DataPoints {
					d.DataPoints[i].Time = at
				}
			}
		}
	}
}

func setPointTime[N int64 | float64](dps []metricdata.DataPoint[N], at time.Time) {
	for i := range dps {
		dps[i].Time = at
		setExemplarTime(dps[i].Exemplars, at)
	}
}

func setExemplarTime[N int64 | float64](ex []metricdata.Exemplar[N], at time.Time) {
	for i := range ex {
		ex[i].Time = at
	}
}

// Record creates w's instruments on a meter of mp and records w's values
// into them: a MeterProvider with a cumulative reader and w.ProviderOptions
// then holds
// the same data as ResourceMetrics returns (bar timestamps and order).
func (w *Workload) Record(ctx context.Context, mp metric.MeterProvider) error {
	return w.record(ctx, mp, func(Instrument) bool { return true })
}

// record is Record for the instruments that keep says to.
func (w *Workload) record(ctx context.Context, mp metric.MeterProvider, keep func(Instrument) bool) error {
	meter := mp.Meter(w.Scope.Name, metric.WithInstrumentationVersion(w.Scope.Version))
	for m, in := range w.Instruments {
		if !keep(in) {
			continue
		}
		record, err := newRecorder(meter, in)
		if err != nil {
			return fmt.Errorf("instrument %s: %w", in.Name, err)
		}
		for i, set := range w.Sets {
			opt := metric.WithAttributeSet(set)
			var obs []float64
			switch in.Kind {
			case Histogram:
				obs = observations(m, i, in.Bounds)
			case ExponentialHistogram:
				obs = exponentialObservations(m, i)
			default:
				record(ctx, value(m, i, in), opt)
			}
			for _, v := range obs {
				record(ctx, v, opt)
			}
		}
	}
	return nil
}

// exponentialAggregation is the SDK's default base-2 exponential histogram.
var exponentialAggregation = sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}

// ProviderOptions are the MeterProvider options every MeterProvider that
// records w needs, so that it aggregates as ResourceMetrics has it: views
// that make w's ExponentialHistogram instruments exponential histograms,
// and no cardinality limit (the SDK's default of 2 000 attribute sets per
// instrument would fold the 1M-series workload's 50 000 into an overflow
// series).
func (w *Workload) ProviderOptions() []sdkmetric.Option {
	var views []sdkmetric.View
	for _, in := range w.Instruments {
		if in.Kind == ExponentialHistogram {
			views = append(views, sdkmetric.NewView(sdkmetric.Instrument{Name: in.Name}, sdkmetric.Stream{Aggregation: exponentialAggregation}))
		}
	}
	return []sdkmetric.Option{sdkmetric.WithView(views...), sdkmetric.WithCardinalityLimit(0), sdkmetric.WithResource(w.Resource)}
}

// exponentialPoints records w's exponential histogram observations into a
// MeterProvider and collects them: the SDK computes the scale and buckets,
// so the data is exactly what it hands an exporter. The points are returned
// per instrument, in the order of w.Sets.
func (w *Workload) exponentialPoints() (map[int][]metricdata.ExponentialHistogramDataPoint[float64], error) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(append(w.ProviderOptions(), sdkmetric.WithReader(reader))...)
	defer func() { _ = mp.Shutdown(ctx) }()
	if err := w.record(ctx, mp, func(in Instrument) bool { return in.Kind == ExponentialHistogram }); err != nil {
		return nil, err
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return nil, err
	}
	index := make(map[attribute.Distinct]int, len(w.Sets))
	for i, set := range w.Sets {
		index[set.Equivalent()] = i
	}
	byName := make(map[string]int, len(w.Instruments))
	for m, in := range w.Instruments {
		byName[in.Name] = m
	}
	out := make(map[int][]metricdata.ExponentialHistogramDataPoint[float64])
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			d, ok := mt.Data.(metricdata.ExponentialHistogram[float64])
			if !ok {
				return nil, fmt.Errorf("instrument %s: the SDK aggregated it as %T", mt.Name, mt.Data)
			}
			if len(d.DataPoints) != len(w.Sets) {
				return nil, fmt.Errorf("instrument %s: %d points, want %d", mt.Name, len(d.DataPoints), len(w.Sets))
			}
			dps := make([]metricdata.ExponentialHistogramDataPoint[float64], len(w.Sets))
			for _, dp := range d.DataPoints {
				dps[index[dp.Attributes.Equivalent()]] = dp
			}
			out[byName[mt.Name]] = dps
		}
	}
	return out, nil
}

// exponentialObservationsPerPoint is how many values each exponential
// histogram point has recorded.
const exponentialObservationsPerPoint = 24

// exponentialObservations are the values exponential histogram m has
// recorded at attribute set i: spread over 15 octaves from 1 ms, so that
// the SDK settles on scale 3 (8 buckets per octave, 120 wide).
func exponentialObservations(m, i int) []float64 {
	out := make([]float64, exponentialObservationsPerPoint)
	for k := range out {
		out[k] = 0.001 * math.Exp2(float64((i*7+k*11+m*5)%121)/8)
	}
	return out
}

type recordFunc func(ctx context.Context, v float64, opt metric.MeasurementOption)

func newRecorder(meter metric.Meter, in Instrument) (recordFunc, error) {
	desc, unit := metric.WithDescription(in.Description), metric.WithUnit(in.Unit)
	switch {
	case in.Kind == ExponentialHistogram:
		h, err := meter.Float64Histogram(in.Name, desc, unit)
		return func(ctx context.Context, v float64, opt metric.MeasurementOption) { h.Record(ctx, v, opt) }, err
	case in.Kind == Histogram:
		h, err := meter.Float64Histogram(in.Name, desc, unit, metric.WithExplicitBucketBoundaries(in.Bounds...))
		return func(ctx context.Context, v float64, opt metric.MeasurementOption) { h.Record(ctx, v, opt) }, err
	case in.Kind == Counter && in.Float:
		c, err := meter.Float64Counter(in.Name, desc, unit)
		return func(ctx context.Context, v float64, opt metric.MeasurementOption) { c.Add(ctx, v, opt) }, err
	case in.Kind == Counter:
		c, err := meter.Int64Counter(in.Name, desc, unit)
		return func(ctx context.Context, v float64, opt metric.MeasurementOption) { c.Add(ctx, int64(v), opt) }, err
	case in.Kind == UpDownCounter && in.Float:
		c, err := meter.Float64UpDownCounter(in.Name, desc, unit)
		return func(ctx context.Context, v float64, opt metric.MeasurementOption) { c.Add(ctx, v, opt) }, err
	case in.Kind == UpDownCounter:
		c, err := meter.Int64UpDownCounter(in.Name, desc, unit)
		return func(ctx context.Context, v float64, opt metric.MeasurementOption) { c.Add(ctx, int64(v), opt) }, err
	case in.Kind == Gauge && in.Float:
		g, err := meter.Float64Gauge(in.Name, desc, unit)
		return func(ctx context.Context, v float64, opt metric.MeasurementOption) { g.Record(ctx, v, opt) }, err
	case in.Kind == Gauge:
		g, err := meter.Int64Gauge(in.Name, desc, unit)
		return func(ctx context.Context, v float64, opt metric.MeasurementOption) { g.Record(ctx, int64(v), opt) }, err
	default:
		return nil, fmt.Errorf("unknown kind %d", in.Kind)
	}
}
