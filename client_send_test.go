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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sendClients returns the client New builds for endpoint and opts, which
// sends through its transport, and the same client on a *http.Client of
// the user's, which sends with Client.Do: the first must do what the
// second does.
func sendClients(t *testing.T, endpoint string, opts ...Option) (own, user *client) {
	t.Helper()
	tr := newTransport()
	t.Cleanup(tr.CloseIdleConnections)
	build := func(extra ...Option) *client {
		cfg, err := newConfig(append(append([]Option{WithEndpoint(endpoint)}, opts...), extra...))
		if err != nil {
			t.Fatal(err)
		}
		c, err := newClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		return c
	}
	own, user = build(), build(WithHTTPClient(&http.Client{Transport: tr}))
	if own.owned == nil || user.owned != nil {
		t.Fatal("want the first client the exporter's own and the second the user's")
	}
	return own, user
}

// hop is one request a test server received.
type hop struct {
	Method, Host, Path string
	Header             http.Header
	Body               []byte
}

// TestSendRedirectsAsDo: the exporter's own client answers redirects as
// Client.Do with checkRedirect does: a 307 or 308 is followed with the body
// sent again, hop after hop, up to the same limit; a 301, 302 or 303, one
// without a Location and one whose Location does not parse are the
// attempt's failure, as Do makes it, except that the Location is not
// quoted. After a redirect, later requests go
// through Do.
func TestSendRedirectsAsDo(t *testing.T) {
	type to struct {
		status   int
		location string // none when ""
	}
	body := []byte("a body that every hop must receive whole")
	tests := []struct {
		name string
		// redirects maps a path to its answer; any other path answers 204.
		redirects      map[string]to
		wantPaths      []string
		wantStatus     int
		wantErr        string // what the attempt's error says; "" for none
		wantRedirected bool
	}{
		{
			name:      "307 then 308",
			redirects: map[string]to{"/first": {307, "/second"}, "/second": {308, "/final"}},
			wantPaths: []string{"/first", "/second", "/final"}, wantRedirected: true,
		},
		{
			name:      "302",
			redirects: map[string]to{"/first": {302, "/final"}},
			wantPaths: []string{"/first"}, wantStatus: 302, wantErr: "server answered 302 Found",
		},
		{
			name:      "307 without a Location",
			redirects: map[string]to{"/first": {307, ""}},
			wantPaths: []string{"/first"}, wantStatus: 307, wantErr: "server answered 307 Temporary Redirect",
		},
		{
			name:      "307 to a Location that does not parse",
			redirects: map[string]to{"/first": {307, "http://user:secret@[::1/?key=secret"}},
			wantPaths: []string{"/first"}, wantErr: errBadLocation.Error(),
		},
		{
			name:      "302 to a Location that does not parse",
			redirects: map[string]to{"/first": {302, "http://user:secret@[::1/?key=secret"}},
			wantPaths: []string{"/first"}, wantErr: errBadLocation.Error(),
		},
		{
			name:      "307 then a Location that does not parse",
			redirects: map[string]to{"/first": {307, "/second"}, "/second": {307, "http://user:secret@[::1/?key=secret"}},
			wantPaths: []string{"/first", "/second"}, wantErr: errBadLocation.Error(), wantRedirected: true,
		},
		{
			name:      "307 loop",
			redirects: map[string]to{"/first": {307, "/first"}},
			wantPaths: slices.Repeat([]string{"/first"}, 10), wantErr: "stopped after 10 redirects", wantRedirected: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var hops []hop
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				hops = append(hops, hop{Method: r.Method, Host: r.Host, Path: r.URL.Path, Header: r.Header.Clone(), Body: b})
				mu.Unlock()
				next, ok := tt.redirects[r.URL.Path]
				if !ok {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				if next.location != "" {
					w.Header().Set("Location", next.location)
				}
				w.WriteHeader(next.status)
			}))
			own, user := sendClients(t, srv.URL+"/first", WithBearerToken("tok"))

			var got [2][]hop
			var errs [2]error
			for i, c := range []*client{own, user} {
				mu.Lock()
				hops = nil
				mu.Unlock()
				errs[i] = c.attempt(t.Context(), body, partCounts{series: 3}, ProtocolV1, CompressionSnappy, 0)
				mu.Lock()
				got[i] = hops
				mu.Unlock()
			}

			var paths []string
			for _, h := range got[0] {
				paths = append(paths, h.Path)
				if h.Method != http.MethodPost || !bytes.Equal(h.Body, body) {
					t.Errorf("%s received %s with body %q, want POST with %q", h.Path, h.Method, h.Body, body)
				}
			}
			if diff := cmp.Diff(tt.wantPaths, paths); diff != "" {
				t.Errorf("paths requested (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(got[1], got[0]); diff != "" {
				t.Errorf("requests received (-Client.Do +own):\n%s", diff)
			}
			assertAttemptError(t, errs[0], tt.wantStatus, tt.wantErr)
			// A Location may carry another host's credentials, which
			// no redaction knows: errors never quote it.
			if strings.Contains(fmt.Sprint(errs[0]), "secret") || strings.Contains(fmt.Sprint(errs[1]), "secret") {
				t.Errorf("errors %q and %q quote the Location", errs[0], errs[1])
			}
			if fmt.Sprint(errs[0]) != fmt.Sprint(errs[1]) || mayHaveArrived(errs[0]) != mayHaveArrived(errs[1]) {
				t.Errorf("error %v (may have arrived: %v), want Client.Do's %v (%v)",
					errs[0], mayHaveArrived(errs[0]), errs[1], mayHaveArrived(errs[1]))
			}
			if own.redirected.Load() != tt.wantRedirected {
				t.Errorf("redirected = %v, want %v", own.redirected.Load(), tt.wantRedirected)
			}
		})
	}
}

// assertAttemptError checks that err is nil when wantErr is "", else a
// *WriteError with status wantStatus whose text holds wantErr.
func assertAttemptError(t *testing.T, err error, wantStatus int, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Errorf("attempt = %v, want nil", err)
		}
		return
	}
	var we *WriteError
	if !errors.As(err, &we) || we.StatusCode != wantStatus || !strings.Contains(err.Error(), wantErr) {
		t.Errorf("attempt = %v, want a *WriteError with status %d saying %q", err, wantStatus, wantErr)
	}
}

// TestExportFollows307Then308: an export redirected twice arrives whole at
// the last hop, and so does the next export, sent with Client.Do.
func TestExportFollows307Then308(t *testing.T) {
	rec := &recorder{}
	var mu sync.Mutex
	bodies := map[string][][]byte{}
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies[r.URL.Path] = append(bodies[r.URL.Path], b)
		mu.Unlock()
		switch r.URL.Path {
		case "/first":
			http.Redirect(w, r, "/second", http.StatusTemporaryRedirect)
		case "/second":
			http.Redirect(w, r, "/api/v1/write", http.StatusPermanentRedirect)
		default:
			r.Body = io.NopCloser(bytes.NewReader(b))
			rec.record(r)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	exp := newExporter(t, pinned(WithEndpoint(srv.URL+"/first"))...)
	for range 2 {
		if err := exp.Export(t.Context(), counterData(7)); err != nil {
			t.Fatalf("Export = %v, want nil after following the redirects", err)
		}
	}
	if !exp.client.redirected.Load() {
		t.Error("after a redirect, later requests do not go through Client.Do")
	}
	reqs := rec.all()
	if len(reqs) != 2 {
		t.Fatalf("the last hop received %d requests, want 2", len(reqs))
	}
	if diff := cmp.Diff([]series{counterSeries(7)}, reqs[0].Series); diff != "" {
		t.Errorf("series at the last hop (-want +got):\n%s", diff)
	}
	if reqs[1].DecodeErr != nil || len(reqs[1].Series) != 1 {
		t.Errorf("the next export's body at the last hop: %v, %d series, want 1", reqs[1].DecodeErr, len(reqs[1].Series))
	}
	for i := range reqs {
		for _, path := range []string{"/first", "/second"} {
			if got, want := bodies[path][i], bodies["/api/v1/write"][i]; !bytes.Equal(got, want) {
				t.Errorf("export %d: %s received %d bytes, the last hop %d: not the same body", i, path, len(got), len(want))
			}
		}
	}
}

// closeCounter is a response body that counts its closings.
type closeCounter struct {
	io.Reader
	closed *atomic.Int32
}

func (c closeCounter) Close() error { c.closed.Add(1); return nil }

// TestSendAnswersOfAHookAsDo: whatever a WithRoundTripper hook answers, the
// exporter's own client makes of it what Client.Do makes (never a panic),
// and closes the body of a response that comes with an error.
func TestSendAnswersOfAHookAsDo(t *testing.T) {
	var closed atomic.Int32
	recordHeader := func(header string) error {
		var e tls.RecordHeaderError
		copy(e.RecordHeader[:], header)
		e.Msg = "first record does not look like a TLS handshake"
		return e
	}
	tests := []struct {
		name       string
		resp       func() *http.Response
		err        error
		wantStatus int
		wantErr    string
		wantClosed int32 // by the own client
	}{
		{name: "no response, no error", wantErr: "http: RoundTripper implementation (prwmetric.roundTripperFunc) returned a nil *Response with a nil error"},
		{name: "204 without a body", resp: func() *http.Response { return &http.Response{StatusCode: 204} }},
		{name: "500 without a body", resp: func() *http.Response { return &http.Response{StatusCode: 500} }, wantStatus: 500, wantErr: "server answered 500 Internal Server Error ("},
		{name: "a length without a body", resp: func() *http.Response { return &http.Response{StatusCode: 200, ContentLength: 5} },
			wantErr: "http: RoundTripper implementation (prwmetric.roundTripperFunc) returned a *Response with content length 5 but a nil Body"},
		{name: "a response and an error", err: errors.New("hook failed"), wantErr: "hook failed", wantClosed: 1,
			resp: func() *http.Response {
				return &http.Response{StatusCode: 200, Body: closeCounter{strings.NewReader("x"), &closed}}
			}},
		{name: "an HTTP answer to the TLS handshake", err: recordHeader("HTTP/"), wantErr: ": http: server gave HTTP response to HTTPS client ("},
		{name: "another TLS record", err: recordHeader("\x15\x03\x01\x00\x02"), wantErr: ": tls: first record does not look like a TLS handshake ("},
		// Do's *url.Error is removed, not one inside the hook's error.
		{name: "a *url.Error inside", err: fmt.Errorf("hook: %w", &url.Error{Op: "Post", URL: "http://token", Err: errors.New("refused")}),
			wantErr: `: hook: Post "http://token": refused (`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook := WithRoundTripper(func(http.RoundTripper) http.RoundTripper {
				return roundTripperFunc(func(*http.Request) (*http.Response, error) {
					if tt.resp == nil {
						return nil, tt.err
					}
					return tt.resp(), tt.err
				})
			})
			own, user := sendClients(t, "https://rw.example/api/v1/write", hook)
			closed.Store(0)
			err := own.safeAttempt(t.Context(), []byte("body"), partCounts{series: 1}, ProtocolV1, CompressionSnappy, 0)
			if n := closed.Load(); n != tt.wantClosed {
				t.Errorf("the response body was closed %d times, want %d", n, tt.wantClosed)
			}
			assertAttemptError(t, err, tt.wantStatus, tt.wantErr)
			doErr := user.safeAttempt(t.Context(), []byte("body"), partCounts{series: 1}, ProtocolV1, CompressionSnappy, 0)
			if fmt.Sprint(err) != fmt.Sprint(doErr) || mayHaveArrived(err) != mayHaveArrived(doErr) {
				t.Errorf("error %v (may have arrived: %v), want Client.Do's %v (%v)", err, mayHaveArrived(err), doErr, mayHaveArrived(doErr))
			}
		})
	}
}

// TestSendSchemeMismatchAsDo: an https endpoint served in plain HTTP fails
// with Do's message, not the TLS record's.
func TestSendSchemeMismatchAsDo(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	own, user := sendClients(t, strings.Replace(srv.URL, "http://", "https://", 1))
	err := own.attempt(t.Context(), []byte("body"), partCounts{series: 1}, ProtocolV1, CompressionSnappy, 0)
	if !errors.Is(err, http.ErrSchemeMismatch) {
		t.Errorf("attempt = %v, want %v", err, http.ErrSchemeMismatch)
	}
	doErr := user.attempt(t.Context(), []byte("body"), partCounts{series: 1}, ProtocolV1, CompressionSnappy, 0)
	if fmt.Sprint(err) != fmt.Sprint(doErr) || mayHaveArrived(err) != mayHaveArrived(doErr) {
		t.Errorf("error %v (may have arrived: %v), want Client.Do's %v (%v)", err, mayHaveArrived(err), doErr, mayHaveArrived(doErr))
	}
	// The server answered the TLS handshake: no request left.
	if mayHaveArrived(err) {
		t.Errorf("mayHaveArrived(%v) = true, want false: the request never left", err)
	}
}

// TestSendAllocations: the exporter's own client sends a request in the
// allocations of making it (newRequest) and no more; Client.Do adds 7.
func TestSendAllocations(t *testing.T) {
	ok := &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody}
	hook := WithRoundTripper(func(http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(*http.Request) (*http.Response, error) { return ok, nil })
	})
	own, _ := sendClients(t, "http://rw.example/api/v1/write", hook)
	ctx := context.Background()
	body := []byte("body")
	made := testing.AllocsPerRun(100, func() { _, _ = own.newRequest(ctx, body, ProtocolV1, CompressionSnappy, 0) })
	sent := testing.AllocsPerRun(100, func() { _ = own.attempt(ctx, body, partCounts{series: 1}, ProtocolV1, CompressionSnappy, 0) })
	if sent > made {
		t.Errorf("an attempt costs %v allocations, want those of its request, %v", sent, made)
	}
}

// TestRedirectBodyReadIsBounded: a redirect's body is read (for the
// connection's reuse) for at most bodyReadTimeout, as every response body
// is (README, "Hostile peers"): a 307 that declares a body, sends part of
// it and stalls must not hold the attempt until its deadline, whether it
// is the first hop (the exporter's own redirect), a later one, or one that
// Client.Do follows for a client of the user's, with or without a redirect
// policy of theirs.
func TestRedirectBodyReadIsBounded(t *testing.T) {
	for _, stall := range []string{"/first", "/second"} {
		t.Run("stalls at "+stall, func(t *testing.T) {
			var mu sync.Mutex
			var paths []string
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				next := map[string]string{"/first": "/second", "/second": "/final"}[r.URL.Path]
				if next == "" {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				w.Header().Set("Location", next)
				if r.URL.Path != stall {
					w.WriteHeader(http.StatusTemporaryRedirect)
					return
				}
				w.Header().Set("Content-Length", "100")
				w.WriteHeader(http.StatusTemporaryRedirect)
				_, _ = io.WriteString(w, "0123456789")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}))
			own, user := sendClients(t, srv.URL+"/first")
			tr := newTransport()
			t.Cleanup(tr.CloseIdleConnections)
			cfg, err := newConfig([]Option{WithEndpoint(srv.URL + "/first"), WithHTTPClient(&http.Client{
				Transport:     tr,
				CheckRedirect: func(*http.Request, []*http.Request) error { return nil },
			})})
			if err != nil {
				t.Fatal(err)
			}
			policy, err := newClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name string
				c    *client
			}{{"own", own}, {"user's", user}, {"user's with a policy", policy}} {
				mu.Lock()
				paths = nil
				mu.Unlock()
				ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
				start := time.Now()
				err := c.c.attempt(ctx, []byte("body"), partCounts{series: 1}, ProtocolV1, CompressionSnappy, 0)
				elapsed := time.Since(start)
				cancel()
				mu.Lock()
				got := slices.Clone(paths)
				mu.Unlock()
				if err != nil || elapsed > 2*time.Second || !slices.Equal(got, []string{"/first", "/second", "/final"}) {
					t.Errorf("%s client: attempt = %v after %v, paths %v: a redirect's stalled body held the attempt", c.name, err, elapsed, got)
				}
			}
		})
	}
}
