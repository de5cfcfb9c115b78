package prwmetric

import "math/bits"

// v2Scratch holds what the cut hands the workers, reused by every export.
type v2Scratch struct {
	// syms are the symbols of every request (the leading "" left out).
	syms []string
	// refs are, for each record in order: the length of its TimeSeries
	// message; where the metadata starts in its encoding; for each
	// exemplar in its extra bytes, 0 when it is left out, else 1 + the
	// number of its label refs, and the refs.
	refs []uint32
	// series are the records' seriesV2 (indexes in seriesCache.v2series),
	// whose encodings the workers copy.
	series []uint32
	// locals and enc are the cut's scratch.
	locals []uint32
	enc    []byte
}

// v2Cutter cuts one batch into 2.0 requests; it runs with the series
// cache locked.
type v2Cutter struct {
	t  *symbolTable
	sc *seriesCache
	x  *v2Scratch
	// symStart is where the current request's symbols start in x.syms.
	symStart int
	// prevGen is the generation of the encoding of the request's last
	// record so far; 0 at its start.
	prevGen uint64
	// next is what commit keeps of the record just numbered.
	next pendingV2
	tail sampleTail
}

// pendingV2 is a record numbered by record, which commit keeps once the
// record has its place: a record that goes to the next request is
// numbered again there, and what the series had cached must stay until
// then.
type pendingV2 struct {
	sv  *seriesV2
	idx uint32 // in v2series
	// fresh: the encoding, in the scratch, differs from sv's (else sv's
	// is good as it is).
	fresh    bool
	newGen   bool // it differs from the one of generation sv.gen
	reusable bool
	metaAt   uint32
	symBytes uint32
	meta     [3]uint32
	added    uint64
}

func (c *v2Cutter) beginRequest() {
	t := c.t
	t.req++
	if t.req == 0 { // wrapped: old stamps could match again
		clear(t.slots)
		t.req = 1
	}
	t.fit()
	t.slots[0] = symbolSlot{stamp: t.req} // "" is always 0
	c.symStart = len(c.x.syms)
	c.prevGen = 0
}

// ref returns id's index in the current request's symbols, adding it if
// needed, and how many bytes that added to the request. The table's slots
// must cover id (fit).
func (c *v2Cutter) ref(id uint32) (uint32, int) {
	t := c.t
	if sl := &t.slots[id]; sl.stamp == t.req {
		return sl.local, 0
	}
	return c.add(id)
}

// add gives id the next index in the current request's symbols.
func (c *v2Cutter) add(id uint32) (uint32, int) {
	t := c.t
	s := t.strs[id]
	c.x.syms = append(c.x.syms, s)
	l := uint32(len(c.x.syms) - c.symStart) // 0 is ""
	t.slots[id] = symbolSlot{stamp: t.req, local: l}
	return l, fieldLen(len(s))
}

// record appends record i's refs and encoding to the scratch and returns
// the size of its TimeSeries message and the bytes its new symbols add to
// the request. It also counts the exemplars it keeps.
//
// The request-local numbers of a series' labels depend only on the
// symbols the request holds before it, and those only on the records
// before it in the request: in the steady state, with the same series in
// the same requests export after export, a series finds the encoding it
// had last time still good (see seriesV2) and adds its symbols again from
// the bits of added, without looking up its labels one by one.
func (c *v2Cutter) record(b *batch, i int, parts *partCounts) (n, symBytes int) {
	r := &b.records[i]
	info := &b.v2[i]
	t := c.t
	idx := info.v2
	if idx == 0 {
		fresh := r.s.v2 == 0
		sv := c.sc.seriesV2(r.s)
		if fresh && r.s.is(flagDelivered) {
			// Delivered before, as 1.0 (a fallback): its exemplars up to
			// its newest sample went with it.
			sv.newestExemplar = r.s.newest()
		}
		idx = r.s.v2
	}
	// As seriesV2 would find it, without reading r.s.
	sv := &c.sc.v2series[idx]
	if sv.epoch != t.epoch || sv.refs == nil {
		sv.refs = sv.refs[:0]
		c.sc.labels.walk(r.s.key, func(name, value string) {
			sv.refs = append(sv.refs, t.id(name), t.id(value))
		})
		sv.epoch = t.epoch
		sv.gen = 0
		t.fit()
	}
	var meta [3]uint32
	if f := info.fam; f != nil {
		if f.symEpoch != t.epoch || !f.symbolized {
			f.helpID, f.unitID = t.id(f.help), t.id(f.unit)
			f.symEpoch, f.symbolized = t.epoch, true
			t.fit()
		}
		meta = [3]uint32{uint32(f.typ), f.helpID, f.unitID}
	}
	x := c.x
	info.newestExemplar = 0
	extra := b.extraOf(r)
	if !r.isHistogram() {
		n += fieldLen(c.tail.sampleLen(r.value, r.ts, info.start))
	}
	exemplars := false
	walkExtra(extra, func(tag byte, body string) {
		if tag == tagSeriesHistogram {
			n += fieldLen(len(body) + startLen(info.start))
		} else {
			exemplars = true
		}
	})
	same := sv.gen != 0 && sv.prevGen == c.prevGen && sv.meta == meta
	if same && !exemplars {
		// The steady state: the encoding of last time, its symbols added
		// again in the same order.
		for a := sv.added; a != 0; a &= a - 1 {
			j := bits.TrailingZeros64(a)
			var id uint32
			if j < len(sv.refs) {
				id = sv.refs[j]
			} else {
				id = meta[1+j-len(sv.refs)]
			}
			c.add(id)
		}
		n += len(sv.encoding())
		x.refs = append(x.refs, uint32(n), sv.metaAt)
		c.next.sv, c.next.idx, c.next.fresh = sv, idx, false
		return n, int(sv.symBytes)
	}

	// Number the labels in the request: two array lookups per string.
	ids := sv.refs
	var added uint64
	locals := x.locals[:0]
	slots, req := t.slots, t.req
	packed := 0
	for j, id := range ids {
		sl := &slots[id]
		if sl.stamp != req {
			_, nb := c.add(id)
			symBytes += nb
			added |= 1 << (j & 63)
		}
		l := sl.local
		locals = append(locals, l)
		packed += varintLen(uint64(l))
	}
	x.locals = locals
	enc := x.enc[:0]
	if len(ids) > 0 {
		enc = append(enc, tagV2LabelsRefs)
		enc = appendVarint(enc, uint64(packed))
		for _, l := range locals {
			enc = appendVarint(enc, uint64(l))
		}
	}

	head := len(x.refs)
	x.refs = append(x.refs, 0, 0)
	exemplarSyms := len(x.syms)
	if exemplars {
		walkExtra(extra, func(tag byte, body string) {
			if tag == tagSeriesHistogram {
				return
			}
			labels, rest := splitExemplar(body)
			ts := exemplarTime(rest)
			// Not after the newest delivered: sent before, or out of
			// order. Within the point the exemplars come in the order
			// Prometheus takes (cmpExemplars), the same millisecond too.
			if sv.newestExemplar != 0 && ts <= sv.newestExemplar || ts < info.newestExemplar {
				x.refs = append(x.refs, 0)
				return
			}
			info.newestExemplar = ts
			parts.exemplars++
			at := len(x.refs)
			x.refs = append(x.refs, 1)
			packed := 0
			walkLabels(labels, func(name, value string) {
				// The exemplar's bytes are the batch's, reused by the
				// next export: a new symbol keeps a copy.
				ids := [2]uint32{t.idCopy(name), t.idCopy(value)}
				t.fit()
				for _, id := range ids {
					l, nb := c.ref(id)
					symBytes += nb
					packed += varintLen(uint64(l))
					x.refs = append(x.refs, l)
				}
			})
			x.refs[at] = uint32(len(x.refs) - at)
			m := len(rest)
			if packed > 0 {
				m += fieldLen(packed)
			}
			n += fieldLen(m)
		})
	}
	exemplarSyms = len(x.syms) - exemplarSyms

	help, nb := c.ref(meta[1])
	if nb > 0 {
		symBytes += nb
		added |= 1 << (len(ids) & 63)
	}
	unit, nb := c.ref(meta[2])
	if nb > 0 {
		symBytes += nb
		added |= 1 << ((len(ids) + 1) & 63)
	}
	metaAt := len(enc)
	enc = appendMetadataV2(enc, meta[0], help, unit)
	n += len(enc)
	x.refs[head], x.refs[head+1] = uint32(n), uint32(metaAt)
	x.enc = enc
	// The encoding is the cached one when the symbols before it were
	// (same) and its exemplars added none: then it keeps its generation,
	// and the records after it can find theirs good too.
	c.next = pendingV2{
		sv: sv, idx: idx, fresh: true, newGen: !same || exemplarSyms > 0,
		metaAt: uint32(metaAt), symBytes: uint32(symBytes), meta: meta, added: added,
		reusable: exemplarSyms == 0 && len(ids)+2 <= 64,
	}
	return n, symBytes
}

// commit keeps the record just numbered in the current request.
func (c *v2Cutter) commit() {
	p := &c.next
	sv := p.sv
	if p.fresh {
		if p.newGen {
			c.t.gens++
			sv.gen = c.t.gens
		}
		if len(c.x.enc) <= encInline {
			sv.encLen = uint32(copy(sv.inline[:], c.x.enc))
			sv.heap = nil
		} else {
			sv.heap = append(sv.heap[:0], c.x.enc...)
		}
		sv.metaAt, sv.symBytes, sv.meta, sv.added = p.metaAt, p.symBytes, p.meta, p.added
		sv.prevGen = c.prevGen
		if !p.reusable {
			sv.prevGen = notReusable
		}
	}
	c.x.series = append(c.x.series, p.idx)
	c.prevGen = sv.gen
	p.sv = nil
}

// v2Cut is what a worker encodes a 2.0 request from: its symbols (the
// leading "" left out), its records' refs and their cached encodings (see
// v2Scratch). The cut appends no more to these slices once it hands them
// over.
type v2Cut struct {
	syms []string
	refs []uint32
	// series are the records' seriesV2, in v2series: v2series[series[i]]
	// belongs to record start+i. The cut changes no seriesV2 of a request
	// once it hands it over; growing v2series copies them to a new array.
	series   []uint32
	v2series []seriesV2
}

// cutV2 cuts b.records[from:] into 2.0 requests like batch.cut, each within
// the limits by its exact size (symbols included), and prepares what the
// workers encode them from: it calls publish with each request as soon as
// it is cut, and returns them all appended to cuts[:0].
func (sc *seriesCache) cutV2(b *batch, from, maxSeries, maxBytes int, x *v2Scratch, cuts []cut, publish func(cut, v2Cut)) []cut {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	x.syms, x.refs = x.syms[:0], x.refs[:0]
	x.series = x.series[:0]
	c := &v2Cutter{t: &sc.symbols, sc: sc, x: x}
	cuts = cuts[:0]
	c.t.id("") // the table starts with ""
	c.beginRequest()
	const emptySymbol = 2 // symbols[0] == ""
	size, start, refStart := emptySymbol, from, 0
	var parts partCounts
	// emit hands over the request of the records from start to end, whose
	// symbols and refs end at symEnd and refEnd.
	emit := func(end, symEnd, refEnd int) {
		k := cut{start: start, end: end, parts: parts}
		cuts = append(cuts, k)
		publish(k, v2Cut{
			syms:     x.syms[c.symStart:symEnd:symEnd],
			refs:     x.refs[refStart:refEnd:refEnd],
			series:   x.series[start-from : end-from : end-from],
			v2series: sc.v2series,
		})
	}
	for i := from; i < len(b.records); i++ {
		if i > start && i-start >= maxSeries {
			emit(i, len(x.syms), len(x.refs))
			c.beginRequest()
			size, start, refStart, parts = emptySymbol, i, len(x.refs), partCounts{}
		}
		refMark, symMark := len(x.refs), len(x.syms)
		var counted partCounts
		n, symBytes := c.record(b, i, &counted)
		field := fieldLen(n) + symBytes
		if i > start && size+field > maxBytes {
			// The record goes to the next request: undo its refs and
			// symbols here.
			for _, s := range x.syms[symMark:] {
				c.t.slots[c.t.ids[s]].stamp = 0
			}
			x.refs, x.syms = x.refs[:refMark], x.syms[:symMark]
			emit(i, symMark, refMark)
			c.beginRequest()
			size, start, refStart, parts = emptySymbol, i, refMark, partCounts{}
			counted = partCounts{}
			n, symBytes = c.record(b, i, &counted)
			field = fieldLen(n) + symBytes
		}
		c.commit()
		size += field
		parts.series++
		parts.exemplars += counted.exemplars
		if b.records[i].isHistogram() {
			parts.histograms++
		} else {
			parts.samples++
		}
	}
	if parts.series > 0 {
		emit(len(b.records), len(x.syms), len(x.refs))
	}
	// Rebuild the table when most of it is strings no request needs
	// any more (series gone, exemplars' trace ids). Only a batch of most
	// live series measures that: the zeros before a few new series
	// (WithInitialZero) need few strings, and a rebuild makes the export
	// that follows number every label again.
	if 2*(len(b.records)-from) >= len(sc.last) && len(c.t.strs) > 2*len(x.syms)+1<<16 {
		c.t.rebuild()
	}
	return cuts
}
