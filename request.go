package prwmetric

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
)

// payload is one request's compressed body, shared by its attempts. It
// returns to payloads, for another request, once nothing can read it: its
// sender is done with it and every attempt's request is released (see
// outgoing). A body the transport never closes is never reused: the
// garbage collector takes it.
type payload struct {
	data []byte
	// refs counts the sender and the attempts not yet released.
	refs atomic.Int32
}

var payloads sync.Pool // *payload

// newPayload returns a payload holding a copy of b, held once.
func newPayload(b []byte) *payload {
	p, _ := payloads.Get().(*payload)
	if p == nil {
		p = new(payload)
	}
	p.data = append(p.data[:0], b...)
	p.refs.Store(1)
	return p
}

func (p *payload) release() {
	if p.refs.Add(-1) == 0 {
		payloads.Put(p)
	}
}

// outgoing is one attempt's request with everything it needs besides the
// payload, in one allocation that later attempts reuse: the request of an
// export of large series carries few series, and its allocations per
// series are mostly those of its requests. It returns to outgoings once the
// attempt is over (the response body closed: RoundTripper's contract lets
// the caller reuse the request then) and each of its bodies has been
// closed (the transport may write the body after the response arrived;
// once closed, a body refuses every Read).
type outgoing struct {
	req    http.Request
	url    url.URL
	header http.Header
	// values back the header's values, each its own slice of one, as
	// Header.Set makes them.
	values  [5]string
	used    int
	body    requestBody
	getBody func() (io.ReadCloser, error)
	payload *payload
	// refs counts the attempt and the bodies not yet closed.
	refs atomic.Int32
}

var outgoings sync.Pool // *outgoing

func newOutgoing() *outgoing {
	o := &outgoing{header: make(http.Header, len(outgoing{}.values))}
	o.body.o = o
	// GetBody's bodies are rare (redirects, signers, the transport's
	// replay of a request on a dead connection): one allocation each.
	o.getBody = func() (io.ReadCloser, error) {
		o.refs.Add(1)
		return &requestBody{o: o, data: o.payload.data}, nil
	}
	return o
}

// release ends one use of o: the attempt, or the Close of a body.
func (o *outgoing) release() {
	if o.refs.Add(-1) != 0 {
		return
	}
	p := o.payload
	o.req, o.payload, o.body.data = http.Request{}, nil, nil
	outgoings.Put(o)
	p.release()
}

// requestBody reads an outgoing's payload, as a *bytes.Reader would, until
// closed. Read and Close exclude each other, so that once Close has
// returned nothing reads the payload through it, whatever the transport
// does.
type requestBody struct {
	o      *outgoing
	mu     sync.Mutex
	data   []byte
	off    int
	closed bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.off >= len(b.data):
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

func (b *requestBody) Close() error {
	b.mu.Lock()
	first := !b.closed
	b.closed = true
	b.mu.Unlock()
	if first {
		b.o.release()
	}
	return nil
}

// newRequest returns the request of one attempt (see attempt) at body, as
// http.NewRequestWithContext would make it with a *bytes.Reader of the
// payload (GetBody set, so that redirects and authenticators can read the
// body again), in an outgoing that the caller releases once the response
// body is closed, or the request failed.
func (c *client) newRequest(ctx context.Context, body *payload, proto Protocol, comp Compression, n int) (*outgoing, error) {
	if c.templateErr != nil {
		return nil, c.templateErr
	}
	if ctx == nil {
		return nil, errors.New("net/http: nil Context")
	}
	o, _ := outgoings.Get().(*outgoing)
	if o == nil {
		o = newOutgoing()
	}
	body.refs.Add(1)
	o.payload = body
	o.refs.Store(2) // the attempt and the body
	o.req = *c.template.WithContext(ctx)
	o.url = *c.template.URL
	o.req.URL = &o.url // its own, as NewRequest's
	o.body.data, o.body.off, o.body.closed = body.data, 0, false
	o.req.Body = &o.body
	o.req.ContentLength = int64(len(body.data))
	o.req.GetBody = o.getBody
	h := o.header
	clear(h)
	o.used = 0
	o.req.Header = h
	switch {
	case comp == CompressionZstd:
		// As vmagent sends it: no Prometheus version, which would
		// promise snappy.
		o.set(h, headerContentEncoding, contentEncodingZstd)
		o.set(h, headerContentType, contentTypeV1)
		o.set(h, headerVMVersion, vmVersion1)
	case proto == ProtocolV2:
		o.set(h, headerContentEncoding, contentEncodingSnappy)
		o.set(h, headerContentType, contentTypeV2)
		o.set(h, headerVersion, versionV2)
	default:
		o.set(h, headerContentEncoding, contentEncodingSnappy)
		o.set(h, headerContentType, contentTypeV1)
		o.set(h, headerVersion, versionV1)
	}
	o.set(h, headerUserAgent, userAgent)
	if n > 0 {
		o.set(h, headerRetryAttempt, strconv.Itoa(n))
	}
	return o, nil
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
