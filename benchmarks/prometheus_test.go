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
	reg    *prometheus.Registry
	format expfmt.Format
}

// newPull records w into a MeterProvider read by the pull exporter. A
// scrape is in the text format, or, when w has exponential histograms, in
// delimited protobuf, the format Prometheus negotiates for native
// histograms (the text format has no native histograms).
func newPull(tb testing.TB, w *Workload) *pullExporter {
	tb.Helper()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		tb.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(append(w.ProviderOptions(), sdkmetric.WithReader(exp))...)
	tb.Cleanup(func() {
		if err := mp.Shutdown(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	if err := w.Record(context.Background(), mp); err != nil {
		tb.Fatal(err)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	if w.Has(ExponentialHistogram) {
		format = expfmt.NewFormat(expfmt.TypeProtoDelim)
	}
	return &pullExporter{reg: reg, format: format}
}

// scrape is one scrape as promhttp serves it, minus HTTP: Gather (which
// collects the MeterProvider) and the exposition format.
func (p *pullExporter) scrape(w io.Writer) error {
	mfs, err := p.reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, p.format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// localPull: one scrape of the same workload, recorded into a real
// MeterProvider. wire-B/op is the uncompressed exposition.
func localPull(tb testing.TB, fx *fixture, out io.Writer) (exportFunc, map[string]float64) {
	p := newPull(tb, fx.w)
	return func(context.Context) error { return p.scrape(out) }, nil
}
