package prwmetric

import "strings"

// seriesV2 is what the 2.0 encoding keeps of a series between exports.
// The fields the steady-state cut reads come first, then the encoding the
// workers copy.
type seriesV2 struct {
	// The series' request-local encoding as last cut (see v2Cutter.record):
	// its labels_refs field, then (from metaAt) its metadata field; in
	// inline[:encLen], or in heap when longer. It is good again when the
	// request's symbols before the series are the same: when the record
	// before it in the request is the one whose encoding had generation
	// prevGen (0: it was first; notReusable: the encoding is not to be
	// reused), and its metadata strings are meta. added marks which of
	// refs, then help and unit, added a symbol (symBytes long in all) to
	// the request.
	gen      uint64 // 0: none
	prevGen  uint64
	meta     [3]uint32 // type; help and unit in the symbol table
	metaAt   uint32
	symBytes uint32
	// epoch is the symbol table's epoch of refs.
	epoch  uint32
	encLen uint32
	inline [encInline]byte
	heap   []byte

	added uint64
	// refs are the series' label names and values, alternating, as
	// numbers in the symbol table of epoch.
	refs []uint32
	// newestExemplar is the time of the newest exemplar delivered: 2.0
	// receivers refuse older ones and count equal ones as not written,
	// and the SDK repeats a cumulative point's exemplars.
	newestExemplar int64
}

// encInline is the longest encoding a seriesV2 holds in itself: a series
// of up to about 15 labels.
const encInline = 40

// encoding returns the series' encoding (see seriesV2).
func (sv *seriesV2) encoding() []byte {
	if sv.heap != nil {
		return sv.heap
	}
	return sv.inline[:sv.encLen]
}

// notReusable is the prevGen of an encoding that the next cut numbers
// again: no record's generation.
const notReusable = ^uint64(0)

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

	// gens numbers the series' request-local encodings (seriesV2.gen).
	gens uint64
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

// idCopy is id for a string whose bytes will change (an exemplar's label,
// in the batch): the table, which outlives the export, keeps a copy of a
// new one.
func (t *symbolTable) idCopy(s string) uint32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	return t.id(strings.Clone(s))
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
