package prwmetric

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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

// The VictoriaMetrics remote write protocol (CompressionZstd): a 1.0 body
// compressed with zstd, and its own version header instead of
// Prometheus'.
const (
	headerVMVersion     = "X-Victoriametrics-Remote-Write-Version" // canonical form
	contentEncodingZstd = "zstd"
	vmVersion1          = "1"
)

const (
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"

	contentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	versionV2     = "2.0.0"
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
	// bodyReadTimeout bounds the reading of a response body (see attempt).
	bodyReadTimeout = 500 * time.Millisecond
)

func isProtocolHeader(canonical string) bool {
	switch canonical {
	case headerContentEncoding, headerContentType, headerVersion, headerUserAgent, headerVMVersion:
		return true
	}
	return false
}

// client sends one remote-write request. It knows nothing of retries or
// authentication: retries are a policy above it, authentication a transport
// below it.
type client struct {
	http     *http.Client
	endpoint string
	// redacted is the endpoint for errors and logs (see safeURL).
	redacted string
	// secrets are taken out of every response body and transport error.
	secrets *secrets
	// owned is the transport New created, closed on Shutdown; nil when the
	// user brought their own client.
	owned *http.Transport
	// template is the POST to the endpoint that each attempt's request
	// copies (newRequest), or the error of making it.
	template    *http.Request
	templateErr error
	// redirected is set once the endpoint has redirected a request: from
	// then on each request goes through Client.Do (see send).
	redirected atomic.Bool

	mu sync.Mutex
	// rebalanced is when the idle connections were last closed.
	rebalanced time.Time
}

func newClient(c config) (*client, error) {
	cl := &client{endpoint: c.endpointURL.String(), redacted: safeURL(c.endpointURL), secrets: knownSecrets(c)}
	cl.template, cl.templateErr = http.NewRequest(http.MethodPost, cl.endpoint, nil)
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
		t.Proxy = knowProxy(t.Proxy, cl.secrets)
		switch {
		case c.tlsClientConfig != nil:
			t.TLSClientConfig = c.tlsClientConfig.Clone()
		case c.tlsBuilt != nil:
			t.TLSClientConfig = c.tlsBuilt
		}
		if t.TLSClientConfig.MinVersion == 0 {
			t.TLSClientConfig.MinVersion = tls.VersionTLS12
		}
		connections(t, c)
		cl.owned, base = t, t
	}
	tokenBase := base // OAuth2 token requests: our TLS and proxy, no auth layers or hooks
	if c.authenticator != nil {
		wrapped, err := c.authenticator(base)
		if err != nil {
			return nil, fmt.Errorf("prwmetric: %s: %w", c.authenticatorName, cl.secrets.redactErr(err))
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
	hc.Transport = wrapTransport(base, c, cl.secrets)
	if c.oauth2 != nil {
		hc.Transport = newOAuth2Transport(hc.Transport, tokenBase, c, cl.secrets)
	}
	if user := hc.CheckRedirect; user == nil {
		hc.CheckRedirect = checkRedirect
	} else {
		// The user's policy decides; the Referer, which names the
		// endpoint's query (an API key, often), never goes to the next host.
		hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			boundBody(req.Response)
			req.Header.Del("Referer")
			return user(req, via)
		}
	}
	cl.http = hc
	return cl, nil
}

// newTransport returns a transport with http.DefaultTransport's settings,
// built afresh: the global may be replaced or mutated by other packages (and
// be no *http.Transport at all when instrumentation wraps it). It speaks
// HTTP/1.1 only (see WithHTTP2).
func newTransport() *http.Transport {
	var http1 http.Protocols
	http1.SetHTTP1(true)
	return &http.Transport{
		Proxy:        http.ProxyFromEnvironment,
		DialContext:  (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		Protocols:    &http1,
		MaxIdleConns: 100,
		// Below the 60 s idle timeout of common load balancers: a connection
		// the peer closes just as it is reused fails the POST, which the
		// transport does not replay.
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		// No "Accept-Encoding: gzip" added to each request (three
		// allocations each): the only response body read is a failure's
		// short message.
		DisableCompression: true,
	}
}

// Defaults of WithHTTP2's connection health check: a connection on which
// nothing arrives for h2ReadIdle is sent a ping, and closed when the ping
// is not answered within h2PingTimeout. A dead connection is thus found
// within 45 s, and the requests on it fail (WithRetry sends them again on
// a new one).
const (
	h2ReadIdle    = 30 * time.Second
	h2PingTimeout = 15 * time.Second
)

// connMaxAge is how long the exporter keeps reusing connections: after an
// export that starts that long after the last closing, idle connections
// are closed, so that the next export resolves the receiver's name and
// connects anew, spreading over the addresses of a load-balanced receiver.
const connMaxAge = 5 * time.Minute

// connections sizes t's connections for c: one per request in flight,
// kept between exports, and one spare: a token request to the receiver's
// host (OAuth2's, an authenticator's) never waits for a connection while
// every request is in flight. HTTP/2 with a health check when c asks for
// it.
func connections(t *http.Transport, c config) {
	t.MaxIdleConnsPerHost = c.maxConcurrent
	t.MaxConnsPerHost = c.maxConcurrent
	if c.maxConcurrent < math.MaxInt {
		t.MaxConnsPerHost++
	}
	t.MaxIdleConns = max(t.MaxIdleConns, t.MaxConnsPerHost)
	if c.http2 {
		t.Protocols.SetHTTP2(true)
		t.HTTP2 = &http.HTTP2Config{SendPingTimeout: c.h2ReadIdle, PingTimeout: c.h2PingTimeout}
	}
}

// rebalance closes the idle connections after an export, once every
// connMaxAge: then no request is under way, and every connection is idle.
func (c *client) rebalance(now time.Time) {
	if c.owned == nil {
		return
	}
	c.mu.Lock()
	first := c.rebalanced.IsZero()
	due := !first && now.Sub(c.rebalanced) >= connMaxAge
	if first || due {
		c.rebalanced = now
	}
	c.mu.Unlock()
	if due {
		c.owned.CloseIdleConnections()
	}
}

var errTooManyRedirects = errors.New("stopped after 10 redirects")

// checkRedirect follows only redirects that resend the POST (307, 308). A 301,
// 302 or 303 would turn it into a GET whose success means nothing was written,
// so the redirect response itself becomes the failure.
func checkRedirect(req *http.Request, via []*http.Request) error {
	return checkHop(req, len(via))
}

// checkHop is checkRedirect for a redirect that comes after hops requests.
func checkHop(req *http.Request, hops int) error {
	boundBody(req.Response) // Do reads it next, unless the check stops here
	if req.Method != http.MethodPost {
		return http.ErrUseLastResponse
	}
	if hops >= 10 {
		return errTooManyRedirects
	}
	// The client would name the URL redirected from, query and all (an
	// API key, often), to the next host.
	req.Header.Del("Referer")
	return nil
}

// attempt POSTs one body of protocol proto, compressed by comp, carrying
// parts, once. It returns nil on a 2xx and a *WriteError otherwise; for 2.0,
// errNoWrittenHeaders or a *shortWrite when the 2xx does not say that
// everything was written. Attempt n > 0 (of the retry policy) is marked
// with a Retry-Attempt header, and the error carries the server's
// Retry-After.
func (c *client) attempt(ctx context.Context, body []byte, parts partCounts, proto Protocol, comp Compression, n int) error {
	series := parts.series
	req, err := c.newRequest(ctx, body, proto, comp, n)
	if err != nil {
		return &WriteError{Endpoint: c.redacted, Series: series, Attempts: 1, Err: err}
	}

	resp, err := c.send(req, body, proto, comp, n)
	if err != nil {
		return &WriteError{Endpoint: c.redacted, Series: series, Attempts: 1, Err: c.secrets.redactErr(err)}
	}
	defer resp.Body.Close()
	// The body is read for a failure's message and so that the connection
	// can be reused, but never for long: a success does not need it, and a
	// body that stalls must cost the connection, not the export. Most
	// successes have none (204, or a length of 0).
	if resp.Body != http.NoBody {
		stop := time.AfterFunc(bodyReadTimeout, func() { _ = resp.Body.Close() })
		defer stop.Stop()
	}
	if resp.StatusCode/100 == 2 {
		if resp.Body != http.NoBody {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		}
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
	// Read past the cap by the longest secret: one that starts before the
	// cap is then redacted whole, not cut into a prefix that escapes.
	limit := maxErrorBody + c.secrets.longest()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, int64(limit)))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	we := &WriteError{
		Endpoint:   c.redacted,
		StatusCode: resp.StatusCode,
		Body:       c.errorBody(msg, len(msg) == limit),
		Series:     series,
		Attempts:   1,
		retryAfter: parseRetryAfter(resp.Header.Get(headerRetryAfter), time.Now()),
	}
	if proto == ProtocolV2 && resp.StatusCode == http.StatusBadRequest {
		if written, ok := writtenCounts(resp.Header); ok {
			we.written = partCounts{
				series:     min(written.samples+written.histograms, parts.series),
				samples:    min(written.samples, parts.samples),
				histograms: min(written.histograms, parts.histograms),
				exemplars:  min(written.exemplars, parts.exemplars),
			}
		}
	}
	return we
}

// safeAttempt is attempt turning a panic (in a WithRoundTripper hook, an
// authenticator) into the request's failure: the exporter must never crash
// the service it runs in. Such a request may have left.
func (c *client) safeAttempt(ctx context.Context, body []byte, parts partCounts, proto Protocol, comp Compression, n int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &WriteError{Endpoint: c.redacted, Series: parts.series, Attempts: 1,
				Err: c.secrets.redactErr(fmt.Errorf("the transport panicked: %v", r))}
		}
	}()
	return c.attempt(ctx, body, parts, proto, comp, n)
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

// errorBody is what a failed response's body msg shows: its start, without
// secrets. cut says msg was cut at the read limit; redaction may move that
// cut into what is kept, so a tail that starts a secret goes too.
func (c *client) errorBody(msg []byte, cut bool) string {
	text := c.secrets.redact(string(msg))
	if cut || len(text) > maxErrorBody {
		text = c.secrets.trimPartial(cleanBody([]byte(text)))
	}
	return cleanBody([]byte(text))
}

// cleanBody keeps the start of the response text as given, at most
// maxErrorBody bytes of valid UTF-8, without the trailing newline most
// servers add.
func cleanBody(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	for len(s) > maxErrorBody {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return strings.TrimSpace(s)
}

func (c *client) close() {
	if c.owned != nil {
		c.owned.CloseIdleConnections()
	}
}

// mayHaveArrived reports whether a request that failed with err may have
// been stored all the same: no answer came (a timeout, a cancellation, a
// connection lost, a timeout or retry budget that cut it), yet the body may
// have reached the receiver. Only a request that surely was not stored is
// excluded: one that never left (neverLeft), or that the receiver only
// redirected (failsAlways).
func mayHaveArrived(err error) bool {
	if err == nil {
		return false
	}
	var we *WriteError
	if !errors.As(err, &we) || we.StatusCode != 0 || we.Err == nil {
		return false
	}
	return !neverLeft(we.Err) && !failsAlways(we.Err)
}

// neverLeft reports whether err, the transport error of a request, came
// before any byte of it went out: its connection was never made (a dial
// error, retryable, as the next dial may succeed) or never trusted, or the
// exporter's own layers stopped it (stoppedBeforeSending).
func neverLeft(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	return stoppedBeforeSending(err)
}

// failsAlways reports whether err, the transport error of a request, is
// one that nothing stored and every attempt meets again: it was stopped
// before sending (stoppedBeforeSending), or the receiver only redirected
// it (a redirect loop, a Location that does not parse). mayHaveArrived
// counts none of them as possibly stored, and WithRetry repeats none: a
// refused token request repeated could even lock the account. A failed
// dial is not among them: it never left, but the next one may succeed.
func failsAlways(err error) bool {
	return stoppedBeforeSending(err) || errors.Is(err, errTooManyRedirects) || errors.Is(err, errBadLocation)
}

// stoppedBeforeSending reports whether err, the transport error of a
// request, stopped it before it was sent, and will again: the connection
// was never trusted (a certificate that does not verify, a TLS alert such
// as a client certificate required, a peer that does not speak TLS or
// answers https in plain HTTP), or the exporter's own layers stopped the
// request (a header function's error, a secret file or token that could
// not be had), or a WithAuthenticator transport did (NotSent).
func stoppedBeforeSending(err error) bool {
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var record tls.RecordHeaderError
	var alert tls.AlertError
	var notSent *requestNotSent
	var token *tokenError
	return errors.As(err, &certErr) || errors.As(err, &unknownAuthority) || errors.As(err, &hostname) ||
		errors.As(err, &record) || errors.As(err, &alert) || errors.As(err, &notSent) || errors.As(err, &token) ||
		errors.Is(err, http.ErrSchemeMismatch) || peerTLSAlert(err)
}

// peerTLSAlert reports whether err is a TLS alert the receiver sent (a
// client certificate required or refused, no common version or cipher):
// over TCP crypto/tls reports one as a net.OpError "remote error" around
// its unexported alert type (tls.AlertError is QUIC's). The receiver's
// TLS layer ended the connection, so no request was handled. An internal
// error may pass, and is left to retry.
func peerTLSAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && !strings.Contains(op.Err.Error(), "internal error")
}

// requestNotSent is an error of the exporter's own transport layers, or
// of a WithAuthenticator transport (NotSent), which fail a request before
// it leaves (a credential file that cannot be read).
type requestNotSent struct{ err error }

func (e *requestNotSent) Error() string { return e.err.Error() }

func (e *requestNotSent) Unwrap() error { return e.err }

// knowProxy wraps proxy, the transport's choice of proxy per request, so
// that the credentials of a proxy URL it returns (from WithProxy's function
// or HTTP_PROXY and the like, not only WithProxyURL) join sec before the
// transport sends them: a proxy may echo its Proxy-Authorization in a
// refusal that ends up in an error.
func knowProxy(proxy func(*http.Request) (*url.URL, error), sec *secrets) func(*http.Request) (*url.URL, error) {
	if proxy == nil {
		return nil
	}
	var mu sync.Mutex
	var known string // the userinfo last made secret
	return func(req *http.Request) (*url.URL, error) {
		u, err := proxy(req)
		if u == nil || u.User == nil {
			return u, err
		}
		p, ok := u.User.Password()
		if !ok {
			return u, err
		}
		mu.Lock()
		defer mu.Unlock()
		if info := u.User.String(); info != known {
			sec.set("proxy chosen", p, u.User.Username()+":"+p)
			known = info
		}
		return u, err
	}
}
