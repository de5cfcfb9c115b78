package benchmarks

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric"
)

// heapObjects is the heap memory held by objects, live or not yet swept:
// what the export makes the process hold.
const heapObjects = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapSampler records the highest heapObjects seen while it runs. It reads
// runtime/metrics, which does not stop the world, every millisecond.
type heapSampler struct {
	stop chan struct{}
	peak chan uint64
}

func startHeapSampler() *heapSampler {
	s := &heapSampler{stop: make(chan struct{}), peak: make(chan uint64, 1)}
	go func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		peak := heapNow()
		for {
			select {
			case <-s.stop:
				s.peak <- max(peak, heapNow())
				return
			case <-t.C:
				peak = max(peak, heapNow())
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak.
func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	return <-s.peak
}

// largeRun accumulates what one measured export cost.
type largeRun struct {
	n                 int
	base, peak, delta uint64
	stats             Stats
}

// measure times one export; the timer must be stopped when it is called.
// The baseline heap is taken after a full GC, so growth is what the export
// adds on top of the data and the exporter's state.
func (r *largeRun) measure(b *testing.B, rcv *Receiver, export func() error) {
	runtime.GC()
	base := heapNow()
	before, err := rcv.Stats()
	if err != nil {
		b.Fatal(err)
	}
	sampler := startHeapSampler()
	b.StartTimer()
	err = export()
	b.StopTimer()
	peak := sampler.Stop()
	if err != nil {
		b.Fatal(err)
	}
	after, err := rcv.Stats()
	if err != nil {
		b.Fatal(err)
	}
	d := after.Sub(before)
	r.n++
	r.stats.Requests += d.Requests
	r.stats.WireBytes += d.WireBytes
	r.stats.RawBytes += d.RawBytes
	r.base = max(r.base, base)
	r.peak = max(r.peak, peak)
	r.delta = max(r.delta, peak-min(peak, base))
}

func (r *largeRun) report(b *testing.B, series int) {
	const mib = 1 << 20
	n := float64(r.n)
	raw := float64(r.stats.RawBytes) / n
	b.ReportMetric(float64(series), "series/op")
	b.ReportMetric(float64(r.stats.Requests)/n, "requests/op")
	b.ReportMetric(float64(r.stats.WireBytes)/n/mib, "wire-MiB/op")
	b.ReportMetric(raw/mib, "raw-payload-MiB/op")
	b.ReportMetric(float64(r.base)/mib, "base-heap-MiB")
	b.ReportMetric(float64(r.peak)/mib, "peak-heap-MiB")
	b.ReportMetric(float64(r.delta)/mib, "heap-growth-MiB")
	b.ReportMetric(float64(r.delta)/raw, "growth/raw")
}

// BenchmarkLargeExport is prwmetric alone on 1 000 000 series (10 counters
// and 10 gauges × 50 000 attribute sets). "first" is an exporter's first
// export, "steady" a later one. Besides time it reports the heap: the peak
// while exporting and its growth over the heap before the export, against
// the raw (uncompressed) payload. Run it with -benchtime=1x.
func BenchmarkLargeExport(b *testing.B) {
	w := NewLargeWorkload(largeSets)
	rm := w.ResourceMetrics(w.Time())
	rcv := receiver(b)
	ctx := context.Background()
	newExporter := func(b *testing.B) *prwmetric.Exporter {
		exp, err := prwmetric.New(
			prwmetric.WithEndpoint(rcv.URL+"/api/v1/write"),
			prwmetric.WithoutEnvironment(),
			prwmetric.WithLogger(discardLogger),
			prwmetric.WithTimeout(10*time.Minute),
		)
		if err != nil {
			b.Fatal(err)
		}
		return exp
	}
	export := func(exp *prwmetric.Exporter) func() error {
		return func() error {
			SetTime(rm, w.Time())
			return exp.Export(ctx, rm)
		}
	}
	shutdown := func(b *testing.B, exp *prwmetric.Exporter) {
		if err := exp.Shutdown(ctx); err != nil {
			b.Error(err)
		}
	}

	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		b.StopTimer()
		var r largeRun
		for range b.N {
			exp := newExporter(b)
			r.measure(b, rcv, export(exp))
			shutdown(b, exp)
		}
		r.report(b, w.Series())
	})
	b.Run("steady", func(b *testing.B) {
		b.ReportAllocs()
		b.StopTimer()
		exp := newExporter(b)
		defer shutdown(b, exp)
		if err := export(exp)(); err != nil {
			b.Fatal(err)
		}
		var r largeRun
		for range b.N {
			r.measure(b, rcv, export(exp))
		}
		r.report(b, w.Series())
	})
}
