package benchmarks

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"google.golang.org/protobuf/encoding/protowire"
)

// ReceiverEnv, set to "1", makes the test binary run as a receiver process
// (see TestMain) instead of running tests.
const ReceiverEnv = "PRWMETRIC_BENCH_RECEIVER"

// statsPath answers GET with the receiver's Stats.
const statsPath = "/stats"

// Stats are what a receiver counted since it started.
type Stats struct {
	// Requests is the number of request bodies read.
	Requests int64
	// WireBytes is the sum of the body sizes as sent: compressed, if the
	// sender compressed.
	WireBytes int64
	// RawBytes is the sum of the uncompressed sizes of snappy and zstd
	// bodies (from the snappy block header or the zstd frame header; a 1.0
	// body is not decoded).
	RawBytes int64
	// V2Requests is how many of Requests were Remote Write 2.0 requests,
	// decoded and answered with the written counts.
	V2Requests int64
	// Samples, Histograms and Exemplars are what the 2.0 requests carried,
	// and what the receiver answered as written.
	Samples, Histograms, Exemplars int64
	// DecodeNanos is the wall time during which the receiver was decoding
	// and counting 2.0 bodies (one or more at once): work that a 1.0
	// request, only counted in bytes, does not cost the receiver.
	DecodeNanos int64
	// ZstdRequests is how many of Requests were zstd-compressed 1.0
	// requests of the VictoriaMetrics remote write protocol.
	ZstdRequests int64
}

// Sub returns s - o, the counts between two readings.
func (s Stats) Sub(o Stats) Stats {
	return Stats{
		Requests:     s.Requests - o.Requests,
		WireBytes:    s.WireBytes - o.WireBytes,
		RawBytes:     s.RawBytes - o.RawBytes,
		V2Requests:   s.V2Requests - o.V2Requests,
		Samples:      s.Samples - o.Samples,
		Histograms:   s.Histograms - o.Histograms,
		Exemplars:    s.Exemplars - o.Exemplars,
		DecodeNanos:  s.DecodeNanos - o.DecodeNanos,
		ZstdRequests: s.ZstdRequests - o.ZstdRequests,
	}
}

// fields lists s's counts in the order the stats endpoint writes them.
func (s *Stats) fields() []*int64 {
	return []*int64{&s.Requests, &s.WireBytes, &s.RawBytes, &s.V2Requests, &s.Samples, &s.Histograms, &s.Exemplars, &s.DecodeNanos, &s.ZstdRequests}
}

// The headers of a Remote Write 2.0 exchange.
const (
	contentTypeV2           = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	protoV2                 = "io.prometheus.write.v2.Request"
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// The headers of the VictoriaMetrics remote write protocol, as vmagent
// sends it: a 1.0 body compressed with zstd.
const (
	encodingZstd    = "zstd"
	headerVMVersion = "X-VictoriaMetrics-Remote-Write-Version"
	vmVersion1      = "1"
)

// counter is the receiver's handler: it reads every request body to the
// end, counts its bytes, discards it and answers 204 No Content, which
// both remote-write and OTLP/HTTP senders take as success. A Remote Write
// 2.0 request is decoded as well (see serveV2), because a 2.0 sender needs
// the written counts in the answer; a zstd request must be of the
// VictoriaMetrics protocol (see serveZstd).
type counter struct {
	requests, wire, raw                      atomic.Int64
	v2, samples, histograms, exemplars, nano atomic.Int64
	zstd                                     atomic.Int64

	scratch sync.Pool // of *v2Scratch

	// decoding counts the 2.0 bodies being decoded, since busySince.
	mu        sync.Mutex
	decoding  int
	busySince time.Time
}

// decodeStarted and decodeEnded time the receiver's decoding as the wall
// time during which it decodes at least one body: with requests decoded
// side by side, a sum of their times would count the same wait more than
// once, and could exceed the export it is taken from.
func (c *counter) decodeStarted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.decoding == 0 {
		c.busySince = time.Now()
	}
	c.decoding++
}

func (c *counter) decodeEnded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.decoding--
	if c.decoding == 0 {
		c.nano.Add(int64(time.Since(c.busySince)))
	}
}

func (c *counter) stats() Stats {
	return Stats{
		Requests: c.requests.Load(), WireBytes: c.wire.Load(), RawBytes: c.raw.Load(),
		V2Requests: c.v2.Load(), Samples: c.samples.Load(), Histograms: c.histograms.Load(), Exemplars: c.exemplars.Load(),
		DecodeNanos: c.nano.Load(), ZstdRequests: c.zstd.Load(),
	}
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == statsPath {
		s := c.stats()
		var line []byte
		for _, f := range s.fields() {
			line = strconv.AppendInt(line, *f, 10)
			line = append(line, ' ')
		}
		line[len(line)-1] = '\n'
		_, _ = w.Write(line)
		return
	}
	if isV2(r.Header.Get("Content-Type")) {
		c.serveV2(w, r)
		return
	}
	if r.Header.Get("Content-Encoding") == encodingZstd {
		c.serveZstd(w, r)
		return
	}
	var head [binary.MaxVarintLen64]byte
	n, err := io.ReadFull(r.Body, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rest, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("Content-Encoding") == "snappy" {
		if raw, err := snappy.DecodedLen(head[:n]); err == nil {
			c.raw.Add(int64(raw))
		}
	}
	c.requests.Add(1)
	c.wire.Add(int64(n) + rest)
	w.WriteHeader(http.StatusNoContent)
}

// serveZstd reads a request of the VictoriaMetrics remote write protocol:
// Content-Encoding: zstd with X-VictoriaMetrics-Remote-Write-Version: 1.
// Like a snappy 1.0 body, it is counted, not decoded: the uncompressed size
// is the frame header's content size, which a sender that compresses the
// whole body at once writes (prwmetric does). Only a frame without it is
// decompressed to count. A zstd body without the version header is
// answered 415, and one that is not zstd 400, as a Prometheus that does
// not take zstd answers, so that a sender which would fall back to snappy
// does, and the benchmark sees it (Stats.ZstdRequests).
func (c *counter) serveZstd(w http.ResponseWriter, r *http.Request) {
	if v := r.Header.Get(headerVMVersion); v != vmVersion1 {
		http.Error(w, fmt.Sprintf("a zstd body needs %s: %s; got %q", headerVMVersion, vmVersion1, v), http.StatusUnsupportedMediaType)
		return
	}
	var head [zstd.HeaderMaxSize]byte
	n, err := io.ReadFull(r.Body, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var h zstd.Header
	if err := h.Decode(head[:n]); err != nil || h.Skippable {
		http.Error(w, fmt.Sprintf("the body is not a zstd frame: %v", err), http.StatusBadRequest)
		return
	}
	wire := &countingReader{r: io.MultiReader(bytes.NewReader(head[:n]), r.Body)}
	var raw int64
	if h.HasFCS {
		raw = int64(h.FrameContentSize)
		_, err = io.Copy(io.Discard, wire)
	} else {
		raw, err = zstdLen(wire)
	}
	if err != nil {
		http.Error(w, "zstd: "+err.Error(), http.StatusBadRequest)
		return
	}
	c.requests.Add(1)
	c.zstd.Add(1)
	c.wire.Add(wire.n)
	c.raw.Add(raw)
	w.WriteHeader(http.StatusNoContent)
}

// zstdLen decompresses r and returns the uncompressed size.
func zstdLen(r io.Reader) (int64, error) {
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return 0, err
	}
	defer dec.Close()
	return io.Copy(io.Discard, dec)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// isV2 reports whether a Content-Type names a Remote Write 2.0 request.
func isV2(contentType string) bool {
	if contentType == contentTypeV2 {
		return true // what prwmetric sends; no parsing
	}
	mt, params, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/x-protobuf" && params["proto"] == protoV2
}

// v2Scratch are the buffers one 2.0 request is decoded with, reused.
type v2Scratch struct {
	body, raw []byte
	// ts is decoded into series after series. Its LabelsRefs keep one
	// element in front of the refs: the generated decoder allocates anew
	// for packed refs when the slice is empty, and appends otherwise.
	ts writev2.TimeSeries
}

// v2Counts are the contents of one 2.0 request.
type v2Counts struct{ samples, histograms, exemplars int }

// serveV2 reads a Remote Write 2.0 request, decodes it (snappy, then the
// series one by one with the generated writev2 decoder, into reused
// buffers), checks that every symbol reference is in the table, and answers
// 204 with the counts of samples, histograms and exemplars it carried, as
// written. A body that does not decode is answered 400, as by Prometheus.
//
// This costs the receiver process CPU that a 1.0 request does not: a
// snappy decode and the generated decoder per series, about 150 ns per
// series on a 2-core machine, and for float samples no allocation once the
// buffers have grown. The sender waits for it, so it is counted in
// Stats.DecodeNanos for the benchmark to report.
func (c *counter) serveV2(w http.ResponseWriter, r *http.Request) {
	s, _ := c.scratch.Get().(*v2Scratch)
	if s == nil {
		s = &v2Scratch{}
	}
	defer c.scratch.Put(s)
	buf := bytes.NewBuffer(s.body[:0])
	_, err := buf.ReadFrom(r.Body)
	s.body = buf.Bytes()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "snappy" {
		http.Error(w, fmt.Sprintf("a Remote Write 2.0 body must be snappy-compressed; Content-Encoding is %q", enc), http.StatusUnsupportedMediaType)
		return
	}
	c.decodeStarted()
	counts, rawLen, err := s.decode()
	c.decodeEnded()
	if err != nil {
		http.Error(w, "decoding the Remote Write 2.0 request: "+err.Error(), http.StatusBadRequest)
		return
	}
	c.requests.Add(1)
	c.wire.Add(int64(len(s.body)))
	c.raw.Add(int64(rawLen))
	c.v2.Add(1)
	c.samples.Add(int64(counts.samples))
	c.histograms.Add(int64(counts.histograms))
	c.exemplars.Add(int64(counts.exemplars))
	h := w.Header()
	h.Set(headerSamplesWritten, strconv.Itoa(counts.samples))
	h.Set(headerHistogramsWritten, strconv.Itoa(counts.histograms))
	h.Set(headerExemplarsWritten, strconv.Itoa(counts.exemplars))
	w.WriteHeader(http.StatusNoContent)
}

// decode decompresses s.body into s.raw and counts what the request
// carries.
func (s *v2Scratch) decode() (counts v2Counts, rawLen int, err error) {
	n, err := snappy.DecodedLen(s.body)
	if err != nil {
		return counts, 0, fmt.Errorf("snappy: %w", err)
	}
	if cap(s.raw) < n {
		s.raw = make([]byte, n)
	}
	raw, err := snappy.Decode(s.raw[:cap(s.raw)], s.body)
	if err != nil {
		return counts, 0, fmt.Errorf("snappy: %w", err)
	}
	counts, err = s.count(raw)
	return counts, len(raw), err
}

// The field numbers of io.prometheus.write.v2.Request.
const (
	fieldSymbols    = 4
	fieldTimeseries = 5
)

// count walks a Request's fields: symbols are counted, not copied, and each
// series is decoded into s.ts.
func (s *v2Scratch) count(b []byte) (counts v2Counts, err error) {
	var symbols, series int
	var maxRef uint32
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return counts, protowire.ParseError(n)
		}
		b = b[n:]
		if (num == fieldSymbols || num == fieldTimeseries) && typ != protowire.BytesType {
			return counts, fmt.Errorf("field %d has wire type %d, want bytes", num, typ)
		}
		switch num {
		case fieldSymbols:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return counts, protowire.ParseError(n)
			}
			if symbols == 0 && len(v) != 0 {
				return counts, fmt.Errorf("symbols[0] is %q; the table must start with the empty string", v)
			}
			symbols++
			b = b[n:]
		case fieldTimeseries:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return counts, protowire.ParseError(n)
			}
			ref, err := s.series(v, &counts)
			if err != nil {
				return counts, fmt.Errorf("series %d: %w", series, err)
			}
			maxRef = max(maxRef, ref)
			series++
			b = b[n:]
		default: // unknown fields are skipped, as protobuf says
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return counts, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	if series > 0 && int64(maxRef) >= int64(symbols) {
		return counts, fmt.Errorf("symbol reference %d is beyond the table of %d symbols", maxRef, symbols)
	}
	return counts, nil
}

// series decodes one TimeSeries, adds what it carries to counts and
// returns its largest symbol reference.
func (s *v2Scratch) series(b []byte, counts *v2Counts) (maxRef uint32, err error) {
	ts := &s.ts
	refs := append(ts.LabelsRefs[:0], 0) // the element in front, see v2Scratch
	*ts = writev2.TimeSeries{LabelsRefs: refs, Samples: ts.Samples[:0], Histograms: ts.Histograms[:0], Exemplars: ts.Exemplars[:0]}
	if err := ts.Unmarshal(b); err != nil {
		return 0, err
	}
	labels := ts.LabelsRefs[1:]
	switch {
	case len(labels) == 0 || len(labels)%2 != 0:
		return 0, fmt.Errorf("%d label references; want a positive even number", len(labels))
	case len(ts.Samples) > 0 && len(ts.Histograms) > 0:
		return 0, errors.New("samples and histograms in one series")
	case len(ts.Samples)+len(ts.Histograms)+len(ts.Exemplars) == 0:
		return 0, errors.New("no sample, histogram or exemplar")
	}
	maxRef = max(slices.Max(labels), ts.Metadata.HelpRef, ts.Metadata.UnitRef)
	for _, e := range ts.Exemplars {
		if len(e.LabelsRefs) > 0 {
			maxRef = max(maxRef, slices.Max(e.LabelsRefs))
		}
	}
	counts.samples += len(ts.Samples)
	counts.histograms += len(ts.Histograms)
	counts.exemplars += len(ts.Exemplars)
	return maxRef, nil
}

// ServeReceiver runs a receiver in this process until in reaches EOF: it
// listens on a free port of 127.0.0.1 and writes its URL as one line to
// out. The parent closes in to stop it, and a parent that dies stops it too.
// It also makes DelayProxies in front of itself on request (delayPath).
func ServeReceiver(in io.Reader, out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("receiver: listening: %w", err)
	}
	delayed := &delays{target: ln.Addr().String()}
	mux := http.NewServeMux()
	mux.Handle(delayPath, delayed)
	mux.Handle("/", &counter{})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if _, err := fmt.Fprintf(out, "http://%s\n", ln.Addr()); err != nil {
		srv.Close()
		delayed.Close()
		return fmt.Errorf("receiver: announcing the address: %w", err)
	}
	_, _ = io.Copy(io.Discard, in)
	srv.Close()
	delayed.Close()
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("receiver: serving: %w", err)
	}
	return nil
}

// Receiver is a receiver running in a child process, so that its
// allocations and garbage are not booked to the benchmark.
type Receiver struct {
	// URL is where to send; any path but /stats is accepted.
	URL string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	client *http.Client
}

// StartReceiver starts exe (a test binary of this package) as a receiver
// process and waits until it listens.
func StartReceiver(exe string) (*Receiver, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ReceiverEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the receiver process: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	var url string
	select {
	case url = <-line:
	case <-time.After(30 * time.Second):
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the receiver process did not announce its address (got %q)", url)
	}
	return &Receiver{URL: url, cmd: cmd, stdin: stdin, client: &http.Client{Timeout: time.Minute}}, nil
}

// Stats returns what the receiver has counted so far.
func (r *Receiver) Stats() (Stats, error) {
	resp, err := r.client.Get(r.URL + statsPath)
	if err != nil {
		return Stats{}, err
	}
	defer resp.Body.Close()
	var s Stats
	var dst []any
	for _, f := range s.fields() {
		dst = append(dst, f)
	}
	if _, err := fmt.Fscan(resp.Body, dst...); err != nil {
		return Stats{}, fmt.Errorf("reading the receiver's stats: %w", err)
	}
	return s, nil
}

// Close stops the receiver process and waits for it to exit.
func (r *Receiver) Close() error {
	r.client.CloseIdleConnections()
	if err := r.stdin.Close(); err != nil {
		_ = r.cmd.Process.Kill()
	}
	return r.cmd.Wait()
}

// CaptureServer is an in-process receiver on 127.0.0.1 that keeps every
// request body, for tests and for capturing a payload once during setup.
// It answers as the receiver process does (see counter): Remote Write 2.0
// requests with the written counts.
type CaptureServer struct {
	*httptest.Server

	mu       sync.Mutex
	requests []Captured
}

// Captured is one request a CaptureServer received.
type Captured struct {
	Header http.Header
	Body   []byte
}

// NewCaptureServer starts a CaptureServer. Close it when done.
func NewCaptureServer() *CaptureServer {
	c := &CaptureServer{}
	answer := &counter{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.requests = append(c.requests, Captured{Header: r.Header.Clone(), Body: body})
		c.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		answer.ServeHTTP(w, r)
	}))
	return c
}

// Requests returns the requests received so far, in order, and forgets
// them.
func (c *CaptureServer) Requests() []Captured {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.requests
	c.requests = nil
	return r
}

// Bodies returns the bodies received so far, in order, and forgets them.
func (c *CaptureServer) Bodies() [][]byte {
	var b [][]byte
	for _, r := range c.Requests() {
		b = append(b, r.Body)
	}
	return b
}
