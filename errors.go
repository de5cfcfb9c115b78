package prwmetric

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// WriteError reports a remote-write request that did not succeed. Export
// returns it (wrapped or joined with other errors; use errors.As).
type WriteError struct {
	// Endpoint is the URL the request went to, without credentials.
	Endpoint string
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// Body is the start (at most 1 KiB) of the response body.
	Body string
	// Series is how many series of the export were not delivered: those of
	// the failed requests and of the requests not started after a failure
	// that stopped them (any but a 400 or 422, which refuses one request's
	// data only). They are dropped: cumulative values catch up on the next
	// success.
	Series int
	// Delivered is how many series of the same export were delivered: by
	// its other requests, when it was split into several, and those a
	// Remote Write 2.0 receiver's 400 says it wrote all the same.
	Delivered int
	// Err is the transport error when no response arrived.
	Err error
	// Attempts is how many times the request was sent: 1 unless WithRetry
	// is enabled.
	Attempts int

	retryAfter time.Duration
	// written is what a 2.0 receiver wrote of the request all the same:
	// Prometheus commits what it can of a request before it answers 400,
	// and says how much in the written counts.
	written partCounts
}

// Error describes the failure without any credentials.
func (e *WriteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "prwmetric: remote write to %s: ", e.Endpoint)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "server answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.Body != "" {
			fmt.Fprintf(&b, ": %s", e.Body)
		}
	} else {
		fmt.Fprintf(&b, "%v", e.Err)
	}
	fmt.Fprintf(&b, " (%d series dropped%s)", e.Series, attemptsText(e.Attempts))
	if h := e.hint(); h != "" {
		b.WriteString("; " + h)
	}
	return b.String()
}

// hint says which setting most likely causes a refusal, as New's errors
// always do; "" when the status says nothing about the configuration.
func (e *WriteError) hint() string {
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return "check the credentials: WithBasicAuth, WithBearerToken(File), WithOAuth2, WithHeaders or the authentication module in use"
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return "check the endpoint's path: /api/v1/write for Prometheus and VictoriaMetrics, /api/v1/push for Mimir and Cortex"
	case http.StatusRequestEntityTooLarge:
		return "the receiver takes smaller requests: lower WithMaxRequestBytes or WithMaxSeriesPerRequest"
	case http.StatusUnsupportedMediaType:
		return "the receiver does not take this protocol: check WithProtocol"
	}
	return ""
}

// Unwrap returns the transport error, so that errors.Is(err,
// context.DeadlineExceeded) works.
func (e *WriteError) Unwrap() error { return e.Err }

// errorOf returns the T in err's chain, or the zero T. Without an error it
// costs nothing: errors.As would move its target to the heap on every
// request of a healthy export.
func errorOf[T error](err error) T {
	if err == nil {
		var zero T
		return zero
	}
	var t T // on the heap, once errors.As has its address
	errors.As(err, &t)
	return t
}

// attemptsText is "after 3 attempts" for the error text, empty for one.
func attemptsText(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" after %d attempts", n)
}

// PartialWriteError reports that a Remote Write 2.0 receiver accepted an
// export's requests but wrote fewer samples, histograms or exemplars than
// they carried (it rejected some, e.g. as out of order or invalid). The
// rest of the export was delivered.
type PartialWriteError struct {
	// Endpoint is the URL the requests went to, without credentials.
	Endpoint string
	// Sent and Written count the samples, histograms and exemplars of the
	// requests concerned.
	SamplesSent, SamplesWritten       int
	HistogramsSent, HistogramsWritten int
	ExemplarsSent, ExemplarsWritten   int
}

// Error gives the counts.
func (e *PartialWriteError) Error() string {
	return fmt.Sprintf("prwmetric: remote write to %s: the receiver wrote %d of %d samples, %d of %d histograms, %d of %d exemplars",
		e.Endpoint, e.SamplesWritten, e.SamplesSent, e.HistogramsWritten, e.HistogramsSent, e.ExemplarsWritten, e.ExemplarsSent)
}

func (e *PartialWriteError) add(sent, written partCounts) {
	e.SamplesSent += sent.samples
	e.SamplesWritten += written.samples
	e.HistogramsSent += sent.histograms
	e.HistogramsWritten += written.histograms
	e.ExemplarsSent += sent.exemplars
	e.ExemplarsWritten += written.exemplars
}

// NotSent marks err as the failure of a WithAuthenticator transport that
// stopped a request before any byte of it left, and would stop it again:
// no region to sign for, credentials or a token that could not be had. The
// exporter then knows the receiver holds nothing of the request: WithRetry
// does not repeat it, its bytes do not count as sent in the telemetry, and
// its series are not taken as maybe stored. The message is err's; a nil err
// stays nil. A transport returns it from RoundTrip, after closing the
// request's body.
func NotSent(err error) error {
	if err == nil {
		return nil
	}
	return &requestNotSent{err}
}
