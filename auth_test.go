package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAuthHeaders(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		give []Option
		// want maps header names to their exact values; "" means absent.
		want map[string]string
	}{
		{
			name: "none",
			want: map[string]string{"Authorization": ""},
		},
		{
			name: "basic",
			give: []Option{WithBasicAuth("alice", "pa:ss wörd")},
			want: map[string]string{"Authorization": basicHeader("alice", "pa:ss wörd")},
		},
		{
			name: "basic with empty password",
			give: []Option{WithBasicAuth("alice", "")},
			want: map[string]string{"Authorization": basicHeader("alice", "")},
		},
		{
			name: "basic from file, trailing newline trimmed",
			give: []Option{WithBasicAuthPasswordFile("alice", writeFile(t, dir, "pw", " secret with spaces \n"))},
			want: map[string]string{"Authorization": basicHeader("alice", " secret with spaces ")},
		},
		{
			name: "bearer",
			give: []Option{WithBearerToken("tok-123")},
			want: map[string]string{"Authorization": "Bearer tok-123"},
		},
		{
			name: "bearer from file, white space trimmed",
			give: []Option{WithBearerTokenFile(writeFile(t, dir, "token", "  tok-from-file\r\n"))},
			want: map[string]string{"Authorization": "Bearer tok-from-file"},
		},
		{
			name: "tenant header",
			give: []Option{WithHeaders(map[string]string{"X-Scope-OrgID": "tenant-1"})},
			want: map[string]string{"X-Scope-OrgID": "tenant-1", "Authorization": ""},
		},
		{
			name: "custom headers with basic auth",
			give: []Option{WithBasicAuth("alice", "pw"), WithHeaders(map[string]string{"X-Scope-OrgID": "tenant-2", "x-custom-thing": "v 1"})},
			want: map[string]string{"Authorization": basicHeader("alice", "pw"), "X-Scope-OrgID": "tenant-2", "X-Custom-Thing": "v 1"},
		},
		{
			name: "custom headers with bearer",
			give: []Option{WithBearerToken("tok"), WithHeaders(map[string]string{"X-Scope-OrgID": "tenant-3"})},
			want: map[string]string{"Authorization": "Bearer tok", "X-Scope-OrgID": "tenant-3"},
		},
		{
			name: "Authorization as a custom header",
			give: []Option{WithHeaders(map[string]string{"Authorization": "Custom abc"})},
			want: map[string]string{"Authorization": "Custom abc"},
		},
		{
			name: "last basic option wins",
			give: []Option{WithBasicAuthPasswordFile("bob", filepath.Join(dir, "missing")), WithBasicAuth("alice", "pw")},
			want: map[string]string{"Authorization": basicHeader("alice", "pw")},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, rec := newReceiver(t, http.StatusNoContent, "")
			exp := newExporter(t, append(pinned(WithEndpoint(endpoint)), tt.give...)...)
			if err := exp.Export(t.Context(), counterData(3)); err != nil {
				t.Fatalf("Export: %v", err)
			}
			got := rec.only(t)
			for name, want := range tt.want {
				v := got.Header.Values(name)
				switch {
				case want == "" && len(v) != 0:
					t.Errorf("%s = %q, want absent", name, v)
				case want != "" && (len(v) != 1 || v[0] != want):
					t.Errorf("%s = %q, want exactly [%q]", name, v, want)
				}
			}
			// Authentication never changes what is sent.
			if diff := cmp.Diff([]series{counterSeries(3)}, got.Series); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBasicAuthPasswordFileRotation rotates the password file between
// exports: each request carries the file's content at that moment.
func TestBasicAuthPasswordFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "password", "first\n")
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithBasicAuthPasswordFile("alice", path))...)

	var want []string
	for _, content := range []string{"first\n", "second\r\n", "third"} {
		writeFile(t, dir, "password", content)
		if err := exp.Export(t.Context(), counterData(1)); err != nil {
			t.Fatalf("Export with password file %q: %v", content, err)
		}
		want = append(want, basicHeader("alice", strings.TrimRight(content, "\r\n")))
	}
	var got []string
	for _, r := range rec.all() {
		got = append(got, r.Header.Get("Authorization"))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Authorization per request (-want +got):\n%s", diff)
	}
}

// TestBearerTokenFileRotation is the Kubernetes case: the token file is
// replaced while the exporter runs.
func TestBearerTokenFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "token", "tok-1\n")
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithBearerTokenFile(path))...)

	for _, content := range []string{"tok-1\n", "tok-2", " tok-3 \n"} {
		// Replace the file the way Kubernetes does: a new file renamed
		// over the old one.
		tmp := writeFile(t, dir, "token.new", content)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		if err := exp.Export(t.Context(), counterData(1)); err != nil {
			t.Fatalf("Export: %v", err)
		}
	}
	var got []string
	for _, r := range rec.all() {
		got = append(got, r.Header.Get("Authorization"))
	}
	if diff := cmp.Diff([]string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-3"}, got); diff != "" {
		t.Errorf("Authorization per request (-want +got):\n%s", diff)
	}
}

// TestCredentialFileProblemsFailTheExport: a missing or empty file fails
// that export (nothing is sent without the credential) and the next export
// recovers once the file is back.
func TestCredentialFileProblemsFailTheExport(t *testing.T) {
	for _, tt := range []struct {
		name    string
		file    string // content; "" with missing means the file is absent
		missing bool
		opt     func(path string) Option
		want    string
	}{
		{name: "password file missing", missing: true, opt: func(p string) Option { return WithBasicAuthPasswordFile("alice", p) }, want: "WithBasicAuthPasswordFile"},
		{name: "token file missing", missing: true, opt: WithBearerTokenFile, want: "WithBearerTokenFile"},
		{name: "token file too large", file: strings.Repeat("t", maxSecretFileBytes+1), opt: WithBearerTokenFile, want: "larger than 64 KiB"},
		{name: "password file too large", file: strings.Repeat("p", maxSecretFileBytes+1), opt: func(p string) Option { return WithBasicAuthPasswordFile("alice", p) }, want: "larger than 64 KiB"},
		{name: "token file empty", file: " \n", opt: WithBearerTokenFile, want: "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "credential")
			if !tt.missing {
				writeFile(t, dir, "credential", tt.file)
			}
			endpoint, rec := newReceiver(t, http.StatusNoContent, "")
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger), tt.opt(path))...)

			err := exp.Export(t.Context(), counterData(1))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Export = %v, want an error about the %s", err, tt.want)
			}
			var we *WriteError
			if !errors.As(err, &we) || we.StatusCode != 0 || we.Series != 1 {
				t.Errorf("Export error = %#v, want a *WriteError with no status and 1 series", err)
			}
			if n := rec.count(); n != 0 {
				t.Errorf("server received %d requests without the credential, want none", n)
			}
			if n := len(logs.all()); n != 1 {
				t.Errorf("logged %d records, want 1 warning", n)
			}

			writeFile(t, dir, "credential", "restored\n")
			if err := exp.Export(t.Context(), counterData(2)); err != nil {
				t.Fatalf("Export after restoring the file: %v", err)
			}
			if n := rec.count(); n != 1 {
				t.Errorf("server received %d requests after restoring the file, want 1", n)
			}
		})
	}
}

// TestOriginTransportLeavesRequestAlone: a RoundTripper must not modify
// the request it is given.
func TestOriginTransportLeavesRequestAlone(t *testing.T) {
	endpoint, _ := newReceiver(t, http.StatusNoContent, "")
	c, err := newConfig([]Option{WithEndpoint(endpoint), WithBearerToken("tok"), WithHeaders(map[string]string{"X-Scope-OrgID": "t"})})
	if err != nil {
		t.Fatal(err)
	}
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	rt := wrapTransport(base, c, &secrets{})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if len(req.Header) != 0 {
		t.Errorf("caller's request headers = %v, want untouched (empty)", req.Header)
	}
}

// TestRoundTripperHooks checks the order of the transport hooks: user hooks in
// the order given, after the exporter's headers and credentials, and the
// authenticator innermost, seeing the final request.
func TestRoundTripperHooks(t *testing.T) {
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	var order []string
	hook := func(name string) func(http.RoundTripper) http.RoundTripper {
		return func(next http.RoundTripper) http.RoundTripper {
			return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				order = append(order, name+" sees "+r.Header.Get("X-Scope-OrgID")+"/"+r.Header.Get("Content-Encoding"))
				r = r.Clone(r.Context())
				r.Header.Add("X-Hooks", name)
				return next.RoundTrip(r)
			})
		}
	}
	signer := func(next http.RoundTripper) (http.RoundTripper, error) {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			order = append(order, "signer sees "+strings.Join(r.Header.Values("X-Hooks"), ","))
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Signed")
			return next.RoundTrip(r)
		}), nil
	}
	exp := newExporter(t, pinned(WithEndpoint(endpoint),
		WithHeaders(map[string]string{"X-Scope-OrgID": "t1"}),
		WithRoundTripper(hook("first")), WithRoundTripper(nil), WithRoundTripper(hook("second")),
		WithAuthenticator("test.WithSigner", signer))...)
	if err := exp.Export(t.Context(), counterData(3)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	want := []string{"first sees t1/snappy", "second sees t1/snappy", "signer sees first,second"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("hook order (-want +got):\n%s", diff)
	}
	got := rec.only(t)
	if a := got.Header.Get("Authorization"); a != "Signed" {
		t.Errorf("Authorization = %q, want the authenticator's", a)
	}
	if diff := cmp.Diff([]series{counterSeries(3)}, got.Series); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

func TestAuthenticatorProblemsFailNew(t *testing.T) {
	ep := WithEndpoint(validEndpoint)
	ok := func(next http.RoundTripper) (http.RoundTripper, error) { return next, nil }
	for _, tt := range []struct {
		name string
		give []Option
		want []string
	}{
		{name: "error", give: []Option{ep, WithAuthenticator("x.WithThing", func(http.RoundTripper) (http.RoundTripper, error) {
			return nil, errors.New("no region: set Region")
		})}, want: []string{"x.WithThing", "no region: set Region"}},
		{name: "nil transport", give: []Option{ep, WithAuthenticator("x.WithThing", func(http.RoundTripper) (http.RoundTripper, error) { return nil, nil })}, want: []string{"x.WithThing"}},
		{name: "with basic auth", give: []Option{ep, WithBasicAuth("alice", secretPassword), WithAuthenticator("x.WithThing", ok)}, want: []string{"x.WithThing", "WithBasicAuth"}},
		{name: "with bearer", give: []Option{ep, WithBearerToken(secretToken), WithAuthenticator("x.WithThing", ok)}, want: []string{"x.WithThing", "WithBearerToken"}},
		{name: "with Authorization header", give: []Option{ep, WithHeaders(map[string]string{"Authorization": secretToken}), WithAuthenticator("x.WithThing", ok)}, want: []string{"x.WithThing", "Authorization"}},
	} {
		t.Run(tt.name, func(t *testing.T) { assertNewFails(t, tt.give, tt.want) })
	}
}

// TestCredentialFileNeverHangsOrExhaustsMemory points the credential files
// at what must never be read: a FIFO without a writer (reading would block
// forever), a device that never ends, a directory. Each export fails within
// its timeout, naming the option and the path, and never the contents.
func TestCredentialFileNeverHangsOrExhaustsMemory(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, tt := range []struct {
		name string
		path string
		opt  func(path string) Option
		want string
	}{
		{name: "token FIFO without writer", path: fifo, opt: WithBearerTokenFile, want: "not a regular file"},
		{name: "password FIFO without writer", path: fifo, opt: func(p string) Option { return WithBasicAuthPasswordFile("alice", p) }, want: "not a regular file"},
		{name: "token from /dev/zero", path: "/dev/zero", opt: WithBearerTokenFile, want: "not a regular file"},
		{name: "token directory", path: dir, opt: WithBearerTokenFile, want: "not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, rec := newReceiver(t, http.StatusNoContent, "")
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithTimeout(2*time.Second), tt.opt(tt.path))...)
			start := time.Now()
			err := exp.Export(t.Context(), counterData(1))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("Export = %v, want an error naming the path and %q", err, tt.want)
			}
			if elapsed := time.Since(start); elapsed >= 2*time.Second {
				t.Errorf("Export took %v, past its timeout", elapsed)
			}
			if n := rec.count(); n != 0 {
				t.Errorf("server received %d requests, want none", n)
			}
		})
	}
}

// TestHeaderFunc: per-request headers for the multi-tenant case, under
// WithHeaders' rules, checked at each request.
func TestHeaderFunc(t *testing.T) {
	tenant := "team-a"
	fn := func(ctx context.Context) (map[string]string, error) {
		if ctx == nil {
			return nil, errors.New("no context")
		}
		return map[string]string{"X-Scope-OrgID": tenant}, nil
	}
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithHeaders(map[string]string{"X-Scope-OrgID": "static", "X-Other": "o"}), WithHeaderFunc(fn))...)
	for _, give := range []string{"team-a", "team-b"} {
		tenant = give
		if err := exp.Export(t.Context(), counterData(1)); err != nil {
			t.Fatalf("Export: %v", err)
		}
	}
	var got []string
	for _, r := range rec.all() {
		got = append(got, r.Header.Get("X-Scope-OrgID")+"/"+r.Header.Get("X-Other"))
	}
	if diff := cmp.Diff([]string{"team-a/o", "team-b/o"}, got); diff != "" {
		t.Errorf("headers per request (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name string
		give map[string]string
		err  error
		opts []Option
		want string
	}{
		{name: "function error", err: errors.New("tenant unknown"), want: "WithHeaderFunc: tenant unknown"},
		{name: "header line as a name", give: map[string]string{"Authorization: Bearer " + secretToken: "x"}, want: "not a valid HTTP header name"},
		{name: "newline in a value", give: map[string]string{"X-Api-Key": secretToken + "\n"}, want: `the value of header "X-Api-Key"`},
		{name: "protocol header", give: map[string]string{"Content-Encoding": "gzip"}, want: "set by the remote-write protocol"},
		{name: "Authorization with basic auth", give: map[string]string{"Authorization": "Bearer " + secretToken}, opts: []Option{WithBasicAuth("alice", secretPassword)}, want: "another authentication option"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, rec := newReceiver(t, http.StatusNoContent, "")
			fn := func(context.Context) (map[string]string, error) { return tt.give, tt.err }
			exp := newExporter(t, pinned(append([]Option{WithEndpoint(endpoint), WithLogger(discardLogger()), WithHeaderFunc(fn)}, tt.opts...)...)...)
			err := exp.Export(t.Context(), counterData(1))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Export = %v, want an error saying %q", err, tt.want)
			}
			for _, s := range []string{secretToken, secretPassword} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q leaks %q", err, s)
				}
			}
			if n := rec.count(); n != 0 {
				t.Errorf("%d requests sent, want none", n)
			}
		})
	}

	t.Run("secret value echoed by the receiver", func(t *testing.T) {
		srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "bad key %s", r.Header.Get("X-Api-Key"))
		}))
		exp := newExporter(t, pinned(WithEndpoint(srv.URL), WithLogger(discardLogger()), WithHeaderFunc(func(context.Context) (map[string]string, error) {
			return map[string]string{"X-Api-Key": secretToken}, nil
		}))...)
		err := exp.Export(t.Context(), counterData(1))
		if err == nil || strings.Contains(err.Error(), secretToken) || !strings.Contains(err.Error(), "bad key "+redactedText) {
			t.Errorf("Export = %v, want the echoed key redacted", err)
		}
	})
	t.Run("nil function", func(t *testing.T) {
		assertNewFails(t, []Option{WithEndpoint(validEndpoint), WithHeaderFunc(nil)}, []string{"WithHeaderFunc(nil)"})
	})
}

// TestNotSentByAnAuthenticator: an authenticator's failure marked NotSent
// stopped the request before it left, the same way each time: WithRetry
// does not repeat it, and the telemetry counts no bytes sent. The same
// failure unmarked may have sent part of the request, so it is retried.
func TestNotSentByAnAuthenticator(t *testing.T) {
	for _, marked := range []bool{true, false} {
		t.Run(fmt.Sprintf("marked=%v", marked), func(t *testing.T) {
			endpoint, rec := newReceiver(t, http.StatusNoContent, "")
			var calls atomic.Int64
			failing := func(next http.RoundTripper) (http.RoundTripper, error) {
				return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
					calls.Add(1)
					_ = r.Body.Close()
					err := errors.New("test: no credentials")
					if marked {
						err = NotSent(err)
					}
					return nil, err
				}), nil
			}
			withTelemetry, collect := selfTelemetry(t)
			exp := newExporter(t, pinned(WithEndpoint(endpoint), withTelemetry,
				WithRetry(RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsedTime: 200 * time.Millisecond}),
				WithAuthenticator("test.WithFailing", failing))...)
			err := exp.Export(t.Context(), counterData(3))
			var we *WriteError
			if !errors.As(err, &we) || !strings.Contains(err.Error(), "test: no credentials") {
				t.Fatalf("Export = %v, want a *WriteError with the authenticator's message", err)
			}
			if n := len(rec.all()); n != 0 {
				t.Fatalf("the receiver got %d requests", n)
			}
			bytes := sumOf(t, collect(), "prwmetric.exporter.sent_bytes")
			if marked {
				if we.Attempts != 1 || calls.Load() != 1 {
					t.Errorf("tried %d times (%d calls), want once", we.Attempts, calls.Load())
				}
				if bytes != 0 {
					t.Errorf("sent_bytes = %d for a request that never left", bytes)
				}
			} else if we.Attempts < 2 || bytes == 0 {
				t.Errorf("unmarked: tried %d times, %d bytes counted; want retries, and bytes (part may have left)", we.Attempts, bytes)
			}
		})
	}
	if NotSent(nil) != nil {
		t.Error("NotSent(nil) is not nil")
	}
}
