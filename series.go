package prwmetric

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
)

// The series cache is how Export avoids redoing, every few seconds, work
// whose result never changes: a data point's attribute set, under the same
// resource, scope and metric, always yields the same Prometheus series with
// the same labels. So the first export of a series builds its labels by the
// rules (rules.go) and keeps them protobuf-encoded; later exports look the
// data point up by its attribute set and only write value and timestamp
// next to the cached bytes. The encoded labels are kept in pieces that many
// series share (labelTable): a series holds a key of a few bytes, not its
// labels, which would take as much memory as the requests themselves.
//
// The cache is a tree: resource → scope → metric → data point (by
// attribute set) → the point's series. The series themselves are interned
// by their key, that is by their labels, which are their identity for the
// receiver: that table also carries what staleness and timestamp ordering need (the
// seriesTracker of old), see stale.go. Entries not used by an export are
// dropped at its end, so memory follows the live series, plus those whose
// staleness marker has not been delivered yet.

// seriesState is one Prometheus series as the receiver knows it.
type seriesState struct {
	// key is the series' labels as the label table (labelTable) holds
	// them: the length of their encoding as TimeSeries label fields (see
	// keyLabelsLen), then the numbers of their pieces in the table, as
	// varints. It is also the series' identity. Once the series is
	// evicted (flagEvicted), key is the encoded labels themselves, which
	// no longer depend on the table.
	key string
	// newest is the newest timestamp delivered, when delivered is set.
	newest int64
	// bits holds the generation of the last export that sent it (the low
	// genBits) and the flags below: packed so that, with v2, a seriesState
	// fits a 32-byte allocation.
	bits uint32
	// v2 indexes what 2.0 requests keep of the series in
	// seriesCache.v2series; 0 until it is first sent as 2.0.
	v2 uint32
}

const (
	genBits = 24
	genMask = 1<<genBits - 1
)

// seriesFlag is one of the flags packed above the generation in
// seriesState.bits.
type seriesFlag uint32

const (
	// flagDelivered: the series was in the last successful export, so the
	// receiver holds it; it must be ended by a staleness marker when it
	// disappears, and its next sample must be later than newest.
	flagDelivered seriesFlag = 1 << (genBits + iota)
	// flagHistogram: its last delivered sample was a native histogram, so its
	// staleness marker must be one too.
	flagHistogram
	// flagEvicted: the series left the table. Cache entries that still point
	// to it look it up again by its labels, which its key then holds.
	flagEvicted
)

func (s *seriesState) seen() generation { return generation(s.bits & genMask) }

func (s *seriesState) setSeen(g generation) { s.bits = s.bits&^genMask | uint32(g) }

func (s *seriesState) is(flag seriesFlag) bool { return s.bits&uint32(flag) != 0 }

func (s *seriesState) set(flag seriesFlag, on bool) {
	if on {
		s.bits |= uint32(flag)
	} else {
		s.bits &^= uint32(flag)
	}
}

// seriesCache holds what exports reuse. One export converts at a time (the
// Exporter admits one), but Shutdown may read it concurrently, so it is
// guarded by mu.
type seriesCache struct {
	rules     *rules
	markStale bool

	mu sync.Mutex
	// gen numbers the exports (conversions), so that "seen in this export"
	// is one comparison.
	gen generation
	// labels numbers the pieces of the series' labels; byLabels interns
	// series by their key, made of those numbers. last lists the same
	// series, for the sweep at the end of each conversion: after it, they
	// are those of the last export and those the receiver still holds
	// from before (their staleness marker not delivered yet).
	labels   labelTable
	byLabels map[string]*seriesState
	last     []*seriesState
	// seenCount is how many series the current export sent: when it equals
	// len(last), no series disappeared and the sweep is skipped.
	seenCount int

	res *resourceEntry
	// entries and entriesSeen count the scope, metric and point entries,
	// in all and those the current export used, to skip their sweep too.
	entries, entriesSeen int

	// baseMemo is scratch space of the conversion.
	baseMemo baseMemo

	// families is reused by every conversion (see conversion.families).
	families map[string]prompb.MetricMetadata_MetricType
	// native, labelBuf, keyBuf, labelList and histPoints are scratch space
	// of the conversion.
	native    nativeScratch
	labelBuf  []byte
	keyBuf    []byte
	labelList []prompb.Label
	// histPoints are a histogram's points being converted.
	histPoints []histPoint

	// collectV2 makes conversions record what 2.0 requests need (batch.v2).
	collectV2 bool
	// symbols number the label strings of 2.0 requests; v2series holds
	// what 2.0 keeps of each series (seriesState.v2; 0 is unused), v2free
	// the indexes of evicted series, for reuse (symbols.go).
	symbols  symbolTable
	v2series []seriesV2
	v2free   []uint32

	// zeros is the state of WithInitialZero, nil without it.
	zeros *initialZeros
}

// generation numbers conversions, in genBits bits, which keep the
// per-series state small. Wrapping around is harmless: an entry keeps an
// old generation only while the export that would end it keeps failing, and
// 2^24 exports take half a year at one per second. 0 is skipped: new
// entries hold it.
type generation uint32

func (g generation) next() generation {
	if g = (g + 1) & genMask; g == 0 {
		g++
	}
	return g
}

func newSeriesCache(c *rules, markStale bool) *seriesCache {
	return &seriesCache{
		rules:     c,
		markStale: markStale,
		byLabels:  map[string]*seriesState{},
		families:  map[string]prompb.MetricMetadata_MetricType{},
	}
}

// intern returns the series with the given encoded labels, adding it if
// it is new.
func (sc *seriesCache) intern(labels string) *seriesState {
	key, ok := sc.labels.key(sc.keyBuf[:0], labels)
	sc.keyBuf = key
	if !ok {
		return nil // never: the conversion encodes the labels
	}
	return sc.internKey(key)
}

// internKey returns the series of key, adding it if it is new.
func (sc *seriesCache) internKey(key []byte) *seriesState {
	if s, ok := sc.byLabels[string(key)]; ok {
		return s
	}
	s := &seriesState{key: string(key)}
	sc.labels.retain(s.key)
	sc.byLabels[s.key] = s
	sc.last = append(sc.last, s)
	return s
}

// revive returns the series in the table that s, evicted, was: cache
// entries keep pointing to a series after it leaves the table.
func (sc *seriesCache) revive(s *seriesState) *seriesState {
	if !s.is(flagEvicted) {
		return s
	}
	return sc.intern(s.key)
}

// evict removes s from the table. Its key becomes its encoded labels, so
// that revive can find or add it again, whatever happened to the label
// numbers in between.
func (sc *seriesCache) evict(s *seriesState) {
	sc.baseMemo = baseMemo{} // it may hold numbers of pieces released below
	delete(sc.byLabels, s.key)
	sc.labelBuf = sc.labels.appendLabels(sc.labelBuf[:0], s.key)
	sc.labels.release(s.key)
	s.key = string(sc.labelBuf)
	s.set(flagEvicted, true)
}

// encodedLabels returns the encoded labels of s, for the rare messages
// that name a series.
func (sc *seriesCache) encodedLabels(s *seriesState) string {
	if s.is(flagEvicted) {
		return s.key
	}
	return string(sc.labels.appendLabels(nil, s.key))
}

// internLabels encodes labels and interns the series.
func (sc *seriesCache) internLabels(labels []prompb.Label) *seriesState {
	sc.labelBuf = appendLabels(sc.labelBuf[:0], labels)
	return sc.intern(unsafeString(sc.labelBuf))
}

// internWith interns the series withLabels(base, extra...) without
// allocating the labels.
func (sc *seriesCache) internWith(base []prompb.Label, extra ...prompb.Label) *seriesState {
	if e := sc.baseMemo.last; e != nil && len(base) > 0 && len(base) == len(e.labels) && unsafe.SliceData(base) == unsafe.SliceData(e.labels) {
		if s := sc.internBase(e, extra); s != nil {
			return s
		}
	}
	sc.labelList = appendWithLabels(sc.labelList[:0], base, extra...)
	s := sc.internLabels(sc.labelList)
	clear(sc.labelList) // keep no label strings alive
	return s
}

// internBase is internWith for the base labels of a memo entry (see
// conversion.baseLabels) and only __name__ added, which sorts before them,
// or nil if that is not the case: the series of a sum or a gauge, whose
// labels are then two pieces, __name__ and the base. The base's piece is
// looked up once for all the series of the attribute set. (A piece
// numbered here is used by the series interned, which keeps it in the
// table.)
func (sc *seriesCache) internBase(e *baseEntry, extra []prompb.Label) *seriesState {
	if e.split || len(extra) != 1 || extra[0].Name != labelMetricName || extra[0].Name >= e.labels[0].Name {
		return nil
	}
	t := &sc.labels
	if !e.runKnown {
		for _, l := range e.labels {
			switch l.Name {
			case labelMetricName, labelBucketBound, labelQuantile:
				e.split = true
				return nil
			}
		}
		sc.labelBuf = appendLabels(sc.labelBuf[:0], e.labels)
		e.run, e.runSize, e.runKnown = t.id(unsafeString(sc.labelBuf)), len(sc.labelBuf), true
	}
	sc.labelBuf = appendLabels(sc.labelBuf[:0], extra)
	key := appendKeySize(sc.keyBuf[:0], len(sc.labelBuf)+e.runSize)
	key = appendVarint(key, uint64(t.id(unsafeString(sc.labelBuf))))
	key = appendVarint(key, uint64(e.run))
	sc.keyBuf = key
	return sc.internKey(key)
}

// labelTable numbers pieces of encoded labels, so that a series keeps a
// few bytes of numbers (its key) instead of its labels. The labels that
// tell a data point's series apart cut them into pieces: __name__ is a
// piece of its own, le and quantile start one; the runs of labels between
// are those of the data point's attributes, its scope and resource, which
// all the series of the point share, and mostly the series of the same
// attribute set in the scope's other metrics (twenty in the 1 000 000-series
// export). A sum's series is two pieces, a histogram's bucket three. The pieces of a label set follow from the
// labels alone, so equal labels make equal keys, which identify the
// series. Each piece is kept as its TimeSeries.labels fields, ready to be
// copied into a request, and counts the series in the table that use it;
// a piece no series uses is dropped, and its number used again.
type labelTable struct {
	ids   map[string]uint32
	pairs []labelPair
	free  []uint32
}

type labelPair struct {
	// field is the piece's encoded TimeSeries.labels fields.
	field  string
	series uint32
}

// key appends to dst the key of the series whose encoded labels are
// labels, numbering the pieces not yet in the table. It reports false for
// malformed labels, which appendLabels never writes.
func (t *labelTable) key(dst []byte, labels string) ([]byte, bool) {
	dst = appendKeySize(dst, len(labels))
	run := 0 // where the current piece started
	for at := 0; at < len(labels); {
		rest := labels[at:]
		n, r, ok := readVarint(rest[1:])
		if !ok || rest[0] != tagSeriesLabel || uint64(len(r)) < n {
			return dst, false
		}
		end := at + len(rest) - len(r) + int(n)
		kind := pieceLabel(r[:n])
		if kind == 0 {
			at = end
			continue
		}
		if run < at {
			dst = appendVarint(dst, uint64(t.id(labels[run:at])))
		}
		run = at
		if kind == pieceAlone {
			dst = appendVarint(dst, uint64(t.id(labels[at:end])))
			run = end
		}
		at = end
	}
	if run < len(labels) {
		dst = appendVarint(dst, uint64(t.id(labels[run:])))
	}
	return dst, true
}

// What starts a piece (see labelTable).
const (
	// pieceAlone: __name__, a piece of its own.
	pieceAlone = 1 + iota
	// pieceStart: le or quantile, which starts a piece with the labels
	// after it (up to the next such label): those are mostly the same for
	// all the points of a histogram (scope labels, attributes sorting
	// after le), where the labels before it are a point's own.
	pieceStart
)

// pieceLabel says whether the encoded Label message msg starts a piece.
func pieceLabel(msg string) int {
	if len(msg) < 2 || msg[0] != tagLabelName {
		return 0
	}
	n := int(msg[1]) // the names below are shorter than 0x80
	if n >= 0x80 || len(msg) < 2+n {
		return 0
	}
	switch msg[2 : 2+n] {
	case labelMetricName:
		return pieceAlone
	case labelBucketBound, labelQuantile:
		return pieceStart
	}
	return 0
}

// id returns the number of a piece, numbering it if it is new.
func (t *labelTable) id(field string) uint32 {
	if id, ok := t.ids[field]; ok {
		return id
	}
	if t.ids == nil {
		t.ids = map[string]uint32{}
	}
	return t.add(field)
}

// add numbers a new piece; no series uses it yet.
func (t *labelTable) add(field string) uint32 {
	p := labelPair{field: strings.Clone(field)}
	var id uint32
	if n := len(t.free); n > 0 {
		id, t.free = t.free[n-1], t.free[:n-1]
		t.pairs[id] = p
	} else {
		id = uint32(len(t.pairs))
		t.pairs = append(t.pairs, p)
	}
	t.ids[p.field] = id
	return id
}

// retain counts a new series of key among the users of its pieces.
func (t *labelTable) retain(key string) {
	for ids := keyIDs(key); len(ids) > 0; {
		var id uint32
		id, ids = nextID(ids)
		t.pairs[id].series++
	}
}

// release uncounts a series leaving the table, dropping the pieces no
// other series uses.
func (t *labelTable) release(key string) {
	for ids := keyIDs(key); len(ids) > 0; {
		var id uint32
		id, ids = nextID(ids)
		p := &t.pairs[id]
		if p.series--; p.series == 0 {
			delete(t.ids, p.field)
			*p = labelPair{}
			t.free = append(t.free, id)
		}
	}
}

// appendLabels appends the encoded labels of key (TimeSeries.labels
// fields). It is the inner loop of encoding: one copy per piece.
func (t *labelTable) appendLabels(dst []byte, key string) []byte {
	n := len(dst)
	size, ids := keyLabelsLen(key), keyIDs(key)
	dst = slices.Grow(dst, size)[:n+size]
	out := dst[n:]
	pairs := t.pairs
	for i := 0; i < len(ids); {
		id := uint32(ids[i])
		i++
		if id >= 0x80 {
			id &= 0x7f
			for shift := 7; i < len(ids); shift += 7 {
				c := ids[i]
				i++
				id |= uint32(c&0x7f) << shift
				if c < 0x80 {
					break
				}
			}
		}
		out = out[copy(out, pairs[id].field):]
	}
	return dst
}

// walk calls fn with each label of key, in order.
func (t *labelTable) walk(key string, fn func(name, value string)) {
	for ids := keyIDs(key); len(ids) > 0; {
		var id uint32
		id, ids = nextID(ids)
		walkLabels(t.pairs[id].field, fn)
	}
}

// compare compares the encoded labels of two keys as byte strings.
func (t *labelTable) compare(a, b string) int {
	a, b = keyIDs(a), keyIDs(b)
	var fa, fb string // what is left of the current fields
	for {
		if len(fa) == 0 && len(fb) == 0 {
			// Both at a field boundary: equal numbers are equal fields.
			for len(a) > 0 && len(b) > 0 {
				ia, ra := nextID(a)
				ib, rb := nextID(b)
				if ia != ib {
					break
				}
				a, b = ra, rb
			}
		}
		if len(fa) == 0 && len(a) > 0 {
			var id uint32
			id, a = nextID(a)
			fa = t.pairs[id].field
		}
		if len(fb) == 0 && len(b) > 0 {
			var id uint32
			id, b = nextID(b)
			fb = t.pairs[id].field
		}
		if len(fa) == 0 || len(fb) == 0 {
			return cmp.Compare(len(fa), len(fb))
		}
		n := min(len(fa), len(fb))
		if c := strings.Compare(fa[:n], fb[:n]); c != 0 {
			return c
		}
		fa, fb = fa[n:], fb[n:]
	}
}

// A key starts with the size of its encoded labels, read twice per series
// and request: two bytes, little-endian, but for labels of 64 KiB or more,
// whose size follows the two bytes 0xffff in four more (appendKeySize).

// keyLabelsLen is the size of the encoded labels of key.
func keyLabelsLen(key string) int {
	n := int(key[0]) | int(key[1])<<8
	if n == 0xffff {
		n = int(key[2]) | int(key[3])<<8 | int(key[4])<<16 | int(key[5])<<24
	}
	return n
}

// keyIDs returns the piece numbers of key, past the size.
func keyIDs(key string) string {
	if key[0]&key[1] == 0xff {
		return key[6:]
	}
	return key[2:]
}

// appendKeySize appends the size of a key's encoded labels.
func appendKeySize(dst []byte, n int) []byte {
	if n < 0xffff {
		return binary.LittleEndian.AppendUint16(dst, uint16(n))
	}
	dst = append(dst, 0xff, 0xff)
	return binary.LittleEndian.AppendUint32(dst, uint32(n))
}

// nextID reads the first piece number of ids.
func nextID(ids string) (uint32, string) {
	if c := ids[0]; c < 0x80 {
		return uint32(c), ids[1:]
	}
	if len(ids) > 1 && ids[1] < 0x80 {
		return uint32(ids[0]&0x7f) | uint32(ids[1])<<7, ids[2:]
	}
	v, rest, _ := readVarint(ids)
	return uint32(v), rest
}

// decodeLabels reads back labels written by appendLabels, for the rare
// messages that name a series (a duplicate). It returns nil on malformed
// input, which appendLabels never writes.
func decodeLabels(b string) []prompb.Label {
	var out []prompb.Label
	if !walkLabels(b, func(name, value string) { out = append(out, prompb.Label{Name: name, Value: value}) }) {
		return nil
	}
	return out
}

// walkLabels calls fn with each label written by appendLabels, in order;
// the strings are substrings of b. It reports false for malformed input.
func walkLabels(b string, fn func(name, value string)) bool {
	for len(b) > 0 {
		if b[0] != tagSeriesLabel {
			return false
		}
		n, rest, ok := readVarint(b[1:])
		if !ok || uint64(len(rest)) < n {
			return false
		}
		msg := rest[:n]
		b = rest[n:]
		var name, value string
		for len(msg) > 0 {
			tag := msg[0]
			m, r, ok := readVarint(msg[1:])
			if !ok || uint64(len(r)) < m {
				return false
			}
			switch tag {
			case tagLabelName:
				name = r[:m]
			case tagLabelValue:
				value = r[:m]
			default:
				return false
			}
			msg = r[m:]
		}
		fn(name, value)
	}
	return true
}

func readVarint(b string) (uint64, string, bool) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, b[i+1:], true
		}
	}
	return 0, "", false
}
