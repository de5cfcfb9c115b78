package prwmetric

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric/prwmetrictest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// waits records the policy's waits instead of spending them.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return ctx.Err()
}

func TestRetryPolicy(t *testing.T) {
	status := func(code int, retryAfter time.Duration) error {
		return &WriteError{StatusCode: code, Attempts: 1, retryAfter: retryAfter}
	}
	network := &WriteError{Err: errors.New("connection refused"), Attempts: 1}
	cfg := RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond, MaxInterval: 400 * time.Millisecond, MaxElapsedTime: time.Hour}
	tests := []struct {
		name         string
		cfg          RetryConfig
		results      []error // what successive attempts return; the last repeats
		wantAttempts int
		wantErr      bool
		checkWaits   func(t *testing.T, d []time.Duration)
	}{
		{name: "disabled: one attempt on 503", cfg: RetryConfig{}, results: []error{status(503, 0)}, wantAttempts: 1, wantErr: true},
		{name: "400 never retried", cfg: cfg, results: []error{status(400, 0)}, wantAttempts: 1, wantErr: true},
		{name: "401 never retried", cfg: cfg, results: []error{status(401, 0)}, wantAttempts: 1, wantErr: true},
		{name: "413 never retried", cfg: cfg, results: []error{status(413, 0)}, wantAttempts: 1, wantErr: true},
		{name: "500 then success", cfg: cfg, results: []error{status(500, 0), nil}, wantAttempts: 2},
		{name: "network error then success", cfg: cfg, results: []error{network, nil}, wantAttempts: 2},
		{
			name: "429 honours Retry-After", cfg: cfg, results: []error{status(429, 3*time.Second), nil}, wantAttempts: 2,
			checkWaits: func(t *testing.T, d []time.Duration) {
				if len(d) != 1 || d[0] != 3*time.Second {
					t.Errorf("waits = %v, want [3s]", d)
				}
			},
		},
		{
			name: "backoff grows with jitter up to the cap", cfg: cfg,
			results: []error{status(503, 0), status(503, 0), status(503, 0), status(503, 0), nil}, wantAttempts: 5,
			checkWaits: func(t *testing.T, d []time.Duration) {
				want := []time.Duration{100, 200, 400, 400} // ms, before jitter
				if len(d) != len(want) {
					t.Fatalf("waits = %v, want %d", d, len(want))
				}
				for i, w := range want {
					hi := w * time.Millisecond
					if d[i] < hi/2 || d[i] >= hi {
						t.Errorf("wait %d = %v, want in [%v, %v)", i, d[i], hi/2, hi)
					}
				}
			},
		},
		{
			name: "gives up at max elapsed time",
			cfg:  RetryConfig{Enabled: true, InitialInterval: time.Second, MaxElapsedTime: 500 * time.Millisecond},
			// The first wait (≥ 500ms) would pass the budget.
			results: []error{status(503, 0)}, wantAttempts: 1, wantErr: true,
		},
		{
			name:    "Retry-After beyond the budget gives up",
			cfg:     RetryConfig{Enabled: true, MaxElapsedTime: time.Minute},
			results: []error{status(503, time.Hour)}, wantAttempts: 1, wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &waits{}
			p := newRetryPolicy(tt.cfg, defaultTimeout)
			p.sleep = w.sleep
			calls := 0
			err := p.run(context.Background(), func(_ context.Context, n int) error {
				if n != calls {
					t.Errorf("attempt number %d, want %d", n, calls)
				}
				r := tt.results[min(calls, len(tt.results)-1)]
				calls++
				if we, ok := r.(*WriteError); ok {
					copied := *we
					return &copied
				}
				return r
			})
			if calls != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", calls, tt.wantAttempts)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var we *WriteError
			if err != nil && (!errors.As(err, &we) || we.Attempts != tt.wantAttempts) {
				t.Errorf("error %v does not record %d attempts", err, tt.wantAttempts)
			}
			if tt.checkWaits != nil {
				tt.checkWaits(t, w.d)
			}
		})
	}
}

func TestRetryStopsAtContextDeadline(t *testing.T) {
	p := newRetryPolicy(RetryConfig{Enabled: true, InitialInterval: time.Second, MaxElapsedTime: time.Hour}, time.Hour)
	w := &waits{}
	p.sleep = w.sleep
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	calls := 0
	err := p.run(ctx, func(context.Context, int) error {
		calls++
		return &WriteError{StatusCode: 503, Attempts: 1}
	})
	if err == nil || calls != 1 || len(w.d) != 0 {
		t.Errorf("err = %v, calls = %d, waits = %v: want one attempt and no wait past the deadline", err, calls, w.d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		give string
		want time.Duration
	}{
		{give: "", want: 0},
		{give: "7", want: 7 * time.Second},
		{give: " 0 ", want: 0},
		{give: "-5", want: 0},
		{give: "soon", want: 0},
		{give: "99999999999999999999999", want: maxRetryAfter}, // beyond uint64: as far off as allowed, not "now"
		{give: "18446744073709551615", want: maxRetryAfter},
		{give: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		{give: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
		{give: now.Add(1000 * time.Hour).Format(http.TimeFormat), want: maxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := parseRetryAfter(tt.give, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

// TestExportRetries runs the policy and the client together: two 503s with
// Retry-After, then success, with Retry-Attempt headers on the retries.
func TestExportRetries(t *testing.T) {
	var mu sync.Mutex
	var attemptHeaders []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attemptHeaders = append(attemptHeaders, r.Header.Get("Retry-Attempt"))
		if len(attemptHeaders) <= 2 {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	exp, err := New(WithEndpoint(srv.URL), WithoutEnvironment(), WithRetry(RetryConfig{Enabled: true}), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	w := &waits{}
	exp.retry.sleep = w.sleep

	if err := exp.Export(context.Background(), oneGauge()); err != nil {
		t.Fatalf("Export: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(attemptHeaders, ","); got != ",1,2" {
		t.Errorf("Retry-Attempt headers = %q, want \",1,2\"", got)
	}
	if len(w.d) != 2 || w.d[0] != 2*time.Second || w.d[1] != 2*time.Second {
		t.Errorf("waits = %v, want the server's Retry-After twice", w.d)
	}
}

func TestExportRetryGivesUpWithAttempts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	exp, err := New(WithEndpoint(srv.URL), WithoutEnvironment(), WithLogger(slog.New(slog.DiscardHandler)),
		WithRetry(RetryConfig{Enabled: true, InitialInterval: minRetryInterval, MaxInterval: minRetryInterval, MaxElapsedTime: 4 * minRetryInterval}))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	w := &waits{}
	exp.retry.sleep = w.sleep
	start := time.Now()
	exp.retry.now = func() time.Time { // each wait advances the policy's clock
		w.mu.Lock()
		defer w.mu.Unlock()
		var total time.Duration
		for _, d := range w.d {
			total += d
		}
		return start.Add(total)
	}
	err = exp.Export(context.Background(), oneGauge())
	var we *WriteError
	if !errors.As(err, &we) || we.StatusCode != http.StatusBadGateway || we.Attempts < 2 {
		t.Fatalf("err = %v, want a 502 WriteError after several attempts", err)
	}
	if !strings.Contains(err.Error(), "attempts") {
		t.Errorf("error %q does not say how many attempts were made", err)
	}
}

func oneGauge() *metricdata.ResourceMetrics {
	return &metricdata.ResourceMetrics{
		Resource: resource.NewSchemaless(attribute.String("service.name", "svc")),
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope: instrumentation.Scope{Name: "test"},
			Metrics: []metricdata.Metrics{{
				Name: "temperature",
				Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{
					Attributes: attribute.NewSet(attribute.String("room", "a")),
					Time:       time.UnixMilli(1_700_000_000_123),
					Value:      21.5,
				}}},
			}},
		}},
	}
}

// TestRetryConfigValidated: settings that would retry in a burst, never, or
// past the export's timeout fail at New with the fix.
func TestRetryConfigValidated(t *testing.T) {
	ep := WithEndpoint(validEndpoint)
	for _, tt := range []struct {
		name string
		give RetryConfig
		want []string
	}{
		{name: "nanosecond intervals", give: RetryConfig{Enabled: true, InitialInterval: 1, MaxInterval: 1}, want: []string{"InitialInterval is 1ns", "MaxInterval is 1ns", "at least 10ms"}},
		{name: "negative", give: RetryConfig{Enabled: true, InitialInterval: -time.Second}, want: []string{"InitialInterval is -1s", "must not be negative"}},
		{name: "negative budget", give: RetryConfig{Enabled: true, MaxElapsedTime: -time.Second}, want: []string{"MaxElapsedTime is -1s"}},
		{name: "max below initial", give: RetryConfig{Enabled: true, InitialInterval: 2 * time.Second, MaxInterval: time.Second}, want: []string{"MaxInterval 1s is below InitialInterval 2s"}},
		{name: "first retry past the budget", give: RetryConfig{Enabled: true, InitialInterval: 10 * time.Second, MaxElapsedTime: 5 * time.Second}, want: []string{"nothing would ever be retried", "lower InitialInterval or raise MaxElapsedTime"}},
		{name: "budget past the timeout", give: RetryConfig{Enabled: true, MaxElapsedTime: time.Minute}, want: []string{"MaxElapsedTime 1m0s exceeds the export timeout 30s", "WithTimeout"}},
		{name: "durations without Enabled", give: RetryConfig{InitialInterval: time.Second}, want: []string{"Enabled is false", "Enabled: true"}},
	} {
		t.Run(tt.name, func(t *testing.T) { assertNewFails(t, []Option{ep, WithRetry(tt.give)}, append(tt.want, "WithRetry")) })
	}
	for _, ok := range []RetryConfig{{}, {Enabled: true}, {Enabled: true, InitialInterval: minRetryInterval}, {Enabled: true, MaxElapsedTime: defaultTimeout}} {
		if _, err := New(ep, WithRetry(ok)); err != nil {
			t.Errorf("New(WithRetry(%+v)) = %v, want success", ok, err)
		}
	}
}

// TestRetryAfterBeyondRangeBacksOff: a Retry-After too large to parse is a
// request to stay away, not to retry at once.
func TestRetryAfterBeyondRangeBacksOff(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	srv.RespondWith(prwmetrictest.Always, prwmetrictest.Response{Status: http.StatusServiceUnavailable, RetryAfter: "99999999999999999999999"})
	exp := newTestExporter(t, srv, pinned(WithRetry(RetryConfig{Enabled: true, MaxElapsedTime: 2 * time.Second}), WithLogger(discardLogger()))...)
	err := exp.Export(t.Context(), counterData(1))
	var we *WriteError
	if !errors.As(err, &we) || we.Attempts != 1 {
		t.Fatalf("Export = %v, want one attempt: the server asked to wait past the budget", err)
	}
	if n := srv.RequestCount(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestRetryNeverRepeatsSchemeMismatch: an https endpoint served by plain
// HTTP fails the same way every time (mayHaveArrived knows it never left);
// WithRetry must not spend its budget repeating it.
func TestRetryNeverRepeatsSchemeMismatch(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	endpoint := "https://" + strings.TrimPrefix(srv.URL, "http://") + "/api/v1/write"
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(discardLogger()),
		WithRetry(RetryConfig{Enabled: true, InitialInterval: minRetryInterval, MaxInterval: minRetryInterval, MaxElapsedTime: time.Second}))...)
	err := exp.Export(t.Context(), counterData(1))
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export = %v, want a *WriteError", err)
	}
	if we.Attempts != 1 {
		t.Errorf("a scheme mismatch (%v) was tried %d times, want once: it can never succeed", we.Err, we.Attempts)
	}
}

// TestTransportErrorsRetriedAndArrived: one classification (failsAlways)
// decides both what WithRetry repeats and what may have been stored:
// errors that fail the same way on every attempt are neither retried nor
// counted as possibly stored; a failed dial never left but is retried; a
// connection lost after sending is both.
func TestTransportErrorsRetriedAndArrived(t *testing.T) {
	for _, tt := range []struct {
		name               string
		err                error
		retried, mayArrive bool
	}{
		{name: "scheme mismatch", err: http.ErrSchemeMismatch},
		{name: "not TLS", err: tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}},
		{name: "client certificate required", err: &net.OpError{Op: "remote error", Err: tls.AlertError(116)}},
		{name: "unknown authority", err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}},
		{name: "bare unknown authority", err: x509.UnknownAuthorityError{}},
		{name: "hostname", err: x509.HostnameError{Host: "rw.example"}},
		{name: "redirect loop", err: errTooManyRedirects},
		{name: "bad Location", err: errBadLocation},
		{name: "not sent", err: &requestNotSent{errors.New("secret file unreadable")}},
		{name: "token", err: &tokenError{msg: "token endpoint answered 500"}},
		{name: "dial", err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}, retried: true},
		{name: "reset", err: &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, retried: true, mayArrive: true},
		{name: "EOF", err: io.ErrUnexpectedEOF, retried: true, mayArrive: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			we := &WriteError{Err: tt.err, Attempts: 1}
			if got := we.retryable(t.Context()); got != tt.retried {
				t.Errorf("retryable = %v, want %v", got, tt.retried)
			}
			if got := mayHaveArrived(we); got != tt.mayArrive {
				t.Errorf("mayHaveArrived = %v, want %v", got, tt.mayArrive)
			}
		})
	}
}
