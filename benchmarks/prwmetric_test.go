package benchmarks

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric"
)

// discardLogger silences the exporters' warnings.
var discardLogger = slog.New(slog.DiscardHandler)

// newPrwmetric returns a prwmetric exporter sending to url with its
// defaults (metadata, scope labels, target_info, staleness markers, 2 000
// series per request), apart from the environment, which is ignored so that
// a developer's settings cannot skew the run, and the logger, silenced.
func newPrwmetric(tb testing.TB, url string, opts ...prwmetric.Option) *prwmetric.Exporter {
	tb.Helper()
	opts = append([]prwmetric.Option{
		prwmetric.WithEndpoint(url),
		prwmetric.WithoutEnvironment(),
		prwmetric.WithLogger(discardLogger),
	}, opts...)
	exp, err := prwmetric.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// Shutdown ends every series with a staleness marker: a last
		// request, sent after the measurement.
		if err := exp.Shutdown(ctx); err != nil {
			tb.Error(err)
		}
	})
	return exp
}

// benchPrwmetric: Export of the SDK's metric data, converted, encoded,
// compressed and POSTed.
func benchPrwmetric(b *testing.B, fx *fixture) {
	rcv := receiver(b)
	exp := newPrwmetric(b, rcv.URL+"/api/v1/write")
	measurePush(b, fx, rcv, func(ctx context.Context) error {
		SetTime(fx.rm, fx.w.Time())
		return exp.Export(ctx, fx.rm)
	})
}
