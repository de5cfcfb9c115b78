package azuread

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/prwmetric/prwmetric"
)

// transport sets the Entra ID token on each request to the endpoint.
type transport struct {
	next   http.RoundTripper
	tokens *tokenCache
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req.URL, originalURL(req)) {
		// A redirect to another host gets no token.
		return t.next.RoundTrip(req)
	}
	if !secureEnough(req.URL) {
		closeBody(req)
		return nil, prwmetric.NotSent(fmt.Errorf("azuread: refusing to send an Entra ID token over plain http to %s: use the https endpoint", req.URL.Host))
	}
	token, err := t.tokens.token(req.Context())
	if err != nil {
		// Stopped before it left, as the plain http refusal above: the
		// exporter neither retries it nor counts its bytes.
		closeBody(req)
		return nil, prwmetric.NotSent(err)
	}
	// RoundTrippers must not modify the caller's request.
	out := req.Clone(req.Context())
	out.Header.Set("Authorization", "Bearer "+token)
	resp, err := t.next.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	// Every answer but a success may be quoted in the export's error: a
	// 3xx that is not followed as well as a 4xx or 5xx.
	if resp.StatusCode/100 != 2 {
		scrubBody(resp, token)
	}
	return resp, nil
}

// originalURL is the URL of the request the client was asked to send,
// before any redirect.
func originalURL(req *http.Request) *url.URL {
	// http.Client stops after 10 redirects; the bound only guards a cycle.
	for i := 0; i < 100 && req.Response != nil && req.Response.Request != nil; i++ {
		req = req.Response.Request
	}
	return req.URL
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// secureEnough allows https, and http to a loopback address (a local proxy
// or a test receiver), where the token cannot be overheard.
func secureEnough(u *url.URL) bool {
	if u.Scheme == "https" {
		return true
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close() // RoundTrip must close the body, even on error.
	}
}

// maxScrub bounds how much of an error answer is searched for the token;
// the exporter quotes only the first KiB of it.
const maxScrub = 64 << 10

// scrubBody removes the token, and its base64 forms, from the start of an
// answer, which the exporter quotes in its error: a receiver may echo the
// request's headers, as they are or base64-encoded.
func scrubBody(resp *http.Response, token string) {
	head, err := io.ReadAll(io.LimitReader(resp.Body, maxScrub))
	scrubbed := head
	for _, form := range tokenForms(token) {
		scrubbed = bytes.ReplaceAll(scrubbed, form, []byte(redacted))
	}
	if !bytes.Equal(scrubbed, head) {
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
	}
	var rest io.Reader = resp.Body
	if err != nil {
		rest = errReader{err}
	}
	resp.Body = readCloser{Reader: io.MultiReader(bytes.NewReader(scrubbed), rest), Closer: resp.Body}
}

// minEncodedForm is the shortest base64 form of the token that is
// searched for: shorter ones could match unrelated text.
const minEncodedForm = 16

// tokenForms returns the token and its base64 forms (standard and URL
// alphabets). The token may be encoded inside a longer text,
// such as "Authorization: Bearer <token>", at any offset, so that only the
// characters of whole 3-byte groups are certain: for each of the three
// alignments, the form is the encoding of the token's bytes from that
// alignment's first whole group to its last. At most a few characters of
// each end of an encoded token stay, which carry no more than 4 bytes of
// it.
func tokenForms(token string) [][]byte {
	forms := [][]byte{[]byte(token)}
	for skip := range 3 {
		if len(token) <= skip {
			break
		}
		part := token[skip:]
		part = part[:len(part)/3*3]
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			if form := enc.EncodeToString([]byte(part)); len(form) >= minEncodedForm {
				forms = append(forms, []byte(form))
			}
		}
	}
	return forms
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
