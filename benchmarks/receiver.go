package benchmarks

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
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
	// RawBytes is the sum of the uncompressed sizes of snappy bodies (from
	// the snappy block header; the body is not decoded).
	RawBytes int64
}

// Sub returns s - o, the counts between two readings.
func (s Stats) Sub(o Stats) Stats {
	return Stats{Requests: s.Requests - o.Requests, WireBytes: s.WireBytes - o.WireBytes, RawBytes: s.RawBytes - o.RawBytes}
}

// counter is the receiver's handler: it reads every request body to the
// end, counts its bytes, discards it and answers 204 No Content, which
// both remote-write and OTLP/HTTP senders take as success.
type counter struct {
	requests, wire, raw atomic.Int64
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == statsPath {
		fmt.Fprintf(w, "%d %d %d\n", c.requests.Load(), c.wire.Load(), c.raw.Load())
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

// ServeReceiver runs a receiver in this process until in reaches EOF: it
// listens on a free port of 127.0.0.1 and writes its URL as one line to
// out. The parent closes in to stop it, and a parent that dies stops it too.
func ServeReceiver(in io.Reader, out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("receiver: listening: %w", err)
	}
	srv := &http.Server{Handler: &counter{}, ReadHeaderTimeout: time.Minute}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if _, err := fmt.Fprintf(out, "http://%s\n", ln.Addr()); err != nil {
		srv.Close()
		return fmt.Errorf("receiver: announcing the address: %w", err)
	}
	_, _ = io.Copy(io.Discard, in)
	srv.Close()
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
	if _, err := fmt.Fscan(resp.Body, &s.Requests, &s.WireBytes, &s.RawBytes); err != nil {
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
type CaptureServer struct {
	*httptest.Server

	mu     sync.Mutex
	bodies [][]byte
}

// NewCaptureServer starts a CaptureServer. Close it when done.
func NewCaptureServer() *CaptureServer {
	c := &CaptureServer{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.bodies = append(c.bodies, body)
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	return c
}

// Bodies returns the bodies received so far, in order, and forgets them.
func (c *CaptureServer) Bodies() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bodies
	c.bodies = nil
	return b
}
