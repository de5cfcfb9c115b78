package prwmetric

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// defaultTimeout bounds one export, like the OTLP exporters' default.
const defaultTimeout = 30 * time.Second

// The byte limit is the Collector's default batch size, which receivers are
// sized for; with typical labels (a few hundred bytes a series) it binds
// first, at 6 000–10 000 series. The series limit guards against requests of
// very many tiny series; fewer, larger requests cost less per series on both
// ends than Prometheus' own 2 000-sample batches, which exist to feed its
// parallel shards.
const (
	defaultMaxSeriesPerRequest = 10000
	defaultMaxRequestBytes     = 3 << 20
)

// defaultMaxConcurrentRequests: far away each request takes a round trip,
// and an export's round trips add about its requests ÷ n of them. The
// 1 000 000-series export (113 requests; benchmarks' BenchmarkLatency; no
// delay / 50 ms of round-trip time) took 0.35 / 1.05 s with 8 in flight
// (3.0×) and 0.24 / 0.61 s with 16 (2.5×) on a busy machine; once the
// export itself took 0.13 s (its requests cut and sent during the
// conversion), 0.13 / 0.20 s with 64 (1.55–1.6×) and 0.13 / 0.18 s with
// 128 (1.4×), for the same CPU: with 128 the whole export is one wave of
// requests. Only exports of that many requests open that many connections;
// nearby, a receiver sees only the requests ready before it answers the
// earlier ones (up to 20 of an export's 21 in the e2e tests). These figures
// are from when the default was chosen; the README's generated "Far from
// the receiver" table has the current ones.
const defaultMaxConcurrentRequests = 128

// config is the validated result of all options. It is copied by value into
// each option so that an Option can never mutate a config it does not own.
type config struct {
	endpoint    string
	endpointURL *url.URL
	// endpointFrom names where endpoint came from, for New's errors: an
	// option or an environment variable.
	endpointFrom string
	timeout      time.Duration
	// timeoutFrom names the option or variable that set timeout, for New's
	// errors; empty for the default.
	timeoutFrom string

	basicAuthSet      bool
	basicAuthFromFile bool
	basicAuthUser     string
	basicAuthPassword string
	basicAuthFile     string
	bearerSet         bool
	bearerToken       string
	bearerFileSet     bool
	bearerTokenFile   string
	// basicAuthFrom, bearerFrom and oauth2From name the option or variable
	// that set those credentials, for New's errors.
	basicAuthFrom, bearerFrom, oauth2From string
	headers                               map[string]string
	// headersFrom names the variable that set each header of headers from
	// the environment (by canonical name); the others are WithHeaders'.
	headersFrom map[string]string
	// headersTwice names the headers one WithHeaders map spelled twice.
	headersTwice  []string
	headerFunc    func(context.Context) (map[string]string, error)
	headerFuncSet bool
	tlsBuilt      *tls.Config

	proxy           func(*http.Request) (*url.URL, error)
	proxyURL        string
	proxySet        bool
	tls             *TLSConfig
	tlsNames        tlsNames
	tlsClientConfig *tls.Config
	httpClient      *http.Client
	// roundTrippers wrap the base transport, first one outermost.
	roundTrippers []func(http.RoundTripper) http.RoundTripper
	// authenticator is an authentication scheme from another package
	// (WithAuthenticator); authenticatorName is the option users wrote.
	authenticator     func(http.RoundTripper) (http.RoundTripper, error)
	authenticatorName string
	authenticatorSet  bool
	oauth2            *OAuth2Config

	logger *slog.Logger
	// logFailures: the exporter logs each failure it returns too
	// (WithLogger).
	logFailures         bool
	aggregationSelector sdkmetric.AggregationSelector

	namespace           string
	translationStrategy otlptranslator.TranslationStrategyOption
	withoutScopeInfo    bool
	withoutTargetInfo   bool
	resourceAsLabels    attribute.Filter
	// resourceLabelsBy names the options that set resourceAsLabels, each
	// once: two of them conflict.
	resourceLabelsBy  []string
	externalLabels    map[string]string
	compatibility     Compatibility
	keepIdentifying   bool
	typeAndUnitLabels bool
	openMetricsFloats bool
	initialZero       bool
	withoutMetadata   bool
	histogramMinMax   bool
	protocol          Protocol
	customBuckets     bool
	classicHistograms bool
	// withoutNativeHistograms sends exponential histograms as classic ones.
	withoutNativeHistograms bool

	withoutEnvironment  bool
	retry               RetryConfig
	maxSeries           int
	maxBytes            int
	withoutStaleMarkers bool
	// withoutShutdownMarkers keeps the markers of vanished series only.
	withoutShutdownMarkers bool
	meterProvider          metric.MeterProvider

	maxConcurrent int
	compression   Compression
	// protocolFrom and compressionFrom name the option or variable that set
	// them, for New's errors.
	protocolFrom, compressionFrom string
	http2                         bool
	// h2ReadIdle and h2PingTimeout configure WithHTTP2's health check;
	// tests shorten them.
	h2ReadIdle, h2PingTimeout time.Duration
}

// newConfig applies defaults, then the environment, then opts, and validates
// the result.
func newConfig(opts []Option) (config, error) {
	c := config{
		timeout:             defaultTimeout,
		logger:              slog.Default(),
		aggregationSelector: sdkmetric.DefaultAggregationSelector,
		maxSeries:           defaultMaxSeriesPerRequest,
		maxBytes:            defaultMaxRequestBytes,
		protocol:            ProtocolV1,
		maxConcurrent:       defaultMaxConcurrentRequests,
		compression:         CompressionSnappy,
		h2ReadIdle:          h2ReadIdle,
		h2PingTimeout:       h2PingTimeout,
	}
	code := applyOptions(config{}, opts)
	if !code.withoutEnvironment {
		envOpts, err := fromEnvironment(os.LookupEnv)
		if err != nil {
			return c, err
		}
		c = applyOptions(c, envOpts)
		// Credentials and TLS are each one setting: when code configures
		// them, none of the environment's parts remain to conflict with it.
		if code.basicAuthSet || code.bearerSet || code.bearerFileSet || code.oauth2 != nil || code.authenticatorSet || hasAuthorization(code.headers) {
			c.basicAuthSet, c.basicAuthFromFile, c.basicAuthUser, c.basicAuthPassword, c.basicAuthFile, c.basicAuthFrom = false, false, "", "", "", ""
			c.bearerSet, c.bearerToken, c.bearerFileSet, c.bearerTokenFile, c.bearerFrom = false, "", false, "", ""
			c.oauth2, c.oauth2From = nil, ""
			if hasAuthorization(c.headers) {
				c.headers = maps.Clone(c.headers)
				delete(c.headers, "Authorization")
			}
		}
		if code.tls != nil || code.tlsClientConfig != nil || code.httpClient != nil {
			c.tls = nil
		}
	}
	c = applyOptions(c, opts)
	c.applyCompatibility()
	err := c.validate()
	return c, err
}

// failureLogger is where failures that Export returns are logged too: the
// logger of WithLogger, or nowhere, so that by default each failure shows
// once, through the OpenTelemetry error handler.
func (c *config) failureLogger() *slog.Logger {
	if c.logFailures {
		return c.logger
	}
	return slog.New(slog.DiscardHandler)
}

func applyOptions(c config, opts []Option) config {
	for _, o := range opts {
		if o != nil {
			c = o.apply(c)
		}
	}
	return c
}

// validate reports every configuration problem at once, so a user fixes them
// in one round. Messages name the option, or the environment variable that
// set the value, and never include a secret.
func (c *config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.endpoint == "" {
		add("prwmetric: no endpoint: use WithEndpoint(\"http://host:port/api/v1/write\") or set %s", envEndpoint)
	} else if u, err := parseEndpoint(c.endpoint, c.endpointFrom); err != nil {
		errs = append(errs, err)
	} else {
		c.endpointURL = u
	}
	if c.timeout <= 0 {
		add("prwmetric: WithTimeout(%v): the timeout must be positive", c.timeout)
	}

	basicName, bearerName := c.basicAuthFrom, c.bearerFrom
	if c.basicAuthSet {
		switch {
		case c.basicAuthUser == "":
			add("prwmetric: %s: the username is empty: pass the username the receiver expects", basicName)
		case strings.Contains(c.basicAuthUser, ":"):
			add("prwmetric: %s: the username contains \":\", which basic auth cannot carry", basicName)
		}
		if c.basicAuthFromFile && c.basicAuthFile == "" {
			add("prwmetric: WithBasicAuthPasswordFile: the path is empty: pass the file that holds the password")
		}
	}
	if c.bearerSet {
		switch {
		case c.bearerToken == "":
			add("prwmetric: WithBearerToken: the token is empty: pass a token, or leave the option out")
		case !validHeaderValue(c.bearerToken):
			// Never echo the token.
			add("prwmetric: WithBearerToken: the token holds characters not allowed in an HTTP header (a trailing newline?)")
		}
	}
	if c.bearerFileSet && c.bearerTokenFile == "" {
		add("prwmetric: WithBearerTokenFile: the path is empty: pass the file that holds the token")
	}
	hasBearer := c.bearerSet || c.bearerFileSet
	if c.basicAuthSet && hasBearer {
		add("prwmetric: %s and %s both set: a request carries one Authorization header, keep one", basicName, bearerName)
	}
	if c.authenticator != nil {
		switch {
		case c.basicAuthSet:
			add("prwmetric: %s and %s both set: a request carries one Authorization header, keep one", c.authenticatorName, basicName)
		case hasBearer:
			add("prwmetric: %s and %s both set: a request carries one Authorization header, keep one", c.authenticatorName, bearerName)
		}
	}
	errs = append(errs, c.validateOAuth2()...)
	for _, name := range c.headersTwice {
		add("prwmetric: WithHeaders: the map names header %q twice, in different cases: HTTP compares names without regard to case, keep one", name)
	}
	for name, value := range c.headers {
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		// Only the header's name is ever named: values may be secrets.
		from := c.headerFrom(name)
		switch problem := headerProblem(name, value, from != "WithHeaders"); {
		case problem != "":
			add("prwmetric: %s: %s", from, problem)
		case canonical == "Authorization" && c.basicAuthSet:
			add("prwmetric: %s sets Authorization and %s is set: keep one", from, basicName)
		case canonical == "Authorization" && hasBearer:
			add("prwmetric: %s sets Authorization and %s is set: keep one", from, bearerName)
		case canonical == "Authorization" && c.authenticator != nil:
			add("prwmetric: %s sets Authorization and %s is set: keep one", from, c.authenticatorName)
		}
	}

	if c.authenticatorSet && c.authenticator == nil {
		add("prwmetric: %s: no transport wrapper given (nil); pass one, or leave the option out", c.authenticatorName)
	}
	if c.headerFuncSet && c.headerFunc == nil {
		add("prwmetric: WithHeaderFunc(nil): pass a function, or leave the option out")
	}
	if c.proxySet && c.proxyURL != "" {
		u, err := url.Parse(c.proxyURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			add("prwmetric: WithProxyURL(%q): not a proxy URL; want e.g. \"http://proxy.example:3128\"", safeURLString(c.proxyURL))
		} else {
			c.proxy = http.ProxyURL(u)
		}
	}
	if (c.tls != nil || c.tlsClientConfig != nil) && c.endpointURL != nil && c.endpointURL.Scheme != "https" && !c.tlsUsedElsewhere() {
		add("prwmetric: TLS settings (WithTLS, WithTLSClientConfig or the %s* variables) are set but the endpoint %s is plain http, which would ignore them: use an https:// endpoint, or drop the TLS settings", envPrefix+"CERTIFICATE", safeURL(c.endpointURL))
	}
	if c.tls != nil && c.tlsClientConfig != nil {
		add("prwmetric: WithTLS and WithTLSClientConfig both set: keep one")
	}
	if c.httpClient != nil {
		var ignored []string
		if c.proxySet {
			ignored = append(ignored, "WithProxy/WithProxyURL")
		}
		if c.tls != nil {
			ignored = append(ignored, "WithTLS")
		}
		if c.tlsClientConfig != nil {
			ignored = append(ignored, "WithTLSClientConfig")
		}
		if c.http2 {
			ignored = append(ignored, "WithHTTP2")
		}
		if len(ignored) > 0 {
			add("prwmetric: WithHTTPClient is combined with %s, which would be ignored: configure the transport of your client instead", strings.Join(ignored, " and "))
		}
	}
	if c.tls != nil {
		built, err := c.tls.build(c.tlsNames)
		if err != nil {
			errs = append(errs, err)
		}
		c.tlsBuilt = built
	}

	if c.logger == nil {
		add("prwmetric: WithLogger(nil): pass a logger, or slog.New(slog.DiscardHandler) to silence warnings")
	}
	if c.aggregationSelector == nil {
		add("prwmetric: WithAggregationSelector(nil): pass a selector, e.g. sdkmetric.DefaultAggregationSelector")
	}
	errs = append(errs, c.retry.validate(c.timeout, c.timeoutName())...)
	errs = append(errs, validateSplit(c)...)
	errs = append(errs, validateProtocol(c)...)
	errs = append(errs, validateCompression(c)...)
	if err := c.validateConversion(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateCompatibility()...)
	if _, err := c.escapedNamespace(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validateSplit(c *config) []error {
	var errs []error
	if c.maxSeries <= 0 {
		errs = append(errs, fmt.Errorf("prwmetric: WithMaxSeriesPerRequest(%d): the limit must be positive", c.maxSeries))
	}
	if c.maxBytes <= 0 {
		errs = append(errs, fmt.Errorf("prwmetric: WithMaxRequestBytes(%d): the limit must be positive", c.maxBytes))
	}
	if c.maxConcurrent <= 0 {
		errs = append(errs, fmt.Errorf("prwmetric: WithMaxConcurrentRequests(%d): the limit must be positive; 1 sends one request at a time", c.maxConcurrent))
	}
	return errs
}

func validateProtocol(c *config) []error {
	var errs []error
	switch c.protocol {
	case ProtocolV1, ProtocolV2:
	default:
		errs = append(errs, fmt.Errorf("prwmetric: WithProtocol(%d): unknown protocol; use ProtocolV1 or ProtocolV2", int(c.protocol)))
	}
	if c.customBuckets && c.protocol != ProtocolV2 {
		errs = append(errs, fmt.Errorf("prwmetric: WithNativeHistogramsForExplicitBuckets needs WithProtocol(ProtocolV2): custom-bucket native histograms are a Remote Write 2.0 feature"))
	}
	if c.withoutNativeHistograms && c.customBuckets {
		errs = append(errs, fmt.Errorf("prwmetric: WithoutNativeHistograms and WithNativeHistogramsForExplicitBuckets both set: custom-bucket histograms are native histograms; keep one"))
	}
	if c.classicHistograms && !c.customBuckets {
		errs = append(errs, fmt.Errorf("prwmetric: WithClassicHistograms only applies with WithNativeHistogramsForExplicitBuckets (classic series are already the default); remove it or add that option"))
	}
	return errs
}

func (c *config) validateConversion() error {
	switch c.translationStrategy {
	case otlptranslator.UnderscoreEscapingWithSuffixes, otlptranslator.UnderscoreEscapingWithoutSuffixes:
	case otlptranslator.NoUTF8EscapingWithSuffixes, otlptranslator.NoTranslation:
		if c.protocol == ProtocolV2 {
			break
		}
		return fmt.Errorf("prwmetric: WithTranslationStrategy(%s): Remote Write 1.0 requires legacy metric and label names; use %s or %s, or WithProtocol(ProtocolV2)",
			c.translationStrategy, otlptranslator.UnderscoreEscapingWithSuffixes, otlptranslator.UnderscoreEscapingWithoutSuffixes)
	default:
		return fmt.Errorf("prwmetric: WithTranslationStrategy(%q): unknown strategy; use one of the otlptranslator constants", string(c.translationStrategy))
	}
	var errs []error
	for name, value := range c.externalLabels {
		switch {
		case !isLegacyLabelName(name):
			errs = append(errs, fmt.Errorf("prwmetric: WithExternalLabels: %q is not a valid label name; names match [a-zA-Z_][a-zA-Z0-9_]*", name))
		case strings.HasPrefix(name, "__"):
			errs = append(errs, fmt.Errorf("prwmetric: WithExternalLabels: %q is reserved (names starting with \"__\" belong to Prometheus)", name))
		case name == "le" || name == "quantile":
			errs = append(errs, fmt.Errorf("prwmetric: WithExternalLabels: %q is reserved for histogram buckets and summary quantiles; choose another name", name))
		case value == "":
			errs = append(errs, fmt.Errorf("prwmetric: WithExternalLabels: label %q has an empty value, which Prometheus treats as absent; remove it", name))
		}
	}
	return errors.Join(errs...)
}

func parseEndpoint(raw, from string) (*url.URL, error) {
	setting := fmt.Sprintf("WithEndpoint(%q)", safeURLString(raw))
	if from != "" && from != "WithEndpoint" {
		setting = fmt.Sprintf("%s=%q", from, safeURLString(raw))
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("prwmetric: %s: not a URL: want e.g. \"http://host:9090/api/v1/write\"", setting)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("prwmetric: %s: scheme must be http or https, e.g. \"http://host:9090/api/v1/write\"", setting)
	case u.Host == "":
		return nil, fmt.Errorf("prwmetric: %s: no host: want e.g. \"http://host:9090/api/v1/write\"", setting)
	case u.User != nil:
		return nil, fmt.Errorf("prwmetric: %s: credentials in the URL are not sent; use WithBasicAuth instead", setting)
	}
	return u, nil
}

func isLegacyLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// merge returns a new map holding a's entries overwritten by b's, so that an
// option never mutates a map a config already holds.
func merge(a, b map[string]string) map[string]string {
	m := make(map[string]string, len(a)+len(b))
	maps.Copy(m, a)
	maps.Copy(m, b)
	return m
}

// withoutKeys returns m without the keys of drop, copied so that an option
// never mutates a map a config already holds; nil when none remain.
func withoutKeys(m, drop map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if _, ok := drop[k]; !ok {
			if out == nil {
				out = make(map[string]string, len(m))
			}
			out[k] = v
		}
	}
	return out
}

// tlsUsedElsewhere reports whether TLS settings serve a connection other
// than the endpoint's: an https proxy, or an https OAuth2 token endpoint.
func (c *config) tlsUsedElsewhere() bool {
	return strings.HasPrefix(c.proxyURL, "https://") || c.oauth2 != nil && strings.HasPrefix(c.oauth2.TokenURL, "https://")
}

// canonicalHeaders returns headers keyed by their canonical names, so that
// options merge as HTTP compares names, and the names spelled twice.
func canonicalHeaders(headers map[string]string) (map[string]string, []string) {
	canonical := make(map[string]string, len(headers))
	var twice []string
	for name, value := range headers {
		key := textproto.CanonicalMIMEHeaderKey(name)
		if _, ok := canonical[key]; ok {
			twice = append(twice, key)
		}
		canonical[key] = value
	}
	slices.Sort(twice)
	return canonical, twice
}

// headerFrom names the variable or option that set the header name (a
// canonical name), for New's errors.
func (c *config) headerFrom(name string) string {
	if from, ok := c.headersFrom[name]; ok {
		return from
	}
	return "WithHeaders"
}

// timeoutName names the option or variable that sets the timeout, for
// New's errors: WithTimeout, unless the environment set it.
func (c *config) timeoutName() string {
	if c.timeoutFrom == "" {
		return "WithTimeout"
	}
	return c.timeoutFrom
}

// hasAuthorization reports whether headers set Authorization.
func hasAuthorization(headers map[string]string) bool {
	for name := range headers {
		if textproto.CanonicalMIMEHeaderKey(name) == "Authorization" {
			return true
		}
	}
	return false
}
