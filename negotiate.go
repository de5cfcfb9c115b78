package prwmetric

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// refusalRetryAfter is how long an exporter whose receiver refused 2.0 (or
// zstd) stays on 1.0 (or snappy) before trying again.
const refusalRetryAfter = time.Hour

// negotiation is what an exporter currently speaks: the configured
// protocol and compression, or 1.0 and snappy for an hour after the
// receiver refused them.
type negotiation struct {
	configured  Protocol
	compression Compression
	// now is the clock of the fallbacks (time.Now when nil); tests move
	// it on by an hour.
	now func() time.Time

	v1, snappy fallback
}

// fallback remembers that the receiver refused something the exporter
// prefers.
type fallback struct {
	mu sync.Mutex
	// until is set while the exporter speaks the fallback.
	until  time.Time
	warned bool
}

func (n *negotiation) clock() time.Time {
	if n.now == nil {
		return time.Now()
	}
	return n.now()
}

func (n *negotiation) current(now time.Time) Protocol {
	if n.configured == ProtocolV2 && n.v1.active(now) {
		return ProtocolV1
	}
	return n.configured
}

func (n *negotiation) currentCompression(now time.Time) Compression {
	if n.compression == CompressionZstd && n.snappy.active(now) {
		return CompressionSnappy
	}
	return n.compression
}

func (f *fallback) active(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return now.Before(f.until)
}

// probing reports whether the exporter tries again what the receiver
// refused over an hour ago: until the receiver accepts it (accepted), or
// refuses it again.
func (f *fallback) probing(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.until.IsZero() && !now.Before(f.until)
}

// accepted records that the receiver took what it had refused.
func (f *fallback) accepted() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.until = time.Time{}
}

// concurrency is how many requests an export as proto with comp sends at
// once: one while it tries again what the receiver refused, whose first
// refusal then stops the rest (sent again at once as 1.0 with snappy), so
// that the retry costs one refused request, not one per request in flight.
func (n *negotiation) concurrency(now time.Time, proto Protocol, comp Compression, configured int) int {
	if proto == ProtocolV2 && n.v1.probing(now) || comp == CompressionZstd && n.snappy.probing(now) {
		return 1
	}
	return configured
}

// fallBack records that the receiver refused, and reports whether this is
// the first time, which is worth a warning; later refusals, after each
// hourly retry, are not news.
func (f *fallback) fallBack(now time.Time) (first bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.until = now.Add(refusalRetryAfter)
	first = !f.warned
	f.warned = true
	return first
}

// refusesV2 reports whether err says the receiver does not speak 2.0.
func refusesV2(err error) bool {
	if err == nil {
		return false
	}
	we := errorOf[*WriteError](err)
	return errors.Is(err, errNoWrittenHeaders) || we != nil && we.StatusCode == http.StatusUnsupportedMediaType
}

// refusalReason says how the receiver refused 2.0, for the warning.
func refusalReason(err error) string {
	if errors.Is(err, errNoWrittenHeaders) {
		return errNoWrittenHeaders.Error()
	}
	return "it answered 415 Unsupported Media Type"
}

// refusesNativeHistograms reports whether err is a receiver's refusal of
// native histograms, which Prometheus 2.x without
// --enable-feature=native-histograms answers with 500 "native histograms
// are disabled" (rolling back the whole request), and Mimir and Cortex
// without native histogram ingestion with 400.
func refusesNativeHistograms(err error) bool {
	we := errorOf[*WriteError](err)
	return we != nil && we.StatusCode >= 400 && we.refusesNativeHistograms()
}

func (e *WriteError) refusesNativeHistograms() bool {
	body := strings.ToLower(e.Body)
	return strings.Contains(body, "native histogram") &&
		(strings.Contains(body, "disabled") || strings.Contains(body, "not enabled"))
}

// reportSkippedByV1 warns of the custom-bucket histograms a 1.0 send left
// out, and returns the error that says so; with WithClassicHistograms the
// classic series carry the same data, and there is nothing to report.
func (e *Exporter) reportSkippedByV1(b *batch) error {
	if e.cfg.classicHistograms {
		return nil
	}
	n := 0
	for i := range b.v2 {
		if b.skippedByV1(i) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	e.tel.skippedByV1(n)
	err := fmt.Errorf("prwmetric: %d custom-bucket native histograms not sent: the receiver speaks only Remote Write 1.0; add WithClassicHistograms to send classic series as well", n)
	e.cfg.failureLogger().Warn(err.Error())
	return err
}
