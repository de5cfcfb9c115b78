package prwmetric

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzMaxPayload bounds a fuzzed response body: twice the drain cap, so
// that the cap is what stops the exporter reading.
const fuzzMaxPayload = 2 * maxDrain

// FuzzResponseHandling serves a fuzzed HTTP response (any status from 200
// to 599, extra header lines, Retry-After, every way of framing a body,
// gzip claims true and false, bodies up to 8 MiB) from a raw TCP server and
// checks that the exporter never panics, reads no more than its caps,
// reports success exactly for a 2xx it could parse, reports the status of
// any other response it could parse, and keeps WriteError.Body within
// 1 KiB of valid UTF-8 equal to what the server sent.
func FuzzResponseHandling(f *testing.F) {
	type seed struct {
		status     uint16 // 200 + status%400
		header     string
		retryAfter string
		lengthMode uint8
		encoding   uint8
		body       []byte
		repeat     uint16
		retry      bool
	}
	for _, s := range []seed{
		{status: 4}, // 204
		{status: 0, body: []byte("ignored"), lengthMode: fuzzLengthExact},
		{status: 200, body: []byte("out of order sample\n"), lengthMode: fuzzLengthExact},
		{status: 229, retryAfter: "2", body: []byte("slow down")},
		{status: 229, retryAfter: "Wed, 21 Oct 2099 07:28:00 GMT", retry: true},
		{status: 229, retryAfter: "99999999999999999999999", retry: true},
		{status: 300, body: []byte("storage full"), lengthMode: fuzzLengthChunked, retry: true},
		{status: 303, body: []byte("x"), lengthMode: fuzzLengthInvalid, retry: true},
		{status: 213, body: []byte("é"), repeat: 11, lengthMode: fuzzLengthExact},
		{status: 200, body: []byte("\xff\xfe\xc3"), repeat: 6},
		{status: 200, body: []byte("a"), lengthMode: fuzzLengthLonger},
		{status: 200, body: []byte("abcdef"), lengthMode: fuzzLengthShorter},
		{status: 200, body: []byte("abc"), lengthMode: fuzzLengthChunkedTruncated},
		{status: 200, body: []byte("abc"), lengthMode: fuzzLengthBoth},
		{status: 200, body: []byte("abc"), lengthMode: fuzzLengthConflicting},
		// Bodies past the drain cap, plain and as a gzip bomb.
		{status: 300, body: []byte("endless "), repeat: 16384},
		{status: 0, body: []byte("endless "), repeat: 16384, lengthMode: fuzzLengthChunked},
		{status: 300, body: make([]byte, 8), repeat: 16384, encoding: fuzzGzipReal},
		{status: 4, body: make([]byte, 8), repeat: 16384, encoding: fuzzGzipReal, lengthMode: fuzzLengthExact},
		{status: 300, body: []byte("not gzip at all"), encoding: fuzzGzipClaim},
		{status: 300, body: []byte("abc"), encoding: fuzzDeflateClaim},
		{status: 300, header: "X-Injected: 1\r\nContent-Length: 2", body: []byte("abcdef")},
		{status: 300, header: "Bad Header Line", body: []byte("abc")},
		{status: 300, header: "\r\n", body: []byte("abc")},
		{status: 300, header: "Content-Length: 99999999999999999999", body: []byte("abc")},
		{status: 300, header: "Transfer-Encoding: gzip, chunked", body: []byte("abc")},
	} {
		f.Add(s.status, s.header, s.retryAfter, s.lengthMode, s.encoding, s.body, s.repeat, s.retry)
	}

	srv := newFuzzResponder(f)
	var read atomic.Int64
	tr := newTransport()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, read: &read}, nil
	}
	f.Cleanup(tr.CloseIdleConnections)
	// The exporter wraps this client's transport with its own layers; only
	// the byte count is added underneath.
	hc := &http.Client{Transport: tr}

	f.Fuzz(func(t *testing.T, status uint16, header, retryAfter string, lengthMode, encoding uint8, body []byte, repeat uint16, retry bool) {
		code := 200 + int(status)%400
		raw := fuzzResponse(code, header, retryAfter, lengthMode, encoding, body, repeat)
		want := parseLikeTheTransport(t, raw)
		srv.set(raw)
		// Each input starts on a fresh connection: a response that kept
		// the connection alive (a folded Connection header can undo our
		// "close") would otherwise leave one, already closed by the
		// server, for the next input.
		tr.CloseIdleConnections()

		logger, logs := newLogCapture()
		opts := pinned(WithEndpoint(srv.url), WithoutEnvironment(), WithLogger(logger), WithHTTPClient(hc), WithTimeout(10*time.Second))
		if retry {
			opts = append(opts, WithRetry(RetryConfig{Enabled: true, InitialInterval: minRetryInterval, MaxInterval: minRetryInterval, MaxElapsedTime: 3 * minRetryInterval}))
		}
		exp, err := New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer exp.Shutdown(context.Background())

		read.Store(0)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err = exp.Export(t.Context(), counterData(1))
		runtime.ReadMemStats(&after)

		attempts := 1
		var we *WriteError
		switch {
		case err == nil:
			if !want.parsed || want.status/100 != 2 {
				t.Fatalf("Export succeeded, but the response %s", want)
			}
		case !errors.As(err, &we):
			t.Fatalf("Export = %v, want a *WriteError", err)
		default:
			attempts = we.Attempts
			switch {
			case !want.parsed && we.StatusCode != 0:
				t.Fatalf("WriteError.StatusCode = %d, but the response %s", we.StatusCode, want)
			case want.parsed && want.status/100 == 2:
				t.Fatalf("Export = %v, but the response %s", err, want)
			case want.parsed && we.StatusCode == 0 && want.keepAlive && we.Attempts > 1:
				// A retry went out on the connection the first answer
				// kept alive, which the server had closed meanwhile:
				// net/http does not resend a POST that may have been
				// sent, so the retry fails without a response.
			case want.parsed && we.StatusCode != want.status:
				t.Fatalf("WriteError.StatusCode = %d (error %v), but the response %s", we.StatusCode, err, want)
			}
			if len(we.Body) > maxErrorBody {
				t.Errorf("WriteError.Body is %d bytes, want at most %d", len(we.Body), maxErrorBody)
			}
			if !utf8.ValidString(we.Body) {
				t.Errorf("WriteError.Body %q is not valid UTF-8", we.Body)
			}
			if want.parsed && we.Body != want.body {
				t.Errorf("WriteError.Body = %.60q (%d bytes), want %.60q (%d bytes)", we.Body, len(we.Body), want.body, len(want.body))
			}
			if we.retryAfter < 0 || we.retryAfter > maxRetryAfter {
				t.Errorf("Retry-After read as %v, want within [0, %v]", we.retryAfter, maxRetryAfter)
			}
			if attempts < 1 || (!retry && attempts != 1) {
				t.Errorf("WriteError.Attempts = %d with retry %v", attempts, retry)
			}
		}
		if n := len(logs.all()); (err == nil && n != 0) || (err != nil && n != 1) {
			t.Errorf("Export = %v and %d records logged, want one warning per failure and none on success", err, n)
		}

		// Bounded reads: per attempt, 1 KiB of error text and a drain of
		// 4 MiB, plus headers, framing and buffering.
		const slack = 64 << 10
		if n, limit := read.Load(), int64(attempts)*(maxErrorBody+maxDrain+slack); n > limit {
			t.Errorf("read %d bytes from the server in %d attempts, want at most %d", n, attempts, limit)
		}
		// Reading a body whole would allocate its size; reading it
		// through the caps allocates buffers only.
		if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(2<<20+attempts*(256<<10)); alloc > limit {
			t.Errorf("the export allocated %d KiB in %d attempts, want at most %d KiB", alloc>>10, attempts, limit>>10)
		}
	})
}

// FuzzParseRetryAfter: any header value, at any moment, is read as a delay
// in [0, 24h], exactly the number of seconds when it is one.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC).Unix()
	for _, v := range []string{
		"", "0", "1", " 120 ", "86400", "86401", "18446744073709551615", "18446744073709551616",
		"-1", "+5", "1.5", "1e3", "0x10", "Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 01 Jun 2025 12:00:30 GMT",
		"Sunday, 01-Jun-25 12:00:30 GMT", "Sun Jun  1 12:00:30 2025", "Fri, 31 Dec 9999 23:59:59 GMT",
		"Mon, 01 Jan 0001 00:00:00 GMT", "\x00", "٣",
	} {
		f.Add(v, now)
	}
	f.Fuzz(func(t *testing.T, v string, nowUnix int64) {
		at := time.Unix(nowUnix, 0)
		got := parseRetryAfter(v, at)
		if got < 0 || got > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v, want within [0, %v]", v, got, maxRetryAfter)
		}
		if again := parseRetryAfter(v, at); again != got {
			t.Fatalf("parseRetryAfter(%q) = %v, then %v", v, got, again)
		}
		if secs, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			want := maxRetryAfter
			if secs < uint64(maxRetryAfter/time.Second) {
				want = time.Duration(secs) * time.Second
			}
			if got != want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", v, got, want)
			}
		}
	})
}

// How a fuzzed response frames its body.
const (
	fuzzLengthNone             = iota // until the connection closes
	fuzzLengthExact                   // Content-Length: len
	fuzzLengthShorter                 // Content-Length: len/2
	fuzzLengthLonger                  // Content-Length: len+100, then close
	fuzzLengthInvalid                 // Content-Length: abc
	fuzzLengthChunked                 // valid chunked encoding
	fuzzLengthChunkedTruncated        // chunks without the last one
	fuzzLengthBoth                    // chunked and Content-Length
	fuzzLengthConflicting             // two different Content-Lengths
	fuzzLengthModes
)

// How a fuzzed response claims to be encoded.
const (
	fuzzEncodingNone = iota
	fuzzGzipClaim    // says gzip, is not
	fuzzGzipReal     // gzip, really: a bomb when the body repeats
	fuzzDeflateClaim // an encoding the transport does not undo
	fuzzSnappyClaim
	fuzzGzipUpper // "GZIP", not compressed
	fuzzEncodings
)

// fuzzResponse writes one raw HTTP/1.1 response. It always asks to close
// the connection, so each attempt gets a fresh one and the server writes
// exactly these bytes.
func fuzzResponse(code int, header, retryAfter string, lengthMode, encoding uint8, body []byte, repeat uint16) []byte {
	// repeat counts in units of 64 copies, so that a short body (cheap for
	// the fuzzer to mutate and minimize) can still exceed the drain cap.
	payload := body
	if repeat > 0 && len(body) > 0 {
		n := min(int(repeat)*64, fuzzMaxPayload/len(body)+1)
		payload = bytes.Repeat(body, n)
	}
	if len(payload) > fuzzMaxPayload {
		payload = payload[:fuzzMaxPayload]
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nConnection: close\r\n", code, http.StatusText(code))
	if retryAfter != "" {
		fmt.Fprintf(&b, "Retry-After: %s\r\n", retryAfter)
	}
	switch encoding % fuzzEncodings {
	case fuzzGzipClaim:
		b.WriteString("Content-Encoding: gzip\r\n")
	case fuzzGzipReal:
		b.WriteString("Content-Encoding: gzip\r\n")
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		_, _ = zw.Write(payload)
		_ = zw.Close()
		payload = z.Bytes()
	case fuzzDeflateClaim:
		b.WriteString("Content-Encoding: deflate\r\n")
	case fuzzSnappyClaim:
		b.WriteString("Content-Encoding: snappy\r\n")
	case fuzzGzipUpper:
		b.WriteString("Content-Encoding: GZIP\r\n")
	}
	if header != "" {
		b.WriteString(header)
		b.WriteString("\r\n")
	}
	switch lengthMode % fuzzLengthModes {
	case fuzzLengthNone:
		b.WriteString("\r\n")
		b.Write(payload)
	case fuzzLengthExact:
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(payload))
		b.Write(payload)
	case fuzzLengthShorter:
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(payload)/2)
		b.Write(payload)
	case fuzzLengthLonger:
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(payload)+100)
		b.Write(payload)
	case fuzzLengthInvalid:
		b.WriteString("Content-Length: abc\r\n\r\n")
		b.Write(payload)
	case fuzzLengthChunked, fuzzLengthChunkedTruncated, fuzzLengthBoth:
		if lengthMode%fuzzLengthModes == fuzzLengthBoth {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(payload))
		}
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for rest := payload; len(rest) > 0; {
			n := min(len(rest), 4096)
			fmt.Fprintf(&b, "%x\r\n", n)
			b.Write(rest[:n])
			b.WriteString("\r\n")
			rest = rest[n:]
		}
		if lengthMode%fuzzLengthModes != fuzzLengthChunkedTruncated {
			b.WriteString("0\r\n\r\n")
		}
	case fuzzLengthConflicting:
		fmt.Fprintf(&b, "Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(payload), len(payload)+1)
		b.Write(payload)
	}
	return b.Bytes()
}

// fuzzWant is what the exporter should make of a response, found by
// parsing it with the same parser the transport uses.
type fuzzWant struct {
	parsed bool
	status int
	// keepAlive: the client may reuse the connection (the server closes
	// it all the same).
	keepAlive bool
	// body is what WriteError.Body should hold.
	body string
	err  error
}

func (w fuzzWant) String() string {
	if !w.parsed {
		return fmt.Sprintf("does not parse (%v)", w.err)
	}
	return fmt.Sprintf("parses with status %d", w.status)
}

func parseLikeTheTransport(t *testing.T, raw []byte) fuzzWant {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/api/v1/write", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), req)
	if err != nil {
		return fuzzWant{err: err}
	}
	defer resp.Body.Close()
	w := fuzzWant{parsed: true, status: resp.StatusCode, keepAlive: !resp.Close}
	// The transport asks for no encoding (DisableCompression) and undoes
	// none: a gzip body is read as it came, as here.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	w.body = cleanBody(msg)
	return w
}

// fuzzResponder is a TCP server on 127.0.0.1 that answers every request
// with the bytes last set, then closes the connection.
type fuzzResponder struct {
	url  string
	ln   net.Listener
	resp atomic.Pointer[[]byte]
	wg   sync.WaitGroup
}

func newFuzzResponder(f *testing.F) *fuzzResponder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	s := &fuzzResponder{url: "http://" + ln.Addr().String() + "/api/v1/write", ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.serve(c)
		}
	}()
	f.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fuzzResponder) set(raw []byte) { s.resp.Store(&raw) }

// serve answers one connection. The deadline only keeps a broken client
// from holding the server forever.
func (s *fuzzResponder) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	if raw := s.resp.Load(); raw != nil {
		_, _ = c.Write(*raw)
	}
}

// countingConn counts the bytes read from the server.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}
