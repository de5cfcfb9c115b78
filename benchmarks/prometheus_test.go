package benchmarks

import (
	"context"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// pullExporter is the OpenTelemetry Prometheus (pull) exporter on its own
// registry, reading a real MeterProvider that holds the workload.
type pullExporter struct {
	reg *prometheus.Registry
}

func newPull(tb testing.TB, w *Workload) *pullExporter {
	tb.Helper()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		tb.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(w.Resource))
	tb.Cleanup(func() {
		if err := mp.Shutdown(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	if err := w.Record(context.Background(), mp); err != nil {
		tb.Fatal(err)
	}
	return &pullExporter{reg: reg}
}

// scrape is one scrape as promhttp serves it, minus HTTP: Gather (which
// collects the MeterProvider) and the text exposition format.
func (p *pullExporter) scrape(w io.Writer) error {
	mfs, err := p.reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// countingDiscard counts and discards what is written to it.
type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// benchPull: one scrape of the same workload, recorded into a real
// MeterProvider. wire-B/op is the uncompressed text exposition.
func benchPull(b *testing.B, fx *fixture) {
	p := newPull(b, fx.w)
	var out countingDiscard
	for range warmupExports {
		if err := p.scrape(&out); err != nil {
			b.Fatal(err)
		}
	}
	out.n = 0
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := p.scrape(&out); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(fx.w.Series()), "series/op")
	b.ReportMetric(float64(out.n)/float64(n), "wire-B/op")
}
