package prwmetric

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// retryV2After is how long an exporter whose receiver refused 2.0 stays on
// 1.0 before trying 2.0 again.
const retryV2After = time.Hour

// negotiation is the protocol an exporter currently speaks.
type negotiation struct {
	configured Protocol

	mu sync.Mutex
	// v1Until is set while a 2.0 exporter speaks 1.0 after a refusal.
	v1Until time.Time
	warned  bool
}

func (n *negotiation) current(now time.Time) Protocol {
	if n.configured != ProtocolV2 {
		return n.configured
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if now.Before(n.v1Until) {
		return ProtocolV1
	}
	return ProtocolV2
}

// fallBack records that the receiver refused 2.0 and reports whether this
// is the first time, which is worth a warning; later refusals, after each
// hourly retry, are not news.
func (n *negotiation) fallBack(now time.Time) (first bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.v1Until = now.Add(retryV2After)
	first = !n.warned
	n.warned = true
	return first
}

// refusesV2 reports whether err says the receiver does not speak 2.0.
func refusesV2(err error) bool {
	var we *WriteError
	return errors.Is(err, errNoWrittenHeaders) ||
		errors.As(err, &we) && we.StatusCode == http.StatusUnsupportedMediaType
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
	var we *WriteError
	if !errors.As(err, &we) || we.StatusCode < 400 {
		return false
	}
	return we.refusesNativeHistograms()
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
	err := fmt.Errorf("prwmetric: %d custom-bucket native histograms not sent: the receiver speaks only Remote Write 1.0; add WithClassicHistograms to send classic series as well", n)
	e.cfg.failureLogger().Warn(err.Error())
	return err
}
