package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// An export is converted into a batch: one small record per series,
// pointing at the series' cached labels. The batch is cut into requests
// within the size limits; two workers encode and compress the requests
// side by side (each compresses what it has just encoded, while it is in
// its CPU cache), and up to WithMaxConcurrentRequests senders post them at
// once. A 1.0 export is cut while it is converted (stream.go), so that
// encoding the first requests overlaps converting the rest; a 2.0 cut,
// which numbers each request's symbols after the conversion, hands the
// workers each request as soon as it is cut. One export carries at
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

// sendAs sends the records of todo in protocol proto, compressed by comp,
// up to concurrent requests at once. Its delivered spans live in
// bufs.delivered until the next call.
func (e *Exporter) sendAs(ctx context.Context, b *batch, bufs *sendBuffers, todo []span, proto Protocol, comp Compression, concurrent int) sent {
	run := e.startSending(ctx, b, bufs, proto, comp, concurrent)
	run.p.cutAll(bufs, todo, run.publish)
	return run.wait()
}

// sending is one sendAs under way: requests are sent as they are
// published.
type sending struct {
	p                  *pipeline
	bufs               *sendBuffers
	encoding, requests sync.WaitGroup
}

func (e *Exporter) startSending(ctx context.Context, b *batch, bufs *sendBuffers, proto Protocol, comp Compression, concurrent int) *sending {
	p := &pipeline{
		e: e, ctx: ctx, b: b, proto: proto, comp: comp, concurrent: concurrent,
		// Saturated: WithMaxConcurrentRequests(math.MaxInt) is no limit.
		tokens:  make(chan struct{}, min(concurrent, math.MaxInt-sendWorkers)+sendWorkers),
		items:   bufs.items[:0],
		cutting: true,
	}
	p.cut.L = &p.cutMu
	return &sending{p: p, bufs: bufs}
}

// publish hands request c to the workers and senders, starting one of
// each up to their number: they take the requests in order, waiting for
// those not yet cut.
func (run *sending) publish(c cut, v v2Cut) {
	p, bufs := run.p, run.bufs
	k := len(p.items)
	if k == len(bufs.slots) {
		bufs.slots = append(bufs.slots, &slot{done: make(chan struct{}, 1), sent: make(chan struct{}, 1)})
	}
	p.publish(item{cut: c, v2: v, view: p.b.view(), slot: bufs.slots[k]})
	if k < sendWorkers {
		run.encoding.Go(func() { p.work(&bufs.workers[k]) })
	}
	if k < p.concurrent {
		run.requests.Go(p.post)
	}
}

// wait says that every request is published, waits until all are sent
// or dropped, and returns what was delivered. Meanwhile it marks the
// records of each request delivered as soon as it is (see markSent).
func (run *sending) wait() sent {
	p, bufs, b, e := run.p, run.bufs, run.p.b, run.p.e
	p.finish()
	early := e.series.marksEarly(b)
	for _, it := range p.items {
		<-it.slot.sent
		if early && it.slot.ok {
			e.series.markSent(b, it.cut, p.proto)
		}
	}
	run.encoding.Wait()
	run.requests.Wait()
	defer func() {
		clear(p.items) // no pointers into the batch outlive the export
		bufs.items = p.items[:0]
	}()
	for _, it := range p.items {
		switch {
		case it.slot.unsure:
			e.series.markMaybeStored(b, it.cut.start, it.cut.end, p.proto)
		case it.slot.answered && p.proto == ProtocolV2:
			e.series.markExemplarsAnswered(b, it.cut.start, it.cut.end)
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

	d, processed := bufs.delivered[:0], true
	for _, it := range p.items {
		c := it.cut
		processed = processed && (it.slot.ok || it.slot.refused)
		if !it.slot.ok {
			continue
		}
		if p.proto == ProtocolV1 && b.collectV2 {
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
	return sent{delivered: d, err: p.err, partial: p.partial, written: p.written, processed: processed}
}

// cutAll cuts the records of todo into requests and publishes them. A
// panic fails the export, as one in encoding does, instead of crashing the
// service; the requests published before it are not sent.
func (p *pipeline) cutAll(bufs *sendBuffers, todo []span, publish func(cut, v2Cut)) {
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
	// concurrent is the most requests in flight at once.
	concurrent int

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

	// failed stops the work after a failed request that stops the rest
	// (any failure but a data refusal, refusesData).
	failed atomic.Bool

	mu      sync.Mutex
	err     error
	partial *PartialWriteError
	// written counts the series failed requests wrote all the same
	// (WriteError.written).
	written int
}

// item is one request of an export: where the batch is cut, what a 1.0
// or 2.0 request is encoded from, and its slot.
type item struct {
	cut  cut
	v2   v2Cut
	view batchView
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
	// it failed but may have been stored all the same (mayHaveArrived),
	// answered when it failed with the receiver's answer; all are read
	// once sent has a value.
	ok, unsure, answered bool
	// refused: the receiver refused the request's data (refusesData).
	refused bool
	// sent gets a value once the request is sent, failed or dropped.
	sent chan struct{}
}

// work encodes and compresses requests until none are left. After a
// failure that stops the rest (see fail), it only marks the rest done.
func (p *pipeline) work(buf *workerBuffers) {
	for {
		p.tokens <- struct{}{}
		it, ok := p.item(int(p.next.Add(1) - 1))
		if !ok {
			<-p.tokens
			return
		}
		sl := it.slot
		sl.body, sl.ok, sl.unsure, sl.answered, sl.refused = nil, false, false, false, false
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
		buf.raw = it.view.encode(buf.raw[:0], c)
	}
	body, err := buf.compress(p.comp, buf.raw, p.e.cfg.maxBytes)
	if err != nil {
		p.fail(err)
	}
	sl.body, sl.rawLen = body, len(buf.raw)
}

// post sends requests in order as the workers finish them. After a
// failure that stops the rest (see fail), the requests not yet sent are
// dropped.
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
			short := errorOf[*shortWrite](err)
			if short != nil {
				p.mu.Lock()
				if p.partial == nil {
					p.partial = &PartialWriteError{}
				}
				p.partial.add(c.parts, short.written)
				p.mu.Unlock()
				err = nil
			}
			we := errorOf[*WriteError](err)
			wroteSome := we != nil && we.written.series > 0
			switch {
			case p.refusal(err):
				// A refusal's series go again, and count then.
			case wroteSome:
				e.tel.part(c.parts, &shortWrite{written: we.written}, err)
			default:
				e.tel.part(c.parts, short, err)
			}
			if err != nil {
				// Only a 400 may have stored part of the request:
				// receivers roll back on any other answer, and a native
				// histogram refusal is sent again, exemplars too.
				sl.answered = we != nil && we.StatusCode == http.StatusBadRequest && !refusesNativeHistograms(err)
				sl.refused = refusesData(err) && !p.refusal(err)
				if wroteSome {
					// Which series were written, the counts do not say.
					sl.unsure = true
					p.mu.Lock()
					p.written += we.written.series
					p.mu.Unlock()
				}
				p.fail(err)
			} else {
				sl.ok = true
			}
		} else if !p.resent() {
			// Dropped after a failure: the error counts it dropped, the
			// telemetry failed (a refusal sends it again instead).
			e.tel.part(it.cut.parts, nil, errNotSent)
		}
		<-p.tokens
		sl.sent <- struct{}{}
	}
}

// fail records a failed request. The requests not yet started are
// dropped, unless the receiver refused this request's data only
// (refusesData). The error reported is the first, unless a later one
// decides more: a refusal of 2.0 or zstd decides what comes next, and a
// failure that stopped the rest explains the series dropped better than a
// data refusal before it.
func (p *pipeline) fail(err error) {
	stops := !refusesData(err) || p.refusal(err)
	if stops {
		p.failed.Store(true)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.err == nil, p.refusal(err) && !p.refusal(p.err):
		p.err = err
	case stops && refusesData(p.err) && !p.refusal(p.err):
		p.err = err
	}
}

// refusesData reports whether err is a receiver's refusal of the data of
// one request (400, 422: an out-of-order sample, a label over its limits),
// which says nothing of the other requests of the export. Every other
// failure (unavailable, throttled, unauthorized, no answer) would meet
// them too.
func refusesData(err error) bool {
	we := errorOf[*WriteError](err)
	return we != nil && (we.StatusCode == http.StatusBadRequest || we.StatusCode == http.StatusUnprocessableEntity)
}

// errNotSent is the outcome of a request dropped after another failed.
var errNotSent = errors.New("prwmetric: not sent: an earlier request of the export failed")

// resent reports whether the export's failure is a refusal, after which
// what was not delivered goes again (as 1.0, snappy, or classic
// histograms).
func (p *pipeline) resent() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err != nil && p.refusal(p.err)
}

func (p *pipeline) refusal(err error) bool {
	return p.proto == ProtocolV2 && refusesV2(err) || p.comp == CompressionZstd && refusesZstd(err) || refusesNativeHistograms(err)
}
