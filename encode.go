package prwmetric

import (
	"encoding/binary"
	"math"

	"github.com/prometheus/prometheus/prompb"
)

// seriesLen is the size of r's TimeSeries message.
func (b *batch) seriesLen(r *record) int {
	n := r.s.labelsSize() + int(r.extraSize())
	if !r.isHistogram() {
		n += fieldLen(sampleLen(r.value, r.ts))
	}
	return n
}

// batchView is what encoding a request reads of a batch: its slices as
// they were when the request was cut. The conversion may still be
// appending to the batch (and to the label table) while a worker encodes
// the export's first requests (see stream); appending never changes what
// a view holds.
type batchView struct {
	records   []record
	extra     []byte
	pairs     []labelPair
	metadata  []string
	v2        []recordV2
	collectV2 bool
}

func (b *batch) view() batchView {
	return batchView{records: b.records, extra: b.extra, pairs: b.labels.pairs, metadata: b.metadata, v2: b.v2, collectV2: b.collectV2}
}

// encode appends the WriteRequest of the records of c to buf, with the
// metadata at the end, where gogo's Marshal puts them, when c carries
// them.
func (v *batchView) encode(buf []byte, c cut) []byte {
	for i := c.start; i < c.end; i++ {
		if v.collectV2 && v.v2[i].customBuckets {
			continue // see batch.skippedByV1
		}
		r := &v.records[i]
		n := keyLabelsLen(r.key) + int(r.extraSize())
		if !r.isHistogram() {
			n += fieldLen(sampleLen(r.value, r.ts))
		}
		buf = append(buf, tagWriteTimeseries)
		buf = appendVarint(buf, uint64(n))
		buf = appendKeyLabels(buf, v.pairs, r.key)
		if !r.isHistogram() {
			buf = appendSample(buf, r.value, r.ts)
		}
		buf = append(buf, v.extra[r.extra:r.extra+r.extraSize()]...)
	}
	if c.metadata {
		for _, m := range v.metadata {
			buf = append(buf, m...)
		}
	}
	return buf
}

// The Remote-Write 1.0 protobuf wire format, written directly into byte
// slices. Every function writes exactly the bytes gogo's generated Marshal
// of the matching prompb message writes: fields in field-number order,
// proto3 zero values left out, oneofs and repeated messages always written.
// The tests hold this to byte equality with prompb; prompb stays the
// reference, this is only the fast way to produce the same bytes.

// Field tags (field number << 3 | wire type) of the messages we write.
const (
	tagWriteTimeseries = 1<<3 | 2 // WriteRequest.timeseries
	tagWriteMetadata   = 3<<3 | 2 // WriteRequest.metadata

	tagSeriesLabel     = 1<<3 | 2 // TimeSeries.labels
	tagSeriesSample    = 2<<3 | 2 // TimeSeries.samples
	tagSeriesExemplar  = 3<<3 | 2 // TimeSeries.exemplars
	tagSeriesHistogram = 4<<3 | 2 // TimeSeries.histograms

	tagLabelName  = 1<<3 | 2
	tagLabelValue = 2<<3 | 2

	tagSampleValue     = 1<<3 | 1
	tagSampleTimestamp = 2<<3 | 0

	tagExemplarLabel     = 1<<3 | 2
	tagExemplarValue     = 2<<3 | 1
	tagExemplarTimestamp = 3<<3 | 0

	tagHistCountInt      = 1<<3 | 0
	tagHistSum           = 3<<3 | 1
	tagHistSchema        = 4<<3 | 0
	tagHistZeroThreshold = 5<<3 | 1
	tagHistZeroCountInt  = 6<<3 | 0
	tagHistNegSpan       = 8<<3 | 2
	tagHistNegDeltas     = 9<<3 | 2
	tagHistPosSpan       = 11<<3 | 2
	tagHistPosDeltas     = 12<<3 | 2
	tagHistResetHint     = 14<<3 | 0
	tagHistTimestamp     = 15<<3 | 0
	tagHistCustomValues  = 16<<3 | 2 // a two-byte tag

	tagSpanOffset = 1<<3 | 0
	tagSpanLength = 2<<3 | 0

	tagMetaType   = 1<<3 | 0
	tagMetaFamily = 2<<3 | 2
	tagMetaHelp   = 4<<3 | 2
	tagMetaUnit   = 5<<3 | 2
)

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// varintLen is the length of v as a protobuf varint.
func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendDouble(b []byte, tag byte, v float64) []byte {
	b = append(b, tag)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

func appendString(b []byte, tag byte, s string) []byte {
	b = append(b, tag)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// fieldLen is the size of a length-delimited field whose content is n
// bytes: tag, length prefix and content.
func fieldLen(n int) int { return 1 + varintLen(uint64(n)) + n }

// appendLabels appends labels as TimeSeries (or Exemplar) label fields: the
// encoded form that the series cache keeps per series.
func appendLabels(b []byte, labels []prompb.Label) []byte {
	for _, l := range labels {
		n := 0
		if l.Name != "" {
			n += fieldLen(len(l.Name))
		}
		if l.Value != "" {
			n += fieldLen(len(l.Value))
		}
		b = append(b, tagSeriesLabel)
		b = appendVarint(b, uint64(n))
		if l.Name != "" {
			b = appendString(b, tagLabelName, l.Name)
		}
		if l.Value != "" {
			b = appendString(b, tagLabelValue, l.Value)
		}
	}
	return b
}

// sampleLen is the size of a Sample message with value v at timestamp ms.
func sampleLen(v float64, ms int64) int {
	n := 0
	if v != 0 {
		n += 9
	}
	if ms != 0 {
		n += 1 + varintLen(uint64(ms))
	}
	return n
}

// appendSample appends a TimeSeries.samples field. v is written bit for bit,
// so the stale NaN stays the stale NaN.
func appendSample(b []byte, v float64, ms int64) []byte {
	b = append(b, tagSeriesSample)
	b = appendVarint(b, uint64(sampleLen(v, ms)))
	if v != 0 {
		b = appendDouble(b, tagSampleValue, v)
	}
	if ms != 0 {
		b = append(b, tagSampleTimestamp)
		b = appendVarint(b, uint64(ms))
	}
	return b
}

// appendExemplar appends a TimeSeries.exemplars field.
func appendExemplar(b []byte, e *prompb.Exemplar) []byte {
	n := labelsLen(e.Labels)
	if e.Value != 0 {
		n += 9
	}
	if e.Timestamp != 0 {
		n += 1 + varintLen(uint64(e.Timestamp))
	}
	b = append(b, tagSeriesExemplar)
	b = appendVarint(b, uint64(n))
	b = appendLabels(b, e.Labels) // same tag (1) as TimeSeries.labels
	if e.Value != 0 {
		b = appendDouble(b, tagExemplarValue, e.Value)
	}
	if e.Timestamp != 0 {
		b = append(b, tagExemplarTimestamp)
		b = appendVarint(b, uint64(e.Timestamp))
	}
	return b
}

func labelsLen(labels []prompb.Label) int {
	n := 0
	for _, l := range labels {
		m := 0
		if l.Name != "" {
			m += fieldLen(len(l.Name))
		}
		if l.Value != "" {
			m += fieldLen(len(l.Value))
		}
		n += fieldLen(m)
	}
	return n
}

func zigzag32(v int32) uint64 { return uint64(uint32(v<<1) ^ uint32(v>>31)) }

func zigzag64(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func spanLen(s bucketSpan) int {
	n := 0
	if s.offset != 0 {
		n += 1 + varintLen(zigzag32(s.offset))
	}
	if s.length != 0 {
		n += 1 + varintLen(uint64(s.length))
	}
	return n
}

func appendSpans(b []byte, tag byte, spans []bucketSpan) []byte {
	for _, s := range spans {
		b = append(b, tag)
		b = appendVarint(b, uint64(spanLen(s)))
		if s.offset != 0 {
			b = append(b, tagSpanOffset)
			b = appendVarint(b, zigzag32(s.offset))
		}
		if s.length != 0 {
			b = append(b, tagSpanLength)
			b = appendVarint(b, uint64(s.length))
		}
	}
	return b
}

func deltasLen(deltas []int64) int {
	n := 0
	for _, d := range deltas {
		n += varintLen(zigzag64(d))
	}
	return n
}

func appendDeltas(b []byte, tag byte, deltas []int64) []byte {
	if len(deltas) == 0 {
		return b
	}
	b = append(b, tag)
	b = appendVarint(b, uint64(deltasLen(deltas)))
	for _, d := range deltas {
		b = appendVarint(b, zigzag64(d))
	}
	return b
}

// appendHistogram appends a TimeSeries.histograms field for an integer
// native histogram (count and zero count set, as nativeHistogram makes
// them) or, with counts false, for the stale marker, which carries only a
// sum and a timestamp.
func appendHistogram(b []byte, h *nativeParts, counts bool) []byte {
	n := 0
	if counts {
		n += 1 + varintLen(h.count)
	}
	if h.sum != 0 {
		n += 9
	}
	if h.schema != 0 {
		n += 1 + varintLen(zigzag32(h.schema))
	}
	if h.zeroThreshold != 0 {
		n += 9
	}
	if counts {
		n += 1 + varintLen(h.zeroCount)
	}
	for _, s := range h.negSpans {
		n += fieldLen(spanLen(s))
	}
	if len(h.negDeltas) > 0 {
		n += fieldLen(deltasLen(h.negDeltas))
	}
	for _, s := range h.posSpans {
		n += fieldLen(spanLen(s))
	}
	if len(h.posDeltas) > 0 {
		n += fieldLen(deltasLen(h.posDeltas))
	}
	// The reset hint is UNKNOWN (0), which proto3 leaves out.
	if h.timestamp != 0 {
		n += 1 + varintLen(uint64(h.timestamp))
	}
	if len(h.customValues) > 0 {
		n += 2 + varintLen(uint64(8*len(h.customValues))) + 8*len(h.customValues)
	}

	b = append(b, tagSeriesHistogram)
	b = appendVarint(b, uint64(n))
	if counts {
		b = append(b, tagHistCountInt)
		b = appendVarint(b, h.count)
	}
	if h.sum != 0 {
		b = appendDouble(b, tagHistSum, h.sum)
	}
	if h.schema != 0 {
		b = append(b, tagHistSchema)
		b = appendVarint(b, zigzag32(h.schema))
	}
	if h.zeroThreshold != 0 {
		b = appendDouble(b, tagHistZeroThreshold, h.zeroThreshold)
	}
	if counts {
		b = append(b, tagHistZeroCountInt)
		b = appendVarint(b, h.zeroCount)
	}
	b = appendSpans(b, tagHistNegSpan, h.negSpans)
	b = appendDeltas(b, tagHistNegDeltas, h.negDeltas)
	b = appendSpans(b, tagHistPosSpan, h.posSpans)
	b = appendDeltas(b, tagHistPosDeltas, h.posDeltas)
	if h.timestamp != 0 {
		b = append(b, tagHistTimestamp)
		b = appendVarint(b, uint64(h.timestamp))
	}
	if len(h.customValues) > 0 {
		b = appendVarint(b, tagHistCustomValues)
		b = appendVarint(b, uint64(8*len(h.customValues)))
		for _, v := range h.customValues {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	return b
}

// appendMetadata appends a WriteRequest.metadata field.
func appendMetadata(b []byte, typ prompb.MetricMetadata_MetricType, family, help, unit string) []byte {
	n := 0
	if typ != 0 {
		n += 1 + varintLen(uint64(typ))
	}
	if family != "" {
		n += fieldLen(len(family))
	}
	if help != "" {
		n += fieldLen(len(help))
	}
	if unit != "" {
		n += fieldLen(len(unit))
	}
	b = append(b, tagWriteMetadata)
	b = appendVarint(b, uint64(n))
	if typ != 0 {
		b = append(b, tagMetaType)
		b = appendVarint(b, uint64(typ))
	}
	if family != "" {
		b = appendString(b, tagMetaFamily, family)
	}
	if help != "" {
		b = appendString(b, tagMetaHelp, help)
	}
	if unit != "" {
		b = appendString(b, tagMetaUnit, unit)
	}
	return b
}
