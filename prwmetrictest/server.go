package prwmetrictest

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
)

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
