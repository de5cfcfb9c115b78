package prwmetric

import (
	"slices"
)

// seriesV2 is what the 2.0 encoding keeps of a series between exports.
type seriesV2 struct {
	// refs are the series' label names and values, alternating, as
	// numbers in the symbol table of epoch.
	refs  []uint32
	epoch uint32
	// newestExemplar is the time of the newest exemplar delivered: 2.0
	// receivers refuse older ones and count equal ones as not written,
	// and the SDK repeats a cumulative point's exemplars.
	newestExemplar int64
}

// seriesV2 returns what 2.0 keeps of s, making room for it on its first
// 2.0 request. The pointer is good until the next call.
func (sc *seriesCache) seriesV2(s *seriesState) *seriesV2 {
	if s.v2 == 0 {
		if n := len(sc.v2free); n > 0 {
			s.v2, sc.v2free = sc.v2free[n-1], sc.v2free[:n-1]
		} else {
			if len(sc.v2series) == 0 {
				sc.v2series = append(sc.v2series, seriesV2{}) // 0 is unused
			}
			s.v2 = uint32(len(sc.v2series))
			sc.v2series = append(sc.v2series, seriesV2{})
		}
	}
	return &sc.v2series[s.v2]
}

// dropV2 frees what 2.0 kept of an evicted series.
func (sc *seriesCache) dropV2(s *seriesState) {
	if s.v2 != 0 {
		sc.v2series[s.v2] = seriesV2{}
		sc.v2free = append(sc.v2free, s.v2)
		s.v2 = 0
	}
}

// symbolTable numbers strings for the whole exporter, so that a stable
// series looks its labels up once. Strings of series that are gone stay
// until the table is rebuilt (a new epoch), which happens when it has
// grown well past what the requests use.
type symbolTable struct {
	ids   map[string]uint32
	strs  []string // strs[0] == ""
	epoch uint32

	// req numbers the requests being cut; slots[id].stamp == req when id
	// has a place in the current request's symbols, slots[id].local.
	req   uint32
	slots []symbolSlot
}

type symbolSlot struct{ stamp, local uint32 }

// fit makes slots cover every id of the table.
func (t *symbolTable) fit() {
	if n := len(t.strs); len(t.slots) < n {
		t.slots = append(t.slots, make([]symbolSlot, n-len(t.slots))...)
	}
}

func (t *symbolTable) id(s string) uint32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	if t.ids == nil {
		t.ids = map[string]uint32{"": 0}
		t.strs = append(t.strs[:0], "")
		if id, ok := t.ids[s]; ok {
			return id
		}
	}
	id := uint32(len(t.strs))
	t.strs = append(t.strs, s)
	t.ids[s] = id
	return id
}

// rebuild starts a new epoch: every series and family looks its strings up
// again when next sent.
func (t *symbolTable) rebuild() {
	t.ids = nil
	clear(t.strs)
	t.strs = t.strs[:0]
	t.slots = nil
	t.epoch++
}

// v2Scratch holds what the cut hands the workers, reused by every export.
type v2Scratch struct {
	// syms are the symbols of every request (the leading "" left out).
	syms []string
	// refs are, for each record in order: the length of its TimeSeries
	// message; the number of label refs and the refs; for each exemplar
	// in its extra bytes, 0 when it is left out, else 1 + the number of its
	// label refs, and the refs; the metadata type, help and unit refs.
	refs []uint32
}

// v2Cutter cuts one batch into 2.0 requests; it runs with the series
// cache locked.
type v2Cutter struct {
	t  *symbolTable
	sc *seriesCache
	x  *v2Scratch
	// symStart is where the current request's symbols start in x.syms.
	symStart int
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

// record appends record i's refs to the scratch and returns the size of
// its TimeSeries message and the bytes its new symbols add to the request.
// It also counts the exemplars it keeps.
func (c *v2Cutter) record(b *batch, i int, parts *partCounts) (n, symBytes int) {
	r := &b.records[i]
	info := &b.v2[i]
	s := r.s
	t := c.t
	sv := c.sc.seriesV2(s)
	if sv.epoch != t.epoch || sv.refs == nil {
		sv.refs = sv.refs[:0]
		c.sc.labels.walk(s.key, func(name, value string) {
			sv.refs = append(sv.refs, t.id(name), t.id(value))
		})
		sv.epoch = t.epoch
		t.fit()
	}
	// The hot loop of 2.0: two array lookups per label string.
	x := c.x
	head := len(x.refs)
	ids := sv.refs
	x.refs = slices.Grow(x.refs, 2+len(ids))
	x.refs = append(x.refs, 0, uint32(len(ids)))
	out := x.refs[len(x.refs) : len(x.refs)+len(ids)]
	slots, req := t.slots, t.req
	packed := 0
	for j, id := range ids {
		sl := &slots[id]
		if sl.stamp != req {
			_, nb := c.add(id)
			symBytes += nb
		}
		l := sl.local
		out[j] = l
		if l < 0x80 {
			packed++
		} else {
			packed += varintLen(uint64(l))
		}
	}
	x.refs = x.refs[:len(x.refs)+len(ids)]
	if packed > 0 {
		n += fieldLen(packed)
	}
	if !r.isHistogram() {
		n += fieldLen(sampleLenV2(r.value, r.ts, info.start))
	}
	info.newestExemplar = 0
	walkExtra(b.extraOf(r), func(tag byte, body string) {
		if tag == tagSeriesHistogram {
			n += fieldLen(len(body) + startLen(info.start))
			return
		}
		labels, rest := splitExemplar(body)
		ts := exemplarTime(rest)
		if sv.newestExemplar != 0 && ts <= sv.newestExemplar || info.newestExemplar != 0 && ts <= info.newestExemplar {
			x.refs = append(x.refs, 0)
			return
		}
		info.newestExemplar = ts
		parts.exemplars++
		at := len(x.refs)
		x.refs = append(x.refs, 1)
		packed := 0
		walkLabels(labels, func(name, value string) {
			ids := [2]uint32{t.id(name), t.id(value)}
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
	var typ, help, unit uint32
	if f := info.fam; f != nil {
		if f.symEpoch != t.epoch || !f.symbolized {
			f.helpID, f.unitID = t.id(f.help), t.id(f.unit)
			f.symEpoch, f.symbolized = t.epoch, true
			t.fit()
		}
		typ = uint32(f.typ)
		var nb int
		help, nb = c.ref(f.helpID)
		symBytes += nb
		unit, nb = c.ref(f.unitID)
		symBytes += nb
	}
	x.refs = append(x.refs, typ, help, unit)
	n += fieldLen(metadataLenV2(typ, help, unit))
	x.refs[head] = uint32(n)
	return n, symBytes
}

// cutV2 cuts b.records[from:] into 2.0 requests like batch.cut, each within
// the limits by its exact size (symbols included), and prepares what the
// workers encode them from.
func (sc *seriesCache) cutV2(b *batch, from, maxSeries, maxBytes int, x *v2Scratch, cuts []cut) []cut {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	x.syms, x.refs = x.syms[:0], x.refs[:0]
	c := &v2Cutter{t: &sc.symbols, sc: sc, x: x}
	cuts = cuts[:0]
	c.t.id("") // the table starts with ""
	c.beginRequest()
	const emptySymbol = 2 // symbols[0] == ""
	size, start, refStart := emptySymbol, from, 0
	var parts partCounts
	for i := from; i < len(b.records); i++ {
		refMark, symMark := len(x.refs), len(x.syms)
		var counted partCounts
		n, symBytes := c.record(b, i, &counted)
		field := fieldLen(n) + symBytes
		if i > start && (i-start >= maxSeries || size+field > maxBytes) {
			// The record goes to the next request: undo its refs and
			// symbols here.
			for _, s := range x.syms[symMark:] {
				c.t.slots[c.t.ids[s]].stamp = 0
			}
			x.refs, x.syms = x.refs[:refMark], x.syms[:symMark]
			cuts = append(cuts, cut{start: start, end: i, parts: parts, symStart: c.symStart, symEnd: symMark, refStart: refStart})
			c.beginRequest()
			size, start, refStart, parts = emptySymbol, i, refMark, partCounts{}
			counted = partCounts{}
			n, symBytes = c.record(b, i, &counted)
			field = fieldLen(n) + symBytes
		}
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
		cuts = append(cuts, cut{start: start, end: len(b.records), parts: parts, symStart: c.symStart, symEnd: len(x.syms), refStart: refStart})
	}
	// Rebuild the table when most of it is strings no request needs
	// any more (series gone, exemplars' trace ids).
	if len(c.t.strs) > 2*len(x.syms)+1<<16 {
		c.t.rebuild()
	}
	return cuts
}
