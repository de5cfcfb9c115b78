package prwmetric

import (
	"unsafe"
)

// Remote Write 2.0 (io.prometheus.write.v2.Request), written like encode.go
// writes 1.0: the bytes gogo's Marshal of the writev2 message would write.
//
// A 2.0 request lists each label string once (the symbols) and refers to it
// by its index. The series cache keeps, per series, its label strings'
// numbers in an exporter-wide symbol table; cutting the batch into requests
// (sequential, before the workers start) maps those to the request's own
// indexes with two array lookups per label, or finds the series' encoding
// of the last export still good (see v2Cutter.record), and records the
// result for the workers, which copy it next to the cached 1.0 bytes they
// reuse (exemplars and native histograms have the same fields in 2.0,
// under other tags).

const (
	tagV2Symbol     = 4<<3 | 2 // Request.symbols
	tagV2Timeseries = 5<<3 | 2 // Request.timeseries

	tagV2LabelsRefs = 1<<3 | 2 // TimeSeries.labels_refs and Exemplar.labels_refs, packed
	tagV2Sample     = 2<<3 | 2 // TimeSeries.samples
	tagV2Histogram  = 3<<3 | 2 // TimeSeries.histograms
	tagV2Exemplar   = 4<<3 | 2 // TimeSeries.exemplars
	tagV2Metadata   = 5<<3 | 2 // TimeSeries.metadata

	tagV2SampleStart = 3<<3 | 0 // Sample.start_timestamp

	tagV2MetaType = 1<<3 | 0
	tagV2MetaHelp = 3<<3 | 0
	tagV2MetaUnit = 4<<3 | 0
)

// tagV2HistStart is Histogram.start_timestamp (field 17), a two-byte tag.
var tagV2HistStart = []byte{17<<3 | 0x80, 1}

// encode appends the 2.0 request of records[c.start:c.end] to buf.
func (v *v2Cut) encode(buf []byte, b *batch, c cut) []byte {
	buf = append(buf, tagV2Symbol, 0)
	for _, s := range v.syms {
		buf = appendString(buf, tagV2Symbol, s)
	}
	refs := v.refs
	var t sampleTail
	for i := c.start; i < c.end; i++ {
		r := &b.records[i]
		info := &b.v2[i]
		enc := v.v2series[v.series[i-c.start]].encoding()
		buf = append(buf, tagV2Timeseries)
		buf = appendVarint(buf, uint64(refs[0]))
		metaAt := refs[1]
		refs = refs[2:]
		buf = append(buf, enc[:metaAt]...)
		if !r.isHistogram() {
			buf = t.appendSample(buf, r.value, r.ts, info.start)
		}
		extra := b.extraOf(r)
		if len(extra) == 0 {
			buf = append(buf, enc[metaAt:]...)
			continue
		}
		walkExtra(extra, func(tag byte, body string) {
			if tag != tagSeriesHistogram {
				return
			}
			buf = append(buf, tagV2Histogram)
			buf = appendVarint(buf, uint64(len(body)+startLen(info.start)))
			buf = append(buf, body...)
			if info.start != 0 {
				buf = append(buf, tagV2HistStart...)
				buf = appendVarint(buf, uint64(info.start))
			}
		})
		walkExtra(extra, func(tag byte, body string) {
			if tag != tagSeriesExemplar {
				return
			}
			k := refs[0]
			if k == 0 {
				refs = refs[1:]
				return
			}
			eref := refs[1:k]
			refs = refs[k:]
			_, rest := splitExemplar(body)
			m := len(rest)
			if len(eref) > 0 {
				m += fieldLen(packedLen(eref))
			}
			buf = append(buf, tagV2Exemplar)
			buf = appendVarint(buf, uint64(m))
			buf = appendPacked(buf, eref)
			buf = append(buf, rest...)
		})
		buf = append(buf, enc[metaAt:]...)
	}
	return buf
}

// walkExtra calls fn with each TimeSeries field (1.0 tags) in extra bytes.
func walkExtra(extra string, fn func(tag byte, body string)) {
	for len(extra) > 0 {
		tag := extra[0]
		n, rest, ok := readVarint(extra[1:])
		if !ok || uint64(len(rest)) < n {
			return
		}
		fn(tag, rest[:n])
		extra = rest[n:]
	}
}

// splitExemplar splits a 1.0 Exemplar message into its label fields and
// the rest (value and timestamp), which 2.0 writes the same way.
func splitExemplar(body string) (labels, rest string) {
	i := 0
	for i < len(body) && body[i] == tagExemplarLabel {
		n, r, ok := readVarint(body[i+1:])
		if !ok || uint64(len(r)) < n {
			break
		}
		i = len(body) - len(r) + int(n)
	}
	return body[:i], body[i:]
}

// exemplarTime reads the timestamp from the rest of an exemplar.
func exemplarTime(rest string) int64 {
	if len(rest) > 0 && rest[0] == tagExemplarValue {
		rest = rest[min(9, len(rest)):]
	}
	if len(rest) > 0 && rest[0] == tagExemplarTimestamp {
		v, _, _ := readVarint(rest[1:])
		return int64(v)
	}
	return 0
}

func packedLen(refs []uint32) int {
	n := 0
	for _, r := range refs {
		n += varintLen(uint64(r))
	}
	return n
}

func appendPacked(b []byte, refs []uint32) []byte {
	if len(refs) == 0 {
		return b
	}
	b = append(b, tagV2LabelsRefs)
	b = appendVarint(b, uint64(packedLen(refs)))
	for _, r := range refs {
		b = appendVarint(b, uint64(r))
	}
	return b
}

func startLen(start int64) int {
	if start == 0 {
		return 0
	}
	return len(tagV2HistStart) + varintLen(uint64(start))
}

// sampleTail keeps the timestamp and start fields of the last 2.0 sample
// written: the records of an export mostly share them.
type sampleTail struct {
	ms, start int64
	n         int
	b         [24]byte
	ok        bool
}

// set makes t the fields of ms and start.
func (t *sampleTail) set(ms, start int64) {
	if t.ok && t.ms == ms && t.start == start {
		return
	}
	b := t.b[:0]
	if ms != 0 {
		b = append(b, tagSampleTimestamp)
		b = appendVarint(b, uint64(ms))
	}
	if start != 0 {
		b = append(b, tagV2SampleStart)
		b = appendVarint(b, uint64(start))
	}
	t.ms, t.start, t.n, t.ok = ms, start, len(b), true
}

// sampleLen is the size of a 2.0 Sample message with value v at
// timestamp ms, started at start.
func (t *sampleTail) sampleLen(v float64, ms, start int64) int {
	t.set(ms, start)
	if v != 0 {
		return 9 + t.n
	}
	return t.n
}

// appendSample appends a TimeSeries.samples field. v is written bit for
// bit, so the stale NaN stays the stale NaN.
func (t *sampleTail) appendSample(b []byte, v float64, ms, start int64) []byte {
	t.set(ms, start)
	b = append(b, tagV2Sample)
	if v == 0 {
		b = appendVarint(b, uint64(t.n))
		return append(b, t.b[:t.n]...)
	}
	b = appendVarint(b, uint64(9+t.n))
	b = appendDouble(b, tagSampleValue, v)
	return append(b, t.b[:t.n]...)
}

func metadataLenV2(typ, help, unit uint32) int {
	n := 0
	for _, v := range [3]uint32{typ, help, unit} {
		if v != 0 {
			n += 1 + varintLen(uint64(v))
		}
	}
	return n
}

func appendMetadataV2(b []byte, typ, help, unit uint32) []byte {
	b = append(b, tagV2Metadata)
	b = appendVarint(b, uint64(metadataLenV2(typ, help, unit)))
	for i, v := range [3]uint32{typ, help, unit} {
		if v != 0 {
			b = append(b, [3]byte{tagV2MetaType, tagV2MetaHelp, tagV2MetaUnit}[i])
			b = appendVarint(b, uint64(v))
		}
	}
	return b
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
