package prwmetric

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/prwmetric/prwmetric/internal/testcert"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// This file holds the fault matrix of issue 6: every way a backend can fail
// (HTTP statuses from prwmetrictest, broken TCP peers written by hand), each
// with retries off and on and with every kind of credential. For each fault
// the exporter must send exactly what the policy allows, warn once, return an
// error within its timeout, leave no goroutine behind, leak no secret and
// work again as soon as the backend does.

const (
	// faultTimeout is WithTimeout for faults that only the timeout ends.
	faultTimeout = 300 * time.Millisecond
	// quickTimeout is WithTimeout for the other faults: long enough never
	// to fire on a loaded machine, so the error is the fault's own.
	quickTimeout = 2 * time.Second
	// faultSlack is how much longer than its timeout a failed export may
	// take. Generous on purpose: it tells "cut by the timeout" from
	// "hangs", not speed.
	faultSlack = 3 * time.Second
)

// fastRetry retries with the shortest waits New accepts, so the matrix
// runs in milliseconds.
var fastRetry = RetryConfig{
	Enabled:         true,
	InitialInterval: minRetryInterval,
	MaxInterval:     2 * minRetryInterval,
	MaxElapsedTime:  200 * time.Millisecond,
}

// --- attempts as the client sent them ----------------------------------------

// attemptLog counts the requests the exporter's own transport sent to one
// host and keeps their Retry-Attempt headers. It is installed as the proxy
// function, which the transport calls once per request before it dials, so
// it also sees attempts that never reach a server (connection refused).
type attemptLog struct {
	host string

	mu           sync.Mutex
	retryAttempt []string
}

func (a *attemptLog) proxy(req *http.Request) (*url.URL, error) {
	if req.URL.Host == a.host {
		a.mu.Lock()
		a.retryAttempt = append(a.retryAttempt, req.Header.Get(headerRetryAttempt))
		a.mu.Unlock()
	}
	return nil, nil // direct
}

func (a *attemptLog) headers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.retryAttempt...)
}

// --- a misbehaving TCP server that can heal ----------------------------------

// rawServer listens on 127.0.0.1 and hands every connection to misbehave,
// hand-written bytes on a raw socket, until heal; from then on it is a
// healthy receiver (plain or TLS) on the same address, so the same exporter
// can show that it recovers.
type rawServer struct {
	ln        net.Listener
	misbehave func(c net.Conn, done <-chan struct{})
	healthy   atomic.Bool
	conns     atomic.Int64 // connections accepted while misbehaving
	rec       *recorder    // requests answered while healthy

	srv     *http.Server
	handoff *connListener
	done    chan struct{}
	wg      sync.WaitGroup

	mu   sync.Mutex
	open map[net.Conn]struct{}
}

// newRawServer serves on ln; healthyTLS, when not nil, makes the healthy
// receiver speak TLS. A nil misbehave starts it healthy. It is closed at
// cleanup.
func newRawServer(t *testing.T, ln net.Listener, healthyTLS *tls.Config, misbehave func(net.Conn, <-chan struct{})) *rawServer {
	t.Helper()
	s := &rawServer{
		ln:        ln,
		misbehave: misbehave,
		rec:       &recorder{},
		done:      make(chan struct{}),
		open:      map[net.Conn]struct{}{},
	}
	s.healthy.Store(misbehave == nil)
	s.handoff = &connListener{conns: make(chan net.Conn), done: make(chan struct{}), addr: ln.Addr()}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.rec.record(r)
			w.WriteHeader(http.StatusNoContent)
		}),
		ErrorLog: log.New(io.Discard, "", 0),
		// HTTP/1.1 only: fewer moving parts to shut down.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		TLSConfig:    healthyTLS,
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if healthyTLS != nil {
			_ = s.srv.ServeTLS(s.handoff, "", "")
		} else {
			_ = s.srv.Serve(s.handoff)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.accept()
	}()
	t.Cleanup(s.close)
	return s
}

// listenRaw starts a rawServer on a free port of 127.0.0.1.
func listenRaw(t *testing.T, healthyTLS *tls.Config, misbehave func(net.Conn, <-chan struct{})) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newRawServer(t, ln, healthyTLS, misbehave)
}

func (s *rawServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if s.healthy.Load() {
			select {
			case s.handoff.conns <- c:
			case <-s.done:
				_ = c.Close()
			}
			continue
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.open[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.misbehave(c, s.done)
			s.mu.Lock()
			delete(s.open, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

func (s *rawServer) heal() { s.healthy.Store(true) }

// close stops everything the server started and waits for it.
func (s *rawServer) close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	_ = s.ln.Close()
	_ = s.srv.Close()
	s.mu.Lock()
	for c := range s.open {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *rawServer) endpoint(scheme string) string {
	return scheme + "://" + s.ln.Addr().String() + "/api/v1/write"
}

// connListener is a net.Listener fed by rawServer once it is healthy.
type connListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// readRequest reads one request's head from c; the body is left to read.
func readRequest(c net.Conn) (*http.Request, error) {
	return http.ReadRequest(bufio.NewReader(c))
}

// --- the ways a peer misbehaves -------------------------------------------------

// resetMidBody reads the head and half the body, then resets the connection
// (SO_LINGER 0 makes Close send RST instead of FIN).
func resetMidBody(c net.Conn, _ <-chan struct{}) {
	req, err := readRequest(c)
	if err != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, req.Body, max(req.ContentLength/2, 1))
	_ = c.(*net.TCPConn).SetLinger(0)
}

// neverAnswers reads the request and then waits, silent, until the client
// or the test hangs up.
func neverAnswers(c net.Conn, _ <-chan struct{}) {
	req, err := readRequest(c)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	_, _ = io.Copy(io.Discard, c) // returns once either side closes
}

// slowBody answers 500 and then trickles its body, a few bytes a tick, far
// slower than the exporter's timeout allows.
func slowBody(c net.Conn, done <-chan struct{}) {
	req, err := readRequest(c)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, req.Body)
	if _, err := io.WriteString(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 4000\r\n\r\n"); err != nil {
		return
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range 800 { // 4000 bytes in 8s at most
		select {
		case <-tick.C:
		case <-done:
			return
		}
		if _, err := io.WriteString(c, "slow "); err != nil {
			return
		}
	}
}

// endlessBody answers 500 with a body that has no length and no end (up to
// 1 GiB, so a client that reads it all fails the test rather than hangs it).
func endlessBody(written *atomic.Int64) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, _ <-chan struct{}) {
		req, err := readRequest(c)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if _, err := io.WriteString(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n"); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("endless "), 4096) // 32 KiB
		for range 1 << 15 {
			n, err := c.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}
}

// wrongCertificate offers a certificate from a CA the exporter does not
// trust; the handshake fails on the client's side.
func wrongCertificate(cert tls.Certificate) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, _ <-chan struct{}) {
		_ = tls.Server(c, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}).Handshake()
	}
}

// --- targets ---------------------------------------------------------------------

// faultTarget is a backend that fails until heal is called.
type faultTarget struct {
	endpoint string
	// opts are exporter options the target needs (TLS trust).
	opts []Option
	// reached counts what arrived at the failing backend: HTTP requests,
	// or TCP connections for raw servers.
	reached func() int
	heal    func(t *testing.T)
	// delivered returns the value of requests_total{method="GET"} and the
	// Authorization header of the last request the healed backend got.
	delivered func(t *testing.T) (value float64, authorization string)
	// check, when set, makes further checks after the failed export; it
	// gets the secrets that must not have travelled.
	check func(t *testing.T, secrets []string)
}

// statusTarget is prwmetrictest answering resp to every request until healed.
func statusTarget(resp prwmetrictest.Response) func(t *testing.T) *faultTarget {
	return func(t *testing.T) *faultTarget {
		srv := prwmetrictest.NewServer()
		t.Cleanup(srv.Close)
		srv.RespondWith(prwmetrictest.Always, resp)
		return receiverTarget(srv)
	}
}

func receiverTarget(srv *prwmetrictest.Server) *faultTarget {
	return &faultTarget{
		endpoint: srv.URL(),
		reached:  srv.RequestCount,
		heal:     func(*testing.T) { srv.ClearResponses() },
		delivered: func(t *testing.T) (float64, string) {
			t.Helper()
			got, err := srv.Latest("requests_total", map[string]string{"method": "GET"})
			if err != nil {
				t.Fatalf("healed receiver: %v", err)
			}
			if v := srv.Violations(); len(v) > 0 {
				t.Errorf("healed receiver saw protocol violations: %q", v)
			}
			reqs := srv.Requests()
			return got.Value, reqs[len(reqs)-1].Header.Get("Authorization")
		},
	}
}

// echoTarget answers 403 with the request line and every header it got,
// as some gateways do, until healed; then it passes requests on to
// prwmetrictest.
func echoTarget(t *testing.T) *faultTarget {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	var healed atomic.Bool
	var reached atomic.Int32
	front := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healed.Load() {
			proxy.ServeHTTP(w, r)
			return
		}
		reached.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "denied %s %s %v", r.Method, r.URL.RequestURI(), r.Header)
	}))
	target := receiverTarget(srv)
	target.endpoint = front.URL + u.Path
	target.reached = func() int { return int(reached.Load()) }
	target.heal = func(*testing.T) { healed.Store(true) }
	return target
}

// redirectTarget is prwmetrictest redirecting with status to another host
// (another port of 127.0.0.1 is another origin), which answers 401 as a
// backend would to a request without credentials.
func redirectTarget(status int) func(t *testing.T) *faultTarget {
	return func(t *testing.T) *faultTarget {
		other := &recorder{}
		otherSrv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			other.record(r)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "who are you?")
		}))
		srv := prwmetrictest.NewServer()
		t.Cleanup(srv.Close)
		srv.RespondWith(prwmetrictest.Always, prwmetrictest.Response{
			Status: status,
			Header: http.Header{"Location": {otherSrv.URL + "/api/v1/write"}},
		})
		target := receiverTarget(srv)
		target.check = func(t *testing.T, secrets []string) {
			t.Helper()
			got := other.all()
			// 307 resends the POST (body included); 302 would turn it
			// into a GET, so the exporter does not follow it.
			want := 0
			if status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect {
				want = 1
			}
			if len(got) != want {
				t.Fatalf("the other host received %d requests, want %d", len(got), want)
			}
			for _, r := range got {
				if r.DecodeErr != nil {
					t.Errorf("the body was not resent intact to the other host: %v", r.DecodeErr)
				}
				for name, values := range r.Header {
					if name == "Authorization" {
						t.Errorf("the other host received an Authorization header")
					}
					for _, v := range values {
						for _, s := range secrets {
							if strings.Contains(v, s) {
								t.Errorf("the other host received secret %q in header %s", s, name)
							}
						}
					}
				}
			}
		}
		return target
	}
}

// rawTarget is a misbehaving TCP server healed into a plain receiver.
func rawTarget(misbehave func(net.Conn, <-chan struct{})) func(t *testing.T) *faultTarget {
	return func(t *testing.T) *faultTarget {
		return healingRawTarget(listenRaw(t, nil, misbehave), "http")
	}
}

func healingRawTarget(s *rawServer, scheme string) *faultTarget {
	return &faultTarget{
		endpoint:  s.endpoint(scheme),
		reached:   func() int { return int(s.conns.Load()) },
		heal:      func(*testing.T) { s.heal() },
		delivered: func(t *testing.T) (float64, string) { t.Helper(); return lastValue(t, s.rec) },
	}
}

// lastValue reads requests_total{method="GET"} from the last request rec got.
func lastValue(t *testing.T, rec *recorder) (float64, string) {
	t.Helper()
	all := rec.all()
	if len(all) == 0 {
		t.Fatal("the healed receiver got no request")
	}
	last := all[len(all)-1]
	if last.DecodeErr != nil {
		t.Fatalf("the healed receiver could not decode the request: %v", last.DecodeErr)
	}
	got := named(last.Series, "requests_total")
	if len(got) != 1 || len(got[0].Samples) != 1 {
		t.Fatalf("the healed receiver got %v, want one requests_total sample", last.Series)
	}
	return got[0].Samples[0].Value, last.Header.Get("Authorization")
}

// endlessTarget is rawTarget(endlessBody) that also checks the exporter hung
// up after a bounded read.
func endlessTarget(t *testing.T) *faultTarget {
	var written atomic.Int64
	s := listenRaw(t, nil, endlessBody(&written))
	target := healingRawTarget(s, "http")
	target.check = func(t *testing.T, _ []string) {
		t.Helper()
		// The exporter reads 1 KiB plus a drain of at most 4 MiB per
		// attempt; the rest sits in socket buffers at most.
		if n, attempts := written.Load(), s.conns.Load(); n > attempts*(64<<20) {
			t.Errorf("server wrote %d MiB in %d attempts before the exporter hung up, want a bounded read", n>>20, attempts)
		}
	}
	return target
}

// refusedTarget is a port where nothing listens; heal starts a receiver on
// that very port.
func refusedTarget(t *testing.T) *faultTarget {
	endpoint := closedEndpoint(t)
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var healed *rawServer
	return &faultTarget{
		endpoint: endpoint,
		reached:  func() int { return 0 }, // nothing listens: nothing can arrive
		heal: func(t *testing.T) {
			t.Helper()
			ln, err := net.Listen("tcp", u.Host)
			if err != nil {
				t.Fatalf("listening again on the refused port: %v", err)
			}
			healed = newRawServer(t, ln, nil, nil)
		},
		delivered: func(t *testing.T) (float64, string) { t.Helper(); return lastValue(t, healed.rec) },
	}
}

// wrongCATarget serves TLS with a certificate the exporter does not trust,
// then, healed, with one it does (from the CA it was given).
func wrongCATarget(t *testing.T) *faultTarget {
	trusted, untrusted := testcert.New(t), testcert.New(t)
	s := listenRaw(t, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{trusted.Server}}, wrongCertificate(untrusted.Server))
	target := healingRawTarget(s, "https")
	target.opts = []Option{WithTLS(TLSConfig{CAFile: trusted.CAFile})}
	return target
}

// --- the matrix ----------------------------------------------------------------

type faultCase struct {
	// exclusive: the fault needs a port nothing else takes meanwhile (a
	// refused connection), so it runs alone.
	exclusive bool
	// statusElsewhere: wantStatus comes from another host, after a
	// redirect.
	statusElsewhere bool
	name            string
	start           func(t *testing.T) *faultTarget
	// give is what the failing export sends; nil: counterData(1).
	give *metricdata.ResourceMetrics
	// opts are options the case needs.
	opts []Option
	// timeout is WithTimeout: quickTimeout unless set, faultTimeout for
	// faults that hang.
	timeout time.Duration
	// hangs: only the export's timeout ends it.
	hangs bool
	// wantStatus is the *WriteError's status; 0 when no response came.
	wantStatus int
	// wantReached is what one attempt makes arrive at the failing backend
	// (see faultTarget.reached).
	wantReached int
	// retried: WithRetry repeats it (5xx, 429, network errors other than
	// certificate failures), unless the timeout or Retry-After leaves no time.
	retried bool
}

func faultCases() []faultCase {
	status := func(code int, body, retryAfter string) func(t *testing.T) *faultTarget {
		return statusTarget(prwmetrictest.Response{Status: code, Body: body, RetryAfter: retryAfter})
	}
	return []faultCase{
		{name: "400", start: status(400, "out of order sample", ""), wantStatus: 400, wantReached: 1},
		{name: "401", start: status(401, "authentication required", ""), wantStatus: 401, wantReached: 1},
		{name: "404", start: status(404, "404 page not found", ""), wantStatus: 404, wantReached: 1},
		{name: "413", start: status(413, "request entity too large", ""), wantStatus: 413, wantReached: 1},
		{name: "429 without Retry-After", start: status(429, "slow down", ""), wantStatus: 429, wantReached: 1, retried: true},
		// Retry-After 0: come back at once, so backoff decides the wait.
		{name: "429 with Retry-After 0", start: status(429, "slow down", "0"), wantStatus: 429, wantReached: 1, retried: true},
		// A Retry-After longer than the retry budget is honoured by not
		// retrying at all: a retry before it would be refused again.
		{name: "429 with Retry-After beyond the retry budget", start: status(429, "slow down", "1"), wantStatus: 429, wantReached: 1},
		{name: "500", start: status(500, "storage full", ""), wantStatus: 500, wantReached: 1, retried: true},
		{name: "503", start: status(503, "unavailable", ""), wantStatus: 503, wantReached: 1, retried: true},
		{name: "connection refused", start: refusedTarget, wantReached: 0, retried: true, exclusive: true},
		{name: "connection reset mid-body", start: rawTarget(resetMidBody), wantReached: 1, retried: true},
		// A request of several MiB in one piece: the reset arrives
		// while the exporter is still writing it.
		// Converting it takes seconds under the race detector, hence
		// the long timeout.
		{name: "connection reset mid-body of a large request", start: rawTarget(resetMidBody), wantReached: 1, retried: true,
			give: manyGauges(50_000, testTime), opts: []Option{WithMaxSeriesPerRequest(50_000), WithMaxRequestBytes(64 << 20)}, timeout: 20 * time.Second},
		{name: "accepts and never answers", start: rawTarget(neverAnswers), hangs: true, wantReached: 1},
		// The status arrived, so the error carries it; the body read is
		// what the timeout cuts.
		{name: "slow body", start: rawTarget(slowBody), hangs: true, wantStatus: 500, wantReached: 1},
		{name: "307 to another host", start: redirectTarget(http.StatusTemporaryRedirect), wantStatus: 401, wantReached: 1, statusElsewhere: true},
		{name: "302 to another host", start: redirectTarget(http.StatusFound), wantStatus: 302, wantReached: 1},
		{name: "endless body", start: endlessTarget, wantStatus: 500, wantReached: 1, retried: true},
		{name: "TLS with wrong CA", start: wrongCATarget, wantReached: 1, retried: false}, // fails the same way again
		// A receiver or proxy that quotes the refused request, headers
		// and query included.
		{name: "403 echoing the request", start: echoTarget, wantStatus: 403, wantReached: 1},
	}
}

// authCase is one way of passing a credential, with every form in which it
// must never show up.
type authCase struct {
	name string
	// opts configures the credential; files and token endpoints it needs
	// live as long as t.
	opts func(t *testing.T) []Option
	// query is added to the endpoint: a key in the query string.
	query string
	// header is the Authorization value the healthy backend must receive,
	// proof that the credential was really configured; "" when it varies
	// (OAuth2 tokens) or there is none.
	header  string
	secrets []string
	// refreshOn401: a 401 makes the credential send the request once
	// more, within the same attempt (OAuth2).
	refreshOn401 bool
}

func authCases() []authCase {
	const (
		user     = "alice"
		password = "pw-S3CRET-basic"
		token    = "tok-S3CRET-bearer"
		custom   = "hdr-S3CRET-custom"
		apiKey   = "qk-S3CRET-query"
	)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	static := func(opts ...Option) func(*testing.T) []Option {
		return func(*testing.T) []Option { return opts }
	}
	return []authCase{
		{
			name:    "basic auth",
			opts:    static(WithBasicAuth(user, password)),
			header:  "Basic " + b64(user+":"+password),
			secrets: []string{password, b64(user + ":" + password), b64(password)},
		},
		{
			name: "basic auth password file",
			opts: func(t *testing.T) []Option {
				return []Option{WithBasicAuthPasswordFile(user, writeFile(t, t.TempDir(), "password", password+"\n"))}
			},
			header:  "Basic " + b64(user+":"+password),
			secrets: []string{password, b64(user + ":" + password), b64(password)},
		},
		{
			name:    "bearer token",
			opts:    static(WithBearerToken(token)),
			header:  "Bearer " + token,
			secrets: []string{token, b64(token)},
		},
		{
			name: "bearer token file",
			opts: func(t *testing.T) []Option {
				return []Option{WithBearerTokenFile(writeFile(t, t.TempDir(), "token", token+"\n"))}
			},
			header:  "Bearer " + token,
			secrets: []string{token, b64(token)},
		},
		{
			name:    "custom Authorization header",
			opts:    static(WithHeaders(map[string]string{"Authorization": "Custom " + custom})),
			header:  "Custom " + custom,
			secrets: []string{custom, b64(custom)},
		},
		{
			name: "OAuth2 client credentials",
			opts: func(t *testing.T) []Option {
				ts := newTokenServer(t, 3600)
				return []Option{WithOAuth2(oauthConfig(ts))}
			},
			refreshOn401: true,
			// The tokens the fake issues ("tok-1", …) are short and
			// predictable; the client secret is what must never travel.
			secrets: []string{oauthClientSecret, url.QueryEscape(oauthClientSecret), b64(oauthClientID + ":" + oauthClientSecret),
				b64(url.QueryEscape(oauthClientID) + ":" + url.QueryEscape(oauthClientSecret))},
		},
		{
			name:    "key in the endpoint's query",
			opts:    static(),
			query:   "api_key=" + apiKey,
			secrets: []string{apiKey, b64(apiKey)},
		},
	}
}

// TestFaults runs every fault with retries off and on: exactly the attempts
// the policy allows, one warning, an error within the timeout, no goroutine
// left behind, and the same exporter works once the backend is healthy.
func TestFaults(t *testing.T) {
	var cases []faultRun
	for _, retry := range []bool{false, true} {
		for _, fc := range faultCases() {
			cases = append(cases, faultRun{exclusive: fc.exclusive, run: func(t *testing.T) {
				t.Run(retryName(retry)+"/"+fc.name, func(t *testing.T) { runFault(t, fc, retry, authCase{}) })
			}})
		}
	}
	runConcurrently(t, cases)
}

// runConcurrently runs cases (each calling t.Run) many at once, as most of
// the fault matrix waits on timeouts: t.Run from several goroutines, since
// t.Parallel would allow only GOMAXPROCS at a time. Once all are done, no
// goroutine of theirs may be left.
func runConcurrently(t *testing.T, cases []faultRun) {
	ignore := goleak.IgnoreCurrent()
	var wg sync.WaitGroup
	slots := make(chan struct{}, 16)
	for _, c := range cases {
		if c.exclusive {
			continue
		}
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			c.run(t)
		})
	}
	wg.Wait()
	// A refused connection needs a released port that no other server
	// of the matrix takes meanwhile.
	for _, c := range cases {
		if c.exclusive {
			c.run(t)
		}
	}
	goleak.VerifyNone(t, ignore)
}

// faultRun is one case of runConcurrently.
type faultRun struct {
	run       func(t *testing.T)
	exclusive bool
}

// TestFaultsNeverLeakSecrets runs every fault with each kind of credential:
// neither the error nor anything logged holds the secret, in clear or in
// base64, and no credential follows a redirect to another host.
func TestFaultsNeverLeakSecrets(t *testing.T) {
	// With retries on only: every attempt then leaves its error, and the
	// attempts, errors and logs of retries off are a subset of those
	// (TestFaults runs both, without credentials).
	// The large request's secrets travel as the small one's do.
	var cases []faultRun
	for _, auth := range authCases() {
		for _, fc := range faultCases() {
			if fc.give != nil {
				continue
			}
			cases = append(cases, faultRun{exclusive: fc.exclusive, run: func(t *testing.T) {
				t.Run(auth.name+"/"+fc.name, func(t *testing.T) { runFault(t, fc, true, auth) })
			}})
		}
	}
	runConcurrently(t, cases)
}

func retryName(retry bool) string {
	if retry {
		return "retry on"
	}
	return "retry off"
}

// runFault exports once against the failing target, checks everything the
// failure must and must not do, heals the target and exports again.
func runFault(t *testing.T, fc faultCase, retry bool, auth authCase) {

	target := fc.start(t)
	u, err := url.Parse(target.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	attempts := &attemptLog{host: u.Host}
	logger, logs, logText := newFaultLogger()
	timeout := quickTimeout
	switch {
	case fc.timeout != 0:
		timeout = fc.timeout
	case fc.hangs:
		timeout = faultTimeout
	}
	endpoint := target.endpoint
	if auth.query != "" {
		endpoint += "?" + auth.query
	}
	opts := pinned(WithEndpoint(endpoint), WithoutEnvironment(), WithLogger(logger),
		WithTimeout(timeout), WithProxy(attempts.proxy))
	opts = append(append(opts, target.opts...), fc.opts...)
	if auth.opts != nil {
		opts = append(opts, auth.opts(t)...)
	}
	if retry {
		cfg := fastRetry
		if timeout >= time.Second {
			// Room for a slow first attempt (draining an endless body
			// on a loaded machine takes a few hundred ms) to be retried.
			cfg.MaxElapsedTime = timeout / 2
		}
		opts = append(opts, WithRetry(cfg))
	}
	exp := newExporter(t, opts...)

	start := time.Now()
	give := fc.give
	if give == nil {
		give = counterData(1)
	}
	err = exp.Export(t.Context(), give)
	elapsed := time.Since(start)
	t.Logf("Export = %v, after %v", err, elapsed.Round(time.Millisecond))

	// The error: of the right kind, in time.
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export = %v, want a *WriteError", err)
	}
	if we.StatusCode != fc.wantStatus {
		t.Errorf("WriteError.StatusCode = %d, want %d (error: %v)", we.StatusCode, fc.wantStatus, err)
	}
	if bound := timeout + faultSlack; elapsed > bound {
		t.Errorf("Export took %v, want under %v (WithTimeout %v)", elapsed, bound, timeout)
	}
	if fc.hangs {
		if elapsed < timeout {
			t.Errorf("Export returned after %v, before the %v timeout that should have ended it", elapsed, timeout)
		}
		if fc.wantStatus == 0 && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Export = %v, want it to wrap context.DeadlineExceeded", err)
		}
	}

	// Attempts: exactly what the policy allows, numbered.
	sent := attempts.headers()
	if auth.refreshOn401 && fc.wantStatus == http.StatusUnauthorized && !fc.statusElsewhere {
		// Within one attempt, OAuth2 tries once more with a fresh token.
		if len(sent) != 2 || sent[0] != "" || sent[1] != "" || we.Attempts != 1 {
			t.Errorf("Retry-Attempt headers %q, %d attempts; want one attempt of two requests (the second with a fresh token)", sent, we.Attempts)
		}
		sent = sent[:1]
	}
	if retry && fc.retried {
		if len(sent) < 2 {
			t.Errorf("%d attempts with retry on, want the fault retried", len(sent))
		}
	} else if len(sent) != 1 {
		t.Errorf("%d attempts, want exactly 1", len(sent))
	}
	for i, h := range sent {
		want := ""
		if i > 0 {
			want = strconv.Itoa(i)
		}
		if h != want {
			t.Errorf("attempt %d: Retry-Attempt = %q, want %q", i, h, want)
		}
	}
	if we.Attempts != len(sent) {
		t.Errorf("WriteError.Attempts = %d, but %d requests were sent", we.Attempts, len(sent))
	}
	reachedPerAttempt := fc.wantReached
	if auth.refreshOn401 && fc.wantStatus == http.StatusUnauthorized && !fc.statusElsewhere {
		reachedPerAttempt *= 2
	}
	if got, want := target.reached(), len(sent)*reachedPerAttempt; got != want {
		t.Errorf("%d requests (or connections) reached the failing backend, want %d", got, want)
	}
	if len(sent) > 1 && !strings.Contains(err.Error(), fmt.Sprintf("after %d attempts", len(sent))) {
		t.Errorf("error %q does not say how many attempts were made (%d)", err, len(sent))
	}

	// One warning, stating the same facts.
	records := logs.all()
	if len(records) != 1 || records[0].Level != slog.LevelWarn {
		t.Errorf("logged %v, want exactly one WARN record", records)
	} else {
		assertOneWarning(t, logs, we)
	}
	if len(we.Body) > maxErrorBody {
		t.Errorf("WriteError.Body is %d bytes, want at most %d", len(we.Body), maxErrorBody)
	}

	// No secret anywhere.
	texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%+v", *we), logText.String()}
	for _, r := range records {
		texts = append(texts, r.String())
	}
	for e := error(we); e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error(), fmt.Sprintf("%#v", e))
	}
	for _, text := range texts {
		for _, s := range auth.secrets {
			if strings.Contains(text, s) {
				t.Errorf("secret %q leaked into %q", s, text)
			}
		}
	}
	if target.check != nil {
		target.check(t, auth.secrets)
	}

	// The same exporter works once the backend does.
	target.heal(t)
	if err := exp.Export(t.Context(), counterData(2)); err != nil {
		t.Fatalf("Export to the healed backend = %v, want nil", err)
	}
	value, authorization := target.delivered(t)
	if value != 2 {
		t.Errorf("the healed backend got requests_total = %v, want 2", value)
	}
	if auth.header != "" && authorization != auth.header {
		t.Errorf("the healed backend got Authorization %q, want %q", authorization, auth.header)
	}
	if n := len(logs.all()); n != 1 {
		t.Errorf("%d records logged in all, want only the one warning of the failure", n)
	}
}

// newFaultLogger returns a logger that both captures records and renders
// them as JSON, the way a service's real handler would, so a secret hidden
// in any attribute shows up in text.
func newFaultLogger() (*slog.Logger, *logCapture, *lockedBuffer) {
	_, capture := newLogCapture()
	text := &lockedBuffer{}
	json := slog.NewJSONHandler(text, &slog.HandlerOptions{Level: slog.LevelDebug, AddSource: true})
	return slog.New(slog.NewMultiHandler(capture, json)), capture, text
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestFaultRetryGapsGrow: against a backend that keeps failing, the waits
// between attempts grow. Each gap is at least the jittered floor of its
// step (half the doubled interval), which a loaded machine can only
// lengthen, never shorten.
func TestFaultRetryGapsGrow(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	srv.RespondWith(prwmetrictest.Always, prwmetrictest.Response{Status: http.StatusServiceUnavailable})
	cfg := RetryConfig{Enabled: true, InitialInterval: 20 * time.Millisecond, MaxInterval: 80 * time.Millisecond, MaxElapsedTime: time.Second}
	exp := newTestExporter(t, srv, pinned(WithRetry(cfg), WithTimeout(quickTimeout))...)

	err := exp.Export(t.Context(), counterData(1))
	var we *WriteError
	if !errors.As(err, &we) || we.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Export = %v, want a 503 *WriteError", err)
	}
	reqs := srv.Requests()
	if len(reqs) < 4 {
		t.Fatalf("%d attempts in %v, want at least 4", len(reqs), cfg.MaxElapsedTime)
	}
	if we.Attempts != len(reqs) {
		t.Errorf("WriteError.Attempts = %d, server got %d", we.Attempts, len(reqs))
	}
	interval := cfg.InitialInterval
	for i := 1; i < len(reqs); i++ {
		gap := reqs[i].Received.Sub(reqs[i-1].Received)
		if floor := interval / 2; gap < floor {
			t.Errorf("gap before attempt %d = %v, want at least %v (backoff %v, jittered)", i, gap, floor, interval)
		}
		if got, want := reqs[i].Header.Get(headerRetryAttempt), strconv.Itoa(i); got != want {
			t.Errorf("attempt %d: Retry-Attempt = %q, want %q", i, got, want)
		}
		interval = min(interval*2, cfg.MaxInterval)
	}
	if got := reqs[0].Header.Get(headerRetryAttempt); got != "" {
		t.Errorf("first attempt carries Retry-Attempt %q, want none", got)
	}
}

// TestFaultRetryAfterHonoured: a 429 with Retry-After: 1 is retried no
// sooner than a second later, when the retry budget allows it.
func TestFaultRetryAfterHonoured(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusTooManyRequests, RetryAfter: "1"})
	cfg := RetryConfig{Enabled: true, InitialInterval: minRetryInterval, MaxElapsedTime: 10 * time.Second}
	exp := newTestExporter(t, srv, pinned(WithRetry(cfg), WithTimeout(10*time.Second))...)

	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export = %v, want success on the second attempt", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (429, then success)", len(reqs))
	}
	if gap := reqs[1].Received.Sub(reqs[0].Received); gap < time.Second {
		t.Errorf("retried %v after a Retry-After of 1s", gap)
	}
	if got := reqs[1].Header.Get(headerRetryAttempt); got != "1" {
		t.Errorf("Retry-Attempt = %q, want \"1\"", got)
	}
}
