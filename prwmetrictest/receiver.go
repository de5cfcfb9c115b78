package prwmetrictest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultPath is the URL path the receiver answers on, the same as
// Prometheus' remote-write receiver.
const DefaultPath = "/api/v1/write"

// DefaultMaxBodySize is the default limit, in bytes, on a request body,
// both compressed and decompressed.
const DefaultMaxBodySize = 32 << 20

// Always, passed as the count to [Server.RespondWith], makes a response
// apply to every following request until [Server.ClearResponses].
const Always = -1

// Option configures a [Server].
type Option interface {
	apply(*config)
}

type config struct {
	path     string
	maxBody  int64
	v1Only   bool
	lenient  bool
	noNative bool
	zstd     bool
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithPath sets the URL path the receiver accepts writes on. Requests to
// any other path are answered 404 and recorded as a violation. The default
// is [DefaultPath].
func WithPath(path string) Option {
	return optionFunc(func(c *config) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		c.path = path
	})
}

// WithMaxBodySize sets the largest request body the receiver reads, in
// bytes, applied to the compressed body and to its decompressed size.
// Larger requests are answered 413 and recorded as a violation. The
// default is [DefaultMaxBodySize]; values <= 0 keep the default.
func WithMaxBodySize(n int64) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxBody = n
		}
	})
}

// WithRemoteWrite1Only makes the receiver behave like a backend that only
// speaks Remote-Write 1.0: Remote-Write 2.0 requests are answered 415
// Unsupported Media Type (not a violation: senders must then fall back
// to 1.0). By default both protocols are accepted.
func WithRemoteWrite1Only() Option {
	return optionFunc(func(c *config) { c.v1Only = true })
}

// WithoutNativeHistograms makes the receiver refuse native histograms as
// Prometheus 2.x does without --enable-feature=native-histograms: a request
// that carries any is answered 500 "native histograms are disabled" and
// nothing of it is stored. By default native histograms are accepted.
func WithoutNativeHistograms() Option {
	return optionFunc(func(c *config) { c.noNative = true })
}

// WithZstd makes the receiver also accept the VictoriaMetrics remote write
// protocol, as VictoriaMetrics and vmagent do: a Remote-Write 1.0 request
// compressed with zstd, sent with Content-Encoding: zstd and
// X-VictoriaMetrics-Remote-Write-Version: 1. By default a zstd request is
// answered 415 Unsupported Media Type, as Prometheus 2.54 and later answer
// any Content-Encoding but snappy (not a violation: senders must then fall
// back to snappy); a 2.0 request is answered 415 with or without it.
func WithZstd() Option {
	return optionFunc(func(c *config) { c.zstd = true })
}

// WithLenient makes the receiver accept (answer 204 and store) requests
// that break a rule, as long as they decode. Violations are still recorded.
// By default such requests are answered 400 and nothing in them is
// stored, like a strict backend.
func WithLenient() Option {
	return optionFunc(func(c *config) { c.lenient = true })
}

// Response is a canned answer for [Server.RespondWith], to simulate a
// failing or slow backend.
type Response struct {
	// Status is the HTTP status to answer. 0 keeps the normal answer
	// (204, or 400 for a request that breaks a rule). Only requests
	// answered 2xx are stored.
	Status int
	// RetryAfter, when not empty, is sent as the Retry-After header:
	// seconds ("2") or an HTTP date.
	RetryAfter string
	// Header holds extra response headers, for example the Remote-Write
	// 2.0 "written" headers to simulate a partial write. A non-zero
	// Status suppresses the receiver's own 2.0 written headers.
	Header http.Header
	// Body is the response body; empty keeps the normal body.
	Body string
	// Delay holds the answer back this long after the request was
	// recorded (and stored, for a 2xx). The wait ends early when the
	// client gives up or the server is closed, so tests never hang.
	Delay time.Duration
}

type queued struct {
	n    int // remaining uses, or Always
	resp Response
}

// Server is an in-process Prometheus Remote-Write receiver listening on
// 127.0.0.1. It decodes, validates and records every request. All
// methods are safe for concurrent use.
type Server struct {
	cfg    config
	ts     *httptest.Server
	closed chan struct{}
	once   sync.Once

	mu         sync.Mutex
	requests   []Request
	violations []string
	series     map[string]*Series
	metadata   map[string]Metadata
	queue      []queued
	changed    chan struct{} // closed and replaced whenever a request is recorded
}

// NewServer starts and returns a receiver on a free port of 127.0.0.1.
// The caller must Close it.
func NewServer(opts ...Option) *Server {
	s := NewUnstartedServer(opts...)
	s.Start()
	return s
}

// NewUnstartedServer returns a receiver that is not yet serving; call
// Start or StartTLS, then Close.
func NewUnstartedServer(opts ...Option) *Server {
	cfg := config{path: DefaultPath, maxBody: DefaultMaxBodySize}
	for _, o := range opts {
		o.apply(&cfg)
	}
	s := &Server{
		cfg:      cfg,
		closed:   make(chan struct{}),
		series:   map[string]*Series{},
		metadata: map[string]Metadata{},
		changed:  make(chan struct{}),
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	return s
}

// Start starts serving plain HTTP.
func (s *Server) Start() { s.ts.Start() }

// StartTLS starts serving HTTPS with a self-signed certificate for
// 127.0.0.1; see Certificate and Client.
func (s *Server) StartTLS() { s.ts.StartTLS() }

// Certificate returns the certificate of a server started with StartTLS,
// nil otherwise. Write it out as PEM to test a sender's CA file option.
func (s *Server) Certificate() *x509.Certificate { return s.ts.Certificate() }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// URL returns the full write URL, for example
// "http://127.0.0.1:34567/api/v1/write".
func (s *Server) URL() string { return s.ts.URL + s.cfg.path }

// Close stops the server. Pending delayed answers are cut short, and Close
// waits for every request in flight to finish. It is safe to call more
// than once.
func (s *Server) Close() {
	s.once.Do(func() { close(s.closed) })
	s.ts.Close()
}

// RespondWith makes the next n requests get r instead of the normal
// answer; pass [Always] for every following request. Calls queue up:
// RespondWith(2, a) then RespondWith(1, b) answers a, a, b, then normally.
// n == 0 does nothing.
func (s *Server) RespondWith(n int, r Response) {
	if n == 0 {
		return
	}
	if n < 0 {
		n = Always
	}
	r.Header = r.Header.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, queued{n: n, resp: r})
}

// ClearResponses drops every response queued by RespondWith, so the
// following requests get the normal answer.
func (s *Server) ClearResponses() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = nil
}

// nextResponse pops the canned response for one request, if any.
func (s *Server) nextResponse() (Response, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return Response{}, false
	}
	q := &s.queue[0]
	r := q.resp
	if q.n != Always {
		q.n--
		if q.n == 0 {
			s.queue = s.queue[1:]
		}
	}
	return r, true
}

// handle receives one request: read (bounded), decode, validate, record,
// wait if told to, answer.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	canned, hasCanned := s.nextResponse()
	req := Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Header: r.Header.Clone(),
	}
	var v violations
	status := http.StatusNoContent
	var d *decoded

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.maxBody))
	req.Body = body
	req.Received = time.Now()
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		v.add("request body is larger than the limit of %d bytes", s.cfg.maxBody)
		status = http.StatusRequestEntityTooLarge
	case err != nil:
		v.add("reading request body: %v", err)
		status = http.StatusBadRequest
	case r.Method != http.MethodPost:
		v.add("method %s, want POST", r.Method)
		status = http.StatusMethodNotAllowed
	case r.URL.Path != s.cfg.path:
		v.add("path %q, want %q", r.URL.Path, s.cfg.path)
		status = http.StatusNotFound
	default:
		status, d = s.decode(&req, &v)
	}
	refusedNative := s.cfg.noNative && d != nil && d.histograms > 0
	if refusedNative {
		status = http.StatusInternalServerError
	}

	s.mu.Lock()
	if d != nil {
		s.checkOrder(&v, d)
	}
	req.Violations = v.result()
	if status == http.StatusNoContent && len(req.Violations) > 0 && !s.cfg.lenient {
		status = http.StatusBadRequest
	}
	if hasCanned && canned.Status != 0 {
		status = canned.Status
	}
	req.Status = status
	if d != nil && status >= 200 && status < 300 {
		s.store(d)
		req.Stored = true
	}
	req.Seq = len(s.requests) + 1
	for _, msg := range req.Violations {
		s.violations = append(s.violations, fmt.Sprintf("request %d: %s", req.Seq, msg))
	}
	s.requests = append(s.requests, req)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	if hasCanned && canned.Delay > 0 {
		t := time.NewTimer(canned.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.closed:
		}
		t.Stop()
	}

	h := w.Header()
	if req.Protocol == ProtocolV2 && d != nil && !(hasCanned && canned.Status != 0) {
		written := func(n int) string {
			if !req.Stored {
				n = 0
			}
			return strconv.Itoa(n)
		}
		h.Set(HeaderSamplesWritten, written(d.samples))
		h.Set(HeaderHistogramsWritten, written(d.histograms))
		h.Set(HeaderExemplarsWritten, written(d.exemplars))
	}
	respBody := ""
	switch {
	case refusedNative && !(hasCanned && canned.Status != 0):
		respBody = "native histograms are disabled"
	case status >= 400:
		respBody = strings.Join(req.Violations, "\n")
	}
	if hasCanned {
		if canned.RetryAfter != "" {
			h.Set("Retry-After", canned.RetryAfter)
		}
		for k, vals := range canned.Header {
			h[k] = append([]string(nil), vals...)
		}
		if canned.Body != "" {
			respBody = canned.Body
		}
	}
	if respBody != "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(status)
	if respBody != "" && status != http.StatusNoContent {
		_, _ = io.WriteString(w, respBody)
	}
}

// decode checks headers and decodes the body by protocol, returning the
// normal status and the decoded content (nil when it could not decode).
func (s *Server) decode(req *Request, v *violations) (int, *decoded) {
	p, ok := contentType(req.Header, v)
	req.Protocol = p
	if !ok {
		return http.StatusUnsupportedMediaType, nil
	}
	if p == ProtocolV2 && s.cfg.v1Only {
		return http.StatusUnsupportedMediaType, nil
	}
	zstd := strings.EqualFold(strings.TrimSpace(req.Header.Get(headerContentEncoding)), encodingZstd)
	if zstd && (!s.cfg.zstd || p == ProtocolV2) {
		return http.StatusUnsupportedMediaType, nil
	}
	checkHeaders(req.Header, p, zstd, v)
	raw, err := decompress(req.Body, zstd, s.cfg.maxBody)
	if err != nil {
		v.add("%v", err)
		if tooLarge := (*decompressedTooLargeError)(nil); errors.As(err, &tooLarge) {
			return http.StatusRequestEntityTooLarge, nil
		}
		return http.StatusBadRequest, nil
	}
	var d *decoded
	// Each protocol has its own decoder; both produce the same decoded
	// form, so storage, ordering checks and queries are shared.
	switch p {
	case ProtocolV2:
		req.V2, d, err = decodeV2(raw, v)
	default:
		req.V1, d, err = decodeV1(raw, v)
	}
	if err != nil {
		v.add("%v", err)
		return http.StatusBadRequest, nil
	}
	checkClassicHistograms(v, d.series)
	return http.StatusNoContent, d
}

// checkOrder flags samples and histograms that are not after the previous
// one of the same series, within the request or against what is already
// stored. s.mu must be held.
func (s *Server) checkOrder(v *violations, d *decoded) {
	type last struct {
		ts    int64
		value float64
		set   bool
	}
	lastSample := map[string]last{}
	lastHist := map[string]last{}
	for _, ser := range d.series {
		ls, ok := lastSample[ser.key]
		lh := lastHist[ser.key]
		if !ok {
			if st := s.series[ser.key]; st != nil {
				if n := len(st.Samples); n > 0 {
					ls = last{st.Samples[n-1].Timestamp, st.Samples[n-1].Value, true}
				}
				if n := len(st.Histograms); n > 0 {
					lh = last{ts: st.Histograms[n-1].Timestamp, set: true}
				}
			}
		}
		for _, smp := range ser.samples {
			switch {
			case !ls.set:
			case smp.Timestamp < ls.ts:
				v.add("series %s: sample at %d is older than the previous sample at %d; samples must be sent in timestamp order", formatRaw(ser.raw), smp.Timestamp, ls.ts)
			case smp.Timestamp == ls.ts && math.Float64bits(smp.Value) != math.Float64bits(ls.value):
				v.add("series %s: two samples at %d with different values (%v, then %v)", formatRaw(ser.raw), smp.Timestamp, ls.value, smp.Value)
			}
			ls = last{smp.Timestamp, smp.Value, true}
		}
		for _, h := range ser.histograms {
			if lh.set && h.Timestamp < lh.ts {
				v.add("series %s: histogram at %d is older than the previous one at %d; histograms must be sent in timestamp order", formatRaw(ser.raw), h.Timestamp, lh.ts)
			}
			lh = last{ts: h.Timestamp, set: true}
		}
		lastSample[ser.key] = ls
		lastHist[ser.key] = lh
	}
}

// store merges an accepted request into the series. s.mu must be held.
func (s *Server) store(d *decoded) {
	for _, ser := range d.series {
		st := s.series[ser.key]
		if st == nil {
			st = &Series{Labels: ser.labels}
			s.series[ser.key] = st
		}
		st.Samples = append(st.Samples, ser.samples...)
		st.Histograms = append(st.Histograms, ser.histograms...)
		st.Exemplars = append(st.Exemplars, ser.exemplars...)
	}
	for _, m := range d.metadata {
		s.metadata[m.MetricFamilyName] = m
	}
}

// WaitForRequests blocks until the server has recorded at least n requests
// in total (valid or not), ctx is done, or the server is closed. To wait
// for the next request, pass RequestCount()+1 read before triggering it.
func (s *Server) WaitForRequests(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch := len(s.requests), s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("prwmetrictest: waiting for %d requests, got %d: %w", n, got, ctx.Err())
		case <-s.closed:
			return fmt.Errorf("prwmetrictest: server closed after %d of %d requests", got, n)
		}
	}
}

// RequestCount returns how many requests the server has recorded.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Requests returns every request recorded so far, in arrival order. The
// decoded messages (V1, V2) are shared: treat them as read-only.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Violations returns every rule violation recorded so far, each prefixed
// with its request number ("request 3: …"). A correct sender produces none.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}
