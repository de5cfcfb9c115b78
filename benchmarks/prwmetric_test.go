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

// benchPrwmetricV2: benchPrwmetric in Remote Write 2.0. The receiver
// decodes each 2.0 request to answer with the written counts; its time for
// that is reported as rcv-decode-ns/op. The benchmark fails rather than
// measure something else: if the exporter warned (as it does when it falls
// back to 1.0), or the receiver saw a request that was not 2.0, or fewer
// samples than W has.
func benchPrwmetricV2(b *testing.B, fx *fixture) {
	rcv := receiver(b)
	logs := &recordingHandler{}
	exp := newPrwmetric(b, rcv.URL+"/api/v1/write",
		prwmetric.WithProtocol(prwmetric.ProtocolV2), prwmetric.WithLogger(slog.New(logs)))
	before, err := rcv.Stats()
	if err != nil {
		b.Fatal(err)
	}
	measurePush(b, fx, rcv, func(ctx context.Context) error {
		SetTime(fx.rm, fx.w.Time())
		return exp.Export(ctx, fx.rm)
	})
	after, err := rcv.Stats()
	if err != nil {
		b.Fatal(err)
	}
	// After b.Loop, b.N is the number of measured exports.
	exports := b.N + warmupExports
	d := after.Sub(before)
	if err := checkV2(d, logs, exports, fx.w.Series()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(d.DecodeNanos)/float64(exports), "rcv-decode-ns/op")
}
