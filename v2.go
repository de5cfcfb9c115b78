package prwmetric

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// Remote Write 2.0 (io.prometheus.write.v2.Request), written like encode.go
// writes 1.0: the bytes gogo's Marshal of the writev2 message would write.
//
// A 2.0 request lists each label string once (the symbols) and refers to it
// by its index. The series cache keeps, per series, its label strings'
// numbers in an exporter-wide symbol table; cutting the batch into requests
// (sequential, before the workers start) maps those to the request's own
// indexes with two array lookups per label, and records the result for the
// workers, which only write varints next to the cached 1.0 bytes they
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

const (
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"

	contentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	versionV2     = "2.0.0"
)

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
}

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
		walkLabels(s.labels, func(name, value string) {
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
			cuts = append(cuts, cut{end: i, parts: parts, symStart: c.symStart, symEnd: symMark, refStart: refStart})
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
		cuts = append(cuts, cut{end: len(b.records), parts: parts, symStart: c.symStart, symEnd: len(x.syms), refStart: refStart})
	}
	// Rebuild the table when most of it is strings no request needs
	// any more (series gone, exemplars' trace ids).
	if len(c.t.strs) > 2*len(x.syms)+1<<16 {
		c.t.rebuild()
	}
	return cuts
}

// encodeV2 appends the 2.0 request of records[start:c.end] to buf.
func (x *v2Scratch) encodeV2(buf []byte, b *batch, start int, c cut) []byte {
	buf = append(buf, tagV2Symbol, 0)
	for _, s := range x.syms[c.symStart:c.symEnd] {
		buf = appendString(buf, tagV2Symbol, s)
	}
	refs := x.refs[c.refStart:]
	for i := start; i < c.end; i++ {
		r := &b.records[i]
		info := &b.v2[i]
		buf = append(buf, tagV2Timeseries)
		buf = appendVarint(buf, uint64(refs[0]))
		nl := refs[1]
		buf = appendPacked(buf, refs[2:2+nl])
		refs = refs[2+nl:]
		if !r.isHistogram() {
			buf = appendSampleV2(buf, r.value, r.ts, info.start)
		}
		extra := b.extraOf(r)
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
		buf = appendMetadataV2(buf, refs[0], refs[1], refs[2])
		refs = refs[3:]
	}
	return buf
}

// extraOf returns r's exemplar and native histogram fields.
func (b *batch) extraOf(r *record) string {
	end := r.extra + r.extraLen&^recordHistogram
	return unsafeString(b.extra[r.extra:end])
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

func sampleLenV2(v float64, ms, start int64) int {
	n := sampleLen(v, ms)
	if start != 0 {
		n += 1 + varintLen(uint64(start))
	}
	return n
}

func appendSampleV2(b []byte, v float64, ms, start int64) []byte {
	b = append(b, tagV2Sample)
	b = appendVarint(b, uint64(sampleLenV2(v, ms, start)))
	if v != 0 {
		b = appendDouble(b, tagSampleValue, v)
	}
	if ms != 0 {
		b = append(b, tagSampleTimestamp)
		b = appendVarint(b, uint64(ms))
	}
	if start != 0 {
		b = append(b, tagV2SampleStart)
		b = appendVarint(b, uint64(start))
	}
	return b
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

// errNoWrittenHeaders is a 2xx answer to a 2.0 request without the counts
// every 2.0 receiver sends: a 1.0 receiver read it as an empty request.
var errNoWrittenHeaders = errors.New("the receiver answered without X-Prometheus-Remote-Write-*-Written headers")

// refusesV2 reports whether err says the receiver does not speak 2.0.
func refusesV2(err error) bool {
	var we *WriteError
	return errors.Is(err, errNoWrittenHeaders) ||
		errors.As(err, &we) && we.StatusCode == http.StatusUnsupportedMediaType
}

// refusalReason says how the receiver refused 2.0, for the warning.
func refusalReason(err error) string {
	if errors.Is(err, errNoWrittenHeaders) {
		return errNoWrittenHeaders.Error()
	}
	return "it answered 415 Unsupported Media Type"
}

// writtenCounts reads the counts of a 2.0 receiver's answer; ok is false
// when it sent none.
func writtenCounts(h http.Header) (written partCounts, ok bool) {
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{headerSamplesWritten, &written.samples},
		{headerHistogramsWritten, &written.histograms},
		{headerExemplarsWritten, &written.exemplars},
	} {
		v := h.Get(f.name)
		if v == "" {
			continue
		}
		ok = true
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			n = 0
		}
		*f.dst = n
	}
	return written, ok
}

// PartialWriteError reports that a Remote Write 2.0 receiver accepted an
// export's requests but wrote fewer samples, histograms or exemplars than
// they carried (it rejected some, e.g. as out of order or invalid). The
// rest of the export was delivered.
type PartialWriteError struct {
	// Endpoint is the URL the requests went to, without credentials.
	Endpoint string
	// Sent and Written count the samples, histograms and exemplars of the
	// requests concerned.
	SamplesSent, SamplesWritten       int
	HistogramsSent, HistogramsWritten int
	ExemplarsSent, ExemplarsWritten   int
}

// Error gives the counts.
func (e *PartialWriteError) Error() string {
	return fmt.Sprintf("prwmetric: remote write to %s: the receiver wrote %d of %d samples, %d of %d histograms, %d of %d exemplars",
		e.Endpoint, e.SamplesWritten, e.SamplesSent, e.HistogramsWritten, e.HistogramsSent, e.ExemplarsWritten, e.ExemplarsSent)
}

func (e *PartialWriteError) add(sent, written partCounts) {
	e.SamplesSent += sent.samples
	e.SamplesWritten += written.samples
	e.HistogramsSent += sent.histograms
	e.HistogramsWritten += written.histograms
	e.ExemplarsSent += sent.exemplars
	e.ExemplarsWritten += written.exemplars
}

// retryV2After is how long an exporter whose receiver refused 2.0 stays on
// 1.0 before trying 2.0 again.
const retryV2After = time.Hour

// negotiation is the protocol an exporter currently speaks.
type negotiation struct {
	configured Protocol

	mu sync.Mutex
	// v1Until is set while a 2.0 exporter speaks 1.0 after a refusal.
	v1Until time.Time
	warned  bool
}

func (n *negotiation) current(now time.Time) Protocol {
	if n.configured != ProtocolV2 {
		return n.configured
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if now.Before(n.v1Until) {
		return ProtocolV1
	}
	return ProtocolV2
}

// fallBack records that the receiver refused 2.0 and reports whether this
// is the first time, which is worth a warning; later refusals, after each
// hourly retry, are not news.
func (n *negotiation) fallBack(now time.Time) (first bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.v1Until = now.Add(retryV2After)
	first = !n.warned
	n.warned = true
	return first
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
