package prwmetric

import "math"

// batch is one export's series, in request order.
type batch struct {
	// labels holds the labels of the records' series (seriesState.key).
	labels  *labelTable
	records []record

	// zeros: the batch of WithInitialZero's zeros (zeros.go), sent before
	// the export's own.
	zeros bool
	// processed: the receiver took or refused the data of every request
	// of its send (sent.processed).
	processed bool
	// ended are the series this export ends without a marker
	// (WithoutStaleMarkers).
	ended []*seriesState
	// extra holds the encoded exemplars and native histograms of records.
	extra []byte
	// exemplars counts the exemplars of the records that have some, for
	// the exporter's own telemetry.
	exemplars []exemplarCount
	// metadata are the encoded metadata fields, sent with the last request.
	metadata []string
	// v2 has what 2.0 requests need of each record, when collectV2.
	v2        []recordV2
	collectV2 bool
	// stream cuts the requests during the conversion, when not nil.
	stream *stream
	// native: a record is a native histogram (or its marker), which a
	// receiver may refuse (see marksEarly).
	native bool
	// marked are the records already marked delivered (markSent), as
	// sorted spans; unmarked is markDelivered's scratch.
	marked, unmarked []span
}

// record is one series of a batch.
type record struct {
	s *seriesState
	// key is s.key: encoding the record reads it here, not from the
	// series' state, which on another core is a cache miss per series.
	key   string
	value float64
	// ts is the sample's timestamp, already moved past the newest one
	// delivered.
	ts int64
	// extra and extraLen locate the series' exemplars and native histogram
	// in batch.extra; extraLen has recordHistogram set for a native
	// histogram series, which has no float sample, and recordMarker for a
	// staleness marker (addMarker); above its length, how far restamp moved
	// the sample (recordMoved).
	extra, extraLen uint32
}

const (
	recordHistogram  = 1 << 31
	recordMarker     = 1 << 30
	recordMovedShift = 26
	recordMoved      = 0xf << recordMovedShift
	recordFlags      = recordHistogram | recordMarker | recordMoved
)

// maxRecordExtra is the most bytes of exemplars and native histogram one
// series may carry, the most extraLen holds below its flags (64 MiB, 21
// times the default request size); emit drops a series beyond it, with a
// problem. A variable, so that a test need not build such a histogram.
var maxRecordExtra = 1<<recordMovedShift - 1

// maxBatchExtra is the most bytes of exemplars and native histograms one
// export may carry, the most record.extra can point into (4 GiB); emit
// drops the series past it, with a problem. A variable, as maxRecordExtra.
var maxBatchExtra = math.MaxUint32

// moved is how far restamp moved the record's sample.
func (r *record) moved() int64 { return int64(r.extraLen & recordMoved >> recordMovedShift) }

func (r *record) isHistogram() bool { return r.extraLen&recordHistogram != 0 }

// extraSize is the length of the record's bytes in batch.extra.
func (r *record) extraSize() uint32 { return r.extraLen &^ recordFlags }

type exemplarCount struct {
	record, n int
}

func (b *batch) reset() {
	clear(b.records) // no pointers into the cache outlive the export
	b.records, b.extra = b.records[:0], b.extra[:0]
	b.exemplars = b.exemplars[:0]
	clear(b.metadata)
	b.metadata = b.metadata[:0]
	clear(b.ended)
	b.ended = b.ended[:0]
	clear(b.v2)
	b.v2 = b.v2[:0]
	b.marked, b.native, b.processed = b.marked[:0], false, false
}

// skippedByV1 reports whether record i is left out of 1.0 requests: a
// custom-bucket histogram, which 1.0 receivers do not know.
func (b *batch) skippedByV1(i int) bool {
	return b.collectV2 && b.v2[i].customBuckets
}

// recordV2 is what a 2.0 request needs of a record beyond the 1.0 bytes.
type recordV2 struct {
	// start is the start (created) time in ms of a counter, histogram or
	// summary series; 0 for gauges.
	start int64
	// fam is the series' family, for its metadata; nil without metadata.
	fam *family
	// newestExemplar is the time of the newest exemplar a request carries
	// for the series, set by the cut.
	newestExemplar int64
	// customBuckets marks a native histogram with custom buckets, which a
	// 1.0 request leaves out (see WithNativeHistogramsForExplicitBuckets).
	customBuckets bool
	// v2 is the series' seriesState.v2 when converted, if not 0: the cut
	// finds what 2.0 keeps of the series without reading its state.
	v2 uint32
}

// partCounts is what the exporter's telemetry counts of a request.
type partCounts struct {
	series, samples, histograms, exemplars int
}

// cut is one request: the records [start, end) of batch.records, the
// metadata when it carries them, and what the exporter's telemetry counts
// of it.
type cut struct {
	start, end int
	metadata   bool
	parts      partCounts
}

// extraOf returns r's exemplar and native histogram fields.
func (b *batch) extraOf(r *record) string {
	end := r.extra + r.extraSize()
	return unsafeString(b.extra[r.extra:end])
}

// span is the records [start, end) of a batch.
type span struct{ start, end int }

// gaps appends to dst the spans of [0, n) that sorted, disjoint spans do
// not cover.
func gaps(dst, spans []span, n int) []span {
	at := 0
	for _, s := range spans {
		if s.start > at {
			dst = append(dst, span{at, s.start})
		}
		at = s.end
	}
	if at < n {
		dst = append(dst, span{at, n})
	}
	return dst
}

// addSpan appends s to sorted, disjoint spans that end at or before
// s.start, merging it with the last one when they touch.
func addSpan(spans []span, s span) []span {
	if s.start == s.end {
		return spans
	}
	if n := len(spans); n > 0 && spans[n-1].end == s.start {
		spans[n-1].end = s.end
		return spans
	}
	return append(spans, s)
}

// mergeSpans returns the union of two sorted lists of disjoint spans, the
// two disjoint from each other, appended to dst[:0]; dst must not share
// memory with a or b.
func mergeSpans(dst, a, b []span) []span {
	dst = dst[:0]
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || len(a) > 0 && a[0].start < b[0].start {
			dst, a = addSpan(dst, a[0]), a[1:]
		} else {
			dst, b = addSpan(dst, b[0]), b[1:]
		}
	}
	return dst
}

// subtractSpans appends to dst the parts of spans a that spans b do not
// cover; both are sorted and disjoint.
func subtractSpans(dst, a, b []span) []span {
	for _, s := range a {
		for len(b) > 0 && b[0].end <= s.start {
			b = b[1:]
		}
		for _, t := range b {
			if t.start >= s.end {
				break
			}
			if t.start > s.start {
				dst = addSpan(dst, span{s.start, t.start})
			}
			s.start = max(s.start, t.end)
		}
		if s.start < s.end {
			dst = addSpan(dst, s)
		}
	}
	return dst
}

// covered counts the records in spans.
func covered(spans []span) int {
	n := 0
	for _, s := range spans {
		n += s.end - s.start
	}
	return n
}

// isMarker reports whether record i is a staleness marker.
func (b *batch) isMarker(i int) bool { return b.records[i].extraLen&recordMarker != 0 }
