package prwmetric

// These tests hold the rule that secrets never leave in an error, a log
// record or fmt output, however a peer echoes them (README "Secrets"):
// each was a way out found in a security review.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// assertNoSecrets fails t for each secret found in one of texts.
func assertNoSecrets(t *testing.T, texts map[string]string, secrets ...string) {
	t.Helper()
	for where, text := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("secret %q leaked into %s: %s", s, where, text)
			}
		}
	}
}

// failedExportTexts runs one export and returns every text it produced:
// the error (plain and %+v) and each log record.
func failedExportTexts(t *testing.T, opts ...Option) map[string]string {
	t.Helper()
	logger, logs := newLogCapture()
	exp := newExporter(t, append(pinned(WithoutEnvironment(), WithLogger(logger), WithTimeout(10*time.Second)), opts...)...)
	err := exp.Export(context.Background(), counterData(1))
	if err == nil {
		t.Fatal("Export succeeded, want a failure")
	}
	texts := map[string]string{"error": err.Error(), "error %+v": fmt.Sprintf("%+v", err)}
	for i, l := range logs.lines() {
		texts[fmt.Sprintf("log record %d", i)] = l
	}
	return texts
}

// TestConfigErrorsHideURLPasswords: New's errors never quote a URL's
// password, also when it holds what ends an authority ('/', '?', '#',
// '@'; base64 tokens hold '/'), for the endpoint (option or environment),
// the proxy and the OAuth2 token URL.
func TestConfigErrorsHideURLPasswords(t *testing.T) {
	cases := []struct {
		name   string
		opts   []Option
		secret string
	}{
		{name: "endpoint, '/' in password", opts: []Option{WithEndpoint("https://123456:glc_S3cr/etTok+en=@prometheus.example/api/prom/push")}, secret: "etTok+en="},
		{name: "endpoint, '@' and '/' in password", opts: []Option{WithEndpoint("https://alice:p@ss/w0rdS3CRET@mimir.example/api/v1/push")}, secret: "w0rdS3CRET"},
		{name: "endpoint, '?' in password", opts: []Option{WithEndpoint("https://alice:S3CRETpre?fix@mimir.example/api/v1/push")}, secret: "S3CRETpre"},
		{name: "proxy, '/' in password", opts: []Option{WithEndpoint("https://mimir.example/api/v1/push"), WithProxyURL("http://proxyuser:Px/S3CRET+pw@proxy.example:3128")}, secret: "S3CRET+pw"},
		{name: "oauth2 token URL, '/' in password", opts: []Option{WithEndpoint("https://mimir.example/api/v1/push"), WithOAuth2(OAuth2Config{
			ClientID: "id", ClientSecret: "cs-0123456789", TokenURL: "https://client:Tk/S3CRET+pw@idp.example/oauth2/token",
		})}, secret: "S3CRET+pw"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(append([]Option{WithoutEnvironment()}, tc.opts...)...)
			if err == nil {
				t.Fatal("New succeeded, want a configuration error")
			}
			assertNoSecrets(t, map[string]string{"New error": err.Error()}, tc.secret)
		})
	}
	t.Run("endpoint from the environment", func(t *testing.T) {
		t.Setenv(envEndpoint, "https://123456:glc_S3cr/etTok+en=@prometheus.example/api/prom/push")
		_, err := New()
		if err == nil {
			t.Fatal("New succeeded, want a configuration error")
		}
		assertNoSecrets(t, map[string]string{"New error": err.Error()}, "etTok+en=")
	})
}

// TestEndpointQueryEchoedAsSent: the endpoint's query values are
// redacted as a peer echoes them, as they were written in the URL, which
// may be neither decoded nor url.QueryEscape'd: a '/' left unescaped
// beside an escaped '+', lower-case hex, %20 for a space, or a pair that
// url.ParseQuery drops (after a ';').
func TestEndpointQueryEchoedAsSent(t *testing.T) {
	cases := []struct {
		name, query, secret string
	}{
		{name: "mixed escaping", query: "api_key=QVBJa2V5/c2VjcmV0%2BUzNDUkVU", secret: "QVBJa2V5/c2VjcmV0%2BUzNDUkVU"},
		{name: "lower-case hex", query: "api_key=S3CRET%2bkey%2fvalue", secret: "S3CRET%2bkey%2fvalue"},
		{name: "%20 for a space", query: "api_key=S3CRET%20key%20value", secret: "S3CRET%20key%20value"},
		{name: "semicolon drops the pair", query: "tenant=a;api_key=S3CRETKEYVALUE", secret: "S3CRETKEYVALUE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, "no route for POST "+r.RequestURI)
			}))
			texts := failedExportTexts(t, WithEndpoint(srv.URL+"/api/v1/write?"+tc.query), WithBasicAuth("alice", "pw-S3CRET-basic"))
			assertNoSecrets(t, texts, tc.secret)
		})
	}
}

// TestHeaderFuncSecretsOfRequestsUnderWay: with requests of one export in
// flight, each carrying a fresh key from WithHeaderFunc (a rotating or
// per-request credential), the first request's key is still known when
// its answer echoes it, after the later calls.
func TestHeaderFuncSecretsOfRequestsUnderWay(t *testing.T) {
	const n = 3
	var calls atomic.Int32
	key := func(i int32) string { return fmt.Sprintf("rotating-S3CRET-key-%04d", i) }
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(3 * time.Second):
		}
		if got := r.Header.Get("X-Api-Key"); got == key(1) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "invalid api key "+got)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	logger, logs := newLogCapture()
	exp := newExporter(t, pinned(WithoutEnvironment(), WithLogger(logger), WithEndpoint(srv.URL+"/api/v1/write"),
		WithMaxSeriesPerRequest(1), WithHeaderFunc(func(context.Context) (map[string]string, error) {
			return map[string]string{"X-Api-Key": key(calls.Add(1))}, nil
		}))...)
	err := exp.Export(context.Background(), manyGauges(n, testTime))
	if err == nil {
		t.Fatal("Export succeeded, want the 401")
	}
	texts := map[string]string{"error": err.Error()}
	for i, l := range logs.lines() {
		texts[fmt.Sprintf("log record %d", i)] = l
	}
	if calls.Load() < n {
		t.Fatalf("header func called %d times, want %d", calls.Load(), n)
	}
	assertNoSecrets(t, texts, key(1))
}

// TestProxyCredentialsRedacted: a proxy's credentials are redacted
// whichever option chose it (WithProxyURL, WithProxy's function or
// HTTPS_PROXY through http.ProxyFromEnvironment, the default): in a
// plain-http proxy's answer body and in a CONNECT refusal's status text,
// which net/http puts into the transport error.
func TestProxyCredentialsRedacted(t *testing.T) {
	const user, pass = "proxyuser", "px-S3CRET-proxy"
	cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	proxy := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Proxy-Authorization")
		if r.Method == http.MethodConnect {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 407 Proxy credentials rejected: %s\r\nContent-Length: 0\r\n\r\n", auth)
			_ = buf.Flush()
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusProxyAuthRequired)
		_, _ = io.WriteString(w, "proxy credentials rejected: "+auth)
	}))
	proxyURL, _ := url.Parse("http://" + user + ":" + pass + "@" + strings.TrimPrefix(proxy.URL, "http://"))
	withProxy := WithProxy(func(*http.Request) (*url.URL, error) { return proxyURL, nil })

	t.Run("WithProxy, plain http endpoint", func(t *testing.T) {
		assertNoSecrets(t, failedExportTexts(t, WithEndpoint("http://receiver.invalid/api/v1/write"), withProxy), cred, pass)
	})
	t.Run("WithProxy, https endpoint (CONNECT)", func(t *testing.T) {
		assertNoSecrets(t, failedExportTexts(t, WithEndpoint("https://receiver.invalid/api/v1/write"), withProxy), cred, pass)
	})
	t.Run("control: WithProxyURL is redacted", func(t *testing.T) {
		assertNoSecrets(t, failedExportTexts(t, WithEndpoint("https://receiver.invalid/api/v1/write"), WithProxyURL(proxyURL.String())), cred, pass)
	})
	t.Run("HTTPS_PROXY from the environment (default)", func(t *testing.T) {
		// http.ProxyFromEnvironment reads the environment once per
		// process: run the export in a child process.
		if os.Getenv("PRWMETRIC_PROXY_CHILD") == "" {
			cmd := exec.Command(os.Args[0], "-test.run=^TestProxyCredentialsRedacted$/^HTTPS_PROXY", "-test.count=1")
			cmd.Env = append(os.Environ(), "PRWMETRIC_PROXY_CHILD=1", "HTTPS_PROXY="+proxyURL.String(), "NO_PROXY=", "no_proxy=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("child: %v\n%s", err, out)
			}
			return
		}
		logger, logs := newLogCapture()
		exp := newExporter(t, pinned(WithLogger(logger), WithEndpoint("https://receiver.invalid/api/v1/write"))...)
		err := exp.Export(context.Background(), counterData(1))
		if err == nil {
			t.Fatal("Export succeeded, want a failure")
		}
		texts := map[string]string{"error": err.Error()}
		for i, l := range logs.lines() {
			texts[fmt.Sprintf("log record %d", i)] = l
		}
		assertNoSecrets(t, texts, cred, pass)
	})
}

// TestFormattingHidesSecrets: %v, %+v and %#v of an *Exporter and of an
// OAuth2Config print no credential.
func TestFormattingHidesSecrets(t *testing.T) {
	const password, query = "pw-S3CRET-basic", "QUERY-S3CRET-key"
	exp := newExporter(t, WithoutEnvironment(), WithEndpoint("http://127.0.0.1:1/api/v1/write?api_key="+query),
		WithBasicAuth("alice", password), WithHeaders(map[string]string{"X-Api-Key": "hdr-S3CRET-key"}))
	texts := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		texts["*Exporter "+verb] = fmt.Sprintf(verb, exp)
	}
	cfg := OAuth2Config{ClientID: "id", ClientSecret: "oauth2-S3CRET-client", TokenURL: "https://idp.example/token"}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		texts["OAuth2Config "+verb] = fmt.Sprintf(verb, cfg)
	}
	assertNoSecrets(t, texts, password, query, "hdr-S3CRET-key", "oauth2-S3CRET-client")
}

// TestUserClientRedirectDropsReferer: with WithHTTPClient and a client
// whose own CheckRedirect follows redirects, the other host still gets no
// Referer, which would name the endpoint's query (an API key).
func TestUserClientRedirectDropsReferer(t *testing.T) {
	const key = "QUERY-S3CRET-apikey"
	var referer atomic.Value
	referer.Store("")
	other := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		referer.Store(r.Header.Get("Referer"))
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/api/v1/write", http.StatusTemporaryRedirect)
	}))
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	exp := newExporter(t, pinned(WithoutEnvironment(), WithHTTPClient(client), WithEndpoint(srv.URL+"/api/v1/write?api_key="+key))...)
	_ = exp.Export(context.Background(), counterData(1))
	if r := referer.Load().(string); strings.Contains(r, key) {
		t.Errorf("the redirect target on another host got Referer %q", r)
	}
}

// TestEncodedEchoesRedacted: a credential a peer echoes in another
// encoding than clear text, base64 or url.QueryEscape is redacted too:
// JSON with '/' escaped (PHP, many Java encoders), JSON \u escapes (Go's
// encoding/json for '<', '>', '&'), and lower-case percent-encoding.
func TestEncodedEchoesRedacted(t *testing.T) {
	cases := []struct {
		name string
		opt  Option
		body string
		leak string
	}{
		{name: "bearer token, JSON \\/", opt: WithBearerToken("tok/S3CRET/bearer+v1"), body: `{"error":"invalid token","token":"tok\/S3CRET\/bearer+v1"}`, leak: `tok\/S3CRET\/bearer+v1`},
		{name: "API key header, JSON \\u0026", opt: WithHeaders(map[string]string{"X-Api-Key": "key&S3CRET<value>"}), body: `{"error":"bad key","key":"key\u0026S3CRET\u003cvalue\u003e"}`, leak: `key\u0026S3CRET\u003cvalue\u003e`},
		{name: "bearer token, lower-case %2f", opt: WithBearerToken("tok/S3CRET/bearer+v1"), body: `token=tok%2fS3CRET%2fbearer%2bv1`, leak: `tok%2fS3CRET%2fbearer%2bv1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, tc.body)
			}))
			assertNoSecrets(t, failedExportTexts(t, WithEndpoint(srv.URL+"/api/v1/write"), tc.opt), tc.leak)
		})
	}
}

// TestEnvHeadersNeverEchoValues: a header line pasted into the headers
// variable with ':' has its credential in what parses as the key; when
// the value after a '=' does not unescape, the error names only the part
// of the key a header name may hold.
func TestEnvHeadersNeverEchoValues(t *testing.T) {
	t.Setenv(envEndpoint, "https://mimir.example/api/v1/push")
	t.Setenv(envHeaders, "X-Api-Key: S3CRETpart1=part2%zz")
	_, err := New()
	if err == nil {
		t.Fatal("New succeeded, want an error")
	}
	assertNoSecrets(t, map[string]string{"New error": err.Error()}, "S3CRETpart1")
}
