package prwmetric

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// defaultTimeout bounds one export, like the OTLP exporters' default.
const defaultTimeout = 30 * time.Second

// Option configures an Exporter. Options are applied in order; for options
// that set the same thing, the last one wins.
type Option interface {
	apply(config) config
}

type optionFunc func(config) config

func (f optionFunc) apply(c config) config { return f(c) }

// config is the validated result of all options. It is copied by value into
// each option so that an Option can never mutate a config it does not own.
type config struct {
	endpoint    string
	endpointURL *url.URL
	timeout     time.Duration

	basicAuthSet      bool
	basicAuthFromFile bool
	basicAuthUser     string
	basicAuthPassword string
	basicAuthFile     string
	bearerSet         bool
	bearerToken       string
	bearerFileSet     bool
	bearerTokenFile   string
	headers           map[string]string
	tlsBuilt          *tls.Config

	proxy           func(*http.Request) (*url.URL, error)
	proxyURL        string
	proxySet        bool
	tls             *TLSConfig
	tlsClientConfig *tls.Config
	httpClient      *http.Client
	// roundTrippers wrap the base transport, first one outermost.
	roundTrippers []func(http.RoundTripper) http.RoundTripper
	// authenticator is an authentication scheme from another package
	// (WithAuthenticator); authenticatorName is the option users wrote.
	authenticator     func(http.RoundTripper) (http.RoundTripper, error)
	authenticatorName string
	oauth2            *OAuth2Config

	logger              *slog.Logger
	aggregationSelector sdkmetric.AggregationSelector

	namespace           string
	translationStrategy otlptranslator.TranslationStrategyOption
	withoutScopeInfo    bool
	withoutTargetInfo   bool
	resourceAsLabels    attribute.Filter
	externalLabels      map[string]string
	withoutMetadata     bool
	histogramMinMax     bool
	protocol            Protocol
	customBuckets       bool
	classicHistograms   bool

	withoutEnvironment  bool
	retry               RetryConfig
	maxSeries           int
	maxBytes            int
	withoutStaleMarkers bool
	meterProvider       metric.MeterProvider
}

// newConfig applies defaults, then the environment, then opts, and validates
// the result.
func newConfig(opts []Option) (config, error) {
	c := config{
		timeout:             defaultTimeout,
		logger:              slog.Default(),
		aggregationSelector: sdkmetric.DefaultAggregationSelector,
		translationStrategy: otlptranslator.UnderscoreEscapingWithSuffixes,
		maxSeries:           defaultMaxSeriesPerRequest,
		maxBytes:            defaultMaxRequestBytes,
		protocol:            ProtocolV1,
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
		if code.basicAuthSet || code.bearerSet || code.bearerFileSet || code.oauth2 != nil {
			c.basicAuthSet, c.basicAuthFromFile, c.basicAuthUser, c.basicAuthPassword, c.basicAuthFile = false, false, "", "", ""
			c.bearerSet, c.bearerToken, c.bearerFileSet, c.bearerTokenFile = false, "", false, ""
			c.oauth2 = nil
		}
		if code.tls != nil || code.tlsClientConfig != nil || code.httpClient != nil {
			c.tls = nil
		}
	}
	c = applyOptions(c, opts)
	err := c.validate()
	return c, err
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
// in one round. Messages name the option and never include a secret.
func (c *config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.endpoint == "" {
		add("prwmetric: no endpoint: use WithEndpoint(\"http://host:port/api/v1/write\")")
	} else if u, err := parseEndpoint(c.endpoint); err != nil {
		errs = append(errs, err)
	} else {
		c.endpointURL = u
	}
	if c.timeout <= 0 {
		add("prwmetric: WithTimeout(%v): the timeout must be positive", c.timeout)
	}

	basicName, bearerName := "WithBasicAuth", "WithBearerToken"
	if c.basicAuthFromFile {
		basicName = "WithBasicAuthPasswordFile"
	}
	if c.bearerFileSet {
		bearerName = "WithBearerTokenFile"
	}
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
	if c.bearerSet && c.bearerFileSet {
		add("prwmetric: WithBearerToken and WithBearerTokenFile both set: keep one")
	}
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
	for name, value := range c.headers {
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case !validHeaderName(name):
			add("prwmetric: WithHeaders: %q is not a valid HTTP header name", name)
		case !validHeaderValue(value):
			// The value may be a secret: name the header only.
			add("prwmetric: WithHeaders: the value of header %q is not a valid HTTP header value (control characters or newlines?)", name)
		case isProtocolHeader(canonical):
			add("prwmetric: WithHeaders: header %q is set by the remote-write protocol and cannot be replaced; remove it", name)
		case canonical == "Authorization" && c.basicAuthSet:
			add("prwmetric: WithHeaders sets Authorization and %s is set: keep one", basicName)
		case canonical == "Authorization" && hasBearer:
			add("prwmetric: WithHeaders sets Authorization and %s is set: keep one", bearerName)
		case canonical == "Authorization" && c.authenticator != nil:
			add("prwmetric: WithHeaders sets Authorization and %s is set: keep one", c.authenticatorName)
		}
	}

	if c.proxySet && c.proxyURL != "" {
		u, err := url.Parse(c.proxyURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			add("prwmetric: WithProxyURL(%q): not a proxy URL; want e.g. \"http://proxy.example:3128\"", redactURLString(c.proxyURL))
		} else {
			c.proxy = http.ProxyURL(u)
		}
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
		if len(ignored) > 0 {
			add("prwmetric: WithHTTPClient is combined with %s, which would be ignored: configure the transport of your client instead", strings.Join(ignored, " and "))
		}
	}
	if c.tls != nil {
		built, err := c.tls.build()
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
	errs = append(errs, validateSplit(c)...)
	errs = append(errs, validateProtocol(c)...)
	if err := c.validateConversion(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
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

func parseEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("prwmetric: WithEndpoint(%q): not a URL: want e.g. \"http://host:9090/api/v1/write\"", redactURLString(raw))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("prwmetric: WithEndpoint(%q): scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("prwmetric: WithEndpoint(%q): no host: want e.g. \"http://host:9090/api/v1/write\"", u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("prwmetric: WithEndpoint(%q): credentials in the URL are not sent; use WithBasicAuth instead", u.Redacted())
	}
	return u, nil
}

// redactURLString hides userinfo in a string that may not parse as a URL.
func redactURLString(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		if scheme := strings.Index(raw, "://"); scheme >= 0 && scheme < at {
			return raw[:scheme+3] + "xxxxx" + raw[at:]
		}
		return "xxxxx" + raw[at:]
	}
	return raw
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b >= 0x80 || b <= ' ' || strings.IndexByte("\"(),/:;<=>?@[\\]{}", b) >= 0 || b == 0x7f {
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters, which could split headers.
func validHeaderValue(value string) bool {
	for i := 0; i < len(value); i++ {
		if b := value[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
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

// WithEndpoint sets the remote-write URL, e.g. "http://prometheus:9090/api/v1/write".
// It is required; the scheme must be http or https, and credentials belong in
// WithBasicAuth, not in the URL.
func WithEndpoint(url string) Option {
	return optionFunc(func(c config) config { c.endpoint = url; return c })
}

// WithTimeout bounds each export, conversion and request included. The
// default is 30 seconds. When the context passed to Export has an earlier
// deadline (the PeriodicReader's export timeout), that one applies.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c config) config { c.timeout = d; return c })
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

// merge returns a new map holding a's entries overwritten by b's, so that an
// option never mutates a map a config already holds.
func merge(a, b map[string]string) map[string]string {
	m := make(map[string]string, len(a)+len(b))
	maps.Copy(m, a)
	maps.Copy(m, b)
	return m
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

// WithLogger sets where warnings about failed exports and dropped data go.
// The default is slog.Default(). Credentials never appear in what is logged.
func WithLogger(logger *slog.Logger) Option {
	return optionFunc(func(c config) config { c.logger = logger; return c })
}

// WithAggregationSelector chooses the aggregation per instrument kind, e.g.
// base-2 exponential histograms (sent as Prometheus native histograms). The
// default is sdkmetric.DefaultAggregationSelector.
func WithAggregationSelector(selector sdkmetric.AggregationSelector) Option {
	return optionFunc(func(c config) config { c.aggregationSelector = selector; return c })
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
