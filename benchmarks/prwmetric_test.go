package benchmarks

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric"
)

// discardLogger silences the exporters' warnings.
var discardLogger = slog.New(slog.DiscardHandler)

// newPrwmetric returns a prwmetric exporter sending to url with its
// defaults (metadata, scope labels, target_info, staleness markers, 2 000
// series per request), apart from the environment, which is ignored so that
// a developer's settings cannot skew the run, the logger, silenced, and the
// timeout, long enough for a million series on a busy machine.
func newPrwmetric(tb testing.TB, url string, opts ...prwmetric.Option) *prwmetric.Exporter {
	tb.Helper()
	opts = append([]prwmetric.Option{
		prwmetric.WithEndpoint(url),
		prwmetric.WithoutEnvironment(),
		prwmetric.WithLogger(discardLogger),
		prwmetric.WithTimeout(5 * time.Minute),
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

// exportTo returns one export of fx by exp: the timestamps moved forward,
// then Export of the SDK's metric data, converted, encoded, compressed and
// POSTed.
func exportTo(exp *prwmetric.Exporter, fx *fixture) exportFunc {
	return func(ctx context.Context) error {
		SetTime(fx.rm, fx.w.Time())
		return exp.Export(ctx, fx.rm)
	}
}

// pushPrwmetric: prwmetric with its defaults, Remote Write 1.0.
func pushPrwmetric(tb testing.TB, fx *fixture, url string) exportFunc {
	return exportTo(newPrwmetric(tb, url), fx)
}

// pushPrwmetricV2: prwmetric in Remote Write 2.0, classic histograms.
func pushPrwmetricV2(tb testing.TB, fx *fixture, url string) exportFunc {
	return pushV2(tb, fx, url)
}

// pushPrwmetricV2NHCB: prwmetric in Remote Write 2.0, explicit-bucket
// histograms as custom-bucket native histograms.
func pushPrwmetricV2NHCB(tb testing.TB, fx *fixture, url string) exportFunc {
	return pushV2(tb, fx, url, prwmetric.WithNativeHistogramsForExplicitBuckets())
}

// pushV2 returns a 2.0 export that fails rather than measure something
// else (see pushWarnless): the exporter warns when it falls back to 1.0 or
// the receiver wrote less than it sent. measurePush checks the receiver's
// counts.
func pushV2(tb testing.TB, fx *fixture, url string, opts ...prwmetric.Option) exportFunc {
	return pushWarnless(tb, fx, url, append([]prwmetric.Option{prwmetric.WithProtocol(prwmetric.ProtocolV2)}, opts...)...)
}

// pushZstd: prwmetric with zstd bodies, the VictoriaMetrics protocol; it
// fails if the exporter warned, as it does when it falls back to snappy.
func pushZstd(tb testing.TB, fx *fixture, url string) exportFunc {
	return pushWarnless(tb, fx, url, prwmetric.WithCompression(prwmetric.CompressionZstd))
}

// pushWarnless returns one export of fx by a prwmetric exporter with opts
// that fails rather than measure something else if the exporter warned: a
// fallback (to 1.0, to snappy), a partial write, a failed request.
func pushWarnless(tb testing.TB, fx *fixture, url string, opts ...prwmetric.Option) exportFunc {
	logs := &recordingHandler{}
	opts = append([]prwmetric.Option{prwmetric.WithLogger(slog.New(logs))}, opts...)
	export := exportTo(newPrwmetric(tb, url, opts...), fx)
	return func(ctx context.Context) error {
		if err := export(ctx); err != nil {
			return err
		}
		if n, records := logs.warnings(); n > 0 {
			return fmt.Errorf("the exporter logged %d warning(s):\n%s", n, strings.Join(records, "\n"))
		}
		return nil
	}
}
