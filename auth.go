package prwmetric

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

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

// headerNamePrefix is name up to its first character not allowed in a
// header name, for an error that must not echo a value passed along.
func headerNamePrefix(name string) string {
	for i := 0; i < len(name); i++ {
		if !validHeaderName(name[i : i+1]) {
			return name[:i] + "…"
		}
	}
	return name
}

// originTransport adds headers to requests bound for the endpoint's origin
// only: after a redirect to another host, neither credentials nor custom
// headers (which may be secrets, such as a hand-set Authorization) follow.
type originTransport struct {
	next   http.RoundTripper
	origin *url.URL
	// header returns the headers to add; an error fails the request.
	header func(ctx context.Context) (http.Header, error)
}

func (t *originTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req.URL, t.origin) {
		return t.next.RoundTrip(req)
	}
	h, err := t.header(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // RoundTrip must close the body, even on error.
		}
		return nil, &requestNotSent{err}
	}
	// RoundTrippers must not modify the caller's request.
	req = req.Clone(req.Context())
	for name, values := range h {
		req.Header[name] = values
	}
	return t.next.RoundTrip(req)
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// wrapTransport layers custom headers, then authentication, around next, so
// that the request code never knows which authentication is configured.
func wrapTransport(next http.RoundTripper, c config, sec *secrets) http.RoundTripper {
	if c.headerFunc != nil {
		// Inside WithHeaders' layer: its values are set last, and win.
		dynamic := c.headerFunc
		hasAuth := c.basicAuthSet || c.bearerSet || c.bearerFileSet || c.oauth2 != nil || c.authenticator != nil
		next = &originTransport{next: next, origin: c.endpointURL, header: func(ctx context.Context) (http.Header, error) {
			return dynamicHeaders(ctx, dynamic, hasAuth, sec)
		}}
	}
	if len(c.headers) > 0 {
		static := make(http.Header, len(c.headers))
		for k, v := range c.headers {
			static.Set(k, v)
		}
		next = &originTransport{next: next, origin: c.endpointURL, header: func(context.Context) (http.Header, error) { return static, nil }}
	}
	if auth := authorization(c, sec); auth != nil {
		next = &originTransport{next: next, origin: c.endpointURL, header: func(ctx context.Context) (http.Header, error) {
			v, err := auth(ctx)
			if err != nil {
				return nil, err
			}
			return http.Header{"Authorization": {v}}, nil
		}}
	}
	return next
}

// headerProblem says what is wrong with a custom header, by the rules of
// WithHeaders and WithHeaderFunc, or "". It never quotes the value, nor the
// whole of an invalid name: a header line passed as a name
// ("Authorization: Bearer …") holds its value. The example of the fix is
// written as the environment variable or as code wants it.
func headerProblem(name, value string, fromEnvironment bool) string {
	canonical := textproto.CanonicalMIMEHeaderKey(name)
	switch {
	case !validHeaderName(name) && fromEnvironment:
		return fmt.Sprintf("%q is not a valid HTTP header name; give each header as name=value, e.g. X-Scope-OrgID=tenant", headerNamePrefix(name))
	case !validHeaderName(name):
		return fmt.Sprintf("%q is not a valid HTTP header name; pass the name and the value separately, e.g. {\"X-Scope-OrgID\": \"tenant\"}", headerNamePrefix(name))
	case !validHeaderValue(value):
		return fmt.Sprintf("the value of header %q is not a valid HTTP header value (control characters or newlines?)", name)
	case isProtocolHeader(canonical):
		return fmt.Sprintf("header %q is set by the remote-write protocol and cannot be replaced; remove it", name)
	}
	return ""
}

// dynamicHeaders calls WithHeaderFunc's function and checks what it returns
// by WithHeaders' rules; errors name the header, never a value.
func dynamicHeaders(ctx context.Context, fn func(context.Context) (map[string]string, error), hasAuth bool, sec *secrets) (http.Header, error) {
	m, err := fn(ctx)
	if err != nil {
		return nil, fmt.Errorf("prwmetric: WithHeaderFunc: %w", err)
	}
	h := make(http.Header, len(m))
	var secret []string
	for name, value := range m {
		canonical := textproto.CanonicalMIMEHeaderKey(name)
		switch problem := headerProblem(name, value, false); {
		case problem != "":
			return nil, fmt.Errorf("prwmetric: WithHeaderFunc: %s", problem)
		case canonical == "Authorization" && hasAuth:
			return nil, fmt.Errorf("prwmetric: WithHeaderFunc: returned Authorization while another authentication option is set: keep one")
		}
		if secretHeader(name) {
			secret = append(secret, value)
			if _, cred, ok := strings.Cut(value, " "); ok {
				secret = append(secret, cred)
			}
		}
		h[canonical] = []string{value}
	}
	sec.set("header func", secret...)
	return h, nil
}

// authorization returns a function giving the Authorization header value, or
// nil when no authentication is configured. Files are read at each request so
// that rotated secrets take effect without a restart; what they hold joins
// sec.
func authorization(c config, sec *secrets) func(ctx context.Context) (string, error) {
	switch {
	case c.basicAuthSet && c.basicAuthFromFile:
		user, path := c.basicAuthUser, c.basicAuthFile
		return func(ctx context.Context) (string, error) {
			b, err := readSecretFile(ctx, "WithBasicAuthPasswordFile", path)
			if err != nil {
				return "", err
			}
			password := strings.TrimRight(b, "\r\n")
			if password != "" {
				sec.set("basic-auth password file", password, user+":"+password)
			}
			return basicAuth(user, password), nil
		}
	case c.basicAuthSet:
		v := basicAuth(c.basicAuthUser, c.basicAuthPassword)
		return func(context.Context) (string, error) { return v, nil }
	case c.bearerFileSet:
		path := c.bearerTokenFile
		return func(ctx context.Context) (string, error) {
			b, err := readSecretFile(ctx, "WithBearerTokenFile", path)
			if err != nil {
				return "", err
			}
			token := strings.TrimSpace(b)
			sec.set("bearer token file", token)
			if token == "" {
				return "", fmt.Errorf("prwmetric: the bearer token file %q is empty", path)
			}
			return "Bearer " + token, nil
		}
	case c.bearerSet:
		v := "Bearer " + c.bearerToken
		return func(context.Context) (string, error) { return v, nil }
	}
	return nil
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// knownSecrets returns the secrets of c that New knows: the credentials,
// secret header values and the endpoint's and proxy's query values and
// passwords. Secret files add theirs when read.
func knownSecrets(c config) *secrets {
	sec := &secrets{}
	// A header function may give each request its own key: the answers of
	// the requests still under way may echo theirs.
	sec.keepReplaced("header func", min(c.maxConcurrent, 128)+1)
	if c.basicAuthSet && !c.basicAuthFromFile && c.basicAuthPassword != "" {
		sec.set("basic auth", c.basicAuthPassword, c.basicAuthUser+":"+c.basicAuthPassword)
	}
	if c.bearerSet {
		sec.set("bearer token", c.bearerToken)
	}
	var headers []string
	for name, value := range c.headers {
		if secretHeader(name) {
			headers = append(headers, value)
			// "Bearer tok", "Basic dXNlcjpwdw==": the credential alone too.
			if _, cred, ok := strings.Cut(value, " "); ok {
				headers = append(headers, cred)
			}
		}
	}
	sec.set("headers", headers...)
	if c.endpointURL != nil {
		sec.set("endpoint query", queryValues(c.endpointURL)...)
	}
	if c.proxyURL != "" {
		if u, err := url.Parse(c.proxyURL); err == nil {
			values := queryValues(u)
			if p, ok := u.User.Password(); ok {
				values = append(values, p, u.User.Username()+":"+p)
			}
			sec.set("proxy", values...)
		}
	}
	return sec
}

// secretHeader reports whether a header of this name carries a secret:
// Authorization and the like, and names that say key, token, secret,
// password, signature or credential (X-API-Key, X-Auth-Token, …).
func secretHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	for _, word := range []string{"key", "token", "secret", "password", "passwd", "auth", "signature", "credential", "session"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	return false
}
