package benchmarks

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// newOTLP returns an OTLP/HTTP exporter sending to url with the given
// compression, without retries (prwmetric does not retry by default either)
// and without its 64 MiB request limit: the SDK hands it the whole export in
// one call, and a million series make a body of some 200 MiB, which it
// would refuse.
func newOTLP(tb testing.TB, url string, compression otlpmetrichttp.Compression) sdkmetric.Exporter {
	tb.Helper()
	exp, err := otlpmetrichttp.New(context.Background(),
		otlpmetrichttp.WithEndpointURL(url),
		otlpmetrichttp.WithCompression(compression),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}),
		otlpmetrichttp.WithTimeout(5*time.Minute), // a million series on a busy machine
		otlpmetrichttp.WithMaxRequestSize(0),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := exp.Shutdown(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return exp
}

// pushOTLP: Export of the same metric data as OTLP protobuf over HTTP, as
// a service sending to a Collector pays for it.
func pushOTLP(compression otlpmetrichttp.Compression) func(tb testing.TB, fx *fixture, url string) exportFunc {
	return func(tb testing.TB, fx *fixture, url string) exportFunc {
		exp := newOTLP(tb, url, compression)
		return func(ctx context.Context) error {
			SetTime(fx.rm, fx.w.Time())
			return exp.Export(ctx, fx.rm)
		}
	}
}
