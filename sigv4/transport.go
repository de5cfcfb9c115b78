package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// emptyPayloadHash is the hex SHA-256 of an empty body.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxScrubbed is how much of an error response is searched for echoed
// secrets: the exporter shows only the first KiB of it.
const maxScrubbed = 64 << 10

// redacted replaces a secret found in a message.
const redacted = "[REDACTED]"

// transport signs each request bound for the origin of the first request
// of its redirect chain, and hands it to next.
type transport struct {
	next    http.RoundTripper
	creds   aws.CredentialsProvider
	signer  *v4.Signer
	region  string
	service string
	// static holds the configured secrets; last the most recently
	// retrieved credentials. Both are removed from error messages and
	// error responses.
	static []string
	last   atomic.Pointer[aws.Credentials]
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req.URL, firstRequest(req).URL) {
		return t.next.RoundTrip(req)
	}
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close() // RoundTrip must close the body, even on error.
		}
		return nil, err
	}
	hash, err := payloadHash(req)
	if err != nil {
		return fail(err)
	}
	creds, err := t.creds.Retrieve(req.Context())
	if err != nil {
		return fail(t.credentialsError(err))
	}
	t.last.Store(&creds)
	// RoundTrippers must not modify the caller's request; the clone shares
	// its body, which the signer does not read.
	signed := req.Clone(req.Context())
	if err := t.signer.SignHTTP(req.Context(), creds, signed, hash, t.service, t.region, time.Now()); err != nil {
		return fail(fmt.Errorf("sigv4: signing the request: %w", err))
	}
	resp, err := t.next.RoundTrip(signed)
	if err != nil || resp.StatusCode/100 == 2 {
		return resp, err
	}
	// Some proxies and gateways echo request headers in error bodies.
	resp.Body = t.scrub(resp.Body, creds)
	return resp, nil
}

// payloadHash returns the hex SHA-256 of the request's body, read through
// GetBody so that the body itself is left for the transport to send.
func payloadHash(req *http.Request) (string, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return emptyPayloadHash, nil
	}
	if req.GetBody == nil {
		return "", errors.New("sigv4: the request body cannot be read twice (no GetBody), so it cannot be signed")
	}
	body, err := req.GetBody()
	if err != nil {
		return "", fmt.Errorf("sigv4: reading the request body to sign it: %w", err)
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return "", fmt.Errorf("sigv4: reading the request body to sign it: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// firstRequest follows a redirected request back to the one the client
// was asked to send.
func firstRequest(req *http.Request) *http.Request {
	for i := 0; i < 100 && req.Response != nil && req.Response.Request != nil; i++ {
		req = req.Response.Request
	}
	return req
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// credentialsError describes a failure to get credentials: the export's
// deadline, or the SDK's reason without the credential cache's wrapping and
// without secrets.
func (t *transport) credentialsError(err error) error {
	var canceled *aws.RequestCanceledError
	if errors.As(err, &canceled) {
		return fmt.Errorf("sigv4: gave up waiting for AWS credentials: %w", canceled.Err)
	}
	return fmt.Errorf("sigv4: getting AWS credentials: %s", t.redact(strings.TrimPrefix(err.Error(), "failed to refresh cached credentials, ")))
}

// secrets returns every secret that could turn up in a message: the
// configured ones, the last credentials retrieved and the web identity
// token, which an identity provider or STS might quote back.
func (t *transport) secrets(extra ...aws.Credentials) []string {
	s := append([]string(nil), t.static...)
	if last := t.last.Load(); last != nil {
		extra = append(extra, *last)
	}
	for _, c := range extra {
		s = append(s, c.SecretAccessKey, c.SessionToken)
	}
	if path := os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE"); path != "" {
		if f, err := os.Open(path); err == nil {
			b, _ := io.ReadAll(io.LimitReader(f, maxScrubbed))
			_ = f.Close()
			s = append(s, strings.TrimSpace(string(b)))
		}
	}
	return s
}

func (t *transport) redact(msg string) string { return redact(msg, t.secrets()...) }

// redact replaces every secret in msg. Strings shorter than 4 bytes are no
// secrets worth mangling a message for.
func redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, redacted)
		}
	}
	return msg
}

// scrub returns body with the secrets removed from its start.
func (t *transport) scrub(body io.ReadCloser, creds aws.Credentials) io.ReadCloser {
	head, err := io.ReadAll(io.LimitReader(body, maxScrubbed))
	text := redact(string(head), t.secrets(creds)...)
	var rest io.Reader = body
	if err != nil {
		rest = errReader{err}
	}
	return readCloser{Reader: io.MultiReader(bytes.NewReader([]byte(text)), rest), Closer: body}
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
