package prwmetric

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Option configures an Exporter. Options are applied in order; for options
// that set the same thing, the last one wins.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// Endpoint and transport.

// WithEndpoint sets the remote-write URL, e.g.
// "http://prometheus:9090/api/v1/write" (Mimir and Cortex: /api/v1/push).
// Required; the scheme must be http or https, without credentials in it.
func WithEndpoint(url string) Option {
	return optionFunc(func(c config) config { c.endpoint, c.endpointFrom = url, "WithEndpoint"; return c })
}

// WithTimeout bounds each export, conversion and requests included
// (default 30 s). An earlier deadline of the context passed to Export (the
// PeriodicReader's export timeout) applies instead.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config { c.timeout, c.timeoutFrom = d, "WithTimeout"; return c })
}

// WithProxyURL sends requests through the proxy at rawURL (default
// http.ProxyFromEnvironment). It replaces WithProxy; not with WithHTTPClient.
func WithProxyURL(rawURL string) Option {
	return optionFunc(func(c config) config {
		c.proxySet, c.proxyURL, c.proxy = true, rawURL, nil
		return c
	})
}

// WithProxy chooses the proxy per request, as http.Transport.Proxy does; a
// nil function or URL means none (default http.ProxyFromEnvironment). It
// replaces WithProxyURL; not with WithHTTPClient.
func WithProxy(proxy func(*http.Request) (*url.URL, error)) Option {
	return optionFunc(func(c config) config {
		c.proxySet, c.proxyURL, c.proxy = true, "", proxy
		if proxy == nil {
			c.proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
		}
		return c
	})
}

// WithTLS configures TLS from files, like Prometheus' tls_config (see
// TLSConfig); New reads and checks them. TLS 1.2 is the minimum. Not with
// WithTLSClientConfig, WithHTTPClient or a plain http endpoint. Default: the
// system roots, no client certificate.
func WithTLS(cfg TLSConfig) Option {
	return optionFunc(func(c config) config { c.tls, c.tlsNames = &cfg, tlsOptionNames; return c })
}

// WithTLSClientConfig uses a clone of cfg for TLS, for full control. Not
// with WithTLS, WithHTTPClient or a plain http endpoint.
func WithTLSClientConfig(cfg *tls.Config) Option {
	return optionFunc(func(c config) config {
		c.tlsClientConfig = nil
		if cfg != nil {
			c.tlsClientConfig = cfg.Clone()
		}
		return c
	})
}

// WithHTTPClient sends requests with client instead of the exporter's own;
// authentication, headers and WithRoundTripper still wrap its transport.
// Proxy, TLS and WithHTTP2 belong to that transport instead, and Shutdown
// does not close its idle connections.
func WithHTTPClient(client *http.Client) Option {
	return optionFunc(func(c config) config { c.httpClient = client; return c })
}

// WithRoundTripper wraps the transport that sends requests (the exporter's
// own, keeping its TLS, proxy and timeouts, or WithHTTPClient's) for
// signing, tracing or other per-request work. The wrapper sees each request
// with its protocol headers, WithHeaders and credentials set, so a signer
// signs the final request. Several compose in order (the first sees the
// request first); WithAuthenticator's transport is inside them all. A nil
// wrap is ignored. Default: none.
func WithRoundTripper(wrap func(next http.RoundTripper) http.RoundTripper) Option {
	return optionFunc(func(c config) config {
		if wrap != nil {
			c.roundTrippers = append(c.roundTrippers[:len(c.roundTrippers):len(c.roundTrippers)], wrap)
		}
		return c
	})
}

// WithMaxConcurrentRequests lets up to n requests of one export be in
// flight at once (default 128; 1 sends them one by one, in order). One export
// carries at most one sample per series, so its requests may arrive in any
// order; the next export and Shutdown's markers wait for all of them. The
// first failure stops the requests not yet started (but a 400 or 422 that
// refuses one request's data, and says nothing of the others); WriteError
// counts exactly what was delivered and dropped; WithRetry retries each
// request.
// n is a limit, not a pool: a request goes out as soon as it is encoded.
// Memory: two uncompressed requests (WithMaxRequestBytes each) and at most
// n+2 compressed ones. Connections: up to n, kept between exports, and one
// spare for other requests to the receiver's host (OAuth2 tokens). 128
// keeps a 1 000 000-series export (113 requests) 50 ms away within 1.5× its
// time nearby (README, "Far from the receiver").
func WithMaxConcurrentRequests(n int) Option {
	return optionFunc(func(c config) config { c.maxConcurrent = n; return c })
}

// WithHTTP2 lets the transport speak HTTP/2 to https receivers that offer
// it, with a health check: a connection silent for 30 s gets a ping and is
// closed without an answer within 15 s, so a connection a middlebox dropped
// fails within 45 s instead of stalling until the timeout. Default: HTTP/1.1,
// a connection per request in flight. Either way idle connections close after
// 30 s, and all of them after an export every five minutes, so connections
// are made anew to what the name resolves to then (spreading over a
// load-balanced receiver). Not with WithHTTPClient.
func WithHTTP2() Option {
	return optionFunc(func(c config) config { c.http2 = true; return c })
}

// Authentication and headers.

// WithBasicAuth sends HTTP basic authentication. One kind of Authorization
// at a time (see WithBearerToken, WithOAuth2, WithAuthenticator, an
// Authorization header). Default: none.
func WithBasicAuth(username, password string) Option {
	return optionFunc(func(c config) config {
		c.basicAuthSet, c.basicAuthFromFile, c.basicAuthUser, c.basicAuthPassword, c.basicAuthFile = true, false, username, password, ""
		c.basicAuthFrom = "WithBasicAuth"
		return c
	})
}

// WithBasicAuthPasswordFile is WithBasicAuth with the password read from
// path at each request (trailing newlines trimmed), so rotated secrets take
// effect. The file must be a regular file of at most 64 KiB; reading it is
// bounded by the export's deadline; a problem fails that export, not New.
func WithBasicAuthPasswordFile(username, path string) Option {
	return optionFunc(func(c config) config {
		c.basicAuthSet, c.basicAuthFromFile, c.basicAuthUser, c.basicAuthPassword, c.basicAuthFile = true, true, username, "", path
		c.basicAuthFrom = "WithBasicAuthPasswordFile"
		return c
	})
}

// WithBearerToken sends "Authorization: Bearer <token>". It replaces
// WithBearerTokenFile. One kind of Authorization at a time. Default: none.
func WithBearerToken(token string) Option {
	return optionFunc(func(c config) config {
		c.bearerSet, c.bearerToken, c.bearerFileSet, c.bearerTokenFile, c.bearerFrom = true, token, false, "", "WithBearerToken"
		return c
	})
}

// WithBearerTokenFile is WithBearerToken with the token read from path at
// each request (white space trimmed), for rotated tokens such as
// Kubernetes service-account tokens; the file rules are
// WithBasicAuthPasswordFile's. It replaces WithBearerToken.
func WithBearerTokenFile(path string) Option {
	return optionFunc(func(c config) config {
		c.bearerSet, c.bearerToken, c.bearerFileSet, c.bearerTokenFile, c.bearerFrom = false, "", true, path, "WithBearerTokenFile"
		return c
	})
}

// WithOAuth2 authenticates with access tokens from cfg.TokenURL, by the
// OAuth 2.0 client credentials grant (see OAuth2Config for caching, refresh
// on 401 and errors). One kind of Authorization at a time. cfg's slices and
// maps are copied; New checks cfg without contacting the token endpoint.
// Default: none.
func WithOAuth2(cfg OAuth2Config) Option {
	cfg.Scopes = slices.Clone(cfg.Scopes)
	cfg.EndpointParams = cloneValues(cfg.EndpointParams)
	return optionFunc(func(c config) config { c.oauth2, c.oauth2From = &cfg, "WithOAuth2"; return c })
}

// WithAuthenticator adds an authentication scheme from another package,
// such as prwmetric/sigv4 or prwmetric/azuread, whose options call it. name
// is the option users wrote, for New's errors. New calls wrap once with the
// transport that sends requests; its error is New's. The returned transport
// is innermost, so it sees the final request; a failure of its own before
// the request leaves (no credentials) is best returned as NotSent(err), so
// that WithRetry does not repeat it. One kind of Authorization at a time; a
// later WithAuthenticator replaces an earlier one. Default: none.
func WithAuthenticator(name string, wrap func(next http.RoundTripper) (http.RoundTripper, error)) Option {
	return optionFunc(func(c config) config {
		c.authenticator, c.authenticatorName, c.authenticatorSet = wrap, name, true
		if c.authenticatorName == "" {
			c.authenticatorName = "WithAuthenticator"
		}
		return c
	})
}

// WithHeaders adds headers to every request, such as X-Scope-OrgID for
// Cortex and Mimir tenants; the map is copied, several options merge (a
// later value wins; names are compared without regard to case, as HTTP
// does, and one map may not name a header twice). The remote-write
// protocol's headers cannot be replaced; Authorization counts as the one
// kind of Authorization. Headers go to the endpoint's origin only. Default:
// none.
func WithHeaders(headers map[string]string) Option {
	canonical, twice := canonicalHeaders(headers)
	return optionFunc(func(c config) config {
		c.headers = merge(c.headers, canonical)
		c.headersFrom = withoutKeys(c.headersFrom, canonical)
		c.headersTwice = append(c.headersTwice[:len(c.headersTwice):len(c.headersTwice)], twice...)
		return c
	})
}

// WithHeaderFunc adds the headers fn returns, computed per request (an
// X-Scope-OrgID chosen at run time), under WithHeaders' rules, checked at
// each request; its values win over WithHeaders'. fn gets the export's
// context and must be safe for concurrent use. An error from fn or a broken
// rule fails the request (not retried), naming the header, never its value.
// Default: none.
func WithHeaderFunc(fn func(ctx context.Context) (map[string]string, error)) Option {
	return optionFunc(func(c config) config { c.headerFunc, c.headerFuncSet = fn, true; return c })
}

// Requests and protocol.

// WithMaxSeriesPerRequest splits an export into requests of at most n
// series (default 10 000; n > 0).
func WithMaxSeriesPerRequest(n int) Option {
	return optionFunc(func(c config) config { c.maxSeries = n; return c })
}

// WithMaxRequestBytes splits an export into requests of at most n bytes of
// uncompressed protobuf (default 3 MiB; n > 0), so receivers' limits are
// never hit; a larger single series goes alone.
func WithMaxRequestBytes(n int) Option {
	return optionFunc(func(c config) config { c.maxBytes = n; return c })
}

// WithCompression chooses how bodies are compressed (default
// CompressionSnappy, which Remote Write mandates). CompressionZstd sends the
// VictoriaMetrics protocol, falling back to snappy where it is refused (see
// Compression). Not with WithProtocol(ProtocolV2).
func WithCompression(c Compression) Option {
	return optionFunc(func(cfg config) config { cfg.compression, cfg.compressionFrom = c, "WithCompression"; return cfg })
}

// WithProtocol chooses the Remote Write protocol (default ProtocolV1, which
// every receiver accepts). With ProtocolV2 the exporter falls back to 1.0
// when the receiver does not speak 2.0 (see Protocol), and may use UTF-8
// names and custom-bucket native histograms.
func WithProtocol(p Protocol) Option {
	return optionFunc(func(c config) config { c.protocol, c.protocolFrom = p, "WithProtocol"; return c })
}

// WithNativeHistogramsForExplicitBuckets sends each explicit-bucket
// histogram point as one native histogram with custom buckets (schema -53)
// instead of the classic series. It needs WithProtocol(ProtocolV2). After a
// fallback to 1.0 they are left out, each export warning and returning an
// error, unless WithClassicHistograms sends the classic series too.
func WithNativeHistogramsForExplicitBuckets() Option {
	return optionFunc(func(c config) config { c.customBuckets = true; return c })
}

// WithClassicHistograms keeps the classic series beside
// WithNativeHistogramsForExplicitBuckets' histograms, for a migration; only
// with that option.
func WithClassicHistograms() Option {
	return optionFunc(func(c config) config { c.classicHistograms = true; return c })
}

// Behaviour.

// WithRetry retries failed requests when cfg.Enabled is set: 5xx, 429 and
// network errors, with jittered exponential backoff honouring Retry-After,
// marked with Retry-Attempt; other 4xx never (see RetryConfig). Default:
// none; the next cumulative export catches up.
func WithRetry(cfg RetryConfig) Option {
	return optionFunc(func(c config) config { c.retry = cfg; return c })
}

// WithoutStaleMarkers stops ending series with staleness markers. By
// default a series the receiver holds that is missing from an export, and
// every series at Shutdown, is sent once more with the stale NaN, so graphs
// end at once instead of five minutes later.
func WithoutStaleMarkers() Option {
	return optionFunc(func(c config) config { c.withoutStaleMarkers = true; return c })
}

// WithInitialZero sends a 0 before the first sample of each new counter
// and histogram series (at the last collection the receiver holds, or its
// start if later; after an export whose every request the receiver
// answered, refusing some, at that export's collection for a series not in
// it), so that increase() and rate() count its first increment. A series
// back after vanishing gets none (at least the last 524 288 that ended are
// remembered), nor does a new bucket series of a histogram point the
// receiver holds (exponential buckets that grow or rescale). The zeros go
// first, in requests of their own: a first export takes one round trip
// more and twice the requests. With 2.0, the zero and the first sample
// carry no start time, so receivers that derive zeros from start times add
// no second one. Default: off.
func WithInitialZero() Option {
	return optionFunc(func(c config) config { c.initialZero = true; return c })
}

// WithoutShutdownMarkers keeps the staleness markers of vanished series but
// sends none at Shutdown, so a finished batch job's last values stay visible
// for the receiver's lookback (5 minutes in Prometheus): pick it for jobs;
// keep the default for services, whose graphs should end when they stop.
func WithoutShutdownMarkers() Option {
	return optionFunc(func(c config) config { c.withoutShutdownMarkers = true; return c })
}

// WithLogger sets where notices go (default slog.Default()) and adds a
// structured warning for each failure Export returns. Without it each
// failure is reported once, by Export's error, which the PeriodicReader
// hands to the OpenTelemetry error handler. Credentials never appear in
// what is logged.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(c config) config { c.logger, c.logFailures = logger, true; return c })
}

// WithMeterProvider records the exporter's own telemetry with mp:
// otel.sdk.exporter.* (semantic conventions) and prwmetric.exporter.*, with
// a few fixed attribute values, so mp may be the provider this exporter
// exports. Default: off.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c config) config { c.meterProvider = mp; return c })
}

// WithoutEnvironment makes New ignore the
// OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_* variables.
func WithoutEnvironment() Option {
	return optionFunc(func(c config) config { c.withoutEnvironment = true; return c })
}
