package benchmarks

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/prwmetric/prwmetric/internal/pdataconv"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestMain runs the test binary as a receiver process when ReceiverEnv
// says so, and otherwise runs the tests and benchmarks, then stops the
// shared receiver process.
func TestMain(m *testing.M) {
	if os.Getenv(ReceiverEnv) == "1" {
		if err := ServeReceiver(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if sharedReceiver.r != nil {
		if err := sharedReceiver.r.Close(); err != nil && code == 0 {
			fmt.Fprintln(os.Stderr, "stopping the receiver process:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var sharedReceiver struct {
	once sync.Once
	r    *Receiver
	err  error
}

// receiver returns the receiver process shared by all benchmarks, starting
// it on first use. Benchmarks read its Stats before and after their loop.
func receiver(tb testing.TB) *Receiver {
	tb.Helper()
	sharedReceiver.once.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			sharedReceiver.err = err
			return
		}
		sharedReceiver.r, sharedReceiver.err = StartReceiver(exe)
	})
	if sharedReceiver.err != nil {
		tb.Fatal(sharedReceiver.err)
	}
	return sharedReceiver.r
}

// fixture is a workload in every form the libraries take it, built once
// per benchmark and reused: the push benchmarks move its timestamps forward
// before each export, so every export carries newer samples than the one
// before.
type fixture struct {
	w       *Workload
	rm      *metricdata.ResourceMetrics
	warmups int
	// pdata is the Collector's form, made on first use: the 1M-series
	// benchmarks that do not need it should not hold it.
	pdata func() pmetric.Metrics
}

func newFixture(w *Workload, warmups int) *fixture {
	rm := w.ResourceMetrics(w.Time())
	return &fixture{w: w, rm: rm, warmups: warmups, pdata: sync.OnceValue(func() pmetric.Metrics { return pdataconv.ToPdata(rm) })}
}

// shapeFixture is s at its benchmarked size.
func shapeFixture(s *Shape) *fixture { return newFixture(s.New(s.Sets), s.Warmups) }

// exportFunc is one export by one library, as its benchmark measures it.
type exportFunc func(ctx context.Context) error

// output is what a library's export produces, for the tests that decode it.
type output int

const (
	outRemoteWrite     output = iota // Remote Write 1.0 requests
	outRemoteWriteV2                 // Remote Write 2.0 requests
	outOTLP                          // OTLP/HTTP protobuf requests
	outOTLPGzip                      // the same, gzip-compressed
	outExposition                    // a scrape: text, or delimited protobuf with native histograms
	outSnappy                        // snappy blocks of prwmetric's payload, one Write each
	outRemoteWriteZstd               // Remote Write 1.0 requests compressed with zstd (VictoriaMetrics protocol)
)

// A peer is one library of the comparison, or one way of using one. The
// benchmarks run its export against the receiver process, the tests against
// an in-process receiver that keeps what it received.
type peer struct {
	name string
	out  output
	// push sets the library up to send fx to url and returns one export.
	push func(tb testing.TB, fx *fixture, url string) exportFunc
	// local sets up a library that does not send: each export writes its
	// output to out. extra are per-export figures to report.
	local func(tb testing.TB, fx *fixture, out io.Writer) (export exportFunc, extra map[string]float64)
	// nhcb: explicit-bucket histograms go as custom-bucket native
	// histograms, so the peer only runs on workloads that have them.
	nhcb bool
}

// peers are the libraries every shape is exported with, in table order.
var peers = []peer{
	{name: "prwmetric", out: outRemoteWrite, push: pushPrwmetric},
	{name: "prwmetric_v2", out: outRemoteWriteV2, push: pushPrwmetricV2},
	{name: "prwmetric_v2_nhcb", out: outRemoteWriteV2, push: pushPrwmetricV2NHCB, nhcb: true},
	{name: "otlpmetrichttp", out: outOTLP, push: pushOTLP(otlpmetrichttp.NoCompression)},
	{name: "otlpmetrichttp_gzip", out: outOTLPGzip, push: pushOTLP(otlpmetrichttp.GzipCompression)},
	{name: "collector_prw", out: outRemoteWrite, push: pushCollector},
	{name: "otelprom_scrape", out: outExposition, local: localPull},
	{name: "snappy_floor", out: outSnappy, local: localSnappyFloor},
	{name: "s2_snappy", out: outSnappy, local: localS2},
}

// runs reports whether p applies to w.
func (p peer) runs(w *Workload) bool { return !p.nhcb || w.Has(Histogram) }

// path is where p sends, on any receiver.
func (p peer) path() string {
	if p.out == outOTLP || p.out == outOTLPGzip {
		return "/v1/metrics"
	}
	return "/api/v1/write"
}

// benchShape exports s with every peer, one sub-benchmark each.
func benchShape(b *testing.B, s *Shape) {
	fx := shapeFixture(s)
	for _, p := range peers {
		if !p.runs(fx.w) {
			continue
		}
		b.Run(p.name, func(b *testing.B) {
			if p.push != nil {
				measurePush(b, fx, p, receiver(b).URL)
			} else {
				measureLocal(b, fx, p)
			}
		})
	}
}

// measurePush measures p's exports of fx to the receiver process, at base
// (its URL or a DelayProxy's in front of it), after fx.warmups exports,
// and reports series/op (the workload's Prometheus series: the same
// denominator for every library), wire-B/op, raw-B/op (uncompressed size
// of snappy and zstd bodies) and requests/op as counted by the receiver,
// and cpu-ns/op, this process's CPU time per export (the exporter's side
// alone; the receiver has its own process). For Remote Write 2.0 it checks
// that every request was 2.0 and carried the workload, and reports
// rcv-decode-ns/op, the receiver's time decoding to answer the written
// counts (see doc.go). It checks that every request of a zstd peer was
// zstd, so that a fallback to snappy fails the benchmark, and that no other
// peer sent zstd.
func measurePush(b *testing.B, fx *fixture, p peer, base string) {
	rcv := receiver(b)
	export := p.push(b, fx, base+p.path())
	ctx := context.Background()
	for range fx.warmups {
		if err := export(ctx); err != nil {
			b.Fatal(err)
		}
	}
	before, err := rcv.Stats()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	cpuBefore, cpuOK := processCPU()
	for b.Loop() {
		if err := export(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	cpuAfter, _ := processCPU()
	after, err := rcv.Stats()
	if err != nil {
		b.Fatal(err)
	}
	d := after.Sub(before)
	if err := checkZstd(d, p.out == outRemoteWriteZstd); err != nil {
		b.Fatal(err)
	}
	if cpuOK {
		b.ReportMetric(float64(cpuAfter-cpuBefore)/float64(n), "cpu-ns/op")
	}
	if p.out == outRemoteWriteV2 {
		if err := checkV2(d, fx.w, n, p.nhcb); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(d.DecodeNanos)/float64(n), "rcv-decode-ns/op")
	}
	b.ReportMetric(float64(fx.w.Series()), "series/op")
	b.ReportMetric(float64(d.WireBytes)/float64(n), "wire-B/op")
	b.ReportMetric(float64(d.RawBytes)/float64(n), "raw-B/op")
	b.ReportMetric(float64(d.Requests)/float64(n), "requests/op")
}

// checkZstd says what is wrong, if anything, with the receiver's counts d
// of a peer that should send zstd, or should not: a zstd peer must have
// sent requests, all zstd (none fell back to snappy).
func checkZstd(d Stats, zstd bool) error {
	switch {
	case zstd && (d.Requests == 0 || d.ZstdRequests != d.Requests):
		return fmt.Errorf("the receiver saw %d requests, %d of them zstd; want all (did the exporter fall back to snappy?)", d.Requests, d.ZstdRequests)
	case !zstd && d.ZstdRequests != 0:
		return fmt.Errorf("the receiver saw %d zstd requests of %d; want none", d.ZstdRequests, d.Requests)
	}
	return nil
}

// measureLocal measures a peer that does not send, and reports series/op
// and wire-B/op: the bytes it produced per export.
func measureLocal(b *testing.B, fx *fixture, p peer) {
	var out countingDiscard
	export, extra := p.local(b, fx, &out)
	ctx := context.Background()
	for range fx.warmups {
		if err := export(ctx); err != nil {
			b.Fatal(err)
		}
	}
	out.n = 0
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := export(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(fx.w.Series()), "series/op")
	b.ReportMetric(float64(out.n)/float64(n), "wire-B/op")
	for unit, v := range extra {
		b.ReportMetric(v, unit)
	}
}

// countingDiscard counts and discards what is written to it.
type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
