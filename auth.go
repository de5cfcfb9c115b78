package prwmetric

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// originTransport adds headers to requests bound for the endpoint's origin
// only: after a redirect to another host, neither credentials nor custom
// headers (which may be secrets, such as a hand-set Authorization) follow.
type originTransport struct {
	next   http.RoundTripper
	origin *url.URL
	// header returns the headers to add; an error fails the request.
	header func() (http.Header, error)
}

func (t *originTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req.URL, t.origin) {
		return t.next.RoundTrip(req)
	}
	h, err := t.header()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // RoundTrip must close the body, even on error.
		}
		return nil, err
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
func wrapTransport(next http.RoundTripper, c config) http.RoundTripper {
	if len(c.headers) > 0 {
		static := make(http.Header, len(c.headers))
		for k, v := range c.headers {
			static.Set(k, v)
		}
		next = &originTransport{next: next, origin: c.endpointURL, header: func() (http.Header, error) { return static, nil }}
	}
	if auth := authorization(c); auth != nil {
		next = &originTransport{next: next, origin: c.endpointURL, header: func() (http.Header, error) {
			v, err := auth()
			if err != nil {
				return nil, err
			}
			return http.Header{"Authorization": {v}}, nil
		}}
	}
	return next
}

// authorization returns a function giving the Authorization header value, or
// nil when no authentication is configured. Files are read at each request so
// that rotated secrets take effect without a restart.
func authorization(c config) func() (string, error) {
	switch {
	case c.basicAuthSet && c.basicAuthFromFile:
		user, path := c.basicAuthUser, c.basicAuthFile
		return func() (string, error) {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", fmt.Errorf("prwmetric: reading the basic-auth password file: %w", err)
			}
			return basicAuth(user, strings.TrimRight(string(b), "\r\n")), nil
		}
	case c.basicAuthSet:
		v := basicAuth(c.basicAuthUser, c.basicAuthPassword)
		return func() (string, error) { return v, nil }
	case c.bearerFileSet:
		path := c.bearerTokenFile
		return func() (string, error) {
			b, err := os.ReadFile(path)
			if err != nil {
				return "", fmt.Errorf("prwmetric: reading the bearer token file: %w", err)
			}
			token := strings.TrimSpace(string(b))
			if token == "" {
				return "", fmt.Errorf("prwmetric: the bearer token file %q is empty", path)
			}
			return "Bearer " + token, nil
		}
	case c.bearerSet:
		v := "Bearer " + c.bearerToken
		return func() (string, error) { return v, nil }
	}
	return nil
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
