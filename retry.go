package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryConfig configures WithRetry. Zero durations take the defaults; New
// refuses negative ones, intervals below 10ms, a MaxInterval below
// InitialInterval, a first retry that would come after MaxElapsedTime, and
// a MaxElapsedTime beyond WithTimeout.
type RetryConfig struct {
	// Enabled turns retrying on. Off by default: the series of a failed
	// request are dropped and the next cumulative export catches up.
	Enabled bool
	// InitialInterval is the wait before the first retry (default 500ms, at
	// least 10ms); it doubles, with jitter, after each attempt.
	InitialInterval time.Duration
	// MaxInterval caps the wait between attempts (default 5s, or
	// InitialInterval when that is longer). A longer Retry-After from the
	// server is honoured up to MaxElapsedTime.
	MaxInterval time.Duration
	// MaxElapsedTime bounds the retries of one request (default and at
	// most: the export's timeout, WithTimeout): no retry starts that would
	// wait past it. An attempt under way is bounded by the export's
	// timeout and context deadline, as without retries, not cut at it.
	MaxElapsedTime time.Duration
}

// minRetryInterval is the shortest wait between attempts New accepts: less
// is a burst of requests at a receiver that is failing already.
const minRetryInterval = 10 * time.Millisecond

// withDefaults fills in the zero durations; timeout is the export's.
func (r RetryConfig) withDefaults(timeout time.Duration) RetryConfig {
	if r.InitialInterval <= 0 {
		r.InitialInterval = 500 * time.Millisecond
	}
	if r.MaxInterval <= 0 {
		r.MaxInterval = max(5*time.Second, r.InitialInterval)
	}
	if r.MaxElapsedTime <= 0 {
		r.MaxElapsedTime = timeout
	}
	return r
}

// validate reports the settings that would retry wrongly or never, with
// the fix; timeout is the export's, set by timeoutFrom (WithTimeout or its
// variable).
func (r RetryConfig) validate(timeout time.Duration, timeoutFrom string) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("prwmetric: WithRetry: "+format, args...))
	}
	if !r.Enabled {
		if r != (RetryConfig{}) {
			add("durations are set but Enabled is false, so nothing is retried: set Enabled: true, or leave WithRetry out")
		}
		return errs
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"InitialInterval", r.InitialInterval}, {"MaxInterval", r.MaxInterval}, {"MaxElapsedTime", r.MaxElapsedTime}} {
		switch {
		case d.v < 0:
			add("%s is %v: durations must not be negative; use 0 for the default", d.name, d.v)
		case d.v > 0 && d.v < minRetryInterval && d.name != "MaxElapsedTime":
			add("%s is %v: retrying that often floods a failing receiver; use at least %v (or 0 for the default)", d.name, d.v, minRetryInterval)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if r.MaxInterval > 0 && r.MaxInterval < r.InitialInterval {
		add("MaxInterval %v is below InitialInterval %v: raise MaxInterval, or leave it 0", r.MaxInterval, r.InitialInterval)
	}
	eff := r.withDefaults(timeout)
	if r.MaxElapsedTime > timeout {
		add("MaxElapsedTime %v exceeds the export timeout %v (%s), which ends every export first: lower MaxElapsedTime or raise %s", r.MaxElapsedTime, timeout, timeoutFrom, timeoutFrom)
	} else if eff.InitialInterval/2 >= eff.MaxElapsedTime {
		// jitter waits at least half the interval.
		add("the first retry waits at least %v, past MaxElapsedTime %v, so nothing would ever be retried: lower InitialInterval or raise MaxElapsedTime", eff.InitialInterval/2, eff.MaxElapsedTime)
	}
	return errs
}

// retryPolicy decides whether and when to repeat an attempt; the attempt
// itself is client.attempt.
type retryPolicy struct {
	cfg RetryConfig
	// sleep waits for d or until ctx is done; replaced in tests to observe
	// the waits without spending them.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

func newRetryPolicy(cfg RetryConfig, timeout time.Duration) retryPolicy {
	return retryPolicy{cfg: cfg.withDefaults(timeout), sleep: sleepContext, now: time.Now}
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run calls attempt with attempt numbers 0, 1, … until it succeeds, fails
// for good, or the budget is spent.
func (p retryPolicy) run(ctx context.Context, attempt func(ctx context.Context, n int) error) error {
	if !p.cfg.Enabled {
		return attempt(ctx, 0)
	}
	start := p.now()
	interval := p.cfg.InitialInterval
	for n := 0; ; n++ {
		err := attempt(ctx, n)
		var we *WriteError
		if err == nil || !errors.As(err, &we) || !we.retryable(ctx) {
			return withAttempts(err, n+1)
		}
		wait := jitter(interval)
		if we.retryAfter > wait {
			wait = we.retryAfter
		}
		deadline := start.Add(p.cfg.MaxElapsedTime)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if p.now().Add(wait).After(deadline) {
			return withAttempts(err, n+1)
		}
		if err := p.sleep(ctx, wait); err != nil {
			return withAttempts(we, n+1)
		}
		if interval > p.cfg.MaxInterval/2 {
			interval = p.cfg.MaxInterval // doubling would pass it, or overflow
		} else {
			interval *= 2
		}
	}
}

// withAttempts records the attempt count in a WriteError, so that the
// warning and the error say how often the request was tried.
func withAttempts(err error, n int) error {
	var we *WriteError
	if errors.As(err, &we) {
		we.Attempts = n
	}
	return err
}

// jitter spreads retries of many exporters over [d/2, d) so that they do
// not hit a recovering backend in lockstep.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half)
}

// retryable: 5xx and 429 may succeed later; other 4xx never will. A network
// error may, unless it is our own deadline or cancellation, or one that
// fails the same way on every attempt (failsAlways: a certificate or TLS
// handshake that fails, an https endpoint served in plain HTTP, a redirect
// loop, a request the exporter's own layers or a WithAuthenticator
// transport stopped, NotSent).
func (e *WriteError) retryable(ctx context.Context) bool {
	switch {
	case e.refusesNativeHistograms():
		// Refused the same way until the exporter drops them.
		return false
	case e.StatusCode == http.StatusTooManyRequests, e.StatusCode >= 500:
		return true
	case e.StatusCode != 0:
		return false
	}
	return !failsAlways(e.Err) && ctx.Err() == nil
}

// maxRetryAfter bounds a server's Retry-After so that arithmetic on it cannot
// overflow; MaxElapsedTime cuts far shorter anyway.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads delay-seconds or an HTTP-date; 0 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// Beyond uint64 (ErrRange) is further away still, not 0.
		if err != nil || secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		switch {
		case d < 0:
			return 0
		case d > maxRetryAfter:
			return maxRetryAfter
		}
		return d
	}
	return 0
}
