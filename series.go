package prwmetric

import (
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
	// stamp packs the newest timestamp delivered (when delivered is set;
	// ms, 48 bits, signed) and, above it, the size of the encoded labels
	// (sizeUnknown when it needs more than 16 bits): the cut sizes every
	// record, and reading the size here spares a cache miss on the key's
	// bytes per series, within the 32 bytes.
	stamp uint64
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
	// flagMoved: restamp moved its newest sample delivered, whose own time
	// and value seriesCache.moved holds.
	flagMoved
	// flagPacking: packStates is moving the state, whose place in the
	// states it moves v2 holds meanwhile.
	flagPacking
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

const (
	stampBits   = 48
	stampMask   = 1<<stampBits - 1
	sizeUnknown = 1<<(64-stampBits) - 1
)

// newest is the newest timestamp delivered (see stamp).
func (s *seriesState) newest() int64 { return int64(s.stamp<<(64-stampBits)) >> (64 - stampBits) }

func (s *seriesState) setNewest(ms int64) { s.stamp = s.stamp&^stampMask | uint64(ms)&stampMask }

// labelsSize is the size of the series' encoded labels.
func (s *seriesState) labelsSize() int {
	if n := s.stamp >> stampBits; n != sizeUnknown {
		return int(n)
	}
	return keyLabelsLen(s.key)
}

func (s *seriesState) setSize(n int) {
	s.stamp = s.stamp&stampMask | uint64(min(n, sizeUnknown))<<stampBits
}

// seriesCache holds what exports reuse. One export converts at a time (the
// Exporter admits one), but Shutdown may read it concurrently, so it is
// guarded by mu.
type seriesCache struct {
	rules     *rules
	markStale bool

	mu sync.Mutex
	// moved holds, for the series whose newest sample delivered restamp
	// moved (flagMoved), that sample's own time and value.
	moved map[*seriesState]movedSample
	// nativeAccepted: the receiver has accepted a native histogram (see
	// marksEarly).
	nativeAccepted bool
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
	// pointsDropped counts the data points of the current export with a
	// series emit dropped: another point had the same labels.
	pointsDropped int

	res *resourceEntry
	// entries and entriesSeen count the scope, metric and point entries,
	// in all and those the current export used, to skip their sweep too.
	entries, entriesSeen int

	// baseMemo is scratch space of the conversion.
	baseMemo baseMemo

	// names holds a nameSlot per family name of the entries under res,
	// which their families point to (family.slot).
	names map[string]*nameSlot
	// native, labelBuf, keyBuf, labelList and histPoints are scratch space
	// of the conversion.
	native    nativeScratch
	labelBuf  []byte
	keyBuf    []byte
	labelList []prompb.Label
	// histPoints are a histogram's points being converted.
	histPoints []histPoint
	// slots are the series slots of a histogram being packed (packStates).
	slots []**seriesState
	// exemplars are the exemplars of the metric being converted.
	exemplars exemplarScratch

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
	s.setSize(keyLabelsLen(s.key))
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
	if s.is(flagMoved) {
		delete(sc.moved, s)
		s.set(flagMoved, false)
	}
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
