package prwmetric

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// OAuth2Config configures WithOAuth2: the OAuth 2.0 client credentials grant
// (RFC 6749, section 4.4), as Prometheus' oauth2 setting has it.
type OAuth2Config struct {
	// ClientID identifies the client to the token endpoint. Required.
	ClientID string
	// ClientSecret is the client's secret. Set it or ClientSecretFile, not
	// both.
	ClientSecret string
	// ClientSecretFile is a file holding the client secret, read at each
	// token request (so that a rotated secret takes effect without a
	// restart) and trimmed of trailing newlines. It must be a regular file
	// of at most 64 KiB.
	ClientSecretFile string
	// TokenURL is the token endpoint, e.g.
	// "https://login.example.com/oauth2/token": http or https, without
	// credentials in it. Required.
	TokenURL string
	// Scopes are requested as the space-separated scope parameter. Optional.
	Scopes []string
	// EndpointParams are further form parameters of the token request, such
	// as "audience" or "resource". Optional. They cannot replace grant_type,
	// scope, client_id or client_secret.
	EndpointParams url.Values
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

// maxSecretFileBytes bounds every secret file read at run time: a secret is
// small, and a wrong path (a log file, a device) must not be read whole.
const maxSecretFileBytes = 64 << 10

// readSecretFile reads the secret file at path, bounded in size
// (maxSecretFileBytes) and in time by ctx. Only regular files are read: a
// FIFO or device could block forever. Errors name option and path, never
// the contents.
func readSecretFile(ctx context.Context, option, path string) (string, error) {
	fail := func(err error) error { return fmt.Errorf("prwmetric: %s %q: %w", option, path, err) }
	if err := ctx.Err(); err != nil {
		return "", fail(err)
	}
	type result struct {
		content string
		err     error
	}
	// Buffered: a read that outlives ctx (a hung network file system)
	// finishes into the buffer and its goroutine ends.
	done := make(chan result, 1)
	go func() {
		s, err := readRegularFile(path)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return "", fail(r.err)
		}
		return r.content, nil
	case <-ctx.Done():
		return "", fail(ctx.Err())
	}
}

func readRegularFile(path string) (string, error) {
	// O_NONBLOCK: opening a FIFO that has no writer would block otherwise;
	// for regular files it changes nothing.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", pathErrorReason(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", pathErrorReason(err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file (%v): point it at the file that holds the secret", info.Mode().Type())
	}
	tooLarge := fmt.Errorf("larger than %d KiB: a secret is smaller, is it the right file?", maxSecretFileBytes>>10)
	if info.Size() > maxSecretFileBytes {
		return "", tooLarge
	}
	// The file may grow between Stat and read: the limit holds regardless.
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", pathErrorReason(err)
	}
	if len(b) > maxSecretFileBytes {
		return "", tooLarge
	}
	return string(b), nil
}

// pathErrorReason drops the *fs.PathError wrapper, whose text repeats the
// path readSecretFile already names.
func pathErrorReason(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Environment variables of WithOAuth2; the secret comes from a file only.
const (
	envOAuth2ClientID         = envPrefix + "OAUTH2_CLIENT_ID"
	envOAuth2ClientSecretFile = envPrefix + "OAUTH2_CLIENT_SECRET_FILE"
	envOAuth2TokenURL         = envPrefix + "OAUTH2_TOKEN_URL"
	envOAuth2Scopes           = envPrefix + "OAUTH2_SCOPES"
)

// oauth2FromEnvironment returns the WithOAuth2 option the environment asks
// for (nil when none) and its problems, in fromEnvironment's style; get
// returns a variable's trimmed value.
func oauth2FromEnvironment(get func(string) string) (Option, []string) {
	id, secretFile, tokenURL, scopes := get(envOAuth2ClientID), get(envOAuth2ClientSecretFile), get(envOAuth2TokenURL), get(envOAuth2Scopes)
	var set string
	for _, v := range []struct{ name, value string }{{envOAuth2ClientID, id}, {envOAuth2ClientSecretFile, secretFile}, {envOAuth2TokenURL, tokenURL}, {envOAuth2Scopes, scopes}} {
		if v.value != "" {
			set = v.name
			break
		}
	}
	if set == "" {
		return nil, nil
	}
	var errs []string
	for _, v := range []struct{ name, value string }{{envOAuth2ClientID, id}, {envOAuth2ClientSecretFile, secretFile}, {envOAuth2TokenURL, tokenURL}} {
		if v.value == "" {
			errs = append(errs, fmt.Sprintf("%s is set without %s: set it too", set, v.name))
		}
	}
	for _, other := range []string{envBasicAuthUsername, envBasicAuthPassword, envBearerTokenFile} {
		if get(other) != "" {
			errs = append(errs, fmt.Sprintf("%s and %s are both set: a request carries one Authorization header, unset one", set, other))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	cfg := OAuth2Config{ClientID: id, ClientSecretFile: secretFile, TokenURL: tokenURL}
	for _, s := range strings.Split(scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Scopes = append(cfg.Scopes, s)
		}
	}
	return WithOAuth2(cfg), nil
}

// validateOAuth2 checks WithOAuth2's settings and that it is the only
// source of the Authorization header. No secret is ever echoed.
func (c *config) validateOAuth2() []error {
	o := c.oauth2
	if o == nil {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("prwmetric: WithOAuth2: "+format, args...))
	}
	if o.ClientID == "" {
		add("ClientID is empty: pass the client ID the token endpoint knows the exporter by")
	}
	switch {
	case o.ClientSecret != "" && o.ClientSecretFile != "":
		add("ClientSecret and ClientSecretFile both set: keep one")
	case o.ClientSecret == "" && o.ClientSecretFile == "":
		add("no client secret: set ClientSecret, or ClientSecretFile to the file that holds it")
	}
	if o.TokenURL == "" {
		add("TokenURL is empty: pass the token endpoint, e.g. \"https://login.example.com/oauth2/token\"")
	} else if u, err := url.Parse(o.TokenURL); err != nil {
		add("TokenURL %q is not a URL: want e.g. \"https://login.example.com/oauth2/token\"", displayTokenURL(o.TokenURL))
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			add("TokenURL %q: the scheme must be http or https", displayTokenURL(o.TokenURL))
		case u.Host == "":
			add("TokenURL %q has no host: want e.g. \"https://login.example.com/oauth2/token\"", displayTokenURL(o.TokenURL))
		case u.User != nil:
			add("TokenURL %q holds credentials: pass them as ClientID and ClientSecret instead", displayTokenURL(o.TokenURL))
		}
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			add("Scopes[%d] %q is empty or holds white space: pass each scope as its own element", i, s)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.EndpointParams)) {
		switch k {
		case "grant_type", "scope", "client_id", "client_secret":
			add("EndpointParams cannot set %q: it is set from the other OAuth2Config fields", k)
		}
	}

	conflict := func(other string) {
		errs = append(errs, fmt.Errorf("prwmetric: WithOAuth2 and %s both set: a request carries one Authorization header, keep one", other))
	}
	switch {
	case c.basicAuthSet && c.basicAuthFromFile:
		conflict("WithBasicAuthPasswordFile")
	case c.basicAuthSet:
		conflict("WithBasicAuth")
	}
	if c.bearerSet {
		conflict("WithBearerToken")
	}
	if c.bearerFileSet {
		conflict("WithBearerTokenFile")
	}
	if c.authenticator != nil {
		conflict(c.authenticatorName)
	}
	for name := range c.headers {
		if strings.EqualFold(name, "Authorization") {
			errs = append(errs, errors.New("prwmetric: WithHeaders sets Authorization and WithOAuth2 is set: keep one"))
		}
	}
	return errs
}

// displayTokenURL shows a token URL in errors: without credentials, and with
// the query's values (which may be keys) replaced by "xxxxx".
func displayTokenURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		s := redactURLString(raw)
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			s = s[:i]
		}
		return s
	}
	v := *u
	v.User, v.Fragment, v.RawFragment = nil, "", ""
	if v.RawQuery != "" {
		var keys []string
		for _, kv := range strings.Split(v.RawQuery, "&") {
			if k, _, _ := strings.Cut(kv, "="); k != "" {
				keys = append(keys, k+"=xxxxx")
			}
		}
		v.RawQuery = strings.Join(keys, "&")
	}
	return v.String()
}

// oauth2Source fetches and caches the access token.
type oauth2Source struct {
	cfg     OAuth2Config
	display string
	// client sends token requests through the exporter's base transport,
	// without its authentication layers and hooks.
	client *http.Client
	// sem is a one-slot lock that holds the cached token: one fetch at a
	// time, and waiting for it is bounded by the waiter's context.
	sem chan *oauth2.Token
}

// oauth2Transport adds the access token to requests bound for the
// endpoint's origin and retries once, with a fresh token, on a 401.
type oauth2Transport struct {
	next   http.RoundTripper
	origin *url.URL
	src    *oauth2Source
}

// newOAuth2Transport wraps next (the exporter's transport, with every other
// layer) and sends token requests through base (the bare transport).
func newOAuth2Transport(next, base http.RoundTripper, c config) http.RoundTripper {
	src := &oauth2Source{
		cfg:     *c.oauth2,
		display: displayTokenURL(c.oauth2.TokenURL),
		client: &http.Client{
			Transport: base,
			// A token endpoint answers directly; following a redirect would
			// carry the client credentials elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		sem: make(chan *oauth2.Token, 1),
	}
	src.sem <- nil
	return &oauth2Transport{next: next, origin: c.endpointURL, src: src}
}

func (t *oauth2Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req.URL, t.origin) {
		return t.next.RoundTrip(req)
	}
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close() // RoundTrip must close the body, even on error.
		}
		return nil, err
	}
	tok, err := t.src.token(req.Context(), nil)
	if err != nil {
		return fail(err)
	}
	// A retry needs the body again; take a copy now, before next reads the
	// original.
	var retryBody io.ReadCloser
	if req.Body == nil || req.Body == http.NoBody {
		retryBody = req.Body
	} else if req.GetBody != nil {
		if retryBody, err = req.GetBody(); err != nil {
			return fail(err)
		}
	}
	resp, err := t.next.RoundTrip(withToken(req, req.Body, tok))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || (req.Body != nil && retryBody == nil) {
		if retryBody != nil {
			_ = retryBody.Close()
		}
		return t.redacted(resp, tok), err
	}
	// The receiver refused the token (revoked, or expired early): fetch a
	// fresh one and try once more.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	fresh, err := t.src.token(req.Context(), tok)
	if err != nil {
		if retryBody != nil {
			_ = retryBody.Close()
		}
		return nil, err
	}
	resp, err = t.next.RoundTrip(withToken(req, retryBody, fresh))
	return t.redacted(resp, tok, fresh), err
}

// withToken is a copy of req carrying body and tok: a RoundTripper must not
// modify the caller's request.
func withToken(req *http.Request, body io.ReadCloser, tok *oauth2.Token) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	tok.SetAuthHeader(r)
	return r
}

// maxRedactedBody is how much of an error response is kept after redaction:
// more than the client shows (maxErrorBody), even after dropping a tail as
// long as a large JWT access token.
const maxRedactedBody = 16 << 10

// redacted replaces the body of an error response with its start, with the
// access tokens and the client secret removed: a receiver may echo the
// Authorization header it refused, and the body reaches errors and logs.
func (t *oauth2Transport) redacted(resp *http.Response, toks ...*oauth2.Token) *http.Response {
	if resp == nil || resp.StatusCode/100 == 2 {
		return resp
	}
	secrets := []string{t.src.cfg.ClientSecret}
	for _, tok := range toks {
		secrets = append(secrets, tok.AccessToken)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxRedactedBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
	if len(b) == maxRedactedBody {
		// A secret cut off at the end would escape redaction: drop the
		// tail that could hold its start.
		longest := 0
		for _, s := range secrets {
			longest = max(longest, len(s))
		}
		b = b[:max(0, len(b)-longest)]
	}
	resp.Body = io.NopCloser(strings.NewReader(redact(string(b), secrets...)))
	resp.ContentLength = -1
	return resp
}

// redact replaces every occurrence of each non-empty secret in s.
func redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	return s
}

// token returns the cached token while it is valid (x/oauth2's rule: until
// 10 s before its expiry) and is not reject, the token the receiver just
// refused; otherwise it fetches a new one.
func (s *oauth2Source) token(ctx context.Context, reject *oauth2.Token) (*oauth2.Token, error) {
	var cached *oauth2.Token
	select {
	case cached = <-s.sem:
	case <-ctx.Done():
		return nil, fmt.Errorf("prwmetric: WithOAuth2: waiting for a token from %s: %w", s.display, ctx.Err())
	}
	if cached.Valid() && cached != reject {
		s.sem <- cached
		return cached, nil
	}
	if cached == reject {
		cached = nil
	}
	tok, err := s.fetch(ctx)
	if err != nil {
		s.sem <- cached
		return nil, err
	}
	s.sem <- tok
	return tok, nil
}

// fetch asks the token endpoint for a new token, reading the secret file
// first when there is one.
func (s *oauth2Source) fetch(ctx context.Context) (*oauth2.Token, error) {
	secret := s.cfg.ClientSecret
	if s.cfg.ClientSecretFile != "" {
		content, err := readSecretFile(ctx, "WithOAuth2: ClientSecretFile", s.cfg.ClientSecretFile)
		if err != nil {
			return nil, err
		}
		if secret = strings.TrimRight(content, "\r\n"); secret == "" {
			return nil, fmt.Errorf("prwmetric: WithOAuth2: ClientSecretFile %q is empty", s.cfg.ClientSecretFile)
		}
	}
	cc := clientcredentials.Config{
		ClientID:       s.cfg.ClientID,
		ClientSecret:   secret,
		TokenURL:       s.cfg.TokenURL,
		Scopes:         s.cfg.Scopes,
		EndpointParams: s.cfg.EndpointParams,
		// Pinned rather than auto-detected: detection retries a failed
		// request with the secret in the body, doubling the requests of a
		// wrong secret and sending it a second way.
		AuthStyle: oauth2.AuthStyleInHeader,
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, s.client))
	if err != nil {
		return nil, s.fetchError(err, secret)
	}
	probe := &http.Request{Header: http.Header{}}
	tok.SetAuthHeader(probe)
	if !validHeaderValue(probe.Header.Get("Authorization")) {
		return nil, fmt.Errorf("prwmetric: WithOAuth2: token endpoint %s returned a token that is not a valid HTTP header value", s.display)
	}
	return tok, nil
}

// tokenError is a failed token request. Its text is built from facts that
// hold no secret; it unwraps to the transport error, if any, but never to
// x/oauth2's *RetrieveError, whose body may echo the credentials.
type tokenError struct {
	msg string
	err error
}

func (e *tokenError) Error() string { return e.msg }
func (e *tokenError) Unwrap() error { return e.err }

// fetchError describes a failed token request without the secret: the
// status and OAuth2 error code are kept, the response body is not.
func (s *oauth2Source) fetchError(err error, secret string) error {
	id := s.cfg.ClientID
	secrets := []string{
		secret,
		url.QueryEscape(secret),
		base64.StdEncoding.EncodeToString([]byte(id + ":" + secret)),
		base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret))),
	}
	// Query and form values may be keys or assertions; shorter ones are
	// none, and redacting them would garble the message.
	if u, err := url.Parse(s.cfg.TokenURL); err == nil {
		for _, vs := range u.Query() {
			secrets = append(secrets, longValues(vs)...)
		}
	}
	for _, vs := range s.cfg.EndpointParams {
		secrets = append(secrets, longValues(vs)...)
	}
	prefix := "prwmetric: WithOAuth2: token endpoint " + s.display
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		inner := stripURL(err)
		return &tokenError{msg: redact(prefix+": "+inner.Error(), secrets...), err: inner}
	}
	var b strings.Builder
	b.WriteString(prefix)
	if re.Response != nil {
		fmt.Fprintf(&b, " answered %d %s", re.Response.StatusCode, http.StatusText(re.Response.StatusCode))
	}
	if re.ErrorCode != "" {
		fmt.Fprintf(&b, ": error %q", truncate(redact(re.ErrorCode, secrets...), 64))
		if re.ErrorDescription != "" {
			fmt.Fprintf(&b, " (%q)", truncate(redact(re.ErrorDescription, secrets...), 256))
		}
	}
	switch {
	case re.ErrorCode == "invalid_client" || (re.ErrorCode == "" && re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized):
		b.WriteString(": check ClientID and the client secret")
	case re.ErrorCode == "invalid_scope":
		b.WriteString(": check Scopes")
	case re.ErrorCode == "unauthorized_client":
		b.WriteString(": the client may not use the client credentials grant")
	case re.Response != nil && re.Response.StatusCode/100 == 3:
		b.WriteString(": token requests do not follow redirects; set TokenURL to the final URL")
	}
	return &tokenError{msg: redact(b.String(), secrets...)}
}

func longValues(vs []string) []string {
	var out []string
	for _, v := range vs {
		if len(v) >= 6 {
			out = append(out, v, url.QueryEscape(v))
		}
	}
	return out
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
