package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// An export is converted into a batch: one small record per series,
// pointing at the series' cached labels. The batch is then cut into
// requests within the size limits; two workers encode and compress the
// requests side by side (each compresses what it has just encoded, while
// it is in its CPU cache), and up to WithMaxConcurrentRequests senders
// post them at once. A 2.0 cut, which numbers each request's symbols,
// hands the workers each request as soon as it is cut, so that encoding
// the first requests overlaps cutting the next. One export carries at
// most one sample (or marker) per series, so its requests may arrive in
// any order; the next export starts only when every request of this one
// has finished, so exports never overtake each other.
//
// Memory is bounded: each worker holds one uncompressed request, its
// compression scratch and (for zstd) its encoder; at most senders+workers
// compressed requests exist at once, sent or waiting to be. The whole
// encoded export never exists in memory.

// sendBuffers are the buffers an exporter's exports reuse: the cuts, each
// worker's uncompressed request and compression output, and the spans of
// records delivered.
type sendBuffers struct {
	cuts      []cut
	slots     []*slot
	items     []item
	workers   [sendWorkers]workerBuffers
	v2        v2Scratch
	delivered []span
	more      []span
	todo      []span
}

type workerBuffers struct {
	raw, compressed []byte
	zstd            *zstd.Encoder
}

// sendWorkers encode and compress requests side by side.
const sendWorkers = 2

// send delivers b in requests within the size limits, up to
// WithMaxConcurrentRequests at once: metadata goes with the first request,
// a series larger than the byte limit alone in its own (see batch.cut).
// The first failure stops the requests not yet started (requests under way
// complete): it is logged once and returned, as a *WriteError that counts
// the series delivered and dropped. delivered are the records the receiver
// accepted, as sorted spans.
//
// A 2.0 exporter whose receiver refuses 2.0, or a zstd one whose receiver
// refuses zstd, sends what was not delivered again as 1.0 with snappy, and
// stays on that for a while (see WithProtocol, WithCompression).
func (e *Exporter) send(ctx context.Context, b *batch, bufs *sendBuffers) (delivered []span, err error) {
	now := e.negotiation.clock()
	proto, comp := e.negotiation.current(now), e.negotiation.currentCompression(now)
	bufs.todo = append(bufs.todo[:0], span{0, len(b.records)})
	r := e.sendAs(ctx, b, bufs, bufs.todo, proto, comp)
	switch {
	case proto == ProtocolV2 && refusesV2(r.err):
		proto = ProtocolV1
		if e.negotiation.v1.fallBack(now) {
			e.cfg.logger.Warn("prwmetric: the receiver does not speak Remote Write 2.0; sending 1.0 instead, and trying 2.0 again every hour",
				"endpoint", e.client.redacted, "reason", refusalReason(r.err))
		}
		r = e.resend(ctx, b, bufs, r, proto, comp)
	case comp == CompressionZstd && refusesZstd(r.err):
		refusal := r.err
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
	if r.err != nil && refusesNativeHistograms(r.err) && e.series.sendsNativeHistograms() {
		return r.delivered, r.err // sent again without them (Export), not a failure yet
	}

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
			we.Delivered = covered(r.delivered)
			we.Series = b.dropped(r.delivered, proto)
		}
		e.warn(r.err)
		errs = append(errs, r.err)
	}
	if proto == ProtocolV1 {
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
	// err is the first failure; partial counts what 2.0 receivers did not
	// write of requests they accepted.
	err     error
	partial *PartialWriteError
}

// resend sends again, as proto with comp, what r did not deliver.
func (e *Exporter) resend(ctx context.Context, b *batch, bufs *sendBuffers, r sent, proto Protocol, comp Compression) sent {
	bufs.todo = gaps(bufs.todo[:0], r.delivered, len(b.records))
	// r.delivered lives in bufs.delivered, which sendAs reuses.
	first := append(bufs.more[:0], r.delivered...)
	bufs.more = first
	again := e.sendAs(ctx, b, bufs, bufs.todo, proto, comp)
	again.delivered = mergeSpans(nil, first, again.delivered) // rare: no buffer kept
	if again.partial == nil {
		again.partial = r.partial
	}
	return again
}

// sendAs sends the records of todo in protocol proto, compressed by comp.
// Its delivered spans live in bufs.delivered until the next call.
func (e *Exporter) sendAs(ctx context.Context, b *batch, bufs *sendBuffers, todo []span, proto Protocol, comp Compression) sent {
	p := &pipeline{
		e: e, ctx: ctx, b: b, proto: proto, comp: comp,
		tokens:  make(chan struct{}, e.cfg.maxConcurrent+sendWorkers),
		items:   bufs.items[:0],
		cutting: true,
	}
	p.cut.L = &p.cutMu
	defer func() {
		clear(p.items) // no pointers into the batch outlive the export
		bufs.items = p.items[:0]
	}()
	// Each request published starts a worker and a sender, up to their
	// number: they take the requests in order, waiting for those not yet
	// cut.
	var encoding, sending sync.WaitGroup
	publish := func(c cut, v v2Cut) {
		k := len(p.items)
		if k == len(bufs.slots) {
			bufs.slots = append(bufs.slots, &slot{done: make(chan struct{}, 1)})
		}
		p.publish(item{cut: c, v2: v, slot: bufs.slots[k]})
		if k < sendWorkers {
			encoding.Go(func() { p.work(&bufs.workers[k]) })
		}
		if k < e.cfg.maxConcurrent {
			sending.Go(p.post)
		}
	}
	p.cutAll(bufs, todo, publish)
	encoding.Wait()
	sending.Wait()
	for _, it := range p.items {
		if it.slot.unsure {
			e.series.markMaybeStored(b, it.cut.start, it.cut.end, proto)
		}
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
			w.raw, w.compressed = nil, nil
		}
	}

	d := bufs.delivered[:0]
	for _, it := range p.items {
		c := it.cut
		if !it.slot.ok {
			continue
		}
		if proto == ProtocolV1 && b.collectV2 {
			// A 1.0 request leaves out what 1.0 cannot carry: that
			// was not delivered.
			for i := c.start; i < c.end; i++ {
				if !b.skippedByV1(i) {
					d = addSpan(d, span{i, i + 1})
				}
			}
			continue
		}
		d = addSpan(d, span{c.start, c.end})
	}
	bufs.delivered = d
	return sent{delivered: d, err: p.err, partial: p.partial}
}

// cutAll cuts the records of todo into requests and publishes them. A
// panic fails the export, as one in encoding does, instead of crashing the
// service; the requests published before it are not sent.
func (p *pipeline) cutAll(bufs *sendBuffers, todo []span, publish func(cut, v2Cut)) {
	defer p.finish()
	defer func() {
		if r := recover(); r != nil {
			p.fail(fmt.Errorf("prwmetric: cutting the requests failed, export dropped: %v", r))
		}
	}()
	if p.proto == ProtocolV2 {
		bufs.cuts = p.e.series.cutV2(p.b, todo[0].start, p.e.cfg.maxSeries, p.e.cfg.maxBytes, &bufs.v2, bufs.cuts, publish)
		return
	}
	bufs.cuts = p.b.cutSpans(todo, p.e.cfg.maxSeries, p.e.cfg.maxBytes, bufs.cuts)
	for _, c := range bufs.cuts {
		publish(c, v2Cut{})
	}
}

// pipeline is the state of one sendAs.
type pipeline struct {
	e     *Exporter
	ctx   context.Context
	b     *batch
	proto Protocol
	comp  Compression

	// The cut publishes the requests in items as it cuts them (cut
	// signalled on each); cutting is false once it is done.
	cutMu   sync.Mutex
	cut     sync.Cond
	items   []item
	cutting bool

	// Workers and senders take requests in order: next and nextSend are
	// the next for each. A worker takes a token first, which the sender
	// returns once the request is sent: so at most cap(tokens) requests
	// are compressed or under way. Request k waits in items[k].slot.
	next, nextSend atomic.Int64
	tokens         chan struct{}

	// failed stops the work after the first failed request.
	failed atomic.Bool

	mu      sync.Mutex
	err     error
	partial *PartialWriteError
}

// item is one request of an export: where the batch is cut, what a 2.0
// request is encoded from, and its slot.
type item struct {
	cut  cut
	v2   v2Cut
	slot *slot
}

// publish hands the workers and senders the next request.
func (p *pipeline) publish(it item) {
	p.cutMu.Lock()
	p.items = append(p.items, it)
	p.cutMu.Unlock()
	p.cut.Broadcast()
}

// finish says that every request is published.
func (p *pipeline) finish() {
	p.cutMu.Lock()
	p.cutting = false
	p.cutMu.Unlock()
	p.cut.Broadcast()
}

// item waits for request k; false when the export has fewer requests.
func (p *pipeline) item(k int) (item, bool) {
	p.cutMu.Lock()
	defer p.cutMu.Unlock()
	for k >= len(p.items) && p.cutting {
		p.cut.Wait()
	}
	if k >= len(p.items) {
		return item{}, false
	}
	return p.items[k], true
}

// slot is one request of an export.
type slot struct {
	// body is compressed; nil when skipped after a failure.
	body   []byte
	rawLen int
	// done gets a value when body is ready.
	done chan struct{}
	// ok is set by the sender when the request was delivered, unsure when
	// it failed but may have been stored all the same (mayHaveArrived);
	// both are read once every sender has finished.
	ok, unsure bool
}

// work encodes and compresses requests until none are left. After a
// failure it only marks the rest done.
func (p *pipeline) work(buf *workerBuffers) {
	for {
		p.tokens <- struct{}{}
		it, ok := p.item(int(p.next.Add(1) - 1))
		if !ok {
			<-p.tokens
			return
		}
		sl := it.slot
		sl.body, sl.ok, sl.unsure = nil, false, false
		if !p.failed.Load() {
			p.encode(buf, &it)
		}
		sl.done <- struct{}{}
	}
}

// encode encodes and compresses request it into its slot. A panic fails the
// export instead of crashing the service the exporter runs in; the slot is
// still marked done by work, so no sender waits for it forever.
func (p *pipeline) encode(buf *workerBuffers, it *item) {
	sl, c := it.slot, it.cut
	defer func() {
		if r := recover(); r != nil {
			sl.body = nil
			p.fail(fmt.Errorf("prwmetric: encoding a request failed, export dropped: %v", r))
		}
	}()
	if p.proto == ProtocolV2 {
		buf.raw = it.v2.encode(buf.raw[:0], p.b, c)
	} else {
		// The first request carries the metadata.
		first, _ := p.item(0)
		buf.raw = p.b.encode(buf.raw[:0], first.cut.start, c.start, c.end)
	}
	body, err := buf.compress(p.comp, buf.raw, p.e.cfg.maxBytes)
	if err != nil {
		p.fail(err)
	}
	sl.body, sl.rawLen = body, len(buf.raw)
}

// post sends requests in order as the workers finish them. After a
// failure, the requests not yet sent are dropped.
func (p *pipeline) post() {
	e := p.e
	for {
		it, ok := p.item(int(p.nextSend.Add(1) - 1))
		if !ok {
			return
		}
		sl := it.slot
		<-sl.done
		body := sl.body
		sl.body = nil
		if body != nil && !p.failed.Load() {
			c := it.cut
			err := e.retry.run(p.ctx, func(ctx context.Context, attempt int) error {
				err := e.client.safeAttempt(ctx, body, c.parts, p.proto, p.comp, attempt)
				sl.unsure = sl.unsure || mayHaveArrived(err)
				e.tel.attempt(ctx, sl.rawLen, len(body), p.comp, err)
				return err
			})
			if short := asShortWrite(err); short != nil {
				p.mu.Lock()
				if p.partial == nil {
					p.partial = &PartialWriteError{}
				}
				p.partial.add(c.parts, short.written)
				p.mu.Unlock()
				err = nil
			}
			e.tel.part(p.ctx, c.parts, err)
			if err != nil {
				p.fail(err)
			} else {
				sl.ok = true
			}
		}
		<-p.tokens
	}
}

// fail records a failed request. The error reported is the first, unless
// a later one is a refusal of 2.0 or zstd, which decides what comes next.
func (p *pipeline) fail(err error) {
	p.failed.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil || !p.refusal(p.err) && p.refusal(err) {
		p.err = err
	}
}

func (p *pipeline) refusal(err error) bool {
	return p.proto == ProtocolV2 && refusesV2(err) || p.comp == CompressionZstd && refusesZstd(err) || refusesNativeHistograms(err)
}
