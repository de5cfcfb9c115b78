package prwmetric

import (
	"context"
	"errors"
	"time"
)

// send delivers b in requests within the size limits, up to
// WithMaxConcurrentRequests at once: metadata goes with the last request,
// a series larger than the byte limit alone in its own (see batch.cut).
// The first failure stops the requests not yet started (requests under way
// complete), unless it refuses one request's data only (refusesData). The
// failure reported, logged once, is a *WriteError that counts the series
// delivered and dropped: the first, unless a later one stopped the rest
// (see pipeline.fail). delivered are the records the receiver accepted, as
// sorted spans.
//
// A 2.0 exporter whose receiver refuses 2.0, or a zstd one whose receiver
// refuses zstd, sends what was not delivered again as 1.0 with snappy, and
// stays on that for a while (see WithProtocol, WithCompression).
func (e *Exporter) send(ctx context.Context, b *batch, bufs *sendBuffers) (delivered []span, err error) {
	now := e.negotiation.clock()
	proto, comp := e.negotiation.current(now), e.negotiation.currentCompression(now)
	bufs.todo = append(bufs.todo[:0], span{0, len(b.records)})
	r := e.sendAs(ctx, b, bufs, bufs.todo, proto, comp, e.negotiation.concurrency(now, proto, comp, e.cfg.maxConcurrent))
	return e.settle(ctx, b, bufs, r, proto, comp, now)
}

// settle finishes a send whose first attempt, as proto with comp, came
// back as r: a refusal of 2.0 or zstd sends the rest again as 1.0 with
// snappy; failures are logged and returned.
func (e *Exporter) settle(ctx context.Context, b *batch, bufs *sendBuffers, r sent, proto Protocol, comp Compression, now time.Time) (delivered []span, err error) {
	if len(r.delivered) > 0 {
		// What was sent is taken: a retry of it, if this was one, is over.
		if proto == ProtocolV2 && !refusesV2(r.err) {
			e.negotiation.v1.accepted()
		}
		if comp == CompressionZstd && !refusesZstd(r.err) {
			e.negotiation.snappy.accepted()
		}
	}
	switch {
	case proto == ProtocolV2 && refusesV2(r.err):
		proto = ProtocolV1
		if e.negotiation.v1.fallBack(now) {
			e.cfg.logger.Warn("prwmetric: the receiver does not speak Remote Write 2.0; sending 1.0 instead, and trying 2.0 again every hour",
				"endpoint", e.client.redacted, "reason", refusalReason(r.err))
		}
		e.tel.resending()
		r = e.resend(ctx, b, bufs, r, proto, comp)
	case comp == CompressionZstd && refusesZstd(r.err):
		refusal := r.err
		e.tel.resending()
		r = e.resend(ctx, b, bufs, r, proto, CompressionSnappy)
		// A receiver that refuses the snappy data as well refuses the
		// data, not zstd: then zstd is tried again next time.
		if !refusesZstd(r.err) && e.negotiation.snappy.fallBack(now) {
			// The status says enough: response bodies are reported
			// through WriteError only.
			var we *WriteError
			errors.As(refusal, &we)
			e.cfg.logger.Warn("prwmetric: the receiver does not take zstd; sending snappy instead, and trying zstd again every hour",
				"endpoint", e.client.redacted, "status", we.StatusCode)
		}
	}
	e.client.rebalance(now)
	b.processed = r.processed
	if r.err != nil && refusesNativeHistograms(r.err) && e.series.sendsNativeHistograms() {
		// Sent again without them (Export), not a failure yet; what was
		// delivered goes again too, and counts then.
		e.tel.discard()
		return r.delivered, r.err
	}
	e.tel.settled(context.WithoutCancel(ctx), b.zeros, r.err, r.partial)

	var errs []error
	if p := r.partial; p != nil {
		p.Endpoint = e.client.redacted
		e.cfg.failureLogger().Warn("prwmetric: the receiver wrote only part of the data",
			"endpoint", p.Endpoint,
			"samples_sent", p.SamplesSent, "samples_written", p.SamplesWritten,
			"histograms_sent", p.HistogramsSent, "histograms_written", p.HistogramsWritten,
			"exemplars_sent", p.ExemplarsSent, "exemplars_written", p.ExemplarsWritten)
		errs = append(errs, p)
	}
	if r.err != nil {
		var we *WriteError
		if errors.As(r.err, &we) {
			written := min(r.written, b.dropped(r.delivered, proto))
			we.Delivered = covered(r.delivered) + written
			we.Series = b.dropped(r.delivered, proto) - written
		}
		e.warn(r.err)
		errs = append(errs, r.err)
	}
	if proto == ProtocolV1 && !b.zeros {
		// The export's own batch reports what 1.0 leaves out; its
		// zeros are of the same series.
		errs = append(errs, e.reportSkippedByV1(b))
	}
	return r.delivered, errors.Join(errs...)
}

// dropped counts the records of b not in delivered, but for those a 1.0
// request leaves out, which reportSkippedByV1 reports.
func (b *batch) dropped(delivered []span, proto Protocol) int {
	n := len(b.records) - covered(delivered)
	if proto == ProtocolV1 && b.collectV2 {
		for _, g := range gaps(nil, delivered, len(b.records)) {
			for i := g.start; i < g.end; i++ {
				if b.skippedByV1(i) {
					n--
				}
			}
		}
	}
	return n
}

// sent is the outcome of sending some records of a batch.
type sent struct {
	delivered []span
	// err is the failure reported (see pipeline.fail); partial counts what
	// 2.0 receivers did not write of requests they accepted.
	err     error
	partial *PartialWriteError
	// written counts the series that failed requests wrote all the same
	// (a 2.0 receiver's 400 with its written counts).
	written int
	// processed: the receiver took or refused the data of every request
	// (refusesData); none went unanswered or failed otherwise.
	processed bool
}

// resend sends again, as proto with comp, what r did not deliver.
func (e *Exporter) resend(ctx context.Context, b *batch, bufs *sendBuffers, r sent, proto Protocol, comp Compression) sent {
	bufs.todo = gaps(bufs.todo[:0], r.delivered, len(b.records))
	// r.delivered lives in bufs.delivered, which sendAs reuses.
	first := append(bufs.more[:0], r.delivered...)
	bufs.more = first
	again := e.sendAs(ctx, b, bufs, bufs.todo, proto, comp, e.cfg.maxConcurrent)
	again.delivered = mergeSpans(nil, first, again.delivered) // rare: no buffer kept
	if again.partial == nil {
		again.partial = r.partial
	}
	return again
}
