package prwmetric

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// newRequest returns the request of one attempt (see attempt), as
// http.NewRequestWithContext would make it with a *bytes.Reader of body
// (GetBody set, so that redirects and authenticators can read the body
// again), in fewer allocations: an export of large series sends few
// series per request, and its allocations per series are mostly those of
// its requests.
func (c *client) newRequest(ctx context.Context, body []byte, proto Protocol, comp Compression, n int) (*http.Request, error) {
	if c.templateErr != nil {
		return nil, c.templateErr
	}
	if ctx == nil {
		return nil, errors.New("net/http: nil Context")
	}
	o := &outgoing{url: *c.template.URL}
	o.body.Reset(body)
	o.req = *c.template.WithContext(ctx) // the copy inlined stays on the stack
	req := &o.req
	req.URL = &o.url // its own, as NewRequest's
	req.Body = io.NopCloser(&o.body)
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.Header = make(http.Header, len(o.values))
	switch {
	case comp == CompressionZstd:
		// As vmagent sends it: no Prometheus version, which would
		// promise snappy.
		o.set(req.Header, headerContentEncoding, contentEncodingZstd)
		o.set(req.Header, headerContentType, contentTypeV1)
		o.set(req.Header, headerVMVersion, vmVersion1)
	case proto == ProtocolV2:
		o.set(req.Header, headerContentEncoding, contentEncodingSnappy)
		o.set(req.Header, headerContentType, contentTypeV2)
		o.set(req.Header, headerVersion, versionV2)
	default:
		o.set(req.Header, headerContentEncoding, contentEncodingSnappy)
		o.set(req.Header, headerContentType, contentTypeV1)
		o.set(req.Header, headerVersion, versionV1)
	}
	o.set(req.Header, headerUserAgent, userAgent)
	if n > 0 {
		o.set(req.Header, headerRetryAttempt, strconv.Itoa(n))
	}
	return req, nil
}

// send sends req, the request of attempt made of body, proto, comp and n,
// as c.http.Do would, and returns Do's error without its *url.Error (see
// stripURL). The exporter's own client, which has no cookie jar, no
// timeout and checkRedirect, sends through its transport directly: Do
// costs 6 to 7 allocations a request, a good part of a large export's. A
// client the user brought keeps Do, whose jar, timeout and redirect policy
// apply.
func (c *client) send(req *http.Request, body []byte, proto Protocol, comp Compression, n int) (*http.Response, error) {
	if c.owned == nil || c.redirected.Load() {
		resp, err := c.http.Do(req)
		return resp, hideLocation(stripURL(err))
	}
	resp, err := c.roundTrip(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return c.redirect(req, resp, body, proto, comp, n)
	}
	return resp, nil
}

// roundTrip is what Client.Do does around the transport for a request
// without a cookie jar or a deadline: the transport may be a user's hook,
// which can answer anything.
func (c *client) roundTrip(req *http.Request) (*http.Response, error) {
	rt := c.http.Transport
	resp, err := rt.RoundTrip(req)
	if err != nil {
		// Do ignores such a response; closing its body frees its connection.
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		// Do's word for an HTTP answer to the TLS handshake. Do checks the
		// error itself, not its chain.
		if tlsErr, ok := err.(tls.RecordHeaderError); ok && string(tlsErr.RecordHeader[:]) == "HTTP/" { //nolint:errorlint
			err = http.ErrSchemeMismatch
		}
		return nil, err
	}
	if resp == nil {
		return nil, fmt.Errorf("http: RoundTripper implementation (%T) returned a nil *Response with a nil error", rt)
	}
	if resp.Body == nil {
		// Do takes a nil Body for an empty one, when the length allows.
		if resp.ContentLength > 0 {
			return nil, fmt.Errorf("http: RoundTripper implementation (%T) returned a *Response with content length %d but a nil Body", rt, resp.ContentLength)
		}
		resp.Body = http.NoBody
	}
	return resp, nil
}

// redirect answers the redirect resp to req as Do with checkRedirect
// would. Only a 307 or 308 is followed: the rest of this request, and every
// later one, goes through Do, which knows every rule of following (headers
// kept or dropped, the chain of requests that sigv4 walks).
func (c *client) redirect(req *http.Request, resp *http.Response, body []byte, proto Protocol, comp Compression, n int) (*http.Response, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return resp, nil
	}
	u, err := req.URL.Parse(loc)
	if err != nil {
		_ = resp.Body.Close()
		return nil, errBadLocation
	}
	if resp.StatusCode != http.StatusTemporaryRedirect && resp.StatusCode != http.StatusPermanentRedirect {
		return resp, nil // Do turns the POST into a GET, which checkRedirect refuses
	}
	// The next hop as Do makes it: the first request's headers, a fresh
	// body (the first reader has been read) and no Host, which was the
	// endpoint's. checkRedirect lets a POST's first hop through.
	hop, err := c.newRequest(req.Context(), body, proto, comp, n)
	if err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	hop.URL, hop.Host, hop.Response = u, "", resp
	// Do reads a short body so that the connection can be reused; here,
	// as for every response, for at most bodyReadTimeout.
	boundBody(resp)
	const maxBodySlurpSize = 2 << 10
	if resp.ContentLength == -1 || resp.ContentLength <= maxBodySlurpSize {
		_, _ = io.CopyN(io.Discard, resp.Body, maxBodySlurpSize)
	}
	_ = resp.Body.Close()
	c.redirected.Store(true)
	// The hop already made counts towards checkRedirect's limit.
	follow := *c.http
	follow.CheckRedirect = func(req *http.Request, via []*http.Request) error { return checkHop(req, len(via)+1) }
	resp, err = follow.Do(hop)
	return resp, hideLocation(stripURL(err))
}

// boundBody makes resp's body close itself bodyReadTimeout from now unless
// closed first, as attempt bounds the last response's. A redirect's body
// is read (up to 2 KiB, so that the connection can be reused) by redirect
// and, for later hops, by Client.Do right after the redirect policy's
// check, neither with a timer: a redirect whose body stalls would hold the
// export to its timeout. redirect, checkHop and the policy wrapping a
// user's call it on the redirect about to be read.
func boundBody(resp *http.Response) {
	if resp == nil || resp.Body == nil || resp.Body == http.NoBody {
		return
	}
	if _, ok := resp.Body.(*timedBody); ok {
		return
	}
	body := resp.Body
	resp.Body = &timedBody{ReadCloser: body, timer: time.AfterFunc(bodyReadTimeout, func() { _ = body.Close() })}
}

// timedBody is a response body closed by its timer unless closed first.
type timedBody struct {
	io.ReadCloser
	timer *time.Timer
}

func (b *timedBody) Close() error {
	b.timer.Stop()
	return b.ReadCloser.Close()
}

// outgoing is a request and what it needs (its URL, body reader and header
// values), in one allocation.
type outgoing struct {
	req  http.Request
	url  url.URL
	body bytes.Reader
	// values back the header's values, each its own slice of one, as
	// Header.Set makes them.
	values [5]string
	used   int
}

// set sets header key, in canonical form, to v.
func (o *outgoing) set(h http.Header, key, v string) {
	i := o.used
	o.values[i] = v
	h[key] = o.values[i : i+1 : i+1]
	o.used++
}

// shortWrite is a 2.0 receiver's success that wrote less than the request
// carried.
type shortWrite struct{ written partCounts }

func (s *shortWrite) Error() string { return "partial write" }

// errNoWrittenHeaders is a 2xx answer to a 2.0 request without the counts
// every 2.0 receiver sends: a 1.0 receiver read it as an empty request.
var errNoWrittenHeaders = errors.New("the receiver answered without X-Prometheus-Remote-Write-*-Written headers")

// writtenCounts reads the counts of a 2.0 receiver's answer; ok is false
// when it sent none.
func writtenCounts(h http.Header) (written partCounts, ok bool) {
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{headerSamplesWritten, &written.samples},
		{headerHistogramsWritten, &written.histograms},
		{headerExemplarsWritten, &written.exemplars},
	} {
		v := h.Get(f.name)
		if v == "" {
			continue
		}
		ok = true
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			n = 0
		}
		*f.dst = n
	}
	return written, ok
}

// errBadLocation is the failure of a redirect whose Location header does
// not parse. Client.Do's own error quotes the header, and a Location may
// carry credentials of the host it names, which redaction does not know:
// hideLocation puts this in its place.
var errBadLocation = errors.New("the receiver redirected to a Location header that does not parse (not shown: it may carry credentials)")

// doBadLocation starts Client.Do's error for a Location that does not
// parse (net/http client.go), the only error of Do's that quotes what a
// peer sent.
const doBadLocation = "failed to parse Location header "

// hideLocation returns errBadLocation for Do's error quoting a Location
// that does not parse, and err otherwise.
func hideLocation(err error) error {
	if err != nil && strings.HasPrefix(err.Error(), doBadLocation) {
		return errBadLocation
	}
	return err
}
