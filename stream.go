package prwmetric

import (
	"context"
	"time"
)

// An export's conversion and its requests overlap: while the conversion
// goes on, each request is cut as soon as its records are converted, and
// the workers encode, compress and send it while the conversion converts
// the rest. On two cores that takes about the conversion's time off the
// export. Each worker reads the batch through the view published with its
// request (batchView): the conversion only appends.
//
// Not for every export: a 2.0 exporter cuts after the conversion (it
// numbers the symbols of whole requests, and may fall back to 1.0), and
// WithInitialZero sends the zeros the conversion finds before any of the
// export's samples.

// stream cuts an export's requests during its conversion.
type stream struct {
	run *sending
	// now and comp are what the send began with.
	now  time.Time
	comp Compression
	cut  cutter
	// at is the number of records at which the conversion calls advance
	// next: every streamStep records, not on each.
	at        int
	published int
}

// streamStep is how many records the conversion adds between two looks
// at the cut: a small part of a request, so a worker gets its request
// soon after it is full.
const streamStep = 512

// startStream starts sending b's requests as the conversion cuts them, or
// returns nil when this export cuts after its conversion.
func (e *Exporter) startStream(ctx context.Context, b *batch) *stream {
	if e.cfg.protocol == ProtocolV2 || e.series.zeros != nil {
		return nil
	}
	now := e.negotiation.clock()
	comp := e.negotiation.currentCompression(now)
	st := &stream{
		run: e.startSending(ctx, b, &e.buffers, ProtocolV1, comp, e.negotiation.concurrency(now, ProtocolV1, comp, e.cfg.maxConcurrent)),
		now: now, comp: comp,
		cut: cutter{maxSeries: e.cfg.maxSeries, maxBytes: e.cfg.maxBytes, cuts: e.buffers.cuts[:0]},
		at:  streamStep,
	}
	st.cut.reset(b, 0)
	b.stream = st
	return st
}

// advance publishes the requests the records converted so far fill.
func (st *stream) advance(b *batch) {
	st.cut.advance(b, len(b.records))
	st.publish()
	st.at = len(b.records) + streamStep
}

func (st *stream) publish() {
	for ; st.published < len(st.cut.cuts); st.published++ {
		st.run.publish(st.cut.cuts[st.published], v2Cut{})
	}
}

// finishStream publishes the rest of b, once converted, waits until every
// request is sent or dropped, and settles the send as Exporter.send does.
// After a conversion that failed (converted is false) it publishes nothing
// more and sends no request not yet under way: the export is dropped but
// for what already went.
func (e *Exporter) finishStream(ctx context.Context, b *batch, st *stream, converted bool) (delivered []span, err error) {
	b.stream = nil
	if converted {
		st.cut.advance(b, len(b.records))
		st.cut.finish(b)
		st.publish()
	} else {
		st.run.p.failed.Store(true)
	}
	e.buffers.cuts = st.cut.cuts
	r := st.run.wait()
	if len(b.records) == 0 && r.err == nil {
		return nil, nil
	}
	return e.settle(ctx, b, &e.buffers, r, ProtocolV1, st.comp, st.now)
}
