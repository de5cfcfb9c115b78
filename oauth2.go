package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// OAuth2Config configures WithOAuth2: the OAuth 2.0 client credentials grant
// (RFC 6749, section 4.4), as Prometheus' oauth2 setting has it.
//
// The client ID and secret go to the token endpoint as HTTP basic
// authentication (client_secret_basic, each URL-encoded first, as section
// 2.3.1 requires), never in the form body. The access token is sent as
// "Authorization: Bearer <token>" to the endpoint's origin only, and reused
// until 10 seconds before the expiry the token endpoint gave (expires_in); a
// token without one is reused until the receiver refuses it. When the
// receiver answers 401, the token is dropped and the request sent once more
// with a fresh one; a second 401 is the export's error. Token requests go
// through the exporter's own transport (its TLS and proxy settings, or
// WithHTTPClient's transport), not through WithRoundTripper hooks, never
// follow redirects, and are bounded by the export's context. A failing token
// endpoint fails that export with an error naming WithOAuth2, the token URL,
// the status and the OAuth2 error code, never the response body, which may
// echo the credentials.
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

// String prints c with its secrets hidden: the client secret, the token
// URL's credentials and query values, the values of EndpointParams (an
// assertion may be one). fmt's %v and %+v print this.
func (c OAuth2Config) String() string {
	return fmt.Sprintf("{ClientID:%s ClientSecret:%s ClientSecretFile:%s TokenURL:%s Scopes:%v EndpointParams:%v}",
		c.ClientID, hidden(c.ClientSecret), c.ClientSecretFile, hiddenURL(c.TokenURL), c.Scopes, paramNames(c.EndpointParams))
}

// GoString is String in Go syntax, for %#v.
func (c OAuth2Config) GoString() string {
	return fmt.Sprintf("prwmetric.OAuth2Config{ClientID:%q, ClientSecret:%q, ClientSecretFile:%q, TokenURL:%q, Scopes:%#v, EndpointParams:%#v}",
		c.ClientID, hidden(c.ClientSecret), c.ClientSecretFile, hiddenURL(c.TokenURL), c.Scopes, paramNames(c.EndpointParams))
}

// hidden is redactedText for a secret that is set, "" otherwise.
func hidden(secret string) string {
	if secret == "" {
		return ""
	}
	return redactedText
}

// hiddenURL is raw with its credentials and query values hidden.
func hiddenURL(raw string) string {
	if raw == "" {
		return ""
	}
	return safeURLString(raw)
}

// paramNames are the names of params, each with its values hidden.
func paramNames(params url.Values) url.Values {
	if params == nil {
		return nil
	}
	out := make(url.Values, len(params))
	for k, vs := range params {
		out[k] = slices.Repeat([]string{redactedText}, len(vs))
	}
	return out
}

// validateOAuth2 checks WithOAuth2's settings and that it is the only
// source of the Authorization header. No secret is ever echoed. Settings
// from the environment are named by their variables.
func (c *config) validateOAuth2() []error {
	o := c.oauth2
	if o == nil {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("prwmetric: WithOAuth2: "+format, args...))
	}
	// tokenURL is how the errors name the token URL: by its field, or its
	// variable.
	tokenURL := fmt.Sprintf("WithOAuth2: TokenURL %q", safeURLString(o.TokenURL))
	fromEnv := c.oauth2From == envOAuth2ClientID
	if fromEnv {
		tokenURL = fmt.Sprintf("%s=%q", envOAuth2TokenURL, safeURLString(o.TokenURL))
	}
	addTokenURL := func(problem string) {
		errs = append(errs, fmt.Errorf("prwmetric: %s: %s", tokenURL, problem))
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
		addTokenURL("not a URL: want e.g. \"https://login.example.com/oauth2/token\"")
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			addTokenURL("the scheme must be http or https")
		case u.Host == "":
			addTokenURL("no host: want e.g. \"https://login.example.com/oauth2/token\"")
		case u.User != nil:
			addTokenURL("credentials in the URL are not sent: pass them as the client ID and secret instead")
		}
	}
	for i, s := range o.Scopes {
		if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			continue
		}
		if fromEnv {
			// The variable's scopes are split at commas, empty ones dropped.
			errs = append(errs, fmt.Errorf("prwmetric: %s: scope %q holds white space: separate scopes with \",\"", envOAuth2Scopes, s))
		} else {
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
		errs = append(errs, fmt.Errorf("prwmetric: %s and %s both set: a request carries one Authorization header, keep one", c.oauth2From, other))
	}
	if c.basicAuthSet {
		conflict(c.basicAuthFrom)
	}
	if c.bearerSet || c.bearerFileSet {
		conflict(c.bearerFrom)
	}
	if c.authenticator != nil {
		conflict(c.authenticatorName)
	}
	for name := range c.headers {
		if strings.EqualFold(name, "Authorization") {
			errs = append(errs, fmt.Errorf("prwmetric: %s sets Authorization and %s is set: keep one", c.headerFrom(name), c.oauth2From))
		}
	}
	return errs
}

// oauth2Source fetches and caches the access token.
type oauth2Source struct {
	cfg     OAuth2Config
	display string
	// client sends token requests through the exporter's base transport,
	// without its authentication layers and hooks.
	client *http.Client
	// sec learns the secrets the token exchange uses, and redacts them.
	sec *secrets
	// lastToken is the token before the current one, which a receiver
	// refusing it may still echo.
	lastToken string
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
func newOAuth2Transport(next, base http.RoundTripper, c config, sec *secrets) http.RoundTripper {
	src := &oauth2Source{
		cfg:     *c.oauth2,
		display: safeURLString(c.oauth2.TokenURL),
		sec:     sec,
		client: &http.Client{
			Transport: base,
			// A token endpoint answers directly; following a redirect would
			// carry the client credentials elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		sem: make(chan *oauth2.Token, 1),
	}
	src.sem <- nil
	// Query and form values may be keys or assertions; shorter ones are
	// none, and redacting them would garble messages.
	var params []string
	if u, err := url.Parse(c.oauth2.TokenURL); err == nil {
		for _, vs := range u.Query() {
			params = append(params, longValues(vs)...)
		}
	}
	for _, vs := range c.oauth2.EndpointParams {
		params = append(params, longValues(vs)...)
	}
	sec.set("oauth2 parameters", params...)
	if c.oauth2.ClientSecret != "" {
		sec.set("oauth2 client secret", clientSecrets(c.oauth2.ClientID, c.oauth2.ClientSecret)...)
	}
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
		return fail(&requestNotSent{err})
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
		return resp, err
	}
	// The receiver refused the token (revoked, or expired early): fetch a
	// fresh one and try once more. Its body is not read: a body that
	// stalls must not hold the export.
	_ = resp.Body.Close()
	fresh, err := t.src.token(req.Context(), tok)
	if err != nil {
		if retryBody != nil {
			_ = retryBody.Close()
		}
		// The refused request stored nothing.
		return nil, &requestNotSent{err}
	}
	return t.next.RoundTrip(withToken(req, retryBody, fresh))
}

// withToken is a copy of req carrying body and tok: a RoundTripper must not
// modify the caller's request.
func withToken(req *http.Request, body io.ReadCloser, tok *oauth2.Token) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	tok.SetAuthHeader(r)
	return r
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
		secret = strings.TrimRight(content, "\r\n")
		s.sec.set("oauth2 client secret", clientSecrets(s.cfg.ClientID, secret)...)
		if secret == "" {
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
		return nil, s.fetchError(err)
	}
	// The receiver may echo the token back in an error.
	s.sec.set("oauth2 token", tok.AccessToken, s.lastToken)
	s.lastToken = tok.AccessToken
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
func (s *oauth2Source) fetchError(err error) error {
	prefix := "prwmetric: WithOAuth2: token endpoint " + s.display
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		inner := stripURL(err)
		return &tokenError{msg: s.sec.redact(prefix + ": " + inner.Error()), err: inner}
	}
	var b strings.Builder
	b.WriteString(prefix)
	if re.Response != nil {
		fmt.Fprintf(&b, " answered %d %s", re.Response.StatusCode, http.StatusText(re.Response.StatusCode))
	}
	if re.ErrorCode != "" {
		fmt.Fprintf(&b, ": error %q", truncate(s.sec.redact(re.ErrorCode), 64))
		if re.ErrorDescription != "" {
			fmt.Fprintf(&b, " (%q)", truncate(s.sec.redact(re.ErrorDescription), 256))
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
	return &tokenError{msg: s.sec.redact(b.String())}
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

// clientSecrets are the forms in which the client secret may come back:
// as itself, URL-encoded (the form body) and in the basic authentication of
// the token request, whose parts are URL-encoded first.
func clientSecrets(id, secret string) []string {
	if secret == "" {
		return nil
	}
	return []string{secret, id + ":" + secret, url.QueryEscape(id) + ":" + url.QueryEscape(secret)}
}

// cloneValues copies v deeply, so that a caller's later changes do not reach
// the option.
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
