package prwmetric

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
)

// An export is converted into a batch: one small record per series,
// pointing at the series' cached labels. The batch is then cut into
// requests within the size limits, and two workers encode and compress the
// requests side by side (each compresses what it has just encoded, while
// it is in its CPU cache) for a third goroutine that sends them in order.
// At no time does the whole encoded export exist in memory: one
// uncompressed request per worker, and a few compressed ones waiting for
// their turn.

// sendBuffers are the buffers an exporter's exports reuse: the cuts, and
// each worker's uncompressed request and compression output.
type sendBuffers struct {
	cuts    []cut
	workers [sendWorkers]workerBuffers
	v2      v2Scratch
}

type workerBuffers struct {
	raw, snappy []byte
}

const (
	// sendWorkers encode and compress requests side by side.
	sendWorkers = 2
	// sendAhead is how many requests may be encoded and compressed ahead
	// of the one being sent.
	sendAhead = 4
)

// send delivers b in requests within the size limits, in order, so that a
// series' samples never overtake each other: metadata goes with the first
// request, a series larger than the byte limit alone in its own (see
// batch.cut). The first failure stops the rest: it is logged once and
// returned, as a *WriteError that counts the series delivered and dropped.
// delivered is how many records, from the first, the receiver accepted.
//
// A 2.0 exporter whose receiver refuses 2.0 sends what was not delivered
// again as 1.0, and stays on 1.0 for a while (see WithProtocol).
func (e *Exporter) send(ctx context.Context, b *batch, bufs *sendBuffers) (delivered int, err error) {
	proto := e.negotiation.current(time.Now())
	delivered, err = e.sendAs(ctx, b, bufs, 0, proto)
	if proto == ProtocolV2 && refusesV2(err) {
		proto = ProtocolV1
		if e.negotiation.fallBack(time.Now()) {
			e.cfg.logger.Warn("prwmetric: the receiver does not speak Remote Write 2.0; sending 1.0 instead, and trying 2.0 again every hour",
				"endpoint", e.client.redacted, "reason", refusalReason(err))
		}
		var more int
		more, err = e.sendAs(ctx, b, bufs, delivered, ProtocolV1)
		delivered += more
	}
	if proto == ProtocolV1 {
		err = errors.Join(err, e.reportSkippedByV1(b))
	}
	return delivered, err
}

// sendAs sends b.records[from:] in protocol proto; delivered counts from
// from.
func (e *Exporter) sendAs(ctx context.Context, b *batch, bufs *sendBuffers, from int, proto Protocol) (delivered int, err error) {
	if proto == ProtocolV2 {
		bufs.cuts = e.series.cutV2(b, from, e.cfg.maxSeries, e.cfg.maxBytes, &bufs.v2, bufs.cuts)
	} else {
		bufs.cuts = b.cut(from, e.cfg.maxSeries, e.cfg.maxBytes, bufs.cuts)
	}
	p := &pipeline{e: e, ctx: ctx, b: b, from: from, proto: proto, v2: &bufs.v2, cuts: bufs.cuts, tokens: make(chan struct{}, sendAhead)}
	for i := range p.slots {
		p.slots[i].done = make(chan struct{}, 1)
	}
	workers := min(sendWorkers, len(p.cuts))
	p.wg.Add(workers)
	for w := range workers {
		go p.work(&bufs.workers[w])
	}
	p.post()
	p.wg.Wait()
	if p.unsure.to > 0 {
		e.series.markMaybeStored(b, p.unsure.from, p.unsure.to, proto)
	}
	// Keep the buffers for the next export, unless one grew beyond what a
	// request within the byte limit needs (for an oversized series).
	keep := max(e.cfg.maxBytes, 1<<20)
	if keep < math.MaxInt/2 {
		keep *= 2 // append grows a buffer up to twice its content
	}
	for i := range bufs.workers {
		w := &bufs.workers[i]
		if cap(w.raw) > keep {
			w.raw, w.snappy = nil, nil
		}
	}

	if p.err != nil && proto == ProtocolV2 && refusesV2(p.err) {
		return p.delivered, p.err // sent again as 1.0, not a failure yet
	}
	if p.err != nil && refusesNativeHistograms(p.err) && e.series.sendsNativeHistograms() {
		return p.delivered, p.err // sent again without them (Export)
	}
	var errs []error
	if p.partial != nil {
		p.partial.Endpoint = e.client.redacted
		e.cfg.failureLogger().Warn("prwmetric: the receiver wrote only part of the data",
			"endpoint", p.partial.Endpoint,
			"samples_sent", p.partial.SamplesSent, "samples_written", p.partial.SamplesWritten,
			"histograms_sent", p.partial.HistogramsSent, "histograms_written", p.partial.HistogramsWritten,
			"exemplars_sent", p.partial.ExemplarsSent, "exemplars_written", p.partial.ExemplarsWritten)
		errs = append(errs, p.partial)
	}
	if p.err != nil {
		var we *WriteError
		if errors.As(p.err, &we) {
			we.Series, we.Delivered = len(b.records)-from-p.delivered, p.delivered
		}
		e.warn(p.err)
		errs = append(errs, p.err)
	}
	return p.delivered, errors.Join(errs...)
}

// pipeline is the state of one send.
type pipeline struct {
	e     *Exporter
	ctx   context.Context
	b     *batch
	from  int
	proto Protocol
	v2    *v2Scratch
	cuts  []cut

	// next is the next request for a worker to take. A worker takes a
	// token first, which post returns once the request is sent: so at most
	// sendAhead requests are under way, and request k's result can wait in
	// slots[k%sendAhead].
	next   atomic.Int64
	tokens chan struct{}
	slots  [sendAhead]struct {
		body   []byte // compressed; nil when skipped after a failure
		rawLen int
		done   chan struct{}
	}
	wg sync.WaitGroup

	// failed stops the work after the first failed request.
	failed atomic.Bool
	// err, delivered, unsure and partial are written by post.
	err       error
	delivered int
	// unsure are the records of a failed request that may have been
	// stored all the same (see mayHaveArrived).
	unsure  struct{ from, to int }
	partial *PartialWriteError
}

// work encodes and compresses requests until none are left. After a
// failure it only marks the rest done.
func (p *pipeline) work(buf *workerBuffers) {
	defer p.wg.Done()
	for {
		p.tokens <- struct{}{}
		k := int(p.next.Add(1) - 1)
		if k >= len(p.cuts) {
			<-p.tokens
			return
		}
		slot := &p.slots[k%sendAhead]
		slot.body = nil
		if !p.failed.Load() {
			start := p.from
			if k > 0 {
				start = p.cuts[k-1].end
			}
			if p.proto == ProtocolV2 {
				buf.raw = p.v2.encodeV2(buf.raw[:0], p.b, start, p.cuts[k])
			} else {
				buf.raw = p.b.encode(buf.raw[:0], p.from, start, p.cuts[k].end)
			}
			if n := s2.MaxEncodedLen(len(buf.raw)); len(buf.snappy) < n {
				buf.snappy = make([]byte, n)
			}
			// The body gets its own exact-size copy: the HTTP transport
			// may still read a body after the response has arrived, so
			// bodies are never reused. s2 writes a standard snappy block,
			// faster than golang/snappy and 5% smaller on W (it finds
			// better matches).
			slot.body = append([]byte(nil), s2.EncodeSnappy(buf.snappy, buf.raw)...)
			slot.rawLen = len(buf.raw)
		}
		slot.done <- struct{}{}
	}
}

// post sends the requests in order as the workers finish them, and stops
// sending at the first failure.
func (p *pipeline) post() {
	e := p.e
	for k, c := range p.cuts {
		slot := &p.slots[k%sendAhead]
		<-slot.done
		body, rawLen := slot.body, slot.rawLen
		slot.body = nil
		if body != nil && !p.failed.Load() {
			var unsure bool
			err := e.retry.run(p.ctx, func(ctx context.Context, attempt int) error {
				err := e.client.attempt(ctx, body, c.parts, p.proto, attempt)
				unsure = unsure || mayHaveArrived(err)
				e.tel.attempt(ctx, rawLen, len(body), err)
				return err
			})
			var short *shortWrite
			if errors.As(err, &short) {
				if p.partial == nil {
					p.partial = &PartialWriteError{}
				}
				p.partial.add(c.parts, short.written)
				err = nil
			}
			e.tel.part(p.ctx, c.parts, err)
			if err != nil {
				p.err = err
				p.failed.Store(true)
				if unsure {
					p.unsure.from, p.unsure.to = p.from, c.end
					if k > 0 {
						p.unsure.from = p.cuts[k-1].end
					}
				}
			} else {
				p.delivered += c.parts.series
			}
		}
		<-p.tokens
	}
}
