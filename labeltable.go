package prwmetric

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/prompb"
)

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
	return appendKeyLabels(dst, t.pairs, key)
}

// appendKeyLabels is appendLabels with the table's pairs as they were
// when a request was cut (see batchView).
func appendKeyLabels(dst []byte, pairs []labelPair, key string) []byte {
	n := len(dst)
	size, ids := keyLabelsLen(key), keyIDs(key)
	dst = slices.Grow(dst, size)[:n+size]
	out := dst[n:]
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
