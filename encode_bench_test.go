package prwmetric

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// These benchmarks measure one export of a workload shaped like the
// benchmarks module's W (20 instruments × 500 attribute sets, 15-bucket
// histograms, ≈ 44 000 series) inside the package, so that the encoding
// path can be profiled without the competitors. The receiver is a raw
// HTTP/1.1 responder that allocates nothing per request, so allocations
// per export are the exporter's own.

// benchKind is an instrument kind of a bench workload.
type benchKind int

const (
	benchCounter benchKind = iota
	benchUpDown
	benchGauge
	benchHistogram
)

type benchInstrument struct {
	name, unit string
	kind       benchKind
	float      bool
	bounds     []float64
}

var (
	benchDuration = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	benchSize     = []float64{64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576}
	benchDefault  = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}
)

// benchW are W's instruments: 6 counters, 4 up-down counters, 6 gauges, 4
// histograms with 15 bounds.
var benchW = []benchInstrument{
	{name: "http.server.requests", unit: "{request}", kind: benchCounter},
	{name: "http.server.errors", unit: "{error}", kind: benchCounter},
	{name: "http.server.request.body.size", unit: "By", kind: benchCounter},
	{name: "http.server.response.body.size", unit: "By", kind: benchCounter},
	{name: "app.cache.hits", unit: "{hit}", kind: benchCounter},
	{name: "process.cpu.time", unit: "s", kind: benchCounter, float: true},
	{name: "http.server.active_requests", unit: "{request}", kind: benchUpDown},
	{name: "db.client.connection.count", unit: "{connection}", kind: benchUpDown},
	{name: "messaging.queue.depth", unit: "{message}", kind: benchUpDown},
	{name: "app.memory.reserved", unit: "By", kind: benchUpDown, float: true},
	{name: "app.temperature", unit: "Cel", kind: benchGauge, float: true},
	{name: "app.cache.hit_ratio", unit: "1", kind: benchGauge, float: true},
	{name: "app.workers.busy", unit: "{worker}", kind: benchGauge},
	{name: "app.heap.size", unit: "By", kind: benchGauge},
	{name: "app.config.generation", unit: "{generation}", kind: benchGauge},
	{name: "system.load.average", unit: "1", kind: benchGauge, float: true},
	{name: "http.server.request.duration", unit: "s", kind: benchHistogram, float: true, bounds: benchDuration},
	{name: "http.server.response.size", unit: "By", kind: benchHistogram, float: true, bounds: benchSize},
	{name: "db.client.operation.duration", unit: "s", kind: benchHistogram, float: true, bounds: benchDuration},
	{name: "rpc.client.duration", unit: "ms", kind: benchHistogram, float: true, bounds: benchDefault},
}

// benchLarge is 10 counters and 10 gauges, one series per point.
func benchLarge() []benchInstrument {
	var out []benchInstrument
	for i := range 10 {
		out = append(out, benchInstrument{name: fmt.Sprintf("app.jobs.processed.%02d", i), unit: "{job}", kind: benchCounter})
	}
	for i := range 10 {
		out = append(out, benchInstrument{name: fmt.Sprintf("app.queue.fill.%02d", i), unit: "1", kind: benchGauge, float: true})
	}
	return out
}

// benchData renders instruments × sets attribute sets as the SDK would,
// and returns the number of Prometheus series an export yields.
func benchData(instruments []benchInstrument, sets int, at time.Time) (*metricdata.ResourceMetrics, int) {
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	codes := []int{200, 201, 404, 500}
	attrs := make([]attribute.Set, sets)
	for i := range attrs {
		attrs[i] = attribute.NewSet(
			attribute.String("http.request.method", methods[i%5]),
			attribute.Int("http.response.status_code", codes[(i/5)%4]),
			attribute.String("http.route", fmt.Sprintf("/api/v1/catalog/items/%04d/{id}", i/20)),
			attribute.String("network.protocol.version", "1.1"),
		)
	}
	start := at.Add(-time.Hour)
	series := 1 // target_info
	ms := make([]metricdata.Metrics, len(instruments))
	for m, in := range instruments {
		ms[m] = metricdata.Metrics{Name: in.name, Unit: in.unit, Description: "Bench instrument " + in.name + "."}
		switch {
		case in.kind == benchHistogram:
			dps := make([]metricdata.HistogramDataPoint[float64], sets)
			for i := range dps {
				counts := make([]uint64, len(in.bounds)+1)
				var total uint64
				for k := range counts {
					counts[k] = uint64((i*7 + k*3 + m) % 5)
					total += counts[k]
				}
				dps[i] = metricdata.HistogramDataPoint[float64]{
					Attributes: attrs[i], StartTime: start, Time: at, Count: total, Bounds: in.bounds,
					BucketCounts: counts, Sum: float64(i) * 1.5, Min: metricdata.NewExtrema(0.5), Max: metricdata.NewExtrema(9.5),
				}
			}
			ms[m].Data = metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality, DataPoints: dps}
			series += sets * (len(in.bounds) + 3)
		case in.float:
			ms[m].Data = benchNumbers[float64](in, m, sets, attrs, start, at)
			series += sets
		default:
			ms[m].Data = benchNumbers[int64](in, m, sets, attrs, start, at)
			series += sets
		}
	}
	return &metricdata.ResourceMetrics{
		Resource: resource.NewSchemaless(
			attribute.String("service.name", "checkout"),
			attribute.String("service.namespace", "shop"),
			attribute.String("service.instance.id", "checkout-7d9f8b6c5-x2x4p"),
			attribute.String("host.name", "ip-10-0-12-34.eu-west-1.compute.internal"),
			attribute.String("deployment.environment", "production"),
			attribute.String("cloud.region", "eu-west-1"),
		),
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope:   instrumentation.Scope{Name: "github.com/prwmetric/prwmetric/benchmarks", Version: "v1.0.0"},
			Metrics: ms,
		}},
	}, series
}

func benchNumbers[N int64 | float64](in benchInstrument, m, sets int, attrs []attribute.Set, start, at time.Time) metricdata.Aggregation {
	dps := make([]metricdata.DataPoint[N], sets)
	for i := range dps {
		dps[i] = metricdata.DataPoint[N]{Attributes: attrs[i], StartTime: start, Time: at, Value: N(1000 + 37*i + 1009*m)}
	}
	if in.kind == benchGauge {
		return metricdata.Gauge[N]{DataPoints: dps}
	}
	return metricdata.Sum[N]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: in.kind == benchCounter, DataPoints: dps}
}

// benchSetTime moves every data point of rm to at, so that each export
// carries newer samples than the one before.
func benchSetTime(rm *metricdata.ResourceMetrics, at time.Time) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for i := range d.DataPoints {
					d.DataPoints[i].Time = at
				}
			case metricdata.Sum[float64]:
				for i := range d.DataPoints {
					d.DataPoints[i].Time = at
				}
			case metricdata.Gauge[int64]:
				for i := range d.DataPoints {
					d.DataPoints[i].Time = at
				}
			case metricdata.Gauge[float64]:
				for i := range d.DataPoints {
					d.DataPoints[i].Time = at
				}
			case metricdata.Histogram[float64]:
				for i := range d.DataPoints {
					d.DataPoints[i].Time = at
				}
			}
		}
	}
}

// benchReceiver is a minimal HTTP/1.1 server on 127.0.0.1 that reads each
// request body and answers 204, allocating nothing per request.
type benchReceiver struct {
	ln       net.Listener
	wg       sync.WaitGroup
	requests atomic.Int64
	wire     atomic.Int64
	raw      atomic.Int64
}

func newBenchReceiver(tb testing.TB) *benchReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &benchReceiver{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.serve(conn)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		r.wg.Wait()
	})
	return r
}

func (r *benchReceiver) url() string { return "http://" + r.ln.Addr().String() + "/api/v1/write" }

func (r *benchReceiver) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 64<<10)
	body := make([]byte, 1<<20)
	for {
		length := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			line = bytes.TrimRight(line, "\r\n")
			if len(line) == 0 {
				break
			}
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
				n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
				if err != nil {
					return
				}
				length = n
			}
		}
		if length < 0 {
			return
		}
		if length > len(body) {
			body = make([]byte, length)
		}
		if _, err := io.ReadFull(br, body[:length]); err != nil {
			return
		}
		if n, err := snappy.DecodedLen(body[:length]); err == nil {
			r.raw.Add(int64(n))
		}
		r.requests.Add(1)
		r.wire.Add(int64(length))
		if _, err := io.WriteString(conn, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
			return
		}
	}
}

func benchExporter(tb testing.TB, url string, opts ...Option) *Exporter {
	tb.Helper()
	exp, err := New(append([]Option{WithEndpoint(url), WithoutEnvironment(), WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// benchCPU returns the CPU time (user and system) of the process so far:
// on a shared machine it varies less than the wall-clock time.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchAllocs returns the heap allocations (count, bytes) so far.
func benchAllocs() (uint64, uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs, ms.TotalAlloc
}

func benchExport(b *testing.B, instruments []benchInstrument, sets int, opts ...Option) {
	at := time.Unix(1_750_000_000, 0)
	rm, series := benchData(instruments, sets, at)
	rcv := newBenchReceiver(b)
	exp := benchExporter(b, rcv.url(), opts...)
	ctx := context.Background()
	for range 2 { // connections, caches
		at = at.Add(15 * time.Second)
		benchSetTime(rm, at)
		if err := exp.Export(ctx, rm); err != nil {
			b.Fatal(err)
		}
	}
	reqs, wire, raw := rcv.requests.Load(), rcv.wire.Load(), rcv.raw.Load()
	m0, by0 := benchAllocs()
	cpu0 := benchCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at = at.Add(15 * time.Second)
		benchSetTime(rm, at)
		if err := exp.Export(ctx, rm); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := benchCPU() - cpu0
	m1, by1 := benchAllocs()
	n := float64(b.N)
	b.ReportMetric(float64(cpu.Nanoseconds())/n/float64(series), "cpu-ns/series")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n/float64(series), "ns/series")
	b.ReportMetric(float64(m1-m0)/n/float64(series), "allocs/series")
	b.ReportMetric(float64(by1-by0)/n/float64(series), "B/series")
	b.ReportMetric(float64(rcv.wire.Load()-wire)/n, "wire-B/op")
	b.ReportMetric(float64(rcv.raw.Load()-raw)/n, "raw-B/op")
	b.ReportMetric(float64(rcv.requests.Load()-reqs)/n, "requests/op")
}

// BenchmarkExportW is one export of W with the default options (2000 series
// per request) to a loopback receiver.
func BenchmarkExportW(b *testing.B) { benchExport(b, benchW, 500) }

// BenchmarkExportWOneRequest is W in a single request, which shows the
// per-request cost of the HTTP client apart from the encoding.
func BenchmarkExportWOneRequest(b *testing.B) {
	benchExport(b, benchW, 500, WithMaxSeriesPerRequest(1<<20), WithMaxRequestBytes(1<<30))
}

// BenchmarkSnappyFloorW is snappy.Encode of W's payload (one write request
// of all series, as the reference rules marshals it): the floor no
// remote-write exporter can go below.
func BenchmarkSnappyFloorW(b *testing.B) {
	rm, series := benchData(benchW, 500, time.Unix(1_750_000_000, 0))
	cfg, err := newConfig([]Option{WithEndpoint("http://127.0.0.1:9/"), WithoutEnvironment()})
	if err != nil {
		b.Fatal(err)
	}
	c, err := newRules(cfg)
	if err != nil {
		b.Fatal(err)
	}
	req, err := c.reference(rm)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := req.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, snappy.MaxEncodedLen(len(raw)))
	b.SetBytes(int64(len(raw)))
	cpu0 := benchCPU()
	b.ResetTimer()
	var out []byte
	for i := 0; i < b.N; i++ {
		out = snappy.Encode(dst, raw)
	}
	b.StopTimer()
	b.ReportMetric(float64((benchCPU()-cpu0).Nanoseconds())/float64(b.N)/float64(series), "cpu-ns/series")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(series), "ns/series")
	b.ReportMetric(float64(len(raw)), "raw-B/op")
	b.ReportMetric(float64(len(out)), "wire-B/op")
}

// BenchmarkExport1M is one export of 1 000 000 series (20 instruments ×
// 50 000 attribute sets, one series each) after one warm-up export, and
// reports its peak heap above the heap before it.
func BenchmarkExport1M(b *testing.B) {
	at := time.Unix(1_750_000_000, 0)
	rm, series := benchData(benchLarge(), 50_000, at)
	rcv := newBenchReceiver(b)
	exp := benchExporter(b, rcv.url(), WithTimeout(10*time.Minute))
	ctx := context.Background()
	// The first export builds the cache.
	runtime.GC()
	before := benchHeap()
	stop := benchSampleHeap()
	start := time.Now()
	if err := exp.Export(ctx, rm); err != nil {
		b.Fatal(err)
	}
	first := time.Since(start)
	firstPeak := stop()
	runtime.GC()
	cached := benchHeap() - min(benchHeap(), before)
	b.ResetTimer()
	var peakGrowth uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		base := benchHeap()
		wire0, raw0 := rcv.wire.Load(), rcv.raw.Load()
		stop := benchSampleHeap()
		b.StartTimer()
		at = at.Add(15 * time.Second)
		benchSetTime(rm, at)
		if err := exp.Export(ctx, rm); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		peak := stop()
		peakGrowth = max(peakGrowth, peak-min(peak, base))
		b.ReportMetric(float64(rcv.raw.Load()-raw0), "raw-B/op")
		b.ReportMetric(float64(rcv.wire.Load()-wire0), "wire-B/op")
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(series), "ns/series")
	b.ReportMetric(float64(peakGrowth), "peak-heap-growth-B")
	b.ReportMetric(float64(first.Milliseconds()), "first-export-ms")
	b.ReportMetric(float64(firstPeak-min(firstPeak, before)), "first-peak-heap-growth-B")
	b.ReportMetric(float64(cached), "cache-heap-B")
}

var benchHeapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

func benchHeap() uint64 {
	metrics.Read(benchHeapSample)
	return benchHeapSample[0].Value.Uint64()
}

// benchSampleHeap samples the live heap every 200µs until the returned
// function is called, which returns the highest value seen.
func benchSampleHeap() func() uint64 {
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-result
	}
}

// BenchmarkStagesW measures the stages of an export of W apart, on one
// goroutine: the cached conversion, the encoding of the requests, and
// their compression; in 1.0, and in 2.0 (encodeV2: the cut, which numbers
// the symbols, and the encoding; compressV2).
func BenchmarkStagesW(b *testing.B) {
	rm, series := benchData(benchW, 500, time.Unix(1_750_000_000, 0))
	cfg, err := newConfig([]Option{WithEndpoint("http://127.0.0.1:9/"), WithoutEnvironment()})
	if err != nil {
		b.Fatal(err)
	}
	c, err := newRules(cfg)
	if err != nil {
		b.Fatal(err)
	}
	sc := newSeriesCache(c, true)
	var bt batch
	convert := func() {
		bt.reset()
		if err := sc.convert(rm, &bt, 0); err != nil {
			b.Fatal(err)
		}
		sc.markDelivered(&bt, bt.allRecords())
	}
	convert()
	buf := make([]byte, 0, 4<<20)
	var raws [][]byte
	var cuts []cut
	encode := func(keep bool) {
		raws = raws[:0]
		cuts = bt.cut(0, defaultMaxSeriesPerRequest, defaultMaxRequestBytes, cuts)
		for _, c := range cuts {
			buf = bt.encode(buf[:0], c)
			if keep {
				raws = append(raws, bytes.Clone(buf))
			}
		}
	}
	perSeries := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(series), "ns/series")
	}
	b.Run("convert", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			convert()
		}
		perSeries(b)
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			encode(false)
		}
		perSeries(b)
	})
	b.Run("compress", func(b *testing.B) {
		encode(true)
		dst := make([]byte, s2.MaxEncodedLen(4<<20))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, raw := range raws {
				s2.EncodeSnappy(dst, raw)
			}
		}
		perSeries(b)
	})

	scV2 := newSeriesCache(c, true)
	scV2.collectV2 = true
	var btV2 batch
	var x v2Scratch
	convertV2 := func() {
		btV2.reset()
		if err := scV2.convert(rm, &btV2, 0); err != nil {
			b.Fatal(err)
		}
		scV2.markDelivered(&btV2, btV2.allRecords())
	}
	encodeV2 := func(keep bool) {
		raws = raws[:0]
		cuts = scV2.cutV2(&btV2, 0, defaultMaxSeriesPerRequest, defaultMaxRequestBytes, &x, cuts, func(c cut, v v2Cut) {
			buf = v.encode(buf[:0], &btV2, c)
			if keep {
				raws = append(raws, bytes.Clone(buf))
			}
		})
	}
	// The first cut numbers every series; the next export's conversion
	// finds them numbered, as in the steady state.
	convertV2()
	encodeV2(false)
	convertV2()
	b.Run("encodeV2", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			encodeV2(false)
		}
		perSeries(b)
	})
	b.Run("compressV2", func(b *testing.B) {
		encodeV2(true)
		dst := make([]byte, s2.MaxEncodedLen(4<<20))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, raw := range raws {
				s2.EncodeSnappy(dst, raw)
			}
		}
		perSeries(b)
	})
}
