package prwmetric

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnvironmentVariables(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string
		opts  []Option
		check func(t *testing.T, c config)
	}{
		{
			name: "endpoint",
			env:  map[string]string{envEndpoint: "http://env:9090/api/v1/write"},
			check: func(t *testing.T, c config) {
				if c.endpointURL.String() != "http://env:9090/api/v1/write" {
					t.Errorf("endpoint = %s", c.endpointURL)
				}
			},
		},
		{
			name: "endpoint option wins",
			env:  map[string]string{envEndpoint: "http://env:9090/api/v1/write"},
			opts: []Option{WithEndpoint("http://code:9090/write")},
			check: func(t *testing.T, c config) {
				if c.endpointURL.Host != "code:9090" {
					t.Errorf("endpoint = %s, want the option's", c.endpointURL)
				}
			},
		},
		{
			name: "headers URL-decoded",
			env:  map[string]string{envHeaders: "X-Scope-OrgID=tenant%201, X-Other = a%3Db"},
			check: func(t *testing.T, c config) {
				if c.headers["X-Scope-Orgid"] != "tenant 1" || c.headers["X-Other"] != "a=b" || len(c.headers) != 2 {
					t.Errorf("headers = %v", c.headers)
				}
			},
		},
		{
			name: "header option wins per name",
			env:  map[string]string{envHeaders: "X-Scope-OrgID=env,X-Env=1"},
			opts: []Option{WithHeaders(map[string]string{"X-Scope-OrgID": "code"})},
			check: func(t *testing.T, c config) {
				if c.headers["X-Scope-Orgid"] != "code" || c.headers["X-Env"] != "1" {
					t.Errorf("headers = %v", c.headers)
				}
			},
		},
		{
			name: "timeout in milliseconds",
			env:  map[string]string{envTimeout: "1500"},
			check: func(t *testing.T, c config) {
				if c.timeout != 1500*time.Millisecond {
					t.Errorf("timeout = %v", c.timeout)
				}
			},
		},
		{
			name: "timeout option wins",
			env:  map[string]string{envTimeout: "1500"},
			opts: []Option{WithTimeout(time.Second)},
			check: func(t *testing.T, c config) {
				if c.timeout != time.Second {
					t.Errorf("timeout = %v", c.timeout)
				}
			},
		},
		{
			name: "basic auth from files",
			env:  map[string]string{envBasicAuthUsername: "alice", envBasicAuthPassword: secretFile},
			check: func(t *testing.T, c config) {
				if !c.basicAuthSet || c.basicAuthUser != "alice" || c.basicAuthFile != secretFile {
					t.Errorf("basic auth = %v %q %q", c.basicAuthSet, c.basicAuthUser, c.basicAuthFile)
				}
			},
		},
		{
			name: "bearer token file",
			env:  map[string]string{envBearerTokenFile: secretFile},
			check: func(t *testing.T, c config) {
				if c.bearerTokenFile != secretFile {
					t.Errorf("bearer token file = %q", c.bearerTokenFile)
				}
			},
		},
		{
			name: "code credentials replace the environment's",
			env:  map[string]string{envBasicAuthUsername: "alice", envBasicAuthPassword: secretFile},
			opts: []Option{WithBearerToken("code-token")},
			check: func(t *testing.T, c config) {
				if c.basicAuthSet || c.bearerToken != "code-token" {
					t.Errorf("basic auth set = %v, bearer = %q", c.basicAuthSet, c.bearerToken)
				}
			},
		},
		{
			name: "without environment",
			env:  map[string]string{envTimeout: "1500", envHeaders: "X-A=1"},
			opts: []Option{WithoutEnvironment()},
			check: func(t *testing.T, c config) {
				if c.timeout != defaultTimeout || len(c.headers) != 0 {
					t.Errorf("timeout = %v, headers = %v", c.timeout, c.headers)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			opts := tt.opts
			if _, ok := tt.env[envEndpoint]; !ok {
				opts = append([]Option{WithEndpoint("http://127.0.0.1:1/api/v1/write")}, opts...)
			}
			c, err := newConfig(opts)
			if err != nil {
				t.Fatalf("newConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestEnvironmentTLS(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeSelfSignedCA(t, ca)
	t.Setenv(envCertificate, ca)

	c, err := newConfig([]Option{WithEndpoint("https://127.0.0.1:1/api/v1/write")})
	if err != nil {
		t.Fatalf("newConfig: %v", err)
	}
	if c.tls == nil || c.tls.CAFile != ca {
		t.Fatalf("tls = %+v, want CAFile %s", c.tls, ca)
	}

	// WithTLSClientConfig in code replaces the environment's TLS files
	// instead of conflicting with them.
	c, err = newConfig([]Option{WithEndpoint("https://127.0.0.1:1/api/v1/write"), WithTLSClientConfig(&tls.Config{ServerName: "code"})})
	if err != nil {
		t.Fatalf("newConfig with code TLS: %v", err)
	}
	if c.tls != nil {
		t.Errorf("tls from environment kept beside code TLS: %+v", c.tls)
	}
}

func TestEnvironmentErrors(t *testing.T) {
	const secret = "tok%zzen-secret"
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "timeout not a number", env: map[string]string{envTimeout: "30s"}, want: envTimeout + `="30s": want a positive whole number of milliseconds`},
		{name: "timeout zero", env: map[string]string{envTimeout: "0"}, want: envTimeout},
		{name: "timeout overflow", env: map[string]string{envTimeout: "99999999999999999"}, want: envTimeout},
		{name: "header without =", env: map[string]string{envHeaders: "X-A=1,broken"}, want: envHeaders + ": entry 2 is not key=value"},
		{name: "header bad escape", env: map[string]string{envHeaders: "Authorization=" + secret}, want: envHeaders + `: the value of "Authorization" is not URL-encoded correctly`},
		{name: "username without password file", env: map[string]string{envBasicAuthUsername: "alice"}, want: envBasicAuthUsername + " is set without " + envBasicAuthPassword},
		{name: "password file without username", env: map[string]string{envBasicAuthPassword: "/x"}, want: envBasicAuthPassword + " is set without " + envBasicAuthUsername},
		{name: "basic and bearer", env: map[string]string{envBasicAuthUsername: "a", envBasicAuthPassword: "/x", envBearerTokenFile: "/y"}, want: "are both set"},
		{name: "malformed endpoint", env: map[string]string{envEndpoint: "ftp://x/"}, want: "scheme must be http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			opts := []Option{}
			if _, ok := tt.env[envEndpoint]; !ok {
				opts = append(opts, WithEndpoint("http://127.0.0.1:1/api/v1/write"))
			}
			exp, err := New(opts...)
			if err == nil {
				t.Fatalf("New succeeded (%v), want an error containing %q", exp, tt.want)
			}
			if exp != nil {
				t.Error("New returned an exporter with an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q echoes a secret", err)
			}
		})
	}
}

// writeSelfSignedCA writes a PEM CA certificate; only its parsing matters here.
func writeSelfSignedCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEnvironmentAuthorizationHeaderYieldsToCode: credentials in code
// replace the environment's, an Authorization header among its headers
// included; New used to fail, blaming WithHeaders, which the user never
// called.
func TestEnvironmentAuthorizationHeaderYieldsToCode(t *testing.T) {
	t.Setenv(envHeaders, "authorization=Bearer%20from-env,X-Env=1")
	c, err := newConfig([]Option{WithEndpoint("http://127.0.0.1:1/api/v1/write"), WithBearerToken("from-code")})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, ok := c.headers["Authorization"]; ok || c.headers["X-Env"] != "1" || c.bearerToken != "from-code" {
		t.Errorf("headers %v, bearer set %v: want X-Env only and the code's token", c.headers, c.bearerSet)
	}
}

// TestEnvironmentTLSErrorsNameTheVariable: TLS files from the environment
// are named by their variables, not by WithTLS' fields.
func TestEnvironmentTLSErrorsNameTheVariable(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "client.pem")
	writeSelfSignedCA(t, cert)
	ep := WithEndpoint("https://127.0.0.1:1/api/v1/write")
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"certificate without key", map[string]string{envClientCertificate: cert}, []string{envClientCertificate + " is set without " + envClientKey}},
		{"key without certificate", map[string]string{envClientKey: cert}, []string{envClientKey + " is set without " + envClientCertificate}},
		{"CA file missing", map[string]string{envCertificate: filepath.Join(dir, "missing.pem")}, []string{"environment: reading " + envCertificate}},
		{"key not PEM", map[string]string{envClientCertificate: cert, envClientKey: filepath.Join(dir, "missing.pem")}, []string{"environment: " + envClientKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := newConfig([]Option{ep})
			if err == nil {
				t.Fatal("New accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) || strings.Contains(err.Error(), "WithTLS") {
					t.Errorf("error %q: want %q, and no WithTLS", err, w)
				}
			}
		})
	}
}

// TestEnvironmentErrorsNameTheVariable: a value from the environment that
// parses but fails New's later checks is named by its variable, as README
// and the package doc promise, not by an option the operator never wrote;
// a header is named by its name, never its value. Headers from the
// environment and code merge per name, so each problem names the source of
// the header that has it.
func TestEnvironmentErrorsNameTheVariable(t *testing.T) {
	const secret = "S3CRET-value"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		opts    []Option
		want    []string
		notWant []string
	}{
		{name: "protocol header", env: map[string]string{envHeaders: "Content-Encoding=gzip"},
			want: []string{envHeaders + `: header "Content-Encoding"`}, notWant: []string{"WithHeaders"}},
		{name: "invalid header name", env: map[string]string{envHeaders: "X%20Bad=" + secret},
			want: []string{envHeaders + `: "X…" is not a valid HTTP header name`, "e.g. X-Scope-OrgID=tenant"}, notWant: []string{"WithHeaders", "{"}},
		{name: "invalid header value", env: map[string]string{envHeaders: "X-Token=" + secret + "%0A"},
			want: []string{envHeaders + `: the value of header "X-Token"`}, notWant: []string{"WithHeaders"}},
		{name: "bad header from the environment beside one from code", env: map[string]string{envHeaders: "Content-Encoding=gzip"},
			opts: []Option{WithHeaders(map[string]string{"X-Tenant": "a"})},
			want: []string{envHeaders + `: header "Content-Encoding"`}, notWant: []string{"WithHeaders"}},
		{name: "bad header from code beside one from the environment", env: map[string]string{envHeaders: "X-Tenant=a"},
			opts: []Option{WithHeaders(map[string]string{"content-encoding": "gzip"})},
			want: []string{`WithHeaders: header "Content-Encoding"`}, notWant: []string{envHeaders}},
		{name: "bad header the code replaced", env: map[string]string{envHeaders: "Content-Encoding=gzip"},
			opts: []Option{WithHeaders(map[string]string{"content-encoding": "br"})},
			want: []string{`WithHeaders: header "Content-Encoding"`}, notWant: []string{envHeaders}},
		{name: "Authorization header and bearer token file", env: map[string]string{envHeaders: "Authorization=Bearer%20" + secret, envBearerTokenFile: "/var/run/secrets/token"},
			want: []string{envHeaders + " sets Authorization and " + envBearerTokenFile + " is set"}, notWant: []string{"WithHeaders", "WithBearerTokenFile"}},
		{name: "Authorization header and basic auth", env: map[string]string{envHeaders: "Authorization=Basic%20" + secret, envBasicAuthUsername: "alice", envBasicAuthPassword: "/etc/pw"},
			want: []string{envHeaders + " sets Authorization and " + envBasicAuthUsername + " is set"}, notWant: []string{"WithHeaders", "WithBasicAuth"}},
		{name: "Authorization header and OAuth2", env: map[string]string{envHeaders: "Authorization=Bearer%20" + secret,
			envOAuth2ClientID: "id", envOAuth2ClientSecretFile: "/etc/s", envOAuth2TokenURL: "https://idp.example/token"},
			want: []string{envHeaders + " sets Authorization and " + envOAuth2ClientID + " is set"}, notWant: []string{"WithHeaders", "WithOAuth2"}},
		{name: "username with a colon", env: map[string]string{envBasicAuthUsername: "a:b", envBasicAuthPassword: "/etc/pw"},
			want: []string{envBasicAuthUsername + `: the username contains ":"`}, notWant: []string{"WithBasicAuth"}},
		{name: "token URL scheme", env: map[string]string{envOAuth2ClientID: "id", envOAuth2ClientSecretFile: "/etc/s", envOAuth2TokenURL: "ftp://idp.example/token"},
			want: []string{envOAuth2TokenURL + `="ftp://idp.example/token": the scheme must be http or https`}, notWant: []string{"WithOAuth2", "TokenURL "}},
		{name: "scope with white space", env: map[string]string{envOAuth2ClientID: "id", envOAuth2ClientSecretFile: "/etc/s", envOAuth2TokenURL: "https://idp.example/token", envOAuth2Scopes: "ok, a b"},
			want: []string{envOAuth2Scopes + `: scope "a b" holds white space`}, notWant: []string{"WithOAuth2", "Scopes["}},
		{name: "timeout below the retry budget", env: map[string]string{envTimeout: "5000"},
			opts: []Option{WithRetry(RetryConfig{Enabled: true, MaxElapsedTime: 20 * time.Second})},
			want: []string{"exceeds the export timeout 5s (" + envTimeout + ")", "raise " + envTimeout}, notWant: []string{"WithTimeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envEndpoint, "https://prw.example/api/v1/write")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			exp, err := New(tc.opts...)
			if err == nil {
				_ = exp.Shutdown(t.Context())
				t.Fatal("New accepted the value")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			for _, w := range append(tc.notWant, secret) {
				if strings.Contains(msg, w) {
					t.Errorf("error contains %q:\n%s", w, msg)
				}
			}
		})
	}
}
