package prwmetric

import (
	"sync"

	"github.com/prometheus/prometheus/prompb"
)

// The series cache is how Export avoids redoing, every few seconds, work
// whose result never changes: a data point's attribute set, under the same
// resource, scope and metric, always yields the same Prometheus series with
// the same labels. So the first export of a series builds its labels by the
// rules (rules.go) and keeps them protobuf-encoded;
// later exports look the data point up by its attribute set and only write
// value and timestamp next to the cached bytes.
//
// The cache is a tree: resource → scope → metric → data point (by
// attribute set) → the point's series. The series themselves are interned
// by their encoded labels, which is their identity for the receiver: that
// table also carries what staleness and timestamp ordering need (the
// seriesTracker of old), see stale.go. Entries not used by an export are
// dropped at its end, so memory follows the live series, plus those whose
// staleness marker has not been delivered yet.

// seriesState is one Prometheus series as the receiver knows it.
type seriesState struct {
	// labels are the series' labels encoded as TimeSeries label fields,
	// ready to be copied into a request; they are also its identity.
	labels string
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
	// to it look it up again by its labels.
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
	// byLabels interns series by their encoded labels. last lists the same
	// series, for the sweep at the end of each conversion: after it, they
	// are those of the last export and those the receiver still holds
	// from before (their staleness marker not delivered yet).
	byLabels map[string]*seriesState
	last     []*seriesState
	// seenCount is how many series the current export sent: when it equals
	// len(last), no series disappeared and the sweep is skipped.
	seenCount int

	res *resourceEntry
	// entries and entriesSeen count the scope, metric and point entries,
	// in all and those the current export used, to skip their sweep too.
	entries, entriesSeen int

	// families is reused by every conversion (see conversion.families).
	families map[string]prompb.MetricMetadata_MetricType
	// native, labelBuf, labels and histPoints are scratch space of the conversion.
	native   nativeScratch
	labelBuf []byte
	labels   []prompb.Label
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
// it is new. Looking up with string(labels) does not allocate.
func (sc *seriesCache) intern(labels []byte) *seriesState {
	if s, ok := sc.byLabels[string(labels)]; ok {
		return s
	}
	return sc.internString(string(labels))
}

// internString is intern for labels held in a string.
func (sc *seriesCache) internString(labels string) *seriesState {
	if s, ok := sc.byLabels[labels]; ok {
		return s
	}
	s := &seriesState{labels: labels}
	sc.byLabels[labels] = s
	sc.last = append(sc.last, s)
	return s
}

// internLabels encodes labels and interns the series.
func (sc *seriesCache) internLabels(labels []prompb.Label) *seriesState {
	sc.labelBuf = appendLabels(sc.labelBuf[:0], labels)
	return sc.intern(sc.labelBuf)
}

// internWith interns the series withLabels(base, extra...) without
// allocating the labels.
func (sc *seriesCache) internWith(base []prompb.Label, extra ...prompb.Label) *seriesState {
	sc.labels = appendWithLabels(sc.labels[:0], base, extra...)
	s := sc.internLabels(sc.labels)
	clear(sc.labels) // keep no label strings alive
	return s
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
