package prwmetrictest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Header names and values of the Remote-Write protocols, in one place.
const (
	headerContentEncoding = "Content-Encoding"
	headerContentType     = "Content-Type"
	headerVersion         = "X-Prometheus-Remote-Write-Version"
	headerUserAgent       = "User-Agent"
	headerVMVersion       = "X-VictoriaMetrics-Remote-Write-Version"
	encodingZstd          = "zstd"
	vmVersion1            = "1"

	// HeaderSamplesWritten and its siblings are the Remote-Write 2.0
	// response headers reporting how much of a request was written.
	HeaderSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	HeaderHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	HeaderExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"

	mediaTypeProtobuf = "application/x-protobuf"
	protoV1           = "prometheus.WriteRequest"
	protoV2           = "io.prometheus.write.v2.Request"
	versionV1         = "0.1.0"
	versionV2Prefix   = "2."

	nameLabel = "__name__"

	// maxViolationsPerRequest bounds what one request can record, so a
	// sender that breaks a rule for every series doesn't flood the test log.
	maxViolationsPerRequest = 50
	// maxExemplarLabelRunes is the OpenMetrics limit on an exemplar's
	// label names and values together.
	maxExemplarLabelRunes = 128
	// maxPlausibleMillis is about the year 5138 in milliseconds; anything
	// larger was almost surely sent in micro- or nanoseconds.
	maxPlausibleMillis = 1e14
)

// snappyStreamMagic starts a body compressed with the snappy framed
// (stream) format, which Remote-Write does not accept.
var snappyStreamMagic = []byte("\xff\x06\x00\x00sNaPpY")

// violations collects rule violations of one request, bounded.
type violations struct {
	list    []string
	dropped int
}

func (v *violations) add(format string, args ...any) {
	if len(v.list) >= maxViolationsPerRequest {
		v.dropped++
		return
	}
	v.list = append(v.list, fmt.Sprintf(format, args...))
}

func (v *violations) result() []string {
	if v.dropped > 0 {
		return append(v.list, fmt.Sprintf("… and %d more violations", v.dropped))
	}
	return v.list
}

// label is one label pair in the order it was received.
type label struct{ name, value string }

// decodedSeries is one series of a request in a protocol-independent form.
type decodedSeries struct {
	raw        []label // as received, to check order
	labels     Labels
	key        string
	samples    []Sample
	histograms []NativeHistogram
	exemplars  []Exemplar
}

// decoded is the protocol-independent content of one request.
type decoded struct {
	series                         []decodedSeries
	metadata                       []Metadata
	samples, histograms, exemplars int
}

// contentType sorts a request's Content-Type into a protocol. ok is false
// when the header names a message this receiver does not know (answer 415).
func contentType(h http.Header, v *violations) (p Protocol, ok bool) {
	ct := h.Get(headerContentType)
	if ct == "" {
		v.add("missing header %s: %s", headerContentType, mediaTypeProtobuf)
		return ProtocolV1, true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != mediaTypeProtobuf {
		v.add("header %s is %q, want %q", headerContentType, ct, mediaTypeProtobuf)
		return ProtocolV1, true
	}
	switch params["proto"] {
	case "", protoV1:
		return ProtocolV1, true
	case protoV2:
		return ProtocolV2, true
	default:
		v.add("header %s names unknown message %q; want %q or %q", headerContentType, params["proto"], protoV1, protoV2)
		return ProtocolUnknown, false
	}
}

// checkHeaders applies SPEC §1 (and §4 for 2.0) to the request headers;
// a zstd request follows the VictoriaMetrics protocol instead, with its
// own version header.
func checkHeaders(h http.Header, p Protocol, zstd bool, v *violations) {
	if zstd {
		if ver := h.Get(headerVMVersion); ver != vmVersion1 {
			v.add("header %s is %q, want %q with Content-Encoding: zstd", headerVMVersion, ver, vmVersion1)
		}
	} else if ce := h.Get(headerContentEncoding); ce == "" {
		v.add("missing header %s: snappy", headerContentEncoding)
	} else if !strings.EqualFold(ce, "snappy") {
		v.add("header %s is %q, want \"snappy\"", headerContentEncoding, ce)
	}
	ver := h.Get(headerVersion)
	switch {
	case zstd:
		// vmagent sends no Prometheus version with zstd.
	case ver == "":
		v.add("missing header %s", headerVersion)
	case p == ProtocolV1 && ver != versionV1:
		v.add("header %s is %q, want %q for Remote-Write 1.0", headerVersion, ver, versionV1)
	case p == ProtocolV2 && !strings.HasPrefix(ver, versionV2Prefix):
		v.add("header %s is %q, want 2.0.x for Remote-Write 2.0", headerVersion, ver)
	}
	if h.Get(headerUserAgent) == "" {
		v.add("missing header %s", headerUserAgent)
	}
}

// decompressedTooLargeError is a body that decompresses to more than the
// size limit: answered 413, like a body too large as sent.
type decompressedTooLargeError struct{ msg string }

func (e *decompressedTooLargeError) Error() string { return e.msg }

// decompress undoes the snappy block (or zstd) compression, refusing
// bodies that would decode to more than limit bytes with a
// *decompressedTooLargeError.
func decompress(body []byte, zstd bool, limit int64) ([]byte, error) {
	if zstd {
		return decompressZstd(body, limit)
	}
	if bytes.HasPrefix(body, snappyStreamMagic) {
		return nil, fmt.Errorf("body uses the snappy framed (stream) format; Remote-Write requires the block format (snappy.Encode)")
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("body is not snappy block-compressed: %w", err)
	}
	if int64(n) > limit {
		return nil, &decompressedTooLargeError{fmt.Sprintf("body decompresses to %d bytes, more than the limit of %d bytes", n, limit)}
	}
	out, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("body is not snappy block-compressed: %w", err)
	}
	return out, nil
}

// decompressZstd decodes a zstd body, refusing more than limit bytes.
func decompressZstd(body []byte, limit int64) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)))
	if err != nil {
		return nil, fmt.Errorf("creating the zstd decoder: %w", err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(body, nil)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, &decompressedTooLargeError{fmt.Sprintf("body decompresses to more than the limit of %d bytes", limit)}
	case err != nil:
		return nil, fmt.Errorf("body is not zstd-compressed: %w", err)
	}
	return out, nil
}

// decodeV1 unmarshals and validates a Remote-Write 1.0 message.
func decodeV1(raw []byte, v *violations) (*prompb.WriteRequest, *decoded, error) {
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, nil, fmt.Errorf("body is not a prometheus.WriteRequest protobuf: %w", err)
	}
	d := &decoded{series: make([]decodedSeries, 0, len(req.Timeseries))}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		s := newDecodedSeries(len(ts.Labels))
		for _, l := range ts.Labels {
			s.raw = append(s.raw, label{l.Name, l.Value})
		}
		s.finish()
		where := "series " + formatRaw(s.raw)
		checkLabels(v, where, s.raw, false)
		for _, smp := range ts.Samples {
			s.samples = append(s.samples, Sample{Timestamp: smp.Timestamp, Value: smp.Value})
		}
		for j := range ts.Histograms {
			h := &ts.Histograms[j]
			nh := NativeHistogram{
				Timestamp: h.Timestamp,
				Float:     h.IsFloatHistogram(),
				Histogram: h.ToFloatHistogram(),
			}
			checkNativeHistogram(v, where, nh, h.ToIntHistogram)
			s.histograms = append(s.histograms, nh)
		}
		for _, e := range ts.Exemplars {
			ls := make([]label, 0, len(e.Labels))
			for _, l := range e.Labels {
				ls = append(ls, label{l.Name, l.Value})
			}
			s.exemplars = append(s.exemplars, newExemplar(v, where, ls, e.Value, e.Timestamp, false))
		}
		checkTimestamps(v, where, s)
		d.add(s)
	}
	for _, m := range req.Metadata {
		d.metadata = append(d.metadata, Metadata{
			MetricFamilyName: m.MetricFamilyName,
			Type:             strings.ToLower(m.Type.String()),
			Help:             m.Help,
			Unit:             m.Unit,
		})
		if m.MetricFamilyName == "" {
			v.add("metadata of type %s has an empty metric_family_name", m.Type)
		}
	}
	return &req, d, nil
}

// decodeV2 unmarshals and validates a Remote-Write 2.0 message.
func decodeV2(raw []byte, v *violations) (*writev2.Request, *decoded, error) {
	var req writev2.Request
	if err := req.Unmarshal(raw); err != nil {
		return nil, nil, fmt.Errorf("body is not an io.prometheus.write.v2.Request protobuf: %w", err)
	}
	syms := req.Symbols
	if len(syms) == 0 || syms[0] != "" {
		v.add("symbols table must start with the empty string (symbols[0] == \"\")")
	}
	sym := func(ref uint32) (string, bool) {
		if int(ref) >= len(syms) {
			return "", false
		}
		return syms[ref], true
	}
	d := &decoded{series: make([]decodedSeries, 0, len(req.Timeseries))}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		where := fmt.Sprintf("series #%d", i)
		if len(ts.LabelsRefs)%2 != 0 {
			v.add("%s: labels_refs has odd length %d; it must hold name/value pairs", where, len(ts.LabelsRefs))
			continue
		}
		s := newDecodedSeries(len(ts.LabelsRefs) / 2)
		ok := true
		for j := 0; j < len(ts.LabelsRefs); j += 2 {
			n, ok1 := sym(ts.LabelsRefs[j])
			val, ok2 := sym(ts.LabelsRefs[j+1])
			if !ok1 || !ok2 {
				v.add("%s: labels_refs %d/%d outside the symbols table (size %d)", where, ts.LabelsRefs[j], ts.LabelsRefs[j+1], len(syms))
				ok = false
				break
			}
			s.raw = append(s.raw, label{n, val})
		}
		if !ok {
			continue
		}
		s.finish()
		where = "series " + formatRaw(s.raw)
		checkLabels(v, where, s.raw, true)
		if len(ts.Samples) > 0 && len(ts.Histograms) > 0 {
			v.add("%s: carries both samples and histograms; Remote-Write 2.0 allows only one kind per series", where)
		}
		for _, smp := range ts.Samples {
			if smp.StartTimestamp > smp.Timestamp {
				v.add("%s: sample start_timestamp %d is after its timestamp %d", where, smp.StartTimestamp, smp.Timestamp)
			}
			s.samples = append(s.samples, Sample{Timestamp: smp.Timestamp, Value: smp.Value, StartTimestamp: smp.StartTimestamp})
		}
		for j := range ts.Histograms {
			h := &ts.Histograms[j]
			if h.StartTimestamp > h.Timestamp {
				v.add("%s: histogram start_timestamp %d is after its timestamp %d", where, h.StartTimestamp, h.Timestamp)
			}
			nh := NativeHistogram{
				Timestamp:      h.Timestamp,
				StartTimestamp: h.StartTimestamp,
				Float:          h.IsFloatHistogram(),
				Histogram:      h.ToFloatHistogram(),
			}
			checkNativeHistogram(v, where, nh, h.ToIntHistogram)
			s.histograms = append(s.histograms, nh)
		}
		for _, e := range ts.Exemplars {
			if len(e.LabelsRefs)%2 != 0 {
				v.add("%s: exemplar labels_refs has odd length %d", where, len(e.LabelsRefs))
				continue
			}
			ls := make([]label, 0, len(e.LabelsRefs)/2)
			for j := 0; j < len(e.LabelsRefs); j += 2 {
				n, ok1 := sym(e.LabelsRefs[j])
				val, ok2 := sym(e.LabelsRefs[j+1])
				if !ok1 || !ok2 {
					v.add("%s: exemplar labels_refs %d/%d outside the symbols table (size %d)", where, e.LabelsRefs[j], e.LabelsRefs[j+1], len(syms))
					continue
				}
				ls = append(ls, label{n, val})
			}
			if e.Timestamp == 0 {
				v.add("%s: exemplar without timestamp; Remote-Write 2.0 requires one", where)
			}
			s.exemplars = append(s.exemplars, newExemplar(v, where, ls, e.Value, e.Timestamp, true))
		}
		checkTimestamps(v, where, s)
		md := ts.Metadata
		help, ok1 := sym(md.HelpRef)
		unit, ok2 := sym(md.UnitRef)
		if !ok1 || !ok2 {
			v.add("%s: metadata help_ref %d / unit_ref %d outside the symbols table (size %d)", where, md.HelpRef, md.UnitRef, len(syms))
		} else if md.Type != writev2.Metadata_METRIC_TYPE_UNSPECIFIED || help != "" || unit != "" {
			d.metadata = append(d.metadata, Metadata{
				MetricFamilyName: s.labels[nameLabel],
				Type:             v2TypeName(md.Type),
				Help:             help,
				Unit:             unit,
			})
		}
		d.add(s)
	}
	return &req, d, nil
}

func v2TypeName(t writev2.Metadata_MetricType) string {
	name := strings.TrimPrefix(t.String(), "METRIC_TYPE_")
	if name == "UNSPECIFIED" {
		return "unknown"
	}
	return strings.ToLower(name)
}

func newDecodedSeries(n int) decodedSeries {
	return decodedSeries{raw: make([]label, 0, n)}
}

// finish builds the label map and the identity key from the raw labels.
func (s *decodedSeries) finish() {
	s.labels = make(Labels, len(s.raw))
	for _, l := range s.raw {
		s.labels[l.name] = l.value
	}
	s.key = seriesKey(s.labels)
}

func (d *decoded) add(s decodedSeries) {
	d.samples += len(s.samples)
	d.histograms += len(s.histograms)
	d.exemplars += len(s.exemplars)
	d.series = append(d.series, s)
}

// seriesKey identifies a label set independently of label order.
func seriesKey(l Labels) string {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0xff)
		b.WriteString(l[n])
		b.WriteByte(0xfe)
	}
	return b.String()
}

// formatRaw prints labels in the order received, so an ordering problem is
// visible in the message.
func formatRaw(ls []label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.value))
	}
	b.WriteByte('}')
	return b.String()
}

// checkLabels applies the label rules of SPEC §1 to one series. With
// utf8Names (Remote-Write 2.0), names may be any valid UTF-8, as Prometheus 3
// accepts them.
func checkLabels(v *violations, where string, ls []label, utf8Names bool) {
	seen := make(map[string]bool, len(ls))
	hasName := false
	for i, l := range ls {
		switch {
		case l.name == "":
			v.add("%s: label #%d has an empty name", where, i)
		case l.name == nameLabel:
			hasName = true
			if !validMetricName(l.value) && !(utf8Names && utf8.ValidString(l.value)) {
				v.add("%s: metric name %q does not match [a-zA-Z_:][a-zA-Z0-9_:]*", where, l.value)
			}
		case !validLabelName(l.name) && !(utf8Names && utf8.ValidString(l.name)):
			v.add("%s: label name %q does not match [a-zA-Z_][a-zA-Z0-9_]*", where, l.name)
		case l.name == "__type__" || l.name == "__unit__":
			// Prometheus' type-and-unit-labels carry metadata in these.
		case strings.HasPrefix(l.name, "__"):
			v.add("%s: label name %q is reserved (names starting with __ belong to Prometheus)", where, l.name)
		}
		if l.value == "" {
			v.add("%s: label %q has an empty value; drop the label instead", where, l.name)
		} else if !utf8.ValidString(l.value) {
			v.add("%s: label %q has a value that is not valid UTF-8", where, l.name)
		}
		if seen[l.name] {
			v.add("%s: label %q appears more than once", where, l.name)
		} else if i > 0 && l.name < ls[i-1].name {
			v.add("%s: labels not sorted by name: %q comes after %q", where, l.name, ls[i-1].name)
		}
		seen[l.name] = true
	}
	if !hasName {
		v.add("%s: no %s label (metric name)", where, nameLabel)
	}
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || isLetter(c) || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || isLetter(c) || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// checkTimestamps flags timestamps that cannot be milliseconds. Ordering is
// checked later, against what the receiver already stored.
func checkTimestamps(v *violations, where string, s decodedSeries) {
	for _, smp := range s.samples {
		if smp.Timestamp > maxPlausibleMillis {
			v.add("%s: timestamp %d is not in milliseconds (it looks like micro- or nanoseconds)", where, smp.Timestamp)
			return
		}
	}
	for _, h := range s.histograms {
		if h.Timestamp > maxPlausibleMillis {
			v.add("%s: histogram timestamp %d is not in milliseconds (it looks like micro- or nanoseconds)", where, h.Timestamp)
			return
		}
	}
}

// checkNativeHistogram validates the structure of a native histogram with
// Prometheus' own rules; a stale marker has only its sum set and is skipped.
func checkNativeHistogram(v *violations, where string, nh NativeHistogram, toInt func() *histogram.Histogram) {
	if nh.IsStale() {
		return
	}
	fh := nh.Histogram
	if math.Float64bits(fh.Count) == StaleNaN || math.Float64bits(fh.ZeroCount) == StaleNaN {
		v.add("%s: histogram at %d uses the stale NaN as a count; it is reserved for the sum of a stale marker", where, nh.Timestamp)
		return
	}
	var err error
	if nh.Float {
		err = fh.Validate()
	} else {
		err = toInt().Validate()
	}
	if err != nil {
		v.add("%s: invalid native histogram at %d: %v", where, nh.Timestamp, err)
	}
}

// newExemplar checks an exemplar's labels and value and converts it.
func newExemplar(v *violations, where string, ls []label, value float64, ts int64, utf8Names bool) Exemplar {
	e := Exemplar{Labels: make(Labels, len(ls)), Value: value, Timestamp: ts}
	runes := 0
	for _, l := range ls {
		if !validLabelName(l.name) && !(utf8Names && utf8.ValidString(l.name)) {
			v.add("%s: exemplar label name %q does not match [a-zA-Z_][a-zA-Z0-9_]*", where, l.name)
		}
		if _, dup := e.Labels[l.name]; dup {
			v.add("%s: exemplar label %q appears more than once", where, l.name)
		}
		runes += utf8.RuneCountInString(l.name) + utf8.RuneCountInString(l.value)
		e.Labels[l.name] = l.value
	}
	if runes > maxExemplarLabelRunes {
		v.add("%s: exemplar labels have %d runes, more than the limit of %d", where, runes, maxExemplarLabelRunes)
	}
	if math.Float64bits(value) == StaleNaN {
		v.add("%s: exemplar value is the stale NaN, which is reserved for staleness markers of samples", where)
	}
	return e
}

// checkClassicHistograms verifies that the buckets of each classic
// histogram in a request have cumulative (non-decreasing) counts and,
// when its _count series is in the same request, that it has a +Inf
// bucket equal to _count. A request holding only some of a histogram's
// buckets and not its _count is fine: Remote Write does not require a
// histogram's series to travel together.
func checkClassicHistograms(v *violations, series []decodedSeries) {
	type bucketSeries struct {
		le      string
		bound   float64
		samples []Sample
	}
	type group struct {
		labels  Labels
		buckets []bucketSeries
	}
	groups := map[string]*group{}
	var order []string
	counts := map[string][]Sample{}
	for _, s := range series {
		name := s.labels[nameLabel]
		if base, ok := strings.CutSuffix(name, "_count"); ok {
			l := s.labels.clone()
			l[nameLabel] = base
			counts[seriesKey(l)] = append(counts[seriesKey(l)], s.samples...)
			continue
		}
		base, ok := strings.CutSuffix(name, "_bucket")
		le, hasLe := s.labels["le"]
		if !ok || !hasLe {
			continue
		}
		l := s.labels.clone()
		delete(l, "le")
		l[nameLabel] = base
		key := seriesKey(l)
		g := groups[key]
		if g == nil {
			g = &group{labels: l}
			groups[key] = g
			order = append(order, key)
		}
		bound, err := parseLe(le)
		if err != nil {
			v.add("histogram %s: bucket le=%q is not a number", l, le)
			continue
		}
		g.buckets = append(g.buckets, bucketSeries{le: le, bound: bound, samples: s.samples})
	}
	for _, key := range order {
		g := groups[key]
		sort.SliceStable(g.buckets, func(i, j int) bool { return g.buckets[i].bound < g.buckets[j].bound })
		if len(g.buckets) == 0 {
			continue
		}
		last := g.buckets[len(g.buckets)-1]
		hasInf := math.IsInf(last.bound, 1)
		if !hasInf && len(counts[key]) > 0 {
			// Only with the _count at hand: a sender may split a
			// histogram's series across requests, so without it the
			// +Inf bucket may be in another request.
			v.add("histogram %s: no le=\"+Inf\" bucket", g.labels)
			continue
		}
		for i := 1; i < len(g.buckets); i++ {
			if g.buckets[i].bound == g.buckets[i-1].bound {
				v.add("histogram %s: buckets le=%q and le=%q have the same bound", g.labels, g.buckets[i-1].le, g.buckets[i].le)
			}
		}
		// The highest bucket present (+Inf when there) gives the
		// timestamps to check the buckets at.
		for _, top := range last.samples {
			prev, prevLe := math.Inf(-1), ""
			for _, b := range g.buckets {
				val, ok := valueAt(b.samples, top.Timestamp)
				if !ok || math.IsNaN(val) {
					continue
				}
				if val < prev {
					v.add("histogram %s at %d: bucket le=%q has count %v, less than le=%q with %v; bucket counts must be cumulative", g.labels, top.Timestamp, b.le, val, prevLe, prev)
					break
				}
				prev, prevLe = val, b.le
			}
			if c, ok := valueAt(counts[key], top.Timestamp); hasInf && ok && !math.IsNaN(c) && !math.IsNaN(top.Value) && c != top.Value {
				v.add("histogram %s at %d: le=\"+Inf\" bucket is %v but _count is %v; they must be equal", g.labels, top.Timestamp, top.Value, c)
			}
		}
	}
}

func parseLe(le string) (float64, error) {
	return strconv.ParseFloat(le, 64)
}

// valueAt returns the value of the last sample at timestamp ts.
func valueAt(samples []Sample, ts int64) (float64, bool) {
	for i := len(samples) - 1; i >= 0; i-- {
		if samples[i].Timestamp == ts {
			return samples[i].Value, true
		}
	}
	return 0, false
}
