package prwmetric

import (
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric/internal/testcert"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
)

const validEndpoint = "http://127.0.0.1:9090/api/v1/write"

// secretsInOptions are passed in the validation cases below; no error text
// may contain them.
const (
	secretPassword = "pw-S3CRET"
	secretToken    = "tok-S3CRET"
)

// TestNewRejectsBadInput has one case per configuration mistake New must
// refuse: a nil exporter and an error naming the option (and the fix),
// never a secret.
func TestNewRejectsBadInput(t *testing.T) {
	certs := testcert.New(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := writeFile(t, dir, "not.pem", "this is not PEM\n")
	keyAsCA := certs.ClientKeyFile // PEM, but no certificate in it
	okTLS := TLSConfig{CAFile: certs.CAFile}

	ep := WithEndpoint(validEndpoint)
	tests := []struct {
		name string
		give []Option
		// want are substrings the error must contain: the option, and
		// what is wrong.
		want []string
	}{
		{name: "missing endpoint", give: nil, want: []string{"WithEndpoint"}},
		{name: "empty endpoint", give: []Option{WithEndpoint("")}, want: []string{"WithEndpoint"}},
		{name: "unparsable endpoint", give: []Option{WithEndpoint("http://[::1/api/v1/write")}, want: []string{"WithEndpoint", "not a URL"}},
		{name: "endpoint scheme ftp", give: []Option{WithEndpoint("ftp://host/api/v1/write")}, want: []string{"WithEndpoint", "http or https"}},
		{name: "endpoint without scheme", give: []Option{WithEndpoint("prometheus:9090/api/v1/write")}, want: []string{"WithEndpoint", "http or https"}},
		{name: "endpoint without host", give: []Option{WithEndpoint("http:///api/v1/write")}, want: []string{"WithEndpoint", "host"}},
		{name: "endpoint with credentials", give: []Option{WithEndpoint("http://alice:" + secretPassword + "@host/api/v1/write")}, want: []string{"WithEndpoint", "WithBasicAuth"}},
		{name: "unparsable endpoint with credentials", give: []Option{WithEndpoint("http://alice:" + secretPassword + "@host:port/x")}, want: []string{"WithEndpoint"}},

		{name: "timeout zero", give: []Option{ep, WithTimeout(0)}, want: []string{"WithTimeout", "positive"}},
		{name: "timeout negative", give: []Option{ep, WithTimeout(-time.Second)}, want: []string{"WithTimeout", "positive"}},

		{name: "basic auth empty username", give: []Option{ep, WithBasicAuth("", secretPassword)}, want: []string{"WithBasicAuth", "username"}},
		{name: "basic auth file empty username", give: []Option{ep, WithBasicAuthPasswordFile("", notPEM)}, want: []string{"WithBasicAuthPasswordFile", "username"}},
		{name: "basic auth and bearer token", give: []Option{ep, WithBasicAuth("alice", secretPassword), WithBearerToken(secretToken)}, want: []string{"WithBasicAuth", "WithBearerToken"}},
		{name: "basic auth file and bearer token file", give: []Option{ep, WithBasicAuthPasswordFile("alice", notPEM), WithBearerTokenFile(notPEM)}, want: []string{"WithBasicAuthPasswordFile", "WithBearerTokenFile"}},
		{name: "basic auth and Authorization header", give: []Option{ep, WithBasicAuth("alice", secretPassword), WithHeaders(map[string]string{"Authorization": "Bearer " + secretToken})}, want: []string{"WithBasicAuth", "WithHeaders", "Authorization"}},
		{name: "bearer token and Authorization header", give: []Option{ep, WithBearerToken(secretToken), WithHeaders(map[string]string{"authorization": "Bearer " + secretToken})}, want: []string{"WithBearerToken", "WithHeaders", "Authorization"}},

		{name: "header Content-Encoding", give: []Option{ep, WithHeaders(map[string]string{"Content-Encoding": "gzip"})}, want: []string{"WithHeaders", "Content-Encoding"}},
		{name: "header content-type lower case", give: []Option{ep, WithHeaders(map[string]string{"content-type": "application/json"})}, want: []string{"WithHeaders", "Content-Type"}},
		{name: "header X-Prometheus-Remote-Write-Version", give: []Option{ep, WithHeaders(map[string]string{"X-Prometheus-Remote-Write-Version": "2.0.0"})}, want: []string{"WithHeaders", "X-Prometheus-Remote-Write-Version"}},
		{name: "header User-Agent", give: []Option{ep, WithHeaders(map[string]string{"USER-AGENT": "curl"})}, want: []string{"WithHeaders", "User-Agent"}},
		{name: "header name with space", give: []Option{ep, WithHeaders(map[string]string{"X Tenant": "a"})}, want: []string{"WithHeaders", "not a valid HTTP header name"}},
		{name: "header name with colon", give: []Option{ep, WithHeaders(map[string]string{"X-Tenant:": "a"})}, want: []string{"WithHeaders", "not a valid HTTP header name"}},
		{name: "header name empty", give: []Option{ep, WithHeaders(map[string]string{"": "a"})}, want: []string{"WithHeaders", "not a valid HTTP header name"}},
		{name: "header name non-ASCII", give: []Option{ep, WithHeaders(map[string]string{"X-Tenänt": "a"})}, want: []string{"WithHeaders", "not a valid HTTP header name"}},
		{name: "header value with newline", give: []Option{ep, WithHeaders(map[string]string{"X-Token": secretToken + "\r\nX-Injected: 1"})}, want: []string{"WithHeaders", "X-Token", "not a valid HTTP header value"}},
		{name: "header value with NUL", give: []Option{ep, WithHeaders(map[string]string{"X-Token": secretToken + "\x00"})}, want: []string{"WithHeaders", "X-Token", "not a valid HTTP header value"}},

		{name: "cert without key", give: []Option{ep, WithTLS(TLSConfig{CertFile: certs.ClientCertFile})}, want: []string{"WithTLS", "CertFile", "KeyFile"}},
		{name: "key without cert", give: []Option{ep, WithTLS(TLSConfig{KeyFile: certs.ClientKeyFile})}, want: []string{"WithTLS", "KeyFile", "CertFile"}},
		{name: "unreadable CA", give: []Option{ep, WithTLS(TLSConfig{CAFile: missing})}, want: []string{"WithTLS", "CAFile", missing}},
		{name: "non-PEM CA", give: []Option{ep, WithTLS(TLSConfig{CAFile: notPEM})}, want: []string{"WithTLS", "CAFile", notPEM}},
		{name: "CA file holds a key", give: []Option{ep, WithTLS(TLSConfig{CAFile: keyAsCA})}, want: []string{"WithTLS", "CAFile"}},
		{name: "unreadable cert", give: []Option{ep, WithTLS(TLSConfig{CertFile: missing, KeyFile: certs.ClientKeyFile})}, want: []string{"WithTLS", "CertFile", missing}},
		{name: "non-PEM cert", give: []Option{ep, WithTLS(TLSConfig{CertFile: notPEM, KeyFile: certs.ClientKeyFile})}, want: []string{"WithTLS", "CertFile", notPEM}},
		{name: "unreadable key", give: []Option{ep, WithTLS(TLSConfig{CertFile: certs.ClientCertFile, KeyFile: missing})}, want: []string{"WithTLS", "KeyFile", missing}},
		{name: "non-PEM key", give: []Option{ep, WithTLS(TLSConfig{CertFile: certs.ClientCertFile, KeyFile: notPEM})}, want: []string{"WithTLS", "KeyFile", notPEM}},
		{name: "key of another certificate", give: []Option{ep, WithTLS(TLSConfig{CertFile: certs.ClientCertFile, KeyFile: certs.ServerKeyFile})}, want: []string{"WithTLS", certs.ClientCertFile}},
		{name: "WithTLS and WithTLSClientConfig", give: []Option{ep, WithTLS(okTLS), WithTLSClientConfig(&tls.Config{})}, want: []string{"WithTLS", "WithTLSClientConfig"}},

		{name: "unparsable proxy URL", give: []Option{ep, WithProxyURL("http://[::1:3128")}, want: []string{"WithProxyURL"}},
		{name: "proxy URL without scheme", give: []Option{ep, WithProxyURL("proxy.example:3128")}, want: []string{"WithProxyURL"}},
		{name: "proxy URL without host", give: []Option{ep, WithProxyURL("http://")}, want: []string{"WithProxyURL"}},
		{name: "unparsable proxy URL with password", give: []Option{ep, WithProxyURL("http://bob:" + secretPassword + "@[::1:3128")}, want: []string{"WithProxyURL"}},

		{name: "WithHTTPClient and WithProxyURL", give: []Option{ep, WithHTTPClient(&http.Client{}), WithProxyURL("http://proxy.example:3128")}, want: []string{"WithHTTPClient", "WithProxy"}},
		{name: "WithHTTPClient and WithProxy", give: []Option{ep, WithHTTPClient(&http.Client{}), WithProxy(http.ProxyFromEnvironment)}, want: []string{"WithHTTPClient", "WithProxy"}},
		{name: "WithHTTPClient and WithTLS", give: []Option{ep, WithHTTPClient(&http.Client{}), WithTLS(okTLS)}, want: []string{"WithHTTPClient", "WithTLS"}},
		{name: "WithHTTPClient and WithTLSClientConfig", give: []Option{ep, WithHTTPClient(&http.Client{}), WithTLSClientConfig(&tls.Config{})}, want: []string{"WithHTTPClient", "WithTLSClientConfig"}},

		{name: "nil logger", give: []Option{ep, WithLogger(nil)}, want: []string{"WithLogger"}},
		{name: "nil aggregation selector", give: []Option{ep, WithAggregationSelector(nil)}, want: []string{"WithAggregationSelector"}},

		{name: "several mistakes at once", give: []Option{WithTimeout(0), WithBasicAuth("", secretPassword)}, want: []string{"WithEndpoint", "WithTimeout", "WithBasicAuth"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertNewFails(t, tt.give, tt.want)
		})
	}
}

// TestNewRejectsEmptyOrInvalidCredentials covers credentials that cannot
// work: an empty file path or token silently sends no (or empty)
// credentials, and a token that is no valid header value fails every
// request instead of New. Not in issue 2's list, but "nothing lost
// silently" and "bad input gets a clear error" apply.
func TestNewRejectsEmptyOrInvalidCredentials(t *testing.T) {
	ep := WithEndpoint(validEndpoint)
	for _, tt := range []struct {
		name string
		give []Option
		want []string
	}{
		{name: "empty password file path", give: []Option{ep, WithBasicAuthPasswordFile("alice", "")}, want: []string{"WithBasicAuthPasswordFile"}},
		{name: "empty bearer token file path", give: []Option{ep, WithBearerTokenFile("")}, want: []string{"WithBearerTokenFile"}},
		{name: "bearer token with newline", give: []Option{ep, WithBearerToken(secretToken + "\n")}, want: []string{"WithBearerToken"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assertNewFails(t, tt.give, tt.want)
		})
	}
}

func assertNewFails(t *testing.T, opts []Option, want []string) {
	t.Helper()
	exp, err := New(opts...)
	if exp != nil {
		t.Error("New returned an exporter, want nil")
		_ = exp.Shutdown(t.Context())
	}
	if err == nil {
		t.Fatal("New returned no error")
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not name %q:\n%s", w, msg)
		}
	}
	for _, s := range []string{secretPassword, secretToken} {
		if strings.Contains(msg, s) {
			t.Errorf("error leaks the secret %q:\n%s", s, msg)
		}
	}
}

// TestNewAcceptsValidInput makes sure the validation above is not simply
// refusing everything.
func TestNewAcceptsValidInput(t *testing.T) {
	certs := testcert.New(t)
	ep := WithEndpoint(validEndpoint)
	for _, tt := range []struct {
		name string
		give []Option
	}{
		{name: "endpoint only", give: []Option{ep}},
		{name: "https endpoint", give: []Option{WithEndpoint("https://mimir.example/api/v1/push")}},
		{name: "basic auth with empty password", give: []Option{ep, WithBasicAuth("alice", "")}},
		{name: "missing password file fails exports, not New", give: []Option{ep, WithBasicAuthPasswordFile("alice", "/nonexistent/password")}},
		{name: "missing token file fails exports, not New", give: []Option{ep, WithBearerTokenFile("/nonexistent/token")}},
		{name: "headers", give: []Option{ep, WithHeaders(map[string]string{"X-Scope-OrgID": "tenant-1", "Authorization": "Custom x", "X-Obs": "caf\xc3\xa9\t1"})}},
		{name: "later auth option does not conflict with an earlier one it replaces", give: []Option{ep, WithBasicAuthPasswordFile("alice", "/p"), WithBasicAuth("alice", "pw")}},
		{name: "full TLS", give: []Option{WithEndpoint("https://127.0.0.1:9090/api/v1/write"), WithTLS(TLSConfig{CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile, ServerName: "localhost"})}},
		{name: "TLS client config", give: []Option{WithEndpoint("https://127.0.0.1:9090/api/v1/write"), WithTLSClientConfig(certs.ClientTLSConfig())}},
		{name: "proxy URL", give: []Option{ep, WithProxyURL("http://user:pw@proxy.example:3128")}},
		{name: "proxy func nil means no proxy", give: []Option{ep, WithProxy(nil)}},
		{name: "HTTP client", give: []Option{ep, WithHTTPClient(&http.Client{})}},
		{name: "nil options are skipped", give: []Option{nil, ep, nil}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			newExporter(t, tt.give...)
		})
	}
}

// TestWithHeadersCopiesAndMerges: the map is copied at the call, several
// options merge, and a later value for the same name wins.
func TestWithHeadersCopiesAndMerges(t *testing.T) {
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	first := map[string]string{"X-Scope-OrgID": "tenant-1", "X-A": "a1"}
	opt := WithHeaders(first)
	first["X-Scope-OrgID"] = "mutated-before-New"
	first["X-Added"] = "added-before-New"
	exp := newExporter(t, pinned(WithEndpoint(endpoint), opt, WithHeaders(map[string]string{"X-A": "a2", "X-B": "b"}))...)
	first["X-Scope-OrgID"] = "mutated-after-New"

	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	got := rec.only(t).Header
	for _, tt := range []struct {
		name string
		want string
	}{
		{name: "X-Scope-OrgID", want: "tenant-1"},
		{name: "X-A", want: "a2"},
		{name: "X-B", want: "b"},
		{name: "X-Added", want: ""},
	} {
		if v := got.Get(tt.name); v != tt.want {
			t.Errorf("header %s = %q, want %q", tt.name, v, tt.want)
		}
	}
}

// TestNewConfigDefaults checks the documented defaults.
func TestNewConfigDefaults(t *testing.T) {
	c, err := newConfig([]Option{WithEndpoint(validEndpoint)})
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != 30*time.Second {
		t.Errorf("default timeout = %v, want 30s", c.timeout)
	}
	if c.logger == nil {
		t.Error("default logger is nil, want slog.Default()")
	}
	if c.endpointURL == nil || c.endpointURL.String() != validEndpoint {
		t.Errorf("endpoint URL = %v, want %s", c.endpointURL, validEndpoint)
	}

	// WithProxyURL sets the transport's proxy to that URL.
	c, err = newConfig([]Option{WithEndpoint(validEndpoint), WithProxyURL("http://proxy.example:3128")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, validEndpoint, nil)
	got, err := c.proxy(req)
	if err != nil || got == nil || got.String() != "http://proxy.example:3128" {
		t.Errorf("proxy for the request = %v, %v; want http://proxy.example:3128", got, err)
	}

	// The last of WithProxyURL and WithProxy wins.
	want, _ := url.Parse("http://other.example:8080")
	c, err = newConfig([]Option{WithEndpoint(validEndpoint), WithProxyURL("http://proxy.example:3128"), WithProxy(http.ProxyURL(want))})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.proxy(req); got == nil || got.String() != want.String() {
		t.Errorf("WithProxy after WithProxyURL: proxy = %v, want %v", got, want)
	}
}

func TestExternalLabelsRejectReservedBucketLabels(t *testing.T) {
	for _, name := range []string{"le", "quantile"} {
		exp, err := New(WithEndpoint("http://127.0.0.1:1/"), WithoutEnvironment(), WithExternalLabels(map[string]string{name: "x"}))
		if exp != nil || err == nil || !strings.Contains(err.Error(), "WithExternalLabels: \""+name+"\" is reserved") {
			t.Errorf("WithExternalLabels(%s): exporter %v, err %v; want a nil exporter and a reserved-name error", name, exp, err)
		}
	}
}

// TestBadInputNeverEchoesSecrets: configuration mistakes that carry a
// credential (userinfo in an endpoint without a scheme, a key in the query,
// a header line passed as a name) fail New naming the setting, never echoing
// the credential, in clear or in base64.
func TestBadInputNeverEchoesSecrets(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tt := range []struct {
		name string
		give []Option
		env  map[string]string
		want []string
	}{
		{name: "userinfo without a scheme", give: []Option{WithEndpoint("admin:" + secretPassword + "@host:9090/api/v1/write")}, want: []string{"WithEndpoint", "scheme must be http or https"}},
		{name: "userinfo with a scheme", give: []Option{WithEndpoint("http://admin:" + secretPassword + "@host:9090/api/v1/write")}, want: []string{"WithEndpoint", "WithBasicAuth"}},
		{name: "userinfo in the endpoint variable", env: map[string]string{envEndpoint: "admin:" + secretPassword + "@host:9090/api/v1/write"}, want: []string{envEndpoint}},
		{name: "key in an endpoint without a scheme", give: []Option{WithEndpoint("host:9090/api/v1/write?api_key=" + secretToken)}, want: []string{"WithEndpoint"}},
		{name: "userinfo in a proxy without a scheme", give: []Option{WithEndpoint(validEndpoint), WithProxyURL("admin:" + secretPassword + "@proxy:3128")}, want: []string{"WithProxyURL"}},
		{name: "header line as a header name", give: []Option{WithEndpoint(validEndpoint), WithHeaders(map[string]string{"Authorization: Bearer " + secretToken: "x"})}, want: []string{"WithHeaders", "Authorization…", "separately"}},
		{name: "header line in the headers variable", env: map[string]string{envEndpoint: validEndpoint, envHeaders: "Authorization: Bearer " + secretToken}, want: []string{envHeaders, "key=value"}},
		{name: "colon and equals in the headers variable", env: map[string]string{envEndpoint: validEndpoint, envHeaders: "Authorization: Bearer=" + secretToken}, want: []string{envHeaders, "Authorization…"}},
		{name: "token with a newline", give: []Option{WithEndpoint(validEndpoint), WithBearerToken(secretToken + "\n")}, want: []string{"WithBearerToken"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			opts := tt.give
			if tt.env == nil {
				opts = append([]Option{WithoutEnvironment()}, opts...)
			}
			_, err := New(opts...)
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			for _, s := range []string{secretPassword, secretToken, b64(secretPassword), b64(secretToken), b64("admin:" + secretPassword)} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q echoes the secret %q", err, s)
				}
			}
		})
	}
}

// TestRepeatedOptionReplacesEarlier: for options that set the same thing
// the last one wins, as Option's doc says: a second WithResourceAsLabels
// or WithResourceConstantLabels (a library's default, then the program's
// own) replaces the first, and WithBearerToken and WithBearerTokenFile
// replace each other as WithBasicAuth and WithBasicAuthPasswordFile do.
func TestRepeatedOptionReplacesEarlier(t *testing.T) {
	keepAll := func(attribute.KeyValue) bool { return true }
	keepNone := func(attribute.KeyValue) bool { return false }
	res := resource.NewSchemaless(attribute.String("a", "1"), attribute.String("b", "2"))
	for _, tc := range []struct {
		name  string
		opts  []Option
		check func(t *testing.T, c config)
	}{
		{name: "WithResourceAsLabels twice", opts: []Option{WithResourceAsLabels(keepAll), WithResourceAsLabels(keepNone)},
			check: func(t *testing.T, c config) {
				if set, _ := res.Set().Filter(c.resourceAsLabels); set.Len() != 0 {
					t.Errorf("the filter keeps %v: want the last option's, which keeps none", set.ToSlice())
				}
			}},
		{name: "WithResourceConstantLabels twice", opts: []Option{WithResourceConstantLabels([]string{"a"}, nil), WithResourceConstantLabels([]string{"b"}, nil)},
			check: func(t *testing.T, c config) {
				if set, _ := res.Set().Filter(c.resourceAsLabels); set.Len() != 1 || !set.HasValue("b") {
					t.Errorf("the filter keeps %v: want b alone", set.ToSlice())
				}
			}},
		{name: "WithBearerToken then WithBearerTokenFile", opts: []Option{WithBearerToken(secretToken), WithBearerTokenFile("/var/run/secrets/token")},
			check: func(t *testing.T, c config) {
				if c.bearerSet || c.bearerToken != "" || !c.bearerFileSet || c.bearerTokenFile != "/var/run/secrets/token" {
					t.Errorf("token set %v, file %q: want the file alone", c.bearerSet, c.bearerTokenFile)
				}
			}},
		{name: "WithBearerTokenFile then WithBearerToken", opts: []Option{WithBearerTokenFile("/var/run/secrets/token"), WithBearerToken(secretToken)},
			check: func(t *testing.T, c config) {
				if !c.bearerSet || c.bearerToken != secretToken || c.bearerFileSet || c.bearerTokenFile != "" {
					t.Errorf("token set %v, file %q: want the token alone", c.bearerSet, c.bearerTokenFile)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newConfig(append([]Option{WithoutEnvironment(), WithEndpoint(validEndpoint)}, tc.opts...))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			tc.check(t, c)
		})
	}
	// Only the two different resource options conflict, whatever repeats.
	assertNewFails(t, []Option{WithoutEnvironment(), WithEndpoint(validEndpoint), WithResourceAsLabels(nil), WithResourceAsLabels(nil), WithResourceConstantLabels([]string{"*"}, nil)},
		[]string{"prwmetric: WithResourceAsLabels and WithResourceConstantLabels: both choose"})
}

// TestNewReportsEveryInvalidSettingAtOnce: New reports every invalid
// setting in one error, a namespace that escapes to nothing included (it
// was only checked once the others were fixed).
func TestNewReportsEveryInvalidSettingAtOnce(t *testing.T) {
	assertNewFails(t, []Option{WithoutEnvironment(), WithEndpoint(validEndpoint), WithNamespace("..."), WithTimeout(-time.Second)},
		[]string{"WithTimeout(-1s)", `WithNamespace("...")`})
}
