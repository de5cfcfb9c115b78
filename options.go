package prwmetric

import (
	"context"
	"crypto/tls"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Option configures an Exporter. Options are applied in order; for options
// that set the same thing, the last one wins.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// WithEndpoint sets the remote-write URL, e.g. "http://prometheus:9090/api/v1/write".
// It is required; the scheme must be http or https, and credentials belong in
// WithBasicAuth, not in the URL.
func WithEndpoint(url string) Option {
	return optionFunc(func(c config) config { c.endpoint, c.endpointFrom = url, "WithEndpoint"; return c })
}

// WithTimeout bounds each export, conversion and request included. The
// default is 30 seconds. When the context passed to Export has an earlier
// deadline (the PeriodicReader's export timeout), that one applies.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config { c.timeout = d; return c })
}

// WithHeaderFunc adds the headers fn returns to every request, computed
// per request: for a multi-tenant Cortex or Mimir, an X-Scope-OrgID chosen
// at run time. fn gets the request's context (the export's) and must be
// safe for concurrent use and quick. An error from fn, or a header that
// breaks WithHeaders' rules, fails the request (not retried) with an error
// naming the header, never its value. The rules are WithHeaders': headers
// go to the endpoint's origin only; the remote-write protocol's headers
// cannot be set; Authorization only when no other authentication is set.
// Its values win over WithHeaders' for the same name; values of headers
// that carry credentials (Authorization, names with key, token, secret, …)
// are kept out of errors and logs. A later WithHeaderFunc replaces an
// earlier one. Default: none.
func WithHeaderFunc(fn func(ctx context.Context) (map[string]string, error)) Option {
	return optionFunc(func(c config) config { c.headerFunc, c.headerFuncSet = fn, true; return c })
}

// WithProxyURL sends requests through the proxy at rawURL. The default is
// http.ProxyFromEnvironment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY). It replaces
// WithProxy, and cannot be combined with WithHTTPClient.
func WithProxyURL(rawURL string) Option {
	return optionFunc(func(c config) config {
		c.proxySet, c.proxyURL, c.proxy = true, rawURL, nil
		return c
	})
}

// WithProxy chooses the proxy for each request, as http.Transport.Proxy does;
// a nil function or a nil URL means no proxy. The default is
// http.ProxyFromEnvironment. It replaces WithProxyURL, and cannot be combined
// with WithHTTPClient.
func WithProxy(proxy func(*http.Request) (*url.URL, error)) Option {
	return optionFunc(func(c config) config {
		c.proxySet, c.proxyURL, c.proxy = true, "", proxy
		if proxy == nil {
			c.proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
		}
		return c
	})
}

// WithTLS configures TLS from files, like Prometheus' tls_config: a CA to
// trust, a client certificate and key for mutual TLS, the server name to
// verify and whether to skip verification. Files are read by New, which fails
// on unreadable or non-PEM files. TLS 1.2 is the minimum version. It cannot be
// combined with WithTLSClientConfig or WithHTTPClient. Default: the system
// roots and no client certificate.
func WithTLS(cfg TLSConfig) Option {
	return optionFunc(func(c config) config { c.tls = &cfg; return c })
}

// WithTLSClientConfig uses a clone of cfg for TLS, for full control. It cannot
// be combined with WithTLS or WithHTTPClient.
func WithTLSClientConfig(cfg *tls.Config) Option {
	return optionFunc(func(c config) config {
		c.tlsClientConfig = nil
		if cfg != nil {
			c.tlsClientConfig = cfg.Clone()
		}
		return c
	})
}

// WithHTTPClient sends requests with client instead of the exporter's own. The
// exporter still adds authentication and headers around the client's
// transport. Proxy and TLS options cannot be combined with it: configure the
// client's transport instead. Shutdown does not close its idle connections.
func WithHTTPClient(client *http.Client) Option {
	return optionFunc(func(c config) config { c.httpClient = client; return c })
}

// WithRoundTripper wraps the exporter's transport with wrap, for request
// signing, tracing or any other per-request work. wrap receives the
// transport that sends the request (the exporter's own, with its TLS, proxy
// and timeouts, or WithHTTPClient's) and returns the one to use instead. The
// wrapper sees each request after the exporter has set its protocol headers,
// WithHeaders and credentials, so a signer signs the final request. Several
// WithRoundTripper options compose in order: the first one given sees the
// request first. A transport from WithAuthenticator sits inside all of them.
// A nil wrap is ignored. Default: none.
func WithRoundTripper(wrap func(next http.RoundTripper) http.RoundTripper) Option {
	return optionFunc(func(c config) config {
		if wrap != nil {
			c.roundTrippers = append(c.roundTrippers[:len(c.roundTrippers):len(c.roundTrippers)], wrap)
		}
		return c
	})
}

// WithBasicAuth sends HTTP basic authentication with every request. It cannot
// be combined with a bearer token or an Authorization header. Default: none.
func WithBasicAuth(username, password string) Option {
	return optionFunc(func(c config) config {
		c.basicAuthSet, c.basicAuthFromFile, c.basicAuthUser, c.basicAuthPassword, c.basicAuthFile = true, false, username, password, ""
		return c
	})
}

// WithBasicAuthPasswordFile is WithBasicAuth with the password read from path
// at each request, trimmed of trailing newlines, so that rotated secrets are
// picked up without a restart. A missing file fails that export, not New.
func WithBasicAuthPasswordFile(username, path string) Option {
	return optionFunc(func(c config) config {
		c.basicAuthSet, c.basicAuthFromFile, c.basicAuthUser, c.basicAuthPassword, c.basicAuthFile = true, true, username, "", path
		return c
	})
}

// WithBearerToken sends "Authorization: Bearer <token>" with every request. It
// cannot be combined with WithBearerTokenFile, basic auth or an Authorization
// header. Default: none.
func WithBearerToken(token string) Option {
	return optionFunc(func(c config) config { c.bearerSet, c.bearerToken = true, token; return c })
}

// WithBearerTokenFile is WithBearerToken with the token read from path at each
// request, trimmed of surrounding white space, so that rotated tokens (such as
// Kubernetes service-account tokens) are picked up. A missing file fails that
// export, not New.
func WithBearerTokenFile(path string) Option {
	return optionFunc(func(c config) config { c.bearerFileSet, c.bearerTokenFile = true, path; return c })
}

// WithHeaders adds headers to every request, such as X-Scope-OrgID for
// Cortex and Mimir tenants. The map is copied. Headers of the remote-write
// protocol (Content-Encoding, Content-Type, X-Prometheus-Remote-Write-Version,
// User-Agent) cannot be replaced, and Authorization conflicts with basic and
// bearer auth. Several WithHeaders options merge; a later value for the same
// name wins.
func WithHeaders(headers map[string]string) Option {
	headers = maps.Clone(headers)
	return optionFunc(func(c config) config { c.headers = merge(c.headers, headers); return c })
}

// WithAuthenticator adds an authentication scheme implemented outside this
// package, such as the AWS SigV4 signing of prwmetric/sigv4 or the Entra ID
// tokens of prwmetric/azuread; most programs use those packages' options
// rather than this one. name is the option the user wrote (e.g.
// "sigv4.WithSigV4"), used in New's errors. New calls wrap once with the
// transport that sends requests; an error from it is New's error. The
// returned transport is the innermost wrapper, after WithRoundTripper's, so
// it sees the final request. It sets the request's one Authorization: it
// cannot be combined with basic auth, a bearer token or an Authorization
// header. A later WithAuthenticator replaces an earlier one. Default: none.
func WithAuthenticator(name string, wrap func(next http.RoundTripper) (http.RoundTripper, error)) Option {
	return optionFunc(func(c config) config {
		c.authenticator, c.authenticatorName = wrap, name
		if c.authenticatorName == "" {
			c.authenticatorName = "WithAuthenticator"
		}
		return c
	})
}

// WithNamespace prefixes every metric name with namespace and an underscore,
// as the OpenTelemetry Prometheus exporter does; target_info is not prefixed.
// The namespace is escaped like a label name ("my.app" → "my_app", "1app" →
// "key_1app"); one that escapes to nothing, such as "...", makes New fail.
// Default: no prefix.
func WithNamespace(namespace string) Option {
	return optionFunc(func(c config) config { c.namespace = namespace; return c })
}

// WithTranslationStrategy chooses how OpenTelemetry names become Prometheus
// names. The default, otlptranslator.UnderscoreEscapingWithSuffixes, replaces
// invalid characters with "_" and appends unit and "_total" suffixes;
// otlptranslator.UnderscoreEscapingWithoutSuffixes leaves the suffixes out.
// Strategies that keep UTF-8 names (otlptranslator.NoUTF8EscapingWithSuffixes,
// otlptranslator.NoTranslation) need WithProtocol(ProtocolV2), New refuses
// them otherwise: Remote Write 1.0 receivers expect legacy names. Should a
// 2.0 exporter fall back to 1.0 (see WithProtocol), the receiver may refuse
// the UTF-8 names, and Export reports that.
func WithTranslationStrategy(strategy otlptranslator.TranslationStrategyOption) Option {
	return optionFunc(func(c config) config { c.translationStrategy = strategy; return c })
}

// WithoutScopeInfo leaves out the otel_scope_name, otel_scope_version,
// otel_scope_schema_url and otel_scope_<attribute> labels. Default: included.
func WithoutScopeInfo() Option {
	return optionFunc(func(c config) config { c.withoutScopeInfo = true; return c })
}

// WithoutTargetInfo leaves out the target_info series that carries the
// resource attributes. Default: one target_info series per export.
func WithoutTargetInfo() Option {
	return optionFunc(func(c config) config { c.withoutTargetInfo = true; return c })
}

// WithResourceAsLabels copies the resource attributes that filter keeps onto
// every series as labels (a nil filter keeps all). Default: none are copied;
// they are in target_info.
func WithResourceAsLabels(filter attribute.Filter) Option {
	return optionFunc(func(c config) config {
		if filter == nil {
			filter = func(attribute.KeyValue) bool { return true }
		}
		c.resourceAsLabels = filter
		return c
	})
}

// WithExternalLabels adds constant labels to every series, like Prometheus'
// external_labels; they win over attributes of the same name. Names must be
// valid, not reserved ("__" prefix) and values non-empty, or New fails. The
// map is copied; several options merge.
func WithExternalLabels(labels map[string]string) Option {
	labels = maps.Clone(labels)
	return optionFunc(func(c config) config { c.externalLabels = merge(c.externalLabels, labels); return c })
}

// WithoutMetadata leaves out the metric metadata (type, help, unit) that is
// otherwise sent once per metric family in each request.
func WithoutMetadata() Option {
	return optionFunc(func(c config) config { c.withoutMetadata = true; return c })
}

// WithHistogramMinMax adds <name>_min and <name>_max gauges from the recorded
// extrema of explicit-bucket histograms, where the SDK recorded them. Off by
// default, as the OpenTelemetry specification has it.
func WithHistogramMinMax() Option {
	return optionFunc(func(c config) config { c.histogramMinMax = true; return c })
}

// WithAggregationSelector chooses the aggregation per instrument kind, e.g.
// base-2 exponential histograms (sent as Prometheus native histograms). The
// default is sdkmetric.DefaultAggregationSelector.
func WithAggregationSelector(selector sdkmetric.AggregationSelector) Option {
	return optionFunc(func(c config) config { c.aggregationSelector = selector; return c })
}

// WithMaxSeriesPerRequest splits an export into requests of at most n series
// (default 10 000). Requests of one export are sent side by side (see
// WithMaxConcurrentRequests), and the first failure stops those not yet
// started. n must be positive.
func WithMaxSeriesPerRequest(n int) Option {
	return optionFunc(func(c config) config { c.maxSeries = n; return c })
}

// WithMaxRequestBytes splits an export into requests whose uncompressed
// protobuf encoding is at most n bytes (default 3 MiB), so that receivers'
// size limits are never hit. A single series larger than n goes alone in its
// own request. n must be positive.
func WithMaxRequestBytes(n int) Option {
	return optionFunc(func(c config) config { c.maxBytes = n; return c })
}

// WithMaxConcurrentRequests lets up to n requests of one export be in
// flight at once (default 8). An export larger than one request (see
// WithMaxSeriesPerRequest, WithMaxRequestBytes) then waits for about
// requests/n round trips instead of one per request. One export carries at
// most one sample (or marker) per series, so its requests may arrive in
// any order; the next export, and Shutdown's staleness markers, start only
// when every request of this one has finished, so exports never overtake
// each other. The first failed request stops those not yet started (they
// are dropped); requests under way complete, and WriteError counts exactly
// the series delivered and dropped. WithRetry retries each request on its
// own.
//
// The default comes from measurement: with 50 ms per request, a
// 1 000 000-series export (113 requests) took 6.0 s with n = 1, 1.66 s
// with 4, 0.93 s with 8 and 0.56 s with 16, for the same CPU. 8 sends an
// export of workload W (6 requests) in one round trip, and keeps the
// receiver's load modest (a Prometheus server's remote write runs up to
// 50 shards).
//
// Memory stays bounded: two workers encode and compress requests, each
// holding one uncompressed request (up to WithMaxRequestBytes), its
// compression scratch and, for zstd, its encoder (about 6 MiB); at most
// n+2 compressed bodies exist at once (on W 0.17 MB each with snappy; at
// most about the uncompressed size). The exporter's own transport keeps up
// to n connections to the receiver (with WithHTTP2, one carries them all).
// n must be positive; 1 sends one request at a time, in order.
func WithMaxConcurrentRequests(n int) Option {
	return optionFunc(func(c config) config { c.maxConcurrent = n; return c })
}

// WithCompression chooses how request bodies are compressed. The default,
// CompressionSnappy, is what Remote Write mandates.
//
// CompressionZstd sends the VictoriaMetrics remote write protocol, which
// VictoriaMetrics and vmagent accept: on workload W the bodies are 0.15×
// the bytes of snappy (156 kB instead of 1 027 kB), for about 4× the
// compression CPU (7 ms instead of 1.7 ms; zstd level 3, which measured
// best: faster levels were no faster, slower ones at most 2% smaller).
// When the receiver answers a zstd request with 415 Unsupported Media Type
// or 400 Bad Request (as Prometheus does), the exporter sends what was not
// delivered again with snappy in the same export, logs one warning, and
// stays on snappy; it tries zstd again after an hour. A 400 that the
// snappy request gets as well is about the data, and changes nothing.
// CompressionZstd cannot be combined with WithProtocol(ProtocolV2), and
// New says so: the VictoriaMetrics protocol carries 1.0 requests.
func WithCompression(c Compression) Option {
	return optionFunc(func(cfg config) config { cfg.compression = c; return cfg })
}

// WithHTTP2 lets the exporter's transport speak HTTP/2 with https
// receivers that offer it (ALPN), with a health check: a connection on
// which nothing arrives for 30 s is sent a ping, and is closed when no
// answer comes within 15 s, so a connection that died silently (a
// middlebox dropped it) fails its requests within 45 s instead of
// stalling them until the export's timeout, and the next request opens a
// new connection. Default: HTTP/1.1 only, one connection per request in
// flight; there a request on a dead connection fails at the timeout
// (WithTimeout), and its connection is discarded.
//
// With either protocol, idle connections are closed 30 s after their last
// use and, after an export, once every five minutes, so that connections
// are made anew, to the addresses the receiver's name resolves to then,
// and spread over a load-balanced receiver's instances. WithHTTP2 cannot
// be combined with WithHTTPClient: configure that client's transport.
func WithHTTP2() Option {
	return optionFunc(func(c config) config { c.http2 = true; return c })
}

// WithProtocol chooses the Remote Write protocol. The default is ProtocolV1,
// which every receiver accepts.
//
// With ProtocolV2 the exporter negotiates: when the receiver answers a 2.0
// request with 415 Unsupported Media Type, or with a success that lacks the
// X-Prometheus-Remote-Write-*-Written headers every 2.0 receiver sends (an
// old receiver decodes a 2.0 body as an empty 1.0 request and writes
// nothing), the exporter logs one warning, sends the same data again as
// 1.0, and stays on 1.0; it tries 2.0 again after an hour, in case the
// receiver was upgraded. A 2.0 receiver that writes fewer samples,
// histograms or exemplars than were sent makes Export log a warning with
// the counts and return an error.
//
// ProtocolV2 also allows translation strategies that keep UTF-8 names (see
// WithTranslationStrategy) and custom-bucket native histograms (see
// WithNativeHistogramsForExplicitBuckets).
func WithProtocol(p Protocol) Option {
	return optionFunc(func(c config) config { c.protocol = p; return c })
}

// WithNativeHistogramsForExplicitBuckets sends each explicit-bucket
// histogram data point as one native histogram with custom buckets (schema
// -53, "NHCB") instead of the classic _bucket, _sum and _count series:
// one series instead of buckets+2, with the same bounds. It requires
// WithProtocol(ProtocolV2), and a receiver that stores native histograms
// with custom buckets (Prometheus 3). Default: classic series.
//
// When the receiver turns out to speak only Remote Write 1.0 (see
// WithProtocol), those histograms are left out of its requests: each export
// then warns and returns an error saying how many, unless
// WithClassicHistograms sends the classic series as well, which carry the
// same data.
func WithNativeHistogramsForExplicitBuckets() Option {
	return optionFunc(func(c config) config { c.customBuckets = true; return c })
}

// WithClassicHistograms keeps the classic _bucket, _sum and _count series of
// explicit-bucket histograms beside the native histograms that
// WithNativeHistogramsForExplicitBuckets sends, so that queries and
// receivers that only know classic histograms keep working during a
// migration. It requires WithNativeHistogramsForExplicitBuckets; the
// classic series are the default without it.
func WithClassicHistograms() Option {
	return optionFunc(func(c config) config { c.classicHistograms = true; return c })
}

// WithoutNativeHistograms sends exponential histograms as classic
// histograms (_bucket series with an le bound at each exponential bucket
// boundary, _sum and _count, and _min and _max with WithHistogramMinMax)
// instead of native histograms, for receivers that refuse native
// histograms: Prometheus 2.x without --enable-feature=native-histograms,
// Amazon Managed Service for Prometheus. Without it the exporter does the
// same by itself the first time a receiver refuses native histograms: it
// warns once (naming the receiver's setting), sends that export again
// without them, and keeps to classic histograms from then on. It cannot be
// combined with WithNativeHistogramsForExplicitBuckets. Default: native
// histograms.
func WithoutNativeHistograms() Option {
	return optionFunc(func(c config) config { c.withoutNativeHistograms = true; return c })
}

// WithRetry retries failed requests when cfg.Enabled is set: answers 5xx
// and 429 and network errors are retried with jittered exponential backoff,
// honouring Retry-After; other 4xx answers never are, as they cannot
// succeed. Retries carry a Retry-Attempt header. Default: no retries.
//
// Beware that some receivers answer 500 to requests that can never succeed
// (Prometheus 2.x does for some invalid data), so retries are bounded by
// MaxElapsedTime, WithTimeout and the export's context.
func WithRetry(cfg RetryConfig) Option {
	return optionFunc(func(c config) config { c.retry = cfg; return c })
}

// WithoutStaleMarkers stops the exporter from ending series with staleness
// markers. By default, a series that the receiver got before and that is
// missing from an export, and every series at Shutdown, is sent once more
// with the stale NaN, so Prometheus ends its line at once instead of five
// minutes later.
func WithoutStaleMarkers() Option {
	return optionFunc(func(c config) config { c.withoutStaleMarkers = true; return c })
}

// WithLogger sets where the exporter's warnings go, and turns on its
// structured warning for each failed export and each export that dropped
// data (endpoint, status, body, series dropped and delivered, attempts,
// hint), beside the error Export returns with the same facts.
//
// Without it, notices that are no error (a fallback to Remote Write 1.0, to
// classic histograms) go to slog.Default(), and failures are reported once:
// by the error Export returns, which the SDK's PeriodicReader hands to the
// OpenTelemetry error handler (log.Print, unless the program set one with
// otel.SetErrorHandler) and ForceFlush and Shutdown return. A program whose
// error handler is silent, or that wants failures as structured records,
// passes its logger here. Credentials never appear in what is logged.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(c config) config { c.logger, c.logFailures = logger, true; return c })
}

// WithMeterProvider records the exporter's own telemetry with mp: data points
// exported and the export duration under the OpenTelemetry semantic
// conventions for SDK exporters (otel.sdk.exporter.*), and series, samples,
// histograms, exemplars, requests and bytes under prwmetric.exporter.*. All
// attributes have a small fixed set of values, so when mp is the provider
// whose metrics this exporter sends, its own series stay a fixed few. Off by
// default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c config) config { c.meterProvider = mp; return c })
}

// WithoutEnvironment makes New ignore the OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_*
// environment variables, for programs configured by code alone.
func WithoutEnvironment() Option {
	return optionFunc(func(c config) config { c.withoutEnvironment = true; return c })
}

// WithOAuth2 authenticates every request with an access token obtained from
// cfg.TokenURL by the OAuth 2.0 client credentials grant, sent as
// "Authorization: Bearer <token>" to the endpoint's origin only.
//
// The client ID and secret are sent to the token endpoint as HTTP basic
// authentication (client_secret_basic, each URL-encoded first as RFC 6749
// section 2.3.1 requires), the method every authorization server must
// support; never in the form body.
//
// A token is reused until 10 seconds before the expiry the token endpoint
// gave (expires_in), then a new one is fetched by the next request; a token
// without expires_in is reused until the receiver refuses it. When the
// receiver answers 401, the token is dropped and the request is sent once
// more with a fresh one; a second 401 is the export's error. Token requests
// go through the exporter's own transport (WithTLS, WithTLSClientConfig,
// WithProxy, WithProxyURL, or WithHTTPClient's transport), not through
// WithRoundTripper hooks, never follow redirects, and are bounded by the
// export's context and timeout. A token endpoint that fails makes that
// export fail with an error naming WithOAuth2, the token URL, the status and
// the OAuth2 error code; the response body is never shown, as it may echo
// the credentials.
//
// WithOAuth2 sets the request's one Authorization: it cannot be combined with
// basic auth, a bearer token, an Authorization header or WithAuthenticator.
// The config's Scopes and EndpointParams are copied. New validates cfg but
// does not contact the token endpoint. A later WithOAuth2 replaces an earlier
// one. Default: none.
func WithOAuth2(cfg OAuth2Config) Option {
	cfg.Scopes = slices.Clone(cfg.Scopes)
	cfg.EndpointParams = cloneValues(cfg.EndpointParams)
	return optionFunc(func(c config) config { c.oauth2 = &cfg; return c })
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}
