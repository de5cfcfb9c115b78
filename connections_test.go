package prwmetric

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests cover the exporter's connections: HTTP/1.1 unless WithHTTP2,
// a dead connection found by the HTTP/2 health check or cut by the
// timeout, enough idle connections kept for the concurrent requests, and
// connections made anew every connMaxAge.

// withH2Health shortens WithHTTP2's health check for tests.
func withH2Health(readIdle, pingTimeout time.Duration) Option {
	return optionFunc(func(c config) config { c.h2ReadIdle, c.h2PingTimeout = readIdle, pingTimeout; return c })
}

// silencer is a TCP proxy on 127.0.0.1 whose connections can be made to go
// silent: they stay open, but nothing passes any more, as when a middlebox
// drops a connection without telling either end.
type silencer struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  []net.Conn
	muted  []*atomic.Bool
	opened int
}

func newSilencer(t *testing.T, target string) *silencer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &silencer{ln: ln, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *silencer) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		mute := &atomic.Bool{}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.muted = append(p.muted, mute)
		p.opened++
		p.mu.Unlock()
		p.wg.Go(func() { pipe(up, c, mute) })
		p.wg.Go(func() { pipe(c, up, mute) })
	}
}

// pipe copies src to dst until either ends, dropping what arrives while
// muted.
func pipe(dst, src net.Conn, mute *atomic.Bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !mute.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// silence makes every connection open now go silent; later ones pass.
func (p *silencer) silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.muted {
		m.Store(true)
	}
}

func (p *silencer) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opened
}

func (p *silencer) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// h2Receiver starts an HTTPS server on 127.0.0.1 that offers HTTP/2 and
// HTTP/1.1, records the protocol of each request and answers 204.
func h2Receiver(t *testing.T) (srv *httptest.Server, rec *recorder, protos func() []int) {
	t.Helper()
	rec = &recorder{}
	var mu sync.Mutex
	var seen []int
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		mu.Lock()
		seen = append(seen, r.ProtoMajor)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, rec, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), seen...)
	}
}

func trusting(srv *httptest.Server) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &tls.Config{RootCAs: pool}
}

func TestHTTPVersion(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
		want int
	}{
		{name: "HTTP/1.1 by default", want: 1},
		{name: "WithHTTP2", opts: []Option{WithHTTP2()}, want: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, protos := h2Receiver(t)
			exp := newExporter(t, append(pinned(WithEndpoint(srv.URL+"/api/v1/write"), WithoutEnvironment(),
				WithTLSClientConfig(trusting(srv))), tc.opts...)...)
			if err := exp.Export(context.Background(), counterData(1)); err != nil {
				t.Fatalf("Export: %v", err)
			}
			if got := protos(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("HTTP major versions %v, want [%d]", got, tc.want)
			}
		})
	}
}

// TestDeadConnection makes the connection an export used go silent. With
// HTTP/2 the health check finds it within its bound (here 2×100 ms), the
// request fails and its retry goes out on a new connection, long before the
// export's timeout. With HTTP/1.1 the export fails at its timeout, and the
// next export opens a new connection.
func TestDeadConnection(t *testing.T) {
	cases := []struct {
		name    string
		opts    []Option
		timeout time.Duration
		// wantErr: the export on the dead connection fails by its
		// timeout; otherwise it succeeds on a new connection.
		wantErr bool
		// wantLast is the value of the last export that arrived.
		wantLast float64
	}{
		{name: "HTTP/2 health check", timeout: 30 * time.Second,
			opts: []Option{WithHTTP2(), withH2Health(100*time.Millisecond, 100*time.Millisecond),
				WithRetry(RetryConfig{Enabled: true, InitialInterval: minRetryInterval})}, wantLast: 2},
		{name: "HTTP/1.1 timeout", timeout: time.Second, wantErr: true, wantLast: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec, _ := h2Receiver(t)
			proxy := newSilencer(t, srv.Listener.Addr().String())
			exp := newExporter(t, append(pinned(WithEndpoint("https://"+proxy.ln.Addr().String()+"/api/v1/write"), WithoutEnvironment(),
				WithLogger(discardLogger()), WithTLSClientConfig(trusting(srv)), WithTimeout(tc.timeout)), tc.opts...)...)
			if err := exp.Export(context.Background(), counterData(1)); err != nil {
				t.Fatalf("Export: %v", err)
			}
			proxy.silence()
			start := time.Now()
			err := exp.Export(context.Background(), counterData(2))
			elapsed := time.Since(start)
			t.Logf("the export on the dead connection took %v", elapsed)
			if tc.wantErr {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Export on the dead connection = %v, want the timeout", err)
				}
				if err := exp.Export(context.Background(), counterData(3)); err != nil {
					t.Fatalf("next Export: %v", err)
				}
			} else if err != nil {
				t.Fatalf("Export on the dead connection = %v after %v, want success on a new connection", err, elapsed)
			}
			if elapsed > tc.timeout+5*time.Second {
				t.Errorf("the export on the dead connection took %v, timeout %v", elapsed, tc.timeout)
			}
			if n := proxy.connections(); n != 2 {
				t.Errorf("%d connections, want 2: the dead one replaced", n)
			}
			if got := rec.all(); len(got) != 2 || got[1].Series[0].Samples[0].Value != tc.wantLast {
				t.Errorf("the receiver got %d requests, want 2, the last one of value %v", len(got), tc.wantLast)
			}
		})
	}
}

// TestConnectionsKeptForConcurrency: an export whose 8 requests are all in
// flight at once opens 8 connections, and the next export reuses them all
// (the transport keeps as many idle connections as requests may be in
// flight).
func TestConnectionsKeptForConcurrency(t *testing.T) {
	const requests = 8
	var (
		mu   sync.Mutex
		hold *gate
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		g := hold
		mu.Unlock()
		g.wait(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	opened := startCountingConns(t, srv)
	exp := newExporter(t, pinned(WithEndpoint(srv.URL+"/api/v1/write"), WithoutEnvironment(),
		WithMaxSeriesPerRequest(10), WithMaxConcurrentRequests(requests))...)
	at := time.UnixMilli(1_700_000_000_000)
	for i := range 2 {
		mu.Lock()
		hold = newGate(requests)
		mu.Unlock()
		if err := exp.Export(context.Background(), manyGauges(10*requests, at.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatalf("Export %d: %v", i, err)
		}
		if n := opened.Load(); n != requests {
			t.Errorf("after export %d: %d connections opened, want %d", i, n, requests)
		}
	}
}

// TestConnectionSpareForTokens: while every request an export may have in
// flight holds a connection, another request to the receiver's host on the
// exporter's transport (as OAuth2's token requests, or an authenticator's,
// make) gets a connection of its own at once, and no more are opened:
// requests in flight plus one.
func TestConnectionSpareForTokens(t *testing.T) {
	const requests = 4
	arrived, release := make(chan struct{}, requests), make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/token" {
			_, _ = io.WriteString(w, `{"access_token":"t"}`)
			return
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	opened := startCountingConns(t, srv)
	exp := newExporter(t, pinned(WithEndpoint(srv.URL+"/api/v1/write"), WithoutEnvironment(),
		WithMaxSeriesPerRequest(10), WithMaxConcurrentRequests(requests))...)
	done := make(chan error, 1)
	go func() {
		done <- exp.Export(context.Background(), manyGauges(10*(requests+1), time.UnixMilli(1_700_000_000_000)))
	}()
	released := false
	defer func() {
		if !released {
			close(release) // the export must end, whatever failed
		}
	}()
	for range requests {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the requests did not all arrive")
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/token", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: exp.client.owned}).Do(req)
	if err != nil {
		t.Fatalf("a token request while %d requests were in flight: %v", requests, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := opened.Load(); n != requests+1 {
		t.Errorf("%d connections opened, want %d: one per request in flight and the spare", n, requests+1)
	}

	released = true
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Export: %v", err)
	}
	if n := opened.Load(); n != requests+1 {
		t.Errorf("after the export: %d connections opened, want %d (the last request reuses one)", n, requests+1)
	}
}

// TestConnectionsRebalanced: connections are reused between exports, and
// closed after the first export that starts connMaxAge after the last
// closing, so the next export connects anew.
func TestConnectionsRebalanced(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		w.WriteHeader(http.StatusNoContent)
	}))
	conns := watchConns(srv)
	var opened atomic.Int64
	watch := srv.Config.ConnState
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
		watch(c, s)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	exp := newExporter(t, pinned(WithEndpoint(srv.URL+"/api/v1/write"), WithoutEnvironment())...)
	now := time.Now()
	exp.negotiation.now = func() time.Time { return now }

	steps := []struct {
		after      time.Duration
		wantOpened int64
		wantClosed bool
	}{
		{0, 1, false},
		{time.Minute, 1, false},
		{connMaxAge, 1, true}, // 6 min after the first: closed after it
		{time.Minute, 2, false},
	}
	for i, st := range steps {
		now = now.Add(st.after)
		if err := exp.Export(context.Background(), counterData(int64(i))); err != nil {
			t.Fatalf("Export %d: %v", i, err)
		}
		if n := opened.Load(); n != st.wantOpened {
			t.Errorf("after export %d: %d connections opened, want %d", i, n, st.wantOpened)
		}
		if st.wantClosed {
			conns.awaitClosed(t, "after the export past connMaxAge")
		}
	}
}

// startCountingConns starts srv and returns the count of the connections
// clients open to it.
func startCountingConns(t *testing.T, srv *httptest.Server) *atomic.Int64 {
	t.Helper()
	var opened atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &opened
}
