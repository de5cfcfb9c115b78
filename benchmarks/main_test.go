package benchmarks

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"
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

// fixture is a workload in every form the competitors take it, built once
// and reused: the push benchmarks move its timestamps forward before each
// export, so every export carries newer samples than the one before.
type fixture struct {
	w  *Workload
	rm *metricdata.ResourceMetrics
	md pmetric.Metrics
}

func newFixture(w *Workload) *fixture {
	rm := w.ResourceMetrics(w.Time())
	return &fixture{w: w, rm: rm, md: ToPdata(rm)}
}

// fixtureW is workload W, shared by every sub-benchmark of BenchmarkExport.
var fixtureW = sync.OnceValue(func() *fixture { return newFixture(NewWorkloadW()) })

// warmupExports run before the timer starts: the first export opens
// connections and fills whatever a library caches, and the benchmark
// measures the steady state that follows.
const warmupExports = 2

// measurePush measures export, which must send one export of fx to rcv,
// and reports series/op (the workload's Prometheus series: the same
// denominator for every library), wire-B/op, raw-B/op (uncompressed size of
// snappy bodies) and requests/op as counted by the receiver.
func measurePush(b *testing.B, fx *fixture, rcv *Receiver, export func(context.Context) error) {
	ctx := context.Background()
	for range warmupExports {
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
	for b.Loop() {
		if err := export(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	after, err := rcv.Stats()
	if err != nil {
		b.Fatal(err)
	}
	d := after.Sub(before)
	b.ReportMetric(float64(fx.w.Series()), "series/op")
	b.ReportMetric(float64(d.WireBytes)/float64(n), "wire-B/op")
	b.ReportMetric(float64(d.RawBytes)/float64(n), "raw-B/op")
	b.ReportMetric(float64(d.Requests)/float64(n), "requests/op")
}
