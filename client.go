package prwmetric

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Header names and values of the remote-write protocol, in one place.
const (
	headerContentEncoding = "Content-Encoding"
	headerContentType     = "Content-Type"
	headerVersion         = "X-Prometheus-Remote-Write-Version"
	headerUserAgent       = "User-Agent"
	headerRetryAttempt    = "Retry-Attempt"
	headerRetryAfter      = "Retry-After"

	contentEncodingSnappy = "snappy"
	contentTypeV1         = "application/x-protobuf"
	versionV1             = "0.1.0"
)

// Version is this release of prwmetric; it is sent in the User-Agent header.
const Version = "0.1.0"

var userAgent = "prwmetric/" + Version

const (
	// maxErrorBody is how much of a failed response's body goes into the
	// warning and the error: enough for any receiver's message, small enough
	// for a log line.
	maxErrorBody = 1 << 10
	// maxDrain bounds how much of a response body is read so the connection
	// can be reused; a peer sending more is cut off and the connection closed.
	maxDrain = 4 << 20
)

func isProtocolHeader(canonical string) bool {
	switch canonical {
	case headerContentEncoding, headerContentType, headerVersion, headerUserAgent:
		return true
	}
	return false
}

// WriteError reports a remote-write request that did not succeed. Export
// returns it (wrapped or joined with other errors; use errors.As).
type WriteError struct {
	// Endpoint is the URL the request went to, without credentials.
	Endpoint string
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// Body is the start (at most 1 KiB) of the response body.
	Body string
	// Series is how many series of the export were not delivered: those of
	// the failed request and of the requests after it, which are not sent.
	// They are dropped: cumulative values catch up on the next success.
	Series int
	// Delivered is how many series of the same export earlier requests
	// delivered, when the export was split into several requests.
	Delivered int
	// Err is the transport error when no response arrived.
	Err error
	// Attempts is how many times the request was sent: 1 unless WithRetry
	// is enabled.
	Attempts int

	retryAfter time.Duration
}

// Error describes the failure without any credentials.
func (e *WriteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "prwmetric: remote write to %s: ", e.Endpoint)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "server answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.Body != "" {
			fmt.Fprintf(&b, ": %s", e.Body)
		}
	} else {
		fmt.Fprintf(&b, "%v", e.Err)
	}
	fmt.Fprintf(&b, " (%d series dropped%s)", e.Series, attemptsText(e.Attempts))
	return b.String()
}

// Unwrap returns the transport error, so that errors.Is(err,
// context.DeadlineExceeded) works.
func (e *WriteError) Unwrap() error { return e.Err }

// client sends one remote-write request. It knows nothing of retries or
// authentication: retries are a policy above it, authentication a transport
// below it.
type client struct {
	http     *http.Client
	endpoint string
	redacted string
	// owned is the transport New created, closed on Shutdown; nil when the
	// user brought their own client.
	owned *http.Transport
}

func newClient(c config) (*client, error) {
	cl := &client{endpoint: c.endpointURL.String(), redacted: c.endpointURL.Redacted()}
	var base http.RoundTripper
	hc := &http.Client{}
	if c.httpClient != nil {
		*hc = *c.httpClient
		base = c.httpClient.Transport
		if base == nil {
			base = http.DefaultTransport
		}
	} else {
		t := newTransport()
		if c.proxy != nil {
			t.Proxy = c.proxy
		}
		switch {
		case c.tlsClientConfig != nil:
			t.TLSClientConfig = c.tlsClientConfig.Clone()
		case c.tlsBuilt != nil:
			t.TLSClientConfig = c.tlsBuilt
		}
		if t.TLSClientConfig.MinVersion == 0 {
			t.TLSClientConfig.MinVersion = tls.VersionTLS12
		}
		cl.owned, base = t, t
	}
	tokenBase := base // OAuth2 token requests: our TLS and proxy, no auth layers or hooks
	if c.authenticator != nil {
		wrapped, err := c.authenticator(base)
		if err != nil {
			return nil, fmt.Errorf("prwmetric: %s: %w", c.authenticatorName, err)
		}
		if wrapped == nil {
			return nil, fmt.Errorf("prwmetric: %s: returned no transport", c.authenticatorName)
		}
		base = wrapped
	}
	for i := len(c.roundTrippers) - 1; i >= 0; i-- {
		if wrapped := c.roundTrippers[i](base); wrapped != nil {
			base = wrapped
		}
	}
	hc.Transport = wrapTransport(base, c)
	if c.oauth2 != nil {
		hc.Transport = newOAuth2Transport(hc.Transport, tokenBase, c)
	}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = checkRedirect
	}
	cl.http = hc
	return cl, nil
}

// newTransport returns a transport with http.DefaultTransport's settings,
// built afresh: the global may be replaced or mutated by other packages (and
// be no *http.Transport at all when instrumentation wraps it).
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		DialContext:       (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2: true,
		MaxIdleConns:      100,
		// Below the 60 s idle timeout of common load balancers: a connection
		// the peer closes just as it is reused fails the POST, which the
		// transport does not replay.
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

var errTooManyRedirects = errors.New("stopped after 10 redirects")

// checkRedirect follows only redirects that resend the POST (307, 308). A 301,
// 302 or 303 would turn it into a GET whose success means nothing was written,
// so the redirect response itself becomes the failure.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if req.Method != http.MethodPost {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errTooManyRedirects
	}
	return nil
}

// shortWrite is a 2.0 receiver's success that wrote less than the request
// carried.
type shortWrite struct{ written partCounts }

func (s *shortWrite) Error() string { return "partial write" }

// attempt POSTs one snappy-compressed body of protocol proto carrying parts,
// once. It returns nil on a 2xx and a *WriteError otherwise; for 2.0,
// errNoWrittenHeaders or a *shortWrite when the 2xx does not say that
// everything was written. Attempt n > 0 (of the retry policy) is marked
// with a Retry-Attempt header, and the error carries the server's
// Retry-After.
func (c *client) attempt(ctx context.Context, body []byte, parts partCounts, proto Protocol, n int) error {
	series := parts.series
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return &WriteError{Endpoint: c.redacted, Series: series, Attempts: 1, Err: err}
	}
	// NewRequest sets GetBody for a bytes.Reader, so redirects resend the body.
	req.Header.Set(headerContentEncoding, contentEncodingSnappy)
	if proto == ProtocolV2 {
		req.Header.Set(headerContentType, contentTypeV2)
		req.Header.Set(headerVersion, versionV2)
	} else {
		req.Header.Set(headerContentType, contentTypeV1)
		req.Header.Set(headerVersion, versionV1)
	}
	req.Header.Set(headerUserAgent, userAgent)
	if n > 0 {
		req.Header.Set(headerRetryAttempt, strconv.Itoa(n))
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return &WriteError{Endpoint: c.redacted, Series: series, Attempts: 1, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		if proto != ProtocolV2 {
			return nil
		}
		written, ok := writtenCounts(resp.Header)
		switch {
		case !ok:
			return errNoWrittenHeaders
		case written.samples < parts.samples || written.histograms < parts.histograms || written.exemplars < parts.exemplars:
			return &shortWrite{written: written}
		}
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	return &WriteError{
		Endpoint:   c.redacted,
		StatusCode: resp.StatusCode,
		Body:       cleanBody(msg),
		Series:     series,
		Attempts:   1,
		retryAfter: parseRetryAfter(resp.Header.Get(headerRetryAfter), time.Now()),
	}
}

// stripURL removes the *url.Error wrapper, whose text repeats the method and
// URL that WriteError already names.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// cleanBody keeps the response text as given, but valid UTF-8 and without
// the trailing newline most servers add.
func cleanBody(b []byte) string {
	s := strings.TrimSpace(string(b))
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		// A character cut at the cap became U+FFFD, which is longer.
		for len(s) > maxErrorBody {
			_, n := utf8.DecodeLastRuneInString(s)
			s = s[:len(s)-n]
		}
	}
	return s
}

func (c *client) close() {
	if c.owned != nil {
		c.owned.CloseIdleConnections()
	}
}
