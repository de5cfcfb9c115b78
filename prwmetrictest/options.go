package prwmetrictest

import (
	"strings"
)

// DefaultPath is the URL path the receiver answers on, the same as
// Prometheus' remote-write receiver.
const DefaultPath = "/api/v1/write"

// DefaultMaxBodySize is the default limit, in bytes, on a request body,
// both compressed and decompressed.
const DefaultMaxBodySize = 32 << 20

// Option configures a [Server].
type Option interface {
	apply(*config)
}

type config struct {
	path     string
	maxBody  int64
	v1Only   bool
	lenient  bool
	noNative bool
	zstd     bool
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithPath sets the URL path the receiver accepts writes on. Requests to
// any other path are answered 404 and recorded as a violation. The default
// is [DefaultPath].
func WithPath(path string) Option {
	return optionFunc(func(c *config) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		c.path = path
	})
}

// WithMaxBodySize sets the largest request body the receiver reads, in
// bytes, applied to the compressed body and to its decompressed size.
// Larger requests are answered 413 and recorded as a violation. The
// default is [DefaultMaxBodySize]; values <= 0 keep the default.
func WithMaxBodySize(n int64) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxBody = n
		}
	})
}

// WithRemoteWrite1Only makes the receiver behave like a backend that only
// speaks Remote-Write 1.0: Remote-Write 2.0 requests are answered 415
// Unsupported Media Type (not a violation: senders must then fall back
// to 1.0). By default both protocols are accepted.
func WithRemoteWrite1Only() Option {
	return optionFunc(func(c *config) { c.v1Only = true })
}

// WithoutNativeHistograms makes the receiver refuse native histograms as
// Prometheus 2.x does without --enable-feature=native-histograms: a request
// that carries any is answered 500 "native histograms are disabled" and
// nothing of it is stored. By default native histograms are accepted.
func WithoutNativeHistograms() Option {
	return optionFunc(func(c *config) { c.noNative = true })
}

// WithZstd makes the receiver also accept the VictoriaMetrics remote write
// protocol, as VictoriaMetrics and vmagent do: a Remote-Write 1.0 request
// compressed with zstd, sent with Content-Encoding: zstd and
// X-VictoriaMetrics-Remote-Write-Version: 1. By default a zstd request is
// answered 415 Unsupported Media Type, as Prometheus 2.54 and later answer
// any Content-Encoding but snappy (not a violation: senders must then fall
// back to snappy); a 2.0 request is answered 415 with or without it.
func WithZstd() Option {
	return optionFunc(func(c *config) { c.zstd = true })
}

// WithLenient makes the receiver accept (answer 204 and store) requests
// that break a rule, as long as they decode. Violations are still recorded.
// By default such requests are answered 400 and nothing in them is
// stored, like a strict backend.
func WithLenient() Option {
	return optionFunc(func(c *config) { c.lenient = true })
}
