package prwmetric

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
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

// asShortWrite returns the *shortWrite in err's chain, or nil; it does not
// allocate for a nil err, which is every request of a healthy export.
func asShortWrite(err error) *shortWrite {
	if err == nil {
		return nil
	}
	var short *shortWrite
	if errors.As(err, &short) {
		return short
	}
	return nil
}

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
