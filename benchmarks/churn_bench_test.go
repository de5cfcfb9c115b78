package benchmarks

import (
	"context"
	"testing"
)

// churnRates are the sets of W that BenchmarkChurn replaces before each
// export: none, 1% and 10% of its 500.
var churnRates = []struct {
	name string
	sets int
}{{"0%", 0}, {"1%", 5}, {"10%", 50}}

// BenchmarkChurn is prwmetric's export of W while its attribute sets come
// and go (Churn): BenchmarkChurn/<rate>, the sets replaced before each
// export, out of the timer. Each export then makes new series (88 per set)
// and ends as many with staleness markers.
func BenchmarkChurn(b *testing.B) {
	rcv := receiver(b)
	for _, rate := range churnRates {
		b.Run(rate.name, func(b *testing.B) {
			fx := shapeFixture(ShapeW)
			churn := NewChurn(fx.w, fx.rm, rate.sets)
			export := pushPrwmetric(b, fx, rcv.URL+"/api/v1/write")
			ctx := context.Background()
			// The warm-ups replace every set once: the exporter has seen
			// churn before the measurement.
			warmups := fx.warmups
			if rate.sets > 0 {
				warmups += len(fx.w.Sets) / rate.sets
			}
			for range warmups {
				churn.Step()
				if err := export(ctx); err != nil {
					b.Fatal(err)
				}
			}
			before, err := rcv.Stats()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var cpu int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				churn.Step()
				cpuBefore, _ := processCPU()
				b.StartTimer()
				if err := export(ctx); err != nil {
					b.Fatal(err)
				}
				cpuAfter, _ := processCPU()
				cpu += int64(cpuAfter - cpuBefore)
			}
			b.StopTimer()
			after, err := rcv.Stats()
			if err != nil {
				b.Fatal(err)
			}
			d := after.Sub(before)
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(fx.w.Series()), "series/op")
			b.ReportMetric(float64(rate.sets*fx.w.Series()/len(fx.w.Sets)), "new-series/op")
			b.ReportMetric(float64(d.WireBytes)/float64(b.N), "wire-B/op")
			b.ReportMetric(float64(d.RawBytes)/float64(b.N), "raw-B/op")
			b.ReportMetric(float64(d.Requests)/float64(b.N), "requests/op")
		})
	}
}
