//go:build unix

// Unix only: the FIFO case needs syscall.Mkfifo.

package prwmetric

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/prwmetric/prwmetric/internal/testcert"
)

const (
	// The client ID and secret hold characters that RFC 6749 section 2.3.1
	// URL-encodes before basic authentication.
	oauthClientID     = "exporter id/1"
	oauthClientSecret = "cs-S3CRET:+&=é"
)

// tokenServer is a fake OAuth2 token endpoint for the client credentials
// grant. It checks each request, issues tokens "tok-1", "tok-2", … and is
// also the receiver's judge of which token is valid.
type tokenServer struct {
	srv *httptest.Server
	url string

	mu sync.Mutex
	// secret is the client secret it accepts now (rotation changes it).
	secret string
	// expiresIn is sent as expires_in when positive.
	expiresIn int
	// fail, when set, answers instead of issuing a token.
	fail http.HandlerFunc
	// forms are the token requests' form bodies, in order; secrets the
	// client secrets they carried; problems what was wrong with them.
	forms    []url.Values
	secrets  []string
	problems []string
	issued   int
	revoked  bool
}

// newTokenServer starts a token endpoint on 127.0.0.1 at path /oauth2/token.
func newTokenServer(t *testing.T, expiresIn int) *tokenServer {
	t.Helper()
	ts := &tokenServer{secret: oauthClientSecret, expiresIn: expiresIn}
	ts.srv = startServer(t, http.HandlerFunc(ts.handle))
	ts.url = ts.srv.URL + "/oauth2/token"
	return ts
}

func (ts *tokenServer) handle(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var problems []string
	if r.Method != http.MethodPost || r.URL.Path != "/oauth2/token" {
		problems = append(problems, "request "+r.Method+" "+r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		problems = append(problems, "Content-Type "+ct)
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	form, err := url.ParseQuery(string(body))
	if err != nil {
		problems = append(problems, "form: "+err.Error())
	}
	ts.forms = append(ts.forms, form)
	// The pinned client authentication: basic, each part URL-encoded;
	// nothing of it in the form.
	user, pass, ok := r.BasicAuth()
	id, _ := url.QueryUnescape(user)
	secret, _ := url.QueryUnescape(pass)
	ts.secrets = append(ts.secrets, secret)
	if !ok {
		problems = append(problems, "no basic authentication")
	}
	for _, k := range []string{"client_id", "client_secret"} {
		if form.Has(k) {
			problems = append(problems, k+" in the form body")
		}
	}
	if g := form.Get("grant_type"); g != "client_credentials" {
		problems = append(problems, "grant_type "+g)
	}
	ts.problems = append(ts.problems, problems...)
	if ts.fail != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		ts.fail(w, r)
		return
	}
	if id != oauthClientID || secret != ts.secret {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "client authentication failed"})
		return
	}
	ts.issued++
	ts.revoked = false
	tok := map[string]any{"access_token": "tok-" + strconv.Itoa(ts.issued), "token_type": "bearer"}
	if ts.expiresIn > 0 {
		tok["expires_in"] = ts.expiresIn
	}
	writeJSON(w, http.StatusOK, tok)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// requests is how many token requests arrived; it fails the test on any
// problem seen in them.
func (ts *tokenServer) requests(t *testing.T) int {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, p := range ts.problems {
		t.Errorf("token request: %s", p)
	}
	ts.problems = nil
	return len(ts.forms)
}

// valid reports whether auth carries the token issued last, unless it was
// revoked.
func (ts *tokenServer) valid(auth string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.issued > 0 && !ts.revoked && auth == "Bearer tok-"+strconv.Itoa(ts.issued)
}

// revoke makes the receiver refuse the current token, as after a key
// rotation at the identity provider; the client is not told.
func (ts *tokenServer) revoke() {
	ts.mu.Lock()
	ts.revoked = true
	ts.mu.Unlock()
}

func (ts *tokenServer) set(f func(ts *tokenServer)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	f(ts)
}

// oauthReceiver is a remote-write receiver that accepts only the token
// ts issued last; a refused request gets 401 with a body that echoes the
// Authorization header, as some gateways do.
func oauthReceiver(t *testing.T, ts *tokenServer) (endpoint string, rec *recorder) {
	t.Helper()
	rec = &recorder{}
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		auth := r.Header.Get("Authorization")
		if !ts.valid(auth) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = fmt.Fprintf(w, "token not accepted: %q", auth)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return srv.URL + "/api/v1/write", rec
}

func oauthConfig(ts *tokenServer) OAuth2Config {
	return OAuth2Config{ClientID: oauthClientID, ClientSecret: oauthClientSecret, TokenURL: ts.url}
}

// authHeaders lists the Authorization header of each received request.
func authHeaders(rec *recorder) []string {
	var out []string
	for _, r := range rec.all() {
		out = append(out, r.Header.Get("Authorization"))
	}
	return out
}

// assertNoSecret fails if any text holds any secret.
func assertNoSecret(t *testing.T, texts []string, secrets ...string) {
	t.Helper()
	for _, text := range texts {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("secret %q leaked into %q", s, text)
			}
		}
	}
}

// errorTexts is every way err and the captured logs can be printed.
func errorTexts(err error, logs *logCapture) []string {
	texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	var we *WriteError
	if errors.As(err, &we) {
		texts = append(texts, fmt.Sprintf("%+v", *we))
	}
	for _, r := range logs.all() {
		texts = append(texts, r.String())
	}
	return texts
}

// TestOAuth2TokenRequest checks the token request on the wire and that the
// token reaches the receiver with the data unchanged.
func TestOAuth2TokenRequest(t *testing.T) {
	ts := newTokenServer(t, 3600)
	endpoint, rec := oauthReceiver(t, ts)
	cfg := oauthConfig(ts)
	cfg.Scopes = []string{"metrics.write", "tenant:a"}
	cfg.EndpointParams = url.Values{"audience": {"https://prw.example"}, "resource": {"r1", "r2"}}
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(cfg))...)
	// The option copied the config: changing it afterwards changes nothing.
	cfg.Scopes[0], cfg.EndpointParams["audience"][0] = "changed", "changed"

	if err := exp.Export(t.Context(), counterData(3)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if n := ts.requests(t); n != 1 {
		t.Fatalf("token requests = %d, want 1", n)
	}
	want := url.Values{
		"grant_type": {"client_credentials"},
		"scope":      {"metrics.write tenant:a"},
		"audience":   {"https://prw.example"},
		"resource":   {"r1", "r2"},
	}
	if diff := cmp.Diff(want, ts.forms[0]); diff != "" {
		t.Errorf("token request form (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{oauthClientSecret}, ts.secrets); diff != "" {
		t.Errorf("client secret sent (-want +got):\n%s", diff)
	}
	got := rec.only(t)
	if a := got.Header.Get("Authorization"); a != "Bearer tok-1" {
		t.Errorf("Authorization = %q, want %q", a, "Bearer tok-1")
	}
	if diff := cmp.Diff([]series{counterSeries(3)}, got.Series); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

// TestOAuth2TokenCaching: a token is reused until 10 s before it expires.
// expires_in of 1 or 5 s is already inside that window when it arrives, so
// each export fetches a new token; no expires_in means no expiry.
func TestOAuth2TokenCaching(t *testing.T) {
	for _, tt := range []struct {
		name      string
		expiresIn int
		want      []string
	}{
		{name: "one hour", expiresIn: 3600, want: []string{"Bearer tok-1", "Bearer tok-1", "Bearer tok-1"}},
		{name: "no expiry", expiresIn: 0, want: []string{"Bearer tok-1", "Bearer tok-1", "Bearer tok-1"}},
		{name: "30 s", expiresIn: 30, want: []string{"Bearer tok-1", "Bearer tok-1", "Bearer tok-1"}},
		{name: "5 s, inside the early expiry", expiresIn: 5, want: []string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-3"}},
		{name: "1 s, inside the early expiry", expiresIn: 1, want: []string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.expiresIn)
			endpoint, rec := oauthReceiver(t, ts)
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(oauthConfig(ts)))...)
			for i := range 3 {
				if err := exp.Export(t.Context(), counterData(int64(i))); err != nil {
					t.Fatalf("Export %d: %v", i, err)
				}
			}
			if diff := cmp.Diff(tt.want, authHeaders(rec)); diff != "" {
				t.Errorf("Authorization per request (-want +got):\n%s", diff)
			}
			if got, want := ts.requests(t), len(map[string]bool{tt.want[0]: true, tt.want[1]: true, tt.want[2]: true}); got != want {
				t.Errorf("token requests = %d, want %d", got, want)
			}
		})
	}
}

// TestOAuth2ConcurrentExportsShareOneToken: exports running at once wait
// for the one token request.
func TestOAuth2ConcurrentExportsShareOneToken(t *testing.T) {
	ts := newTokenServer(t, 3600)
	endpoint, rec := oauthReceiver(t, ts)
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(oauthConfig(ts)))...)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- exp.Export(t.Context(), counterData(int64(i))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Export: %v", err)
		}
	}
	if got := ts.requests(t); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
	if got := rec.count(); got != n {
		t.Errorf("receiver requests = %d, want %d", got, n)
	}
}

// TestOAuth2RefreshOn401: a token the receiver refuses is replaced and the
// request sent again, body and all, exactly once.
func TestOAuth2RefreshOn401(t *testing.T) {
	ts := newTokenServer(t, 3600)
	endpoint, rec := oauthReceiver(t, ts)
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(oauthConfig(ts)))...)

	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export 1: %v", err)
	}
	ts.revoke()
	if err := exp.Export(t.Context(), counterData(2)); err != nil {
		t.Fatalf("Export 2, after the token was revoked: %v", err)
	}
	if err := exp.Export(t.Context(), counterData(3)); err != nil {
		t.Fatalf("Export 3: %v", err)
	}
	if got := ts.requests(t); got != 2 {
		t.Errorf("token requests = %d, want 2 (the first, and one after the 401)", got)
	}
	if diff := cmp.Diff([]string{"Bearer tok-1", "Bearer tok-1", "Bearer tok-2", "Bearer tok-2"}, authHeaders(rec)); diff != "" {
		t.Errorf("Authorization per request (-want +got):\n%s", diff)
	}
	all := rec.all()
	var values []float64
	for _, r := range all {
		if r.DecodeErr != nil || len(r.Series) != 1 || len(r.Series[0].Samples) != 1 {
			t.Fatalf("request = %+v (%v), want one series with one sample", r.Series, r.DecodeErr)
		}
		values = append(values, r.Series[0].Samples[0].Value)
	}
	if diff := cmp.Diff([]float64{1, 2, 2, 3}, values); diff != "" {
		t.Errorf("value per request (-want +got):\n%s", diff)
	}
	// The retry resent the refused request's body unchanged.
	if diff := cmp.Diff(all[1].Series, all[2].Series); diff != "" {
		t.Errorf("retried series differ from the refused request's (-refused +retried):\n%s", diff)
	}
}

// TestOAuth2Second401Fails: a receiver that refuses the fresh token too
// fails the export after one retry, and its echo of the token is redacted.
func TestOAuth2Second401Fails(t *testing.T) {
	ts := newTokenServer(t, 3600)
	rec := &recorder{}
	endpoint := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintf(w, "token %q is not for this tenant", r.Header.Get("Authorization"))
	})).URL + "/api/v1/write"
	logger, logs := newLogCapture()
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(oauthConfig(ts)), WithLogger(logger))...)

	err := exp.Export(t.Context(), counterData(1))
	var we *WriteError
	if !errors.As(err, &we) || we.StatusCode != http.StatusUnauthorized || we.Series != 1 {
		t.Fatalf("Export = %v, want a *WriteError with status 401 and 1 series", err)
	}
	if want := `token "Bearer ` + redactedText + `" is not for this tenant`; we.Body != want {
		t.Errorf("WriteError.Body = %q, want %q", we.Body, want)
	}
	if got := ts.requests(t); got != 2 {
		t.Errorf("token requests = %d, want 2", got)
	}
	if diff := cmp.Diff([]string{"Bearer tok-1", "Bearer tok-2"}, authHeaders(rec)); diff != "" {
		t.Errorf("Authorization per request (-want +got):\n%s", diff)
	}
	if n := len(logs.all()); n != 1 {
		t.Errorf("logged %d records, want 1 warning", n)
	}
	assertNoSecret(t, errorTexts(err, logs), "tok-1", "tok-2", oauthClientSecret)
}

// TestOAuth2TokenEndpointFailures: every failure of the token endpoint is
// the export's error, naming WithOAuth2, the token URL without its query
// values, the status and the OAuth2 error code, with no credential in it
// even when the endpoint echoes them.
func TestOAuth2TokenEndpointFailures(t *testing.T) {
	const tenantKey = "qk-S3CRET-query"
	echo := func(status int, code string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			// Everything the client sent, as some servers do in errors.
			var form strings.Builder
			_ = r.ParseForm()
			fmt.Fprintf(&form, "%s auth=%q user=%q form=%q", r.URL, r.Header.Get("Authorization"), func() string { _, p, _ := r.BasicAuth(); return p }(), r.PostForm.Encode())
			body := map[string]any{"error_description": "echo: " + form.String()}
			if code != "" {
				body["error"] = code
			}
			writeJSON(w, status, body)
		}
	}
	for _, tt := range []struct {
		name string
		// wrongSecret sends a secret the endpoint does not accept.
		wrongSecret bool
		fail        http.HandlerFunc
		want        []string
	}{
		{name: "wrong secret", wrongSecret: true, want: []string{"401 Unauthorized", `"invalid_client"`, "check ClientID and the client secret"}},
		{name: "error that echoes the request", fail: echo(http.StatusBadRequest, "invalid_request"), want: []string{"400 Bad Request", `"invalid_request"`, "echo: "}},
		{name: "echo with 200 and an error code", fail: echo(http.StatusOK, "invalid_scope"), want: []string{"200 OK", `"invalid_scope"`, "check Scopes"}},
		{name: "server error with an echoed body", fail: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = fmt.Fprintf(w, "<html>crash while handling %s %s</html>", r.Header.Get("Authorization"), oauthClientSecret)
		}, want: []string{"500 Internal Server Error"}},
		{name: "no access token", fail: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"token_type": "bearer"})
		}, want: []string{"missing access_token"}},
		{name: "token with a newline", fail: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"access_token": "tok\r\nX-Injected: 1", "token_type": "bearer"})
		}, want: []string{"not a valid HTTP header value"}},
		{name: "redirect", fail: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusTemporaryRedirect)
		}, want: []string{"307 Temporary Redirect", "do not follow redirects"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, 3600)
			ts.fail = tt.fail
			endpoint, rec := oauthReceiver(t, ts)
			cfg := oauthConfig(ts)
			cfg.TokenURL += "?tenant=" + tenantKey
			if tt.wrongSecret {
				cfg.ClientSecret = "wrong-" + oauthClientSecret
			}
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(cfg), WithLogger(logger))...)

			err := exp.Export(t.Context(), counterData(1))
			if err == nil {
				t.Fatal("Export succeeded, want the token endpoint's failure")
			}
			var we *WriteError
			if !errors.As(err, &we) || we.StatusCode != 0 || we.Series != 1 {
				t.Errorf("Export = %#v, want a *WriteError without status for 1 series", err)
			}
			want := append([]string{"WithOAuth2", "token endpoint " + ts.url + "?tenant=xxxxx"}, tt.want...)
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%s", w, err)
				}
			}
			// One token request: the client authentication is pinned, not
			// probed a second way.
			if n := ts.requests(t); n != 1 {
				t.Errorf("token requests = %d, want 1", n)
			}
			if n := rec.count(); n != 0 {
				t.Errorf("receiver got %d requests without a token, want 0", n)
			}
			if n := len(logs.all()); n != 1 {
				t.Errorf("logged %d records, want 1 warning", n)
			}
			secret := cfg.ClientSecret
			assertNoSecret(t, errorTexts(err, logs),
				secret, url.QueryEscape(secret), tenantKey,
				base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(oauthClientID)+":"+url.QueryEscape(secret))))
		})
	}
}

// TestOAuth2TokenRequestBoundedByContext: a token endpoint that never
// answers fails the export at its timeout.
func TestOAuth2TokenRequestBoundedByContext(t *testing.T) {
	ts := newTokenServer(t, 3600)
	ts.fail = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	// The handler holds ts.mu while it waits: the receiver must not ask.
	rec := &recorder{}
	endpoint := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		w.WriteHeader(http.StatusNoContent)
	})).URL + "/api/v1/write"
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(oauthConfig(ts)), WithTimeout(200*time.Millisecond))...)

	start := time.Now()
	err := exp.Export(context.Background(), counterData(1))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "WithOAuth2") {
		t.Fatalf("Export = %v, want a WithOAuth2 error wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Export took %v, want about the 200ms timeout", d)
	}
	if n := rec.count(); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
}

// TestOAuth2TokenEndpointTLS: the token request uses WithTLS's CA, and
// without it the certificate does not verify.
func TestOAuth2TokenEndpointTLS(t *testing.T) {
	certs := testcert.New(t)
	ts := &tokenServer{secret: oauthClientSecret, expiresIn: 3600}
	ts.srv = httptest.NewUnstartedServer(http.HandlerFunc(ts.handle))
	ts.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	ts.srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{certs.Server}}
	ts.srv.StartTLS()
	t.Cleanup(ts.srv.Close)
	ts.url = ts.srv.URL + "/oauth2/token"

	for _, tt := range []struct {
		name    string
		opts    []Option
		wantErr string
	}{
		{name: "system roots", wantErr: "certificate"},
		{name: "WithTLS CAFile", opts: []Option{WithTLS(TLSConfig{CAFile: certs.CAFile})}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, rec := oauthReceiver(t, ts)
			exp := newExporter(t, append(pinned(WithEndpoint(endpoint), WithOAuth2(oauthConfig(ts))), tt.opts...)...)
			err := exp.Export(t.Context(), counterData(1))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Export: %v", err)
				}
				if got := rec.only(t).Header.Get("Authorization"); !strings.HasPrefix(got, "Bearer tok-") {
					t.Errorf("Authorization = %q, want a token", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "WithOAuth2") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Export = %v, want a WithOAuth2 error about the %s", err, tt.wantErr)
			}
			if n := rec.count(); n != 0 {
				t.Errorf("receiver got %d requests, want 0", n)
			}
		})
	}
	if n := ts.requests(t); n != 1 {
		t.Errorf("token requests that got through = %d, want 1", n)
	}
}

// TestOAuth2TokenRequestTransport: token requests go through the exporter's
// transport (its proxy choice sees them) but not through WithRoundTripper
// hooks or to the receiver's authentication.
func TestOAuth2TokenRequestTransport(t *testing.T) {
	ts := newTokenServer(t, 3600)
	endpoint, rec := oauthReceiver(t, ts)
	var mu sync.Mutex
	var proxied, hooked []string
	proxy := func(r *http.Request) (*url.URL, error) {
		mu.Lock()
		proxied = append(proxied, r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		return nil, nil
	}
	hook := func(next http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			hooked = append(hooked, r.URL.Path+" "+r.Header.Get("Authorization"))
			mu.Unlock()
			return next.RoundTrip(r)
		})
	}
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(oauthConfig(ts)), WithProxy(proxy), WithRoundTripper(hook))...)
	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(oauthClientID)+":"+url.QueryEscape(oauthClientSecret)))
	if diff := cmp.Diff([]string{"/oauth2/token " + basic, "/api/v1/write Bearer tok-1"}, proxied); diff != "" {
		t.Errorf("requests seen by the transport's proxy function (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/api/v1/write Bearer tok-1"}, hooked); diff != "" {
		t.Errorf("requests seen by the WithRoundTripper hook (-want +got):\n%s", diff)
	}
	if n := rec.count(); n != 1 {
		t.Errorf("receiver requests = %d, want 1", n)
	}
}

// TestOAuth2TokenStaysOnOrigin: a redirect to another host does not carry
// the token.
func TestOAuth2TokenStaysOnOrigin(t *testing.T) {
	ts := newTokenServer(t, 3600)
	otherEndpoint, other := newReceiver(t, http.StatusNoContent, "")
	endpoint := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherEndpoint, http.StatusTemporaryRedirect)
	})).URL + "/api/v1/write"
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(oauthConfig(ts)))...)
	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	got := other.only(t)
	if a := got.Header.Get("Authorization"); a != "" {
		t.Errorf("Authorization sent to another origin: %q", a)
	}
	if diff := cmp.Diff([]series{counterSeries(1)}, got.Series); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

// TestOAuth2ClientSecretFileRotation: the secret file is read at each token
// request, so a rotated secret is used by the next one.
func TestOAuth2ClientSecretFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "client-secret", "first-S3CRET\n")
	ts := newTokenServer(t, 1) // each export fetches
	ts.secret = "first-S3CRET"
	endpoint, rec := oauthReceiver(t, ts)
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithOAuth2(OAuth2Config{ClientID: oauthClientID, ClientSecretFile: path, TokenURL: ts.url}))...)

	var want []string
	for _, secret := range []string{"first-S3CRET", "second-S3CRET", "third:S3CRET"} {
		// Replaced the way Kubernetes does: a new file renamed over it.
		if err := os.Rename(writeFile(t, dir, "new", secret+"\r\n"), path); err != nil {
			t.Fatal(err)
		}
		ts.set(func(ts *tokenServer) { ts.secret = secret })
		if err := exp.Export(t.Context(), counterData(1)); err != nil {
			t.Fatalf("Export with secret %q: %v", secret, err)
		}
		want = append(want, secret)
	}
	if diff := cmp.Diff(want, ts.secrets); diff != "" {
		t.Errorf("client secret per token request (-want +got):\n%s", diff)
	}
	if n := rec.count(); n != 3 {
		t.Errorf("receiver requests = %d, want 3", n)
	}
}

// TestOAuth2ClientSecretFileProblems: a secret file that cannot be used
// fails the export promptly, naming the option and the path, and sends
// nothing; a FIFO without a writer must not block.
func TestOAuth2ClientSecretFileProblems(t *testing.T) {
	const secret = "file-S3CRET"
	for _, tt := range []struct {
		name string
		// make creates what sits at path.
		make func(t *testing.T, path string)
		want string
	}{
		{name: "missing", make: func(*testing.T, string) {}, want: "no such file or directory"},
		{name: "empty", make: func(t *testing.T, p string) { writeFile(t, filepath.Dir(p), filepath.Base(p), "\n") }, want: "is empty"},
		{name: "too large", make: func(t *testing.T, p string) {
			writeFile(t, filepath.Dir(p), filepath.Base(p), secret+strings.Repeat("x", maxSecretFileBytes))
		}, want: "larger than 64 KiB"},
		{name: "directory", make: func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, want: "not a regular file"},
		{name: "FIFO without a writer", make: func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, want: "not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "client-secret")
			tt.make(t, path)
			ts := newTokenServer(t, 3600)
			endpoint, rec := oauthReceiver(t, ts)
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger), WithTimeout(5*time.Second),
				WithOAuth2(OAuth2Config{ClientID: oauthClientID, ClientSecretFile: path, TokenURL: ts.url}))...)

			err := exp.Export(t.Context(), counterData(1))
			if err == nil {
				t.Fatal("Export succeeded, want the secret file's problem")
			}
			for _, w := range []string{"WithOAuth2", "ClientSecretFile", strconv.Quote(path), tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%s", w, err)
				}
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Export = %v, want the file rejected before the timeout", err)
			}
			if n := ts.requests(t); n != 0 {
				t.Errorf("token requests = %d, want 0", n)
			}
			if n := rec.count(); n != 0 {
				t.Errorf("receiver requests = %d, want 0", n)
			}
			assertNoSecret(t, errorTexts(err, logs), secret)
		})
	}
}

// TestReadSecretFile covers the helper's limits directly.
func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	exact := writeFile(t, dir, "exact", strings.Repeat("s", maxSecretFileBytes))
	got, err := readSecretFile(t.Context(), "WithX", exact)
	if err != nil || len(got) != maxSecretFileBytes {
		t.Errorf("readSecretFile(a file of exactly the limit) = %d bytes, %v; want all of it", len(got), err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = readSecretFile(ctx, "WithX", exact)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "WithX") || !strings.Contains(err.Error(), exact) {
		t.Errorf("readSecretFile(cancelled) = %v, want an error naming WithX and the path, wrapping context.Canceled", err)
	}

	_, err = readSecretFile(t.Context(), "WithX", filepath.Join(dir, "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("readSecretFile(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestOAuth2ConfigErrors(t *testing.T) {
	ep := WithEndpoint(validEndpoint)
	good := OAuth2Config{ClientID: "id", ClientSecret: secretPassword, TokenURL: "https://idp.example/token"}
	with := func(f func(c *OAuth2Config)) Option {
		c := good
		f(&c)
		return WithOAuth2(c)
	}
	ok := func(next http.RoundTripper) (http.RoundTripper, error) { return next, nil }
	for _, tt := range []struct {
		name string
		give []Option
		want []string
	}{
		{name: "no client ID", give: []Option{ep, with(func(c *OAuth2Config) { c.ClientID = "" })}, want: []string{"WithOAuth2", "ClientID is empty"}},
		{name: "no secret", give: []Option{ep, with(func(c *OAuth2Config) { c.ClientSecret = "" })}, want: []string{"WithOAuth2", "ClientSecretFile"}},
		{name: "secret and secret file", give: []Option{ep, with(func(c *OAuth2Config) { c.ClientSecretFile = "/run/secret" })}, want: []string{"WithOAuth2", "ClientSecret and ClientSecretFile both set"}},
		{name: "no token URL", give: []Option{ep, with(func(c *OAuth2Config) { c.TokenURL = "" })}, want: []string{"WithOAuth2", "TokenURL is empty"}},
		{name: "token URL not http", give: []Option{ep, with(func(c *OAuth2Config) { c.TokenURL = "ftp://idp.example/token" })}, want: []string{"WithOAuth2", "http or https"}},
		{name: "token URL without host", give: []Option{ep, with(func(c *OAuth2Config) { c.TokenURL = "https:///token" })}, want: []string{"WithOAuth2", "no host"}},
		{name: "token URL not a URL", give: []Option{ep, with(func(c *OAuth2Config) { c.TokenURL = "https://idp:port/x?key=" + secretToken })}, want: []string{"WithOAuth2", "not a URL"}},
		{name: "token URL with credentials", give: []Option{ep, with(func(c *OAuth2Config) { c.TokenURL = "https://id:" + secretPassword + "@idp.example/token" })}, want: []string{"WithOAuth2", "credentials", "idp.example/token"}},
		{name: "token URL with credentials and a query", give: []Option{ep, with(func(c *OAuth2Config) {
			c.TokenURL = "http://id:" + secretPassword + "@idp.example/token?key=" + secretToken
		})}, want: []string{"WithOAuth2", "key=xxxxx"}},
		{name: "empty scope", give: []Option{ep, with(func(c *OAuth2Config) { c.Scopes = []string{"a", ""} })}, want: []string{"WithOAuth2", "Scopes[1]"}},
		{name: "scope with a space", give: []Option{ep, with(func(c *OAuth2Config) { c.Scopes = []string{"a b"} })}, want: []string{"WithOAuth2", `Scopes[0] "a b"`}},
		{name: "endpoint param scope", give: []Option{ep, with(func(c *OAuth2Config) { c.EndpointParams = url.Values{"scope": {"x"}} })}, want: []string{"WithOAuth2", `EndpointParams cannot set "scope"`}},
		{name: "endpoint param client_secret", give: []Option{ep, with(func(c *OAuth2Config) { c.EndpointParams = url.Values{"client_secret": {secretToken}} })}, want: []string{"WithOAuth2", `"client_secret"`}},
		{name: "with basic auth", give: []Option{ep, WithBasicAuth("alice", secretPassword), WithOAuth2(good)}, want: []string{"WithOAuth2 and WithBasicAuth both set", "one Authorization"}},
		{name: "with basic auth file", give: []Option{ep, WithBasicAuthPasswordFile("alice", "/p"), WithOAuth2(good)}, want: []string{"WithOAuth2 and WithBasicAuthPasswordFile both set"}},
		{name: "with bearer", give: []Option{ep, WithBearerToken(secretToken), WithOAuth2(good)}, want: []string{"WithOAuth2 and WithBearerToken both set"}},
		{name: "with bearer file", give: []Option{ep, WithBearerTokenFile("/t"), WithOAuth2(good)}, want: []string{"WithOAuth2 and WithBearerTokenFile both set"}},
		{name: "with Authorization header", give: []Option{ep, WithHeaders(map[string]string{"authorization": "Bearer " + secretToken}), WithOAuth2(good)}, want: []string{"WithHeaders sets Authorization and WithOAuth2 is set"}},
		{name: "with authenticator", give: []Option{ep, WithAuthenticator("x.WithThing", ok), WithOAuth2(good)}, want: []string{"WithOAuth2 and x.WithThing both set"}},
		{name: "several at once", give: []Option{ep, WithOAuth2(OAuth2Config{ClientSecret: secretPassword, ClientSecretFile: "/s"})}, want: []string{"ClientID is empty", "both set", "TokenURL is empty"}},
	} {
		t.Run(tt.name, func(t *testing.T) { assertNewFails(t, tt.give, tt.want) })
	}
}

func TestOAuth2Environment(t *testing.T) {
	dir := t.TempDir()
	secretFile := writeFile(t, dir, "client-secret", "s3cret\n")
	const tokenURL = "https://idp.example/oauth2/token"
	tests := []struct {
		name  string
		env   map[string]string
		opts  []Option
		check func(t *testing.T, c config)
	}{
		{
			name: "all variables",
			env:  map[string]string{envOAuth2ClientID: "exporter", envOAuth2ClientSecretFile: secretFile, envOAuth2TokenURL: tokenURL, envOAuth2Scopes: " metrics.write, ,tenant:a "},
			check: func(t *testing.T, c config) {
				want := &OAuth2Config{ClientID: "exporter", ClientSecretFile: secretFile, TokenURL: tokenURL, Scopes: []string{"metrics.write", "tenant:a"}}
				if diff := cmp.Diff(want, c.oauth2); diff != "" {
					t.Errorf("oauth2 config (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "code credentials replace the environment's",
			env:  map[string]string{envOAuth2ClientID: "exporter", envOAuth2ClientSecretFile: secretFile, envOAuth2TokenURL: tokenURL},
			opts: []Option{WithBearerToken("code-token")},
			check: func(t *testing.T, c config) {
				if c.oauth2 != nil || c.bearerToken != "code-token" {
					t.Errorf("oauth2 = %+v, bearer = %q; want the code's bearer token only", c.oauth2, c.bearerToken)
				}
			},
		},
		{
			name: "code OAuth2 replaces the environment's bearer file",
			env:  map[string]string{envBearerTokenFile: secretFile},
			opts: []Option{WithOAuth2(OAuth2Config{ClientID: "code", ClientSecret: "x", TokenURL: tokenURL})},
			check: func(t *testing.T, c config) {
				if c.bearerFileSet || c.oauth2 == nil || c.oauth2.ClientID != "code" {
					t.Errorf("bearer file set = %v, oauth2 = %+v; want the code's OAuth2 only", c.bearerFileSet, c.oauth2)
				}
			},
		},
		{
			name: "code OAuth2 replaces the environment's",
			env:  map[string]string{envOAuth2ClientID: "env", envOAuth2ClientSecretFile: secretFile, envOAuth2TokenURL: tokenURL},
			opts: []Option{WithOAuth2(OAuth2Config{ClientID: "code", ClientSecret: "x", TokenURL: tokenURL})},
			check: func(t *testing.T, c config) {
				if c.oauth2 == nil || c.oauth2.ClientID != "code" || c.oauth2.ClientSecretFile != "" {
					t.Errorf("oauth2 = %+v, want the code's", c.oauth2)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := newConfig(append([]Option{WithEndpoint(validEndpoint)}, tt.opts...))
			if err != nil {
				t.Fatalf("newConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestOAuth2EnvironmentErrors(t *testing.T) {
	const tokenURL = "https://idp.example/token"
	full := map[string]string{envOAuth2ClientID: "exporter", envOAuth2ClientSecretFile: "/run/secret", envOAuth2TokenURL: tokenURL}
	plus := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{name: "client ID alone", env: map[string]string{envOAuth2ClientID: "exporter"}, want: []string{
			envOAuth2ClientID + " is set without " + envOAuth2ClientSecretFile, envOAuth2ClientID + " is set without " + envOAuth2TokenURL}},
		{name: "scopes alone", env: map[string]string{envOAuth2Scopes: "a"}, want: []string{envOAuth2Scopes + " is set without " + envOAuth2ClientID}},
		{name: "with basic auth", env: plus(map[string]string{envBasicAuthUsername: "alice", envBasicAuthPassword: "/p"}), want: []string{
			envOAuth2ClientID + " and " + envBasicAuthUsername + " are both set: a request carries one Authorization header, unset one"}},
		{name: "with bearer file", env: plus(map[string]string{envBearerTokenFile: "/t"}), want: []string{
			envOAuth2ClientID + " and " + envBearerTokenFile + " are both set"}},
		{name: "bad token URL", env: plus(map[string]string{envOAuth2TokenURL: "idp.example/token"}), want: []string{envOAuth2TokenURL + `="idp.example/token"`, "http or https"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			exp, err := New(WithEndpoint(validEndpoint))
			if exp != nil {
				_ = exp.Shutdown(t.Context())
				t.Fatal("New returned an exporter, want an error")
			}
			if err == nil {
				t.Fatal("New returned no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%s", w, err)
				}
			}
		})
	}
}

// TestOAuth2FromEnvironmentExports runs the environment's configuration end
// to end.
func TestOAuth2FromEnvironmentExports(t *testing.T) {
	ts := newTokenServer(t, 3600)
	endpoint, rec := oauthReceiver(t, ts)
	t.Setenv(envOAuth2ClientID, oauthClientID)
	t.Setenv(envOAuth2ClientSecretFile, writeFile(t, t.TempDir(), "secret", oauthClientSecret+"\n"))
	t.Setenv(envOAuth2TokenURL, ts.url)
	t.Setenv(envOAuth2Scopes, "metrics.write,tenant:a")
	exp := newExporter(t, pinned(WithEndpoint(endpoint))...)
	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if n := ts.requests(t); n != 1 || ts.forms[0].Get("scope") != "metrics.write tenant:a" {
		t.Errorf("token requests = %d (%v), want 1 with the scopes", n, ts.forms)
	}
	if diff := cmp.Diff([]string{"Bearer tok-1"}, authHeaders(rec)); diff != "" {
		t.Errorf("Authorization per request (-want +got):\n%s", diff)
	}
}

func TestSafeURLString(t *testing.T) {
	for _, tt := range []struct{ give, want string }{
		{give: "https://idp.example/oauth2/token", want: "https://idp.example/oauth2/token"},
		{give: "https://idp.example/token?api-version=1&key=k3y#frag", want: "https://idp.example/token?api-version=xxxxx&key=xxxxx"},
		{give: "https://u:p4ss@idp.example/token", want: "https://xxxxx@idp.example/token"},
		{give: "https://u:p4ss@idp:port/token?key=k3y", want: "https://xxxxx@idp:port/token?xxxxx"},
		{give: "admin:PASS@host:9090/api/v1/write", want: "xxxxx@host:9090/api/v1/write"},
		{give: "http://host/write?api_key=K3Y", want: "http://host/write?api_key=xxxxx"},
	} {
		if got := safeURLString(tt.give); got != tt.want {
			t.Errorf("safeURLString(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
