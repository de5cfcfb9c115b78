package prwmetric

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// assertOneWarning checks the single warning a failed export logs: its
// facts are those of the returned *WriteError.
func assertOneWarning(t *testing.T, logs *logCapture, we *WriteError) {
	t.Helper()
	records := logs.all()
	if len(records) != 1 {
		t.Fatalf("logged %d records, want exactly 1 warning: %v", len(records), records)
	}
	r := records[0]
	if r.Level != slog.LevelWarn {
		t.Errorf("level = %v, want WARN", r.Level)
	}
	want := map[string]string{
		"endpoint":       we.Endpoint,
		"series_dropped": strconv.Itoa(we.Series),
	}
	if we.StatusCode != 0 {
		want["status"] = strconv.Itoa(we.StatusCode)
		want["body"] = we.Body
	} else {
		want["error"] = we.Err.Error()
	}
	for k, v := range want {
		if got, ok := r.Attrs[k]; !ok || got != v {
			t.Errorf("log attribute %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
}

func TestExportFailsOnNon2xx(t *testing.T) {
	for _, tt := range []struct {
		status   int
		body     string
		wantBody string
	}{
		{status: http.StatusBadRequest, body: "out of order sample\n", wantBody: "out of order sample"},
		{status: http.StatusUnauthorized, body: "no", wantBody: "no"},
		{status: http.StatusNotFound, body: "404 page not found\n", wantBody: "404 page not found"},
		{status: http.StatusRequestEntityTooLarge, body: "", wantBody: ""},
		{status: http.StatusTooManyRequests, body: "slow down", wantBody: "slow down"},
		{status: http.StatusInternalServerError, body: "storage full", wantBody: "storage full"},
		{status: http.StatusServiceUnavailable, body: "later", wantBody: "later"},
		// Non-2xx codes that are not errors are still failures here.
		{status: http.StatusNotModified, body: "", wantBody: ""},
	} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			rec := &recorder{}
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec.record(r)
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			endpoint := srv.URL + "/api/v1/write"
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger))...)

			err := exp.Export(t.Context(), counterData(1))
			var we *WriteError
			if !errors.As(err, &we) {
				t.Fatalf("Export = %v, want a *WriteError", err)
			}
			want := WriteError{Endpoint: endpoint, StatusCode: tt.status, Body: tt.wantBody, Series: 1, Attempts: 1}
			if diff := cmp.Diff(want, *we, cmpopts.IgnoreUnexported(WriteError{})); diff != "" {
				t.Errorf("WriteError (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(tt.status)) || !strings.Contains(err.Error(), tt.wantBody) {
				t.Errorf("error text %q lacks the status or body", err)
			}
			// Never retried, not even 429 and 5xx.
			rec.only(t)
			assertOneWarning(t, logs, we)
		})
	}
}

func TestExportSucceedsOnAny2xx(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusAccepted, http.StatusNoContent, 299} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			endpoint, rec := newReceiver(t, status, "ignored body")
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger))...)
			if err := exp.Export(t.Context(), counterData(1)); err != nil {
				t.Errorf("Export = %v, want nil", err)
			}
			rec.only(t)
			if r := logs.all(); len(r) != 0 {
				t.Errorf("logged %v on success", r)
			}
		})
	}
}

func TestExportConnectionRefused(t *testing.T) {
	endpoint := closedEndpoint(t)
	logger, logs := newLogCapture()
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger))...)

	err := exp.Export(t.Context(), counterData(1))
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export = %v, want a *WriteError", err)
	}
	if we.Endpoint != endpoint || we.StatusCode != 0 || we.Series != 1 || we.Body != "" {
		t.Errorf("WriteError = %+v, want endpoint %s, no status, 1 series", *we, endpoint)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %v does not wrap ECONNREFUSED", err)
	}
	assertOneWarning(t, logs, we)
}

// blockingReceiver answers nothing until the request's context ends, and
// reports each request it starts.
func blockingReceiver(t *testing.T) (endpoint string, started <-chan struct{}, rec *recorder) {
	t.Helper()
	rec = &recorder{}
	ch := make(chan struct{}, 16)
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		ch <- struct{}{}
		<-r.Context().Done()
	}))
	return srv.URL + "/api/v1/write", ch, rec
}

func TestExportTimeout(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
		ctx  func(context.Context) (context.Context, context.CancelFunc)
	}{
		{name: "WithTimeout", opts: []Option{WithTimeout(100 * time.Millisecond)}, ctx: context.WithCancel},
		{name: "context deadline sooner than WithTimeout", opts: []Option{WithTimeout(time.Hour)}, ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, 100*time.Millisecond)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, _, rec := blockingReceiver(t)
			logger, logs := newLogCapture()
			exp := newExporter(t, append(pinned(WithEndpoint(endpoint), WithLogger(logger)), tt.opts...)...)
			ctx, cancel := tt.ctx(t.Context())
			defer cancel()

			err := exp.Export(ctx, counterData(1))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Export = %v, want context.DeadlineExceeded", err)
			}
			var we *WriteError
			if !errors.As(err, &we) || we.StatusCode != 0 || we.Series != 1 {
				t.Fatalf("Export = %#v, want a *WriteError with no status and 1 series", err)
			}
			rec.only(t)
			assertOneWarning(t, logs, we)
		})
	}
}

func TestExportCanceled(t *testing.T) {
	endpoint, started, rec := blockingReceiver(t)
	logger, logs := newLogCapture()
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger))...)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		<-started
		cancel()
	}()

	err := exp.Export(ctx, counterData(1))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Export = %v, want context.Canceled", err)
	}
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export = %v, want a *WriteError", err)
	}
	rec.only(t)
	assertOneWarning(t, logs, we)
}

// TestExportErrorBodyIsCapped: a long error body is cut to 1 KiB in the
// error and the log, and stays valid UTF-8 even when the cut splits a
// character.
func TestExportErrorBodyIsCapped(t *testing.T) {
	for _, tt := range []struct {
		name     string
		body     string
		wantBody string
	}{
		{name: "ASCII", body: strings.Repeat("x", 5000), wantBody: strings.Repeat("x", maxErrorBody)},
		{name: "exactly 1 KiB", body: strings.Repeat("y", maxErrorBody), wantBody: strings.Repeat("y", maxErrorBody)},
		// The 1024th byte is the first half of "é": the cut must not
		// produce more than 1 KiB nor invalid UTF-8.
		{name: "cut inside a character", body: strings.Repeat("a", maxErrorBody-1) + strings.Repeat("é", 100), wantBody: strings.Repeat("a", maxErrorBody-1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, _ := newReceiver(t, http.StatusBadRequest, tt.body)
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger))...)
			err := exp.Export(t.Context(), counterData(1))
			var we *WriteError
			if !errors.As(err, &we) {
				t.Fatalf("Export = %v, want a *WriteError", err)
			}
			if len(we.Body) > maxErrorBody {
				t.Errorf("WriteError.Body is %d bytes, want at most %d", len(we.Body), maxErrorBody)
			}
			if !utf8.ValidString(we.Body) {
				t.Error("WriteError.Body is not valid UTF-8")
			}
			if we.Body != tt.wantBody {
				t.Errorf("WriteError.Body = %.40q… (%d bytes), want %.40q… (%d bytes)", we.Body, len(we.Body), tt.wantBody, len(tt.wantBody))
			}
			if len(err.Error()) > maxErrorBody+300 {
				t.Errorf("error text is %d bytes, want the body capped", len(err.Error()))
			}
			assertOneWarning(t, logs, we)
		})
	}
}

// TestExportEndlessResponseBody: a server that never stops sending does not
// hang the export nor make it buffer the stream.
func TestExportEndlessResponseBody(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusInternalServerError} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var written atomic.Int64
			handlerDone := make(chan struct{})
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(handlerDone)
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(status)
				chunk := []byte(strings.Repeat("endless ", 4096)) // 32 KiB
				// Bounded at 1 GiB: a client that reads it all fails
				// the test below instead of hanging it.
				for range 1 << 15 {
					n, err := w.Write(chunk)
					written.Add(int64(n))
					if err != nil || r.Context().Err() != nil {
						return
					}
				}
			}))
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(srv.URL), WithLogger(logger))...)

			err := exp.Export(t.Context(), counterData(1))
			<-handlerDone // the client must have hung up
			if status == http.StatusOK {
				if err != nil {
					t.Errorf("Export = %v, want nil: a 2xx body is ignored", err)
				}
			} else {
				var we *WriteError
				if !errors.As(err, &we) {
					t.Fatalf("Export = %v, want a *WriteError", err)
				}
				if len(we.Body) > maxErrorBody {
					t.Errorf("WriteError.Body is %d bytes, want at most %d", len(we.Body), maxErrorBody)
				}
				assertOneWarning(t, logs, we)
			}
			// The client reads a bounded prefix and hangs up; the rest
			// sits in socket buffers at most.
			if n := written.Load(); n > 64<<20 {
				t.Errorf("server wrote %d MiB before the client hung up, want a bounded read", n>>20)
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	for _, tt := range []struct {
		status int
		// follow: the body is resent to the target and the export
		// succeeds; otherwise the redirect is the failure.
		follow bool
	}{
		{status: http.StatusTemporaryRedirect, follow: true},
		{status: http.StatusPermanentRedirect, follow: true},
		{status: http.StatusMovedPermanently},
		{status: http.StatusFound},
		{status: http.StatusSeeOther},
	} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			rec := &recorder{}
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec.record(r)
				if r.URL.Path == "/old" {
					http.Redirect(w, r, "/api/v1/write", tt.status)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(
				WithEndpoint(srv.URL+"/old"),
				WithLogger(logger),
				WithBearerToken("tok"),
				WithHeaders(map[string]string{"X-Scope-OrgID": "tenant-1"}),
			)...)

			err := exp.Export(t.Context(), counterData(4))
			reqs := rec.all()
			if !tt.follow {
				var we *WriteError
				if !errors.As(err, &we) || we.StatusCode != tt.status {
					t.Fatalf("Export = %v, want a *WriteError with status %d", err, tt.status)
				}
				if len(reqs) != 1 {
					t.Errorf("server received %d requests, want 1: the redirect is not followed", len(reqs))
				}
				assertOneWarning(t, logs, we)
				return
			}
			if err != nil {
				t.Fatalf("Export = %v, want nil after following the redirect", err)
			}
			if len(reqs) != 2 {
				t.Fatalf("server received %d requests, want 2", len(reqs))
			}
			second := reqs[1]
			if second.Method != http.MethodPost || second.Path != "/api/v1/write" {
				t.Errorf("redirected request = %s %s, want POST /api/v1/write", second.Method, second.Path)
			}
			if second.DecodeErr != nil {
				t.Fatalf("redirected body does not decode: %v", second.DecodeErr)
			}
			if diff := cmp.Diff([]series{counterSeries(4)}, second.Series); diff != "" {
				t.Errorf("redirected series (-want +got):\n%s", diff)
			}
			// Same origin: credentials and headers follow.
			for name, want := range map[string]string{
				"Authorization":                     "Bearer tok",
				"X-Scope-OrgID":                     "tenant-1",
				"Content-Encoding":                  "snappy",
				"X-Prometheus-Remote-Write-Version": "0.1.0",
			} {
				if got := second.Header.Get(name); got != want {
					t.Errorf("redirected %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestRedirectToAnotherHostDropsCredentials: a 307 to another origin resends
// the body but neither the Authorization header nor custom headers.
func TestRedirectToAnotherHostDropsCredentials(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []Option
	}{
		{name: "bearer", opts: []Option{WithBearerToken("tok"), WithHeaders(map[string]string{"X-Scope-OrgID": "tenant-1"})}},
		{name: "basic", opts: []Option{WithBasicAuth("alice", "pw"), WithHeaders(map[string]string{"X-Scope-OrgID": "tenant-1"})}},
		{name: "Authorization header", opts: []Option{WithHeaders(map[string]string{"Authorization": "Custom x", "X-Scope-OrgID": "tenant-1"})}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target, targetRec := newReceiver(t, http.StatusNoContent, "")
			origin := &recorder{}
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				origin.record(r)
				http.Redirect(w, r, target, http.StatusTemporaryRedirect)
			}))
			exp := newExporter(t, append(pinned(WithEndpoint(srv.URL+"/api/v1/write")), tt.opts...)...)

			if err := exp.Export(t.Context(), counterData(2)); err != nil {
				t.Fatalf("Export: %v", err)
			}
			first := origin.only(t)
			if first.Header.Get("Authorization") == "" || first.Header.Get("X-Scope-OrgID") == "" {
				t.Errorf("request to the endpoint lacks its credentials: %v", first.Header)
			}
			got := targetRec.only(t)
			for _, name := range []string{"Authorization", "X-Scope-OrgID"} {
				if v := got.Header.Values(name); len(v) != 0 {
					t.Errorf("redirect to another host carried %s = %q", name, v)
				}
			}
			if got.Header.Get("Content-Encoding") != "snappy" {
				t.Errorf("redirect lost the protocol headers: %v", got.Header)
			}
			if diff := cmp.Diff([]series{counterSeries(2)}, got.Series); diff != "" {
				t.Errorf("series at the redirect target (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedirectLoopIsBounded(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
	}))
	logger, logs := newLogCapture()
	exp := newExporter(t, pinned(WithEndpoint(srv.URL+"/loop"), WithLogger(logger))...)
	err := exp.Export(t.Context(), counterData(1))
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export = %v, want a *WriteError", err)
	}
	if n := rec.count(); n > 10 {
		t.Errorf("server received %d requests, want at most 10", n)
	}
	assertOneWarning(t, logs, we)
}

// proxyServer is an HTTP forward proxy: it records what it was asked for
// and forwards it to the target, stripping Proxy-Authorization.
type proxyServer struct {
	url string
	rec *recorder
}

func newProxy(t *testing.T) *proxyServer {
	t.Helper()
	forward := &http.Transport{}
	t.Cleanup(forward.CloseIdleConnections)
	p := &proxyServer{rec: &recorder{}}
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		// Record a copy (the recorder reads the body).
		rr := r.Clone(r.Context())
		rr.Body = io.NopCloser(strings.NewReader(string(body)))
		p.rec.record(rr)
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), strings.NewReader(string(body)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		out.Header.Del("Proxy-Authorization")
		out.Header.Del("Proxy-Connection")
		resp, err := forward.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	p.url = srv.URL
	return p
}

func TestProxy(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  func(proxyURL string) Option
		// wantProxyAuth is the Proxy-Authorization the proxy must see.
		wantProxyAuth string
	}{
		{name: "WithProxyURL", opt: WithProxyURL},
		{name: "WithProxyURL with credentials", opt: func(p string) Option {
			return WithProxyURL(strings.Replace(p, "http://", "http://px:px-pass@", 1))
		}, wantProxyAuth: basicHeader("px", "px-pass")},
		{name: "WithProxy", opt: func(p string) Option {
			u, err := url.Parse(p)
			if err != nil {
				panic(err)
			}
			return WithProxy(func(r *http.Request) (*url.URL, error) {
				if r.URL.Path != "/api/v1/write" {
					return nil, fmt.Errorf("proxy asked for unexpected %s", r.URL)
				}
				return u, nil
			})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, target := newReceiver(t, http.StatusNoContent, "")
			proxy := newProxy(t)
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithBearerToken("tok"), tt.opt(proxy.url))...)

			if err := exp.Export(t.Context(), counterData(6)); err != nil {
				t.Fatalf("Export through the proxy: %v", err)
			}
			via := proxy.rec.only(t)
			if via.RequestURI != endpoint {
				t.Errorf("proxy was asked for %q, want the absolute endpoint %q", via.RequestURI, endpoint)
			}
			if got := via.Header.Get("Proxy-Authorization"); got != tt.wantProxyAuth {
				t.Errorf("Proxy-Authorization = %q, want %q", got, tt.wantProxyAuth)
			}
			got := target.only(t)
			if diff := cmp.Diff([]series{counterSeries(6)}, got.Series); diff != "" {
				t.Errorf("series at the target (-want +got):\n%s", diff)
			}
			if got.Header.Get("Authorization") != "Bearer tok" {
				t.Errorf("Authorization at the target = %q, want the bearer token", got.Header.Get("Authorization"))
			}
		})
	}
}

func TestWithProxyNilMeansDirect(t *testing.T) {
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithProxy(nil))...)
	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if got := rec.only(t).RequestURI; got != "/api/v1/write" {
		t.Errorf("RequestURI = %q, want a direct request for /api/v1/write", got)
	}
}

// countingTransport counts round trips through the user's transport.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// TestWithHTTPClient: the user's client and transport carry the request,
// with authentication and headers still added.
func TestWithHTTPClient(t *testing.T) {
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	base := &http.Transport{}
	defer base.CloseIdleConnections() // Shutdown leaves the user's client alone
	ct := &countingTransport{next: base}
	exp := newExporter(t, pinned(
		WithEndpoint(endpoint),
		WithHTTPClient(&http.Client{Transport: ct}),
		WithBasicAuth("alice", "pw"),
		WithHeaders(map[string]string{"X-Scope-OrgID": "tenant-1"}),
	)...)
	if err := exp.Export(t.Context(), counterData(5)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if n := ct.n.Load(); n != 1 {
		t.Errorf("user's transport carried %d requests, want 1", n)
	}
	got := rec.only(t)
	if got.Header.Get("Authorization") != basicHeader("alice", "pw") || got.Header.Get("X-Scope-OrgID") != "tenant-1" {
		t.Errorf("headers = %v, want basic auth and X-Scope-OrgID", got.Header)
	}
	if diff := cmp.Diff([]series{counterSeries(5)}, got.Series); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestNewWithWrappedDefaultTransport: instrumentation libraries replace
// http.DefaultTransport with their own RoundTripper; New must not panic.
func TestNewWithWrappedDefaultTransport(t *testing.T) {
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	orig := http.DefaultTransport
	http.DefaultTransport = roundTripFunc(orig.RoundTrip)
	t.Cleanup(func() { http.DefaultTransport = orig })

	var (
		exp *Exporter
		err error
	)
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("New panicked with a wrapped http.DefaultTransport: %v", r)
			}
		}()
		exp, err = New(pinned(WithEndpoint(endpoint))...)
	}()
	if exp == nil {
		return
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	rec.only(t)
}

// TestPanickingTransportFailsTheExport: a WithRoundTripper hook that panics
// fails the export with an error; the service keeps running.
func TestPanickingTransportFailsTheExport(t *testing.T) {
	endpoint, _ := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(discardLogger()), WithRoundTripper(func(http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(*http.Request) (*http.Response, error) { panic("hook bug") })
	}))...)
	err := exp.Export(t.Context(), counterData(1))
	var we *WriteError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "the transport panicked: hook bug") {
		t.Fatalf("Export = %v, want a *WriteError saying the transport panicked", err)
	}
}

// TestRequestIsNewRequests checks that an attempt's request is the one
// http.NewRequestWithContext makes of a *bytes.Reader, with the protocol's
// headers, for each protocol and compression and with the Retry-Attempt of
// a retry; that its body and GetBody both give the body; that a change to
// one request's header values leaves the next request alone; and that it
// costs at most 5 allocations (11 with NewRequestWithContext and
// Header.Set).
func TestRequestIsNewRequests(t *testing.T) {
	cfg, err := newConfig([]Option{WithEndpoint("https://rw.example:8443/api/v1/write?tenant=a")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := newClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("the body")
	ctx := context.WithValue(t.Context(), struct{}{}, "ctx")
	tests := []struct {
		name    string
		proto   Protocol
		comp    Compression
		attempt int
		header  http.Header
	}{
		{"1.0", ProtocolV1, CompressionSnappy, 0, http.Header{
			"Content-Encoding": {"snappy"}, "Content-Type": {"application/x-protobuf"},
			"X-Prometheus-Remote-Write-Version": {"0.1.0"}, "User-Agent": {userAgent}}},
		{"2.0, a retry", ProtocolV2, CompressionSnappy, 2, http.Header{
			"Content-Encoding": {"snappy"}, "Content-Type": {"application/x-protobuf;proto=io.prometheus.write.v2.Request"},
			"X-Prometheus-Remote-Write-Version": {"2.0.0"}, "User-Agent": {userAgent}, "Retry-Attempt": {"2"}}},
		{"zstd", ProtocolV1, CompressionZstd, 0, http.Header{
			"Content-Encoding": {"zstd"}, "Content-Type": {"application/x-protobuf"},
			"X-Victoriametrics-Remote-Write-Version": {"1"}, "User-Agent": {userAgent}}},
	}
	for _, tt := range tests {
		req, err := c.newRequest(ctx, body, tt.proto, tt.comp, tt.attempt)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		want, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if req.Method != want.Method || req.URL.String() != want.URL.String() || req.Host != want.Host ||
			req.Proto != want.Proto || req.ContentLength != want.ContentLength || req.Context() != ctx {
			t.Errorf("%s: request %s %s host %q %s length %d, want %s %s host %q %s length %d", tt.name,
				req.Method, req.URL, req.Host, req.Proto, req.ContentLength, want.Method, want.URL, want.Host, want.Proto, want.ContentLength)
		}
		if req.URL == c.template.URL {
			t.Errorf("%s: the request shares the template's URL", tt.name)
		}
		if !reflect.DeepEqual(req.Header, tt.header) {
			t.Errorf("%s: header %v, want %v", tt.name, req.Header, tt.header)
		}
		for name, r := range map[string]func() (io.ReadCloser, error){
			"Body":          func() (io.ReadCloser, error) { return req.Body, nil },
			"GetBody":       req.GetBody,
			"GetBody again": req.GetBody,
		} {
			rc, err := r()
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := io.ReadAll(rc); string(got) != string(body) {
				t.Errorf("%s: %s reads %q, want %q", tt.name, name, got, body)
			}
		}
		// A hook that changes a value in place changes this request only.
		req.Header[headerUserAgent][0] = "changed"
		if next, _ := c.newRequest(ctx, body, tt.proto, tt.comp, tt.attempt); next.Header.Get(headerUserAgent) != userAgent {
			t.Errorf("%s: the next request's User-Agent is %q", tt.name, next.Header.Get(headerUserAgent))
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = c.newRequest(ctx, body, ProtocolV1, CompressionSnappy, 0) }); n > 5 {
		t.Errorf("a request costs %v allocations, want at most 5", n)
	}
}
