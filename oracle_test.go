package prwmetric

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prwmetric/prwmetric/prwmetrictest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// The exporter sends through the series cache (cache.go), the wire encoder
// (encode.go) and the request cutter (pipeline.go). These tests hold them
// to the reference: rules.convert's prompb request, the staleness and
// ordering model refTracker, the cut refSplit, and gogo's Marshal. Every
// conversion test of convert_test.go and the conversion fuzz target run
// cacheCheck on their data.

// refSplit is the reference cut: it cuts req into requests within the
// limits, in order, sharing the series. Metadata travels with the last
// request, or in a request of its own when they would take the last one
// past maxBytes. It never returns an empty request.
func refSplit(req *prompb.WriteRequest, maxSeries, maxBytes int) []*prompb.WriteRequest {
	if len(req.Timeseries) <= maxSeries && req.Size() <= maxBytes {
		return []*prompb.WriteRequest{req}
	}
	var out []*prompb.WriteRequest
	cur := &prompb.WriteRequest{}
	size := 0
	start := 0
	for i := range req.Timeseries {
		n := req.Timeseries[i].Size()
		n += 1 + varintLen(uint64(n)) // field tag and length prefix
		if i > start && (i-start >= maxSeries || size+n > maxBytes) {
			cur.Timeseries = req.Timeseries[start:i:i]
			out = append(out, cur)
			cur, size, start = &prompb.WriteRequest{}, 0, i
		}
		size += n
	}
	cur.Timeseries = req.Timeseries[start:]
	meta := (&prompb.WriteRequest{Metadata: req.Metadata}).Size()
	if meta == 0 || len(cur.Timeseries) > 0 && size+meta <= maxBytes {
		cur.Metadata = req.Metadata
		return append(out, cur)
	}
	if len(cur.Timeseries) > 0 {
		out = append(out, cur)
	}
	return append(out, &prompb.WriteRequest{Metadata: req.Metadata})
}

// refTracker is the reference model of staleness markers and timestamp
// order: it remembers the series of the last successful export, by label
// set.
type refTracker struct {
	markStale bool
	seed      maphash.Seed
	last      map[uint64]refLive
}

type refLive struct {
	labels []prompb.Label
	// newest is the newest sample's timestamp, moved forward by moved ms
	// from its own time; value is its value's bits (for a native
	// histogram, of its count and sum).
	newest, moved int64
	value         uint64
	histogram     bool
}

// refRestamp is the timestamp the exporter sends a sample taken at ms with
// value bits v of a series whose last delivered sample was prev (when
// seen), and how far it moved it: once moved, the same point again goes at
// the newest time, another value at that own time 1 ms later (up to
// maxMoved, else as it is); else a sample within restampWindow at or
// before the newest goes 1 ms after it; else as it is.
func refRestamp(prev refLive, seen bool, ms int64, v uint64) (int64, int64) {
	switch {
	case !seen || ms > prev.newest:
		return ms, 0
	case prev.moved > 0 && ms == prev.newest-prev.moved && v == prev.value:
		return prev.newest, prev.moved
	case prev.moved > 0 && ms == prev.newest-prev.moved:
		if prev.newest+1-ms > maxMoved {
			return ms, 0
		}
		return prev.newest + 1, prev.newest + 1 - ms
	case prev.newest-ms < restampWindow:
		return prev.newest + 1, prev.newest + 1 - ms
	}
	return ms, 0
}

func newRefTracker(markStale bool) *refTracker {
	return &refTracker{markStale: markStale, seed: maphash.MakeSeed()}
}

func (r *refTracker) key(labels []prompb.Label) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	for _, l := range labels {
		h.WriteString(l.Name)
		h.WriteByte(0xff)
		h.WriteString(l.Value)
		h.WriteByte(0xff)
	}
	return h.Sum64()
}

// observe moves samples at or before the newest delivered one of their
// series to 1 ms after it, and returns the series of req.
func (r *refTracker) observe(req *prompb.WriteRequest) map[uint64]refLive {
	cur := map[uint64]refLive{}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		k := r.key(ts.Labels)
		prev, seen := r.last[k]
		live := refLive{labels: ts.Labels, newest: math.MinInt64, histogram: len(ts.Histograms) > 0}
		keep := func(at *int64, v uint64) {
			var by int64
			if *at, by = refRestamp(prev, seen, *at, v); *at >= live.newest {
				live.newest, live.moved, live.value = *at, by, v
			}
		}
		for j := range ts.Samples {
			keep(&ts.Samples[j].Timestamp, math.Float64bits(ts.Samples[j].Value))
		}
		for j := range ts.Histograms {
			h := &ts.Histograms[j]
			keep(&h.Timestamp, math.Float64bits(h.Sum)^h.GetCountInt()*0x9e3779b97f4a7c15)
		}
		cur[k] = live
	}
	return cur
}

// markers returns the stale markers at ms (or 1 ms after the newest sample)
// of the series of the last success missing from cur, sorted by labels.
func (r *refTracker) markers(cur map[uint64]refLive, ms int64) []prompb.TimeSeries {
	if !r.markStale {
		return nil
	}
	var out []prompb.TimeSeries
	for k, ls := range r.last {
		if _, ok := cur[k]; ok {
			continue
		}
		at := max(ms, ls.newest+1)
		marker := prompb.TimeSeries{Labels: ls.labels}
		if ls.histogram {
			marker.Histograms = []prompb.Histogram{{Sum: staleNaN, Timestamp: at}}
		} else {
			marker.Samples = []prompb.Sample{{Value: staleNaN, Timestamp: at}}
		}
		out = append(out, marker)
	}
	cacheSortSeries(out)
	return out
}

func (r *refTracker) delivered(cur map[uint64]refLive) { r.last = cur }

// deliveredPart records that the receiver accepted part, of an export that
// failed later: its samples are the newest of their series, as observe
// found them for the whole export (live: their own times and moves; part
// holds them already moved, and is left as it is), and its markers end
// theirs.
func (r *refTracker) deliveredPart(part *prompb.WriteRequest, live map[uint64]refLive) {
	if r.last == nil {
		r.last = map[uint64]refLive{}
	}
	data, markers := cacheSplitMarkers(part.Timeseries)
	for _, m := range markers {
		delete(r.last, r.key(m.Labels))
	}
	for _, ts := range data {
		k := r.key(ts.Labels)
		r.last[k] = live[k]
	}
}

func cacheSortSeries(s []prompb.TimeSeries) {
	slices.SortFunc(s, func(a, b prompb.TimeSeries) int {
		return strings.Compare(seriesString(a.Labels), seriesString(b.Labels))
	})
}

// cacheRequests encodes b's requests within the limits.
func cacheRequests(b *batch, maxSeries, maxBytes int) [][]byte {
	var out [][]byte
	for _, c := range b.cut(0, maxSeries, maxBytes, nil) {
		out = append(out, b.encode(nil, c))
	}
	return out
}

// cacheMarshal is what the reference sends for req within the limits.
func cacheMarshal(t testing.TB, req *prompb.WriteRequest, maxSeries, maxBytes int) [][]byte {
	t.Helper()
	if len(req.Timeseries) == 0 {
		return nil
	}
	var out [][]byte
	for _, part := range refSplit(req, maxSeries, maxBytes) {
		raw, err := part.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		out = append(out, raw)
	}
	return out
}

// cacheCompare fails t unless got and want are the same requests, byte for
// byte; it shows the decoded difference.
func cacheCompare(t testing.TB, what string, want, got [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d requests, reference %d", what, len(got), len(want))
		return
	}
	for i := range want {
		if bytes.Equal(got[i], want[i]) {
			continue
		}
		var w, g prompb.WriteRequest
		if err := g.Unmarshal(got[i]); err != nil {
			t.Errorf("%s: request %d does not decode: %v", what, i, err)
			continue
		}
		if err := w.Unmarshal(want[i]); err != nil {
			t.Fatalf("%s: reference request %d does not decode: %v", what, i, err)
		}
		t.Errorf("%s: request %d differs from the reference; decoded (-reference +cached):\n%s", what, i, cmp.Diff(&w, &g, convCmpOpts))
	}
}

// cacheCuts are the limits cacheCheck cuts requests with: none, by series,
// by bytes (so small that every series goes alone), and both.
var cacheCuts = []struct{ series, bytes int }{
	{1 << 30, 1 << 40}, {1, 1 << 40}, {2, 1 << 40}, {1 << 30, 1}, {1 << 30, 120}, {3, 300},
}

// cacheCheck checks the cached conversion of rm against the reference
// conversion of the same data, which returned req and err and logged
// warnings with rules c: the same bytes for every cut, the same error
// and the same warnings, from a cold cache and from a warm one; and, after
// the export counts as delivered, the same timestamps and staleness
// markers as refTracker.
func cacheCheck(t testing.TB, c *rules, rm *metricdata.ResourceMetrics, req *prompb.WriteRequest, err error, warnings []string) {
	t.Helper()
	logger, logs := newLogCapture()
	fast := *c
	fast.logger = logger
	sc := newSeriesCache(&fast, true)
	ref := *c
	ref.logger = slog.New(slog.DiscardHandler)
	now := time.Now().UnixMilli()

	var b batch
	for _, pass := range []string{"cold cache", "warm cache"} {
		b.reset()
		before := len(logs.lines())
		fastErr := sc.convert(rm, &b, now)
		if fmt.Sprint(fastErr) != fmt.Sprint(err) {
			t.Errorf("%s: error\n%v\nreference:\n%v", pass, fastErr, err)
		}
		if got := logs.lines()[before:]; !slices.Equal(got, warnings) {
			t.Errorf("%s: warnings\n%q\nreference:\n%q", pass, got, warnings)
		}
		for _, cut := range cacheCuts {
			what := fmt.Sprintf("%s, %d series / %d bytes per request", pass, cut.series, cut.bytes)
			cacheCompare(t, what, cacheMarshal(t, req, cut.series, cut.bytes), cacheRequests(&b, cut.series, cut.bytes))
		}
	}

	cacheCheckV2(t, c, rm)
	cacheCheckZeros(t, c, rm)

	// Delivered: the same data again moves 1 ms past what the receiver
	// holds; then an export without data ends every series.
	tracker := newRefTracker(true)
	tracker.delivered(tracker.observe(req))
	sc.markDelivered(&b, b.allRecords())
	again, _ := ref.reference(rm)
	live := tracker.observe(again)
	b.reset()
	_ = sc.convert(rm, &b, now)
	cacheCompare(t, "after delivery", cacheMarshal(t, again, 1<<30, 1<<40), cacheRequests(&b, 1<<30, 1<<40))
	tracker.delivered(live)
	sc.markDelivered(&b, b.allRecords())

	b.reset()
	_ = sc.convert(&metricdata.ResourceMetrics{Resource: rm.Resource}, &b, now)
	want := tracker.markers(nil, now)
	got := cacheDecode(t, cacheRequests(&b, 1<<30, 1<<40))
	cacheSortSeries(got)
	if diff := cmp.Diff(want, got, convCmpOpts); diff != "" {
		t.Errorf("staleness markers differ (-reference +cached):\n%s", diff)
	}
}

// cacheCheckZeros checks the zeros of WithInitialZero on a first export of
// rm: one per counter and histogram series of the reference whose start
// time is before its sample, at that start time, in the reference's order;
// an empty native histogram of the same schema for a native histogram.
func cacheCheckZeros(t testing.TB, c *rules, rm *metricdata.ResourceMetrics) {
	t.Helper()
	ref := *c
	ref.logger = slog.New(slog.DiscardHandler)
	req, infos, _ := ref.referenceInfo(rm)
	want := &prompb.WriteRequest{}
	for i, ts := range req.Timeseries {
		info := infos[i]
		if info.typ != prompb.MetricMetadata_COUNTER && info.typ != prompb.MetricMetadata_HISTOGRAM || info.start <= 0 {
			continue
		}
		zero := prompb.TimeSeries{Labels: ts.Labels}
		if len(ts.Histograms) > 0 {
			h := ts.Histograms[0]
			if info.start >= h.Timestamp {
				continue
			}
			zero.Histograms = []prompb.Histogram{{Count: &prompb.Histogram_CountInt{}, ZeroCount: &prompb.Histogram_ZeroCountInt{},
				Schema: h.Schema, ZeroThreshold: h.ZeroThreshold, CustomValues: h.CustomValues, Timestamp: info.start}}
		} else {
			if info.start >= ts.Samples[0].Timestamp {
				continue
			}
			zero.Samples = []prompb.Sample{{Timestamp: info.start}}
		}
		want.Timeseries = append(want.Timeseries, zero)
	}
	fast := *c
	fast.logger = slog.New(slog.DiscardHandler)
	sc := newSeriesCache(&fast, true)
	sc.zeros = newInitialZeros()
	var b batch
	_ = sc.convert(rm, &b, time.Now().UnixMilli())
	for _, cut := range cacheCuts {
		what := fmt.Sprintf("zeros, %d series / %d bytes per request", cut.series, cut.bytes)
		cacheCompare(t, what, cacheMarshal(t, want, cut.series, cut.bytes), cacheRequests(&sc.zeros.batch, cut.series, cut.bytes))
	}
}

// cacheDecode returns the series of the requests.
func cacheDecode(t testing.TB, reqs [][]byte) []prompb.TimeSeries {
	t.Helper()
	var out []prompb.TimeSeries
	for i, raw := range reqs {
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			t.Fatalf("request %d does not decode: %v", i, err)
		}
		out = append(out, req.Timeseries...)
	}
	return out
}

// cacheEncodeOne encodes ts as a one-series request with the wire encoder.
func cacheEncodeOne(ts prompb.TimeSeries) []byte {
	b := batch{labels: &labelTable{}}
	key, _ := b.labels.key(nil, string(appendLabels(nil, ts.Labels)))
	s := &seriesState{key: string(key)}
	s.setSize(keyLabelsLen(s.key))
	r := record{s: s, key: s.key}
	for i := range ts.Exemplars {
		b.extra = appendExemplar(b.extra, &ts.Exemplars[i])
	}
	switch {
	case len(ts.Histograms) > 0:
		h := ts.Histograms[0]
		parts := nativeParts{
			sum: h.Sum, schema: h.Schema, zeroThreshold: h.ZeroThreshold,
			negSpans: fromPromSpans(h.NegativeSpans), negDeltas: h.NegativeDeltas, posSpans: fromPromSpans(h.PositiveSpans), posDeltas: h.PositiveDeltas,
			timestamp: h.Timestamp,
		}
		counts := h.Count != nil
		if counts {
			parts.count, parts.zeroCount = h.GetCountInt(), h.GetZeroCountInt()
		}
		b.extra = appendHistogram(b.extra, &parts, counts)
		r.extraLen = recordHistogram
	default:
		r.value, r.ts = ts.Samples[0].Value, ts.Samples[0].Timestamp
	}
	r.extraLen |= uint32(len(b.extra))
	b.records = append(b.records, r)
	return cacheRequests(&b, 1, 1<<30)[0]
}

// v2Series is a decoded 2.0 series with its strings resolved, for
// comparing requests whose symbol tables differ.
type v2Series struct {
	Labels     []prompb.Label
	Samples    []writev2.Sample
	Histograms []writev2.Histogram
	Exemplars  []v2Exemplar
	Type       writev2.Metadata_MetricType
	Help, Unit string
}

type v2Exemplar struct {
	Labels    []prompb.Label
	Value     float64
	Timestamp int64
}

// sameV2Series reports whether a and b hold the same series, floats
// compared bit for bit (through their wire form).
// sameV1Series reports whether a and b are the same series, byte for byte
// as gogo encodes them.
func sameV1Series(a, b []prompb.TimeSeries) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, errX := a[i].Marshal()
		y, errY := b[i].Marshal()
		if errX != nil || errY != nil || !bytes.Equal(x, y) {
			return false
		}
	}
	return true
}

func sameV2Series(a, b []v2Series) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(v2SeriesKey(&a[i]), v2SeriesKey(&b[i])) {
			return false
		}
	}
	return true
}

// v2SeriesKey is an exact encoding of s.
func v2SeriesKey(s *v2Series) []byte {
	var b []byte
	b = appendLabels(b, s.Labels)
	for i := range s.Samples {
		m, _ := s.Samples[i].Marshal()
		b = appendString(b, 1, string(m))
	}
	for i := range s.Histograms {
		m, _ := s.Histograms[i].Marshal()
		b = appendString(b, 2, string(m))
	}
	for _, e := range s.Exemplars {
		b = appendLabels(b, e.Labels)
		b = appendDouble(b, 3, e.Value)
		b = appendVarint(b, uint64(e.Timestamp))
	}
	b = appendVarint(b, uint64(s.Type))
	b = appendString(b, 4, s.Help)
	return appendString(b, 5, s.Unit)
}

// resolveV2 resolves every reference of req, failing t on a reference out
// of range or an invalid symbol table.
func resolveV2(t testing.TB, req *writev2.Request) []v2Series {
	t.Helper()
	if len(req.Symbols) == 0 || req.Symbols[0] != "" {
		t.Fatalf("symbols must start with \"\": %q", req.Symbols)
	}
	seen := map[string]bool{}
	for _, s := range req.Symbols[1:] {
		if seen[s] || s == "" {
			t.Errorf("symbol %q repeated", s)
		}
		seen[s] = true
	}
	sym := func(r uint32) string {
		if int(r) >= len(req.Symbols) {
			t.Fatalf("reference %d out of %d symbols", r, len(req.Symbols))
		}
		return req.Symbols[r]
	}
	labels := func(refs []uint32) []prompb.Label {
		if len(refs)%2 != 0 {
			t.Fatalf("odd number of label references: %v", refs)
		}
		var out []prompb.Label
		for i := 0; i < len(refs); i += 2 {
			out = append(out, prompb.Label{Name: sym(refs[i]), Value: sym(refs[i+1])})
		}
		return out
	}
	var out []v2Series
	for _, ts := range req.Timeseries {
		s := v2Series{
			Labels: labels(ts.LabelsRefs), Samples: ts.Samples, Histograms: ts.Histograms,
			Type: ts.Metadata.Type, Help: sym(ts.Metadata.HelpRef), Unit: sym(ts.Metadata.UnitRef),
		}
		if len(ts.Samples) > 0 && len(ts.Histograms) > 0 {
			t.Errorf("series %v carries samples and histograms", s.Labels)
		}
		for _, e := range ts.Exemplars {
			s.Exemplars = append(s.Exemplars, v2Exemplar{Labels: labels(e.LabelsRefs), Value: e.Value, Timestamp: e.Timestamp})
		}
		out = append(out, s)
	}
	return out
}

// cacheRequestsV2 cuts and encodes b as 2.0 requests within the limits.
func cacheRequestsV2(sc *seriesCache, b *batch, maxSeries, maxBytes int) [][]byte {
	var x v2Scratch
	var out [][]byte
	sc.cutV2(b, 0, maxSeries, maxBytes, &x, nil, func(c cut, v v2Cut) {
		out = append(out, v.encode(nil, b, c))
	})
	return out
}

// cacheCheckV2 checks the 2.0 requests of rm through the cache against the
// reference: one request byte for byte as gogo marshals it, and cut ones
// decoding to the same series, within the limits.
func cacheCheckV2(t testing.TB, c *rules, rm *metricdata.ResourceMetrics) {
	t.Helper()
	ref := *c
	ref.logger = slog.New(slog.DiscardHandler)
	want, _ := referenceV2(&ref, rm)
	sc := newSeriesCache(&ref, true)
	sc.collectV2 = true
	var b batch
	for _, pass := range []string{"cold cache", "warm cache"} {
		b.reset()
		_ = sc.convert(rm, &b, time.Now().UnixMilli())
		got := cacheRequestsV2(sc, &b, 1<<30, 1<<40)
		if len(want.Timeseries) == 0 {
			if len(got) != 0 {
				t.Errorf("2.0, %s: %d requests for no series", pass, len(got))
			}
			continue
		}
		raw, err := want.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if len(got) != 1 {
			t.Fatalf("2.0, %s: %d requests without limits", pass, len(got))
		}
		if !bytes.Equal(got[0], raw) {
			var g writev2.Request
			if err := g.Unmarshal(got[0]); err != nil {
				t.Fatalf("2.0, %s: request does not decode: %v", pass, err)
			}
			t.Errorf("2.0, %s: request differs from the reference; decoded (-reference +cached):\n%s", pass, cmp.Diff(want, &g, convCmpOpts))
		}
		wantSeries := resolveV2(t, want)
		for _, cut := range cacheCuts {
			what := fmt.Sprintf("2.0, %s, %d series / %d bytes per request", pass, cut.series, cut.bytes)
			var all []v2Series
			for i, raw := range cacheRequestsV2(sc, &b, cut.series, cut.bytes) {
				var req writev2.Request
				if err := req.Unmarshal(raw); err != nil {
					t.Fatalf("%s: request %d does not decode: %v", what, i, err)
				}
				if n := len(req.Timeseries); n > cut.series || n > 1 && len(raw) > cut.bytes {
					t.Errorf("%s: request %d has %d series in %d bytes", what, i, n, len(raw))
				}
				all = append(all, resolveV2(t, &req)...)
			}
			// cmp.Diff only to describe a difference: on the many series of
			// the bench data it is most of the test's time.
			if !sameV2Series(wantSeries, all) {
				t.Errorf("%s: series differ (-reference +cached):\n%s", what, cmp.Diff(wantSeries, all, convCmpOpts))
			}
		}
	}
}

// cacheModel is the reference model of an exporter: the reference
// conversion, refTracker and refSplit.
type cacheModel struct {
	conv      *rules
	tracker   *refTracker
	maxSeries int
	maxBytes  int
}

// export returns the requests the reference sends for rm (markers sorted
// by labels, all in the last requests) when request failAt fails (-1: none)
// and the requests after it are not sent, and how many series the export
// holds in all.
func (m *cacheModel) export(t *testing.T, rm *metricdata.ResourceMetrics, now int64, failAt int) ([]*prompb.WriteRequest, int) {
	t.Helper()
	req, _ := m.conv.reference(rm)
	live := m.tracker.observe(req)
	req.Timeseries = append(req.Timeseries, m.tracker.markers(live, now)...)
	if len(req.Timeseries) == 0 {
		return nil, 0
	}
	parts := refSplit(req, m.maxSeries, m.maxBytes)
	if failAt < 0 {
		m.tracker.delivered(live)
		return parts, len(req.Timeseries)
	}
	if failAt >= len(parts) {
		t.Fatalf("the test wants request %d to fail, but the export has %d requests", failAt, len(parts))
	}
	for _, part := range parts[:failAt] {
		m.tracker.deliveredPart(part, live)
	}
	return parts[:failAt+1], len(req.Timeseries)
}

// cacheData is export k of a churning workload: gauges i in [k, k+6), a
// monotonic counter with an exemplar, a histogram, and a native histogram
// that only even exports carry, all at time at.
func cacheData(k int, at time.Time) *metricdata.ResourceMetrics {
	var gauges []metricdata.DataPoint[float64]
	for i := k; i < k+6; i++ {
		gauges = append(gauges, metricdata.DataPoint[float64]{Attributes: attribute.NewSet(attribute.Int("i", i)), Time: at, Value: float64(i * k)})
	}
	metrics := []metricdata.Metrics{
		{Name: "load", Description: "Load.", Data: metricdata.Gauge[float64]{DataPoints: gauges}},
		{Name: "jobs", Unit: "{job}", Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
			DataPoints: []metricdata.DataPoint[int64]{{Attributes: attribute.NewSet(attribute.String("queue", "q")), Time: at, Value: int64(k),
				Exemplars: []metricdata.Exemplar[int64]{{Value: 1, Time: at, TraceID: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}}}}}},
		{Name: "wait", Unit: "s", Data: metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.HistogramDataPoint[float64]{{Attributes: attribute.NewSet(attribute.Int("shard", k%2)), Time: at,
				Bounds: []float64{0.1, 1}, BucketCounts: []uint64{1, uint64(k), 2}, Count: uint64(k) + 3, Sum: float64(k)}}}},
	}
	if k%2 == 0 {
		metrics = append(metrics, metricdata.Metrics{Name: "size", Unit: "By", Data: metricdata.ExponentialHistogram[int64]{
			Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.ExponentialHistogramDataPoint[int64]{{Time: at, Count: uint64(k) + 1, Sum: 10, Scale: 2, ZeroCount: 1,
				PositiveBucket: metricdata.ExponentialBucket{Offset: -1, Counts: []uint64{uint64(k), 0, 0, 0}}}},
		}})
	}
	return &metricdata.ResourceMetrics{
		Resource:     resource.NewSchemaless(attribute.String("service.name", "svc"), attribute.String("host.name", "h")),
		ScopeMetrics: []metricdata.ScopeMetrics{{Scope: instrumentation.Scope{Name: "test", Version: "1"}, Metrics: metrics}},
	}
}

func cacheSplitMarkers(series []prompb.TimeSeries) (data, markers []prompb.TimeSeries) {
	for _, s := range series {
		stale := (len(s.Samples) > 0 && math.Float64bits(s.Samples[0].Value) == math.Float64bits(staleNaN)) ||
			(len(s.Histograms) > 0 && math.Float64bits(s.Histograms[0].Sum) == math.Float64bits(staleNaN))
		if stale {
			markers = append(markers, s)
		} else {
			data = append(data, s)
		}
	}
	return data, markers
}

// cacheAlignMarkerTimes gives the model's markers the sent ones' times
// where the model used the time of the export (the clocks differ by the
// time the export took); the times past a series' newest sample must
// agree.
func cacheAlignMarkerTimes(want, got []prompb.TimeSeries) {
	if len(want) != len(got) {
		return
	}
	for i := range want {
		w, g := &want[i], &got[i]
		switch {
		case len(w.Samples) > 0 && len(g.Samples) > 0 && w.Samples[0].Timestamp < g.Samples[0].Timestamp:
			w.Samples[0].Timestamp = g.Samples[0].Timestamp
		case len(w.Histograms) > 0 && len(g.Histograms) > 0 && w.Histograms[0].Timestamp < g.Histograms[0].Timestamp:
			w.Histograms[0].Timestamp = g.Histograms[0].Timestamp
		}
	}
}

// TestExportMatchesReferenceModel runs churning exports through a real
// Exporter, some of them failing part-way, and checks every request the
// receiver got against the reference model: the same series in the same
// order (staleness markers as a set, as the model orders them by labels),
// the same timestamps, the same metadata in the last request, the same
// WriteError counts, and the receiver's own validation. The model sends
// one request at a time, in order, and stops at the first failure, as the
// exporter does with WithMaxConcurrentRequests(1).
func TestExportMatchesReferenceModel(t *testing.T) {
	checkExportsAgainstModel(t, 7, cacheData)
}

// TestStreamedExportMatchesReferenceModel is TestExportMatchesReferenceModel
// with thousands of series an export, of which a hundred are new and a
// hundred end each time: the requests are cut, encoded and sent while the
// conversion goes on (see stream), and still match the model, request by
// request.
func TestStreamedExportMatchesReferenceModel(t *testing.T) {
	checkExportsAgainstModel(t, 100, func(k int, at time.Time) *metricdata.ResourceMetrics {
		rm := cacheData(k, at)
		var points []metricdata.DataPoint[int64]
		for i := 100 * k; i < 100*k+1500; i++ {
			points = append(points, metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.Int("i", i), attribute.String("pod", fmt.Sprint("pod-", i%7))), Time: at, Value: int64(i + k)})
		}
		sm := &rm.ScopeMetrics[0]
		sm.Metrics = append(sm.Metrics[:1:1], append([]metricdata.Metrics{{Name: "wide", Description: "Many series.", Data: metricdata.Gauge[int64]{DataPoints: points}}}, sm.Metrics[1:]...)...)
		return rm
	})
}

// TestReorderedExportMatchesReferenceModel: the cache finds a metric or a
// point first at its place in the last export (positions); metrics and
// points that change places, vanish and come back elsewhere are still
// found by their identity, never by their place.
func TestReorderedExportMatchesReferenceModel(t *testing.T) {
	checkExportsAgainstModel(t, 50, func(k int, at time.Time) *metricdata.ResourceMetrics {
		rm := cacheData(k, at)
		var points []metricdata.DataPoint[float64]
		for n := range 40 {
			i := (n*7 + k*3) % 40 // a different order each export
			if i%5 == k%5 {
				continue // and a different eighth missing
			}
			points = append(points, metricdata.DataPoint[float64]{Attributes: attribute.NewSet(attribute.Int("i", i)), Time: at, Value: float64(i*100 + k)})
		}
		sm := &rm.ScopeMetrics[0]
		sm.Metrics = append(sm.Metrics, metricdata.Metrics{Name: "moving", Data: metricdata.Gauge[float64]{DataPoints: points}})
		// The scope's metrics rotate.
		r := k % len(sm.Metrics)
		sm.Metrics = append(sm.Metrics[r:], sm.Metrics[:r]...)
		return rm
	})
}

// checkExportsAgainstModel runs churning exports of data through a real
// Exporter and checks them against the reference model (see
// TestExportMatchesReferenceModel).
func checkExportsAgainstModel(t *testing.T, maxSeries int, data func(k int, at time.Time) *metricdata.ResourceMetrics) {
	const maxBytes = 1500
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	opts := []Option{WithEndpoint(srv.URL()), WithoutEnvironment(), WithLogger(discardLogger()),
		WithMaxSeriesPerRequest(maxSeries), WithMaxRequestBytes(maxBytes), WithHistogramMinMax(), WithMaxConcurrentRequests(1)}
	exp, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := newConfig(append(opts, WithLogger(discardLogger())))
	if err != nil {
		t.Fatal(err)
	}
	conv, err := newRules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	model := &cacheModel{conv: conv, tracker: newRefTracker(true), maxSeries: maxSeries, maxBytes: maxBytes}

	// The data is stamped later than the exports run, as a staleness
	// marker (at the time of the export or just after the series' newest
	// sample) must not be later than a series' next sample.
	base := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	// failAt is the request of each export that fails (-1: none); the
	// timestamps repeat now and then, as two collections within one
	// millisecond do.
	exports := []struct {
		k      int
		at     time.Duration
		failAt int
	}{
		{0, 0, -1}, {1, 0, -1}, {2, 15 * time.Second, 1}, {3, 15 * time.Second, 0}, {4, 30 * time.Second, -1},
		{5, 30 * time.Second, -1}, {9, 45 * time.Second, 2}, {10, time.Minute, -1}, {10, time.Minute, -1}, {20, 2 * time.Minute, -1},
	}
	seen := 0
	for n, x := range exports {
		rm := data(x.k, base.Add(x.at))
		if x.failAt >= 0 {
			for range x.failAt {
				srv.RespondWith(1, prwmetrictest.Response{})
			}
			srv.RespondWith(1, prwmetrictest.Response{Status: 503, Body: "try later"})
		}
		before := time.Now().UnixMilli()
		err := exp.Export(context.Background(), rm)
		want, total := model.export(t, rm, before, x.failAt)

		var we *WriteError
		if (x.failAt >= 0) != errors.As(err, &we) {
			t.Fatalf("export %d: error %v, want failure %v", n, err, x.failAt >= 0)
		}
		reqs := srv.Requests()[seen:]
		seen += len(reqs)
		if len(reqs) != len(want) {
			t.Fatalf("export %d: %d requests, reference %d", n, len(reqs), len(want))
		}
		sent := 0
		var gotSeries, wantSeries []prompb.TimeSeries
		for i, r := range reqs {
			if diff := cmp.Diff(want[i].Metadata, r.V1.Metadata, convCmpOpts); diff != "" {
				t.Errorf("export %d request %d: metadata (-reference +sent):\n%s", n, i, diff)
			}
			if len(r.V1.Timeseries) > maxSeries {
				t.Errorf("export %d request %d: %d series, limit %d", n, i, len(r.V1.Timeseries), maxSeries)
			}
			if raw, _ := snappy.Decode(nil, r.Body); len(raw) > maxBytes && len(r.V1.Timeseries) > 1 {
				t.Errorf("export %d request %d: %d bytes, limit %d", n, i, len(raw), maxBytes)
			}
			gotSeries = append(gotSeries, r.V1.Timeseries...)
			wantSeries = append(wantSeries, want[i].Timeseries...)
			if i < x.failAt || x.failAt < 0 {
				sent += len(r.V1.Timeseries)
			}
		}
		if we != nil && (we.Delivered != sent || we.Series != total-sent) {
			t.Errorf("export %d: WriteError delivered %d, dropped %d; want %d and %d", n, we.Delivered, we.Series, sent, total-sent)
		}
		// Markers come last in both; the model's are sorted by labels.
		gotData, gotMarkers := cacheSplitMarkers(gotSeries)
		wantData, wantMarkers := cacheSplitMarkers(wantSeries)
		cacheSortSeries(gotMarkers)
		for _, m := range gotMarkers {
			ts := m.Samples
			if len(m.Histograms) > 0 {
				ts = []prompb.Sample{{Timestamp: m.Histograms[0].Timestamp}}
			}
			if ts[0].Timestamp < before {
				t.Errorf("export %d: marker %s at %d, before the export (%d)", n, seriesString(m.Labels), ts[0].Timestamp, before)
			}
		}
		cacheAlignMarkerTimes(wantMarkers, gotMarkers)
		// cmp.Diff only to describe a difference: on thousands of series
		// it is most of the test's time.
		if !sameV1Series(wantData, gotData) {
			t.Errorf("export %d: series (-reference +sent):\n%s", n, cmp.Diff(wantData, gotData, convCmpOpts))
		}
		if !sameV1Series(wantMarkers, gotMarkers) {
			t.Errorf("export %d: staleness markers (-reference +sent):\n%s", n, cmp.Diff(wantMarkers, gotMarkers, convCmpOpts))
		}
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("receiver violations: %v", v)
	}
}

// TestCachedConversionMatchesReferenceOnBenchData runs cacheCheck on the
// benchmark's workload, scaled down: counters, up-down counters, gauges and
// 15-bucket histograms with the default options.
func TestCachedConversionMatchesReferenceOnBenchData(t *testing.T) {
	rm, series := benchData(benchW, 20, time.UnixMilli(1_700_000_000_123))
	c, logs := convConverter(t)
	req, err := c.reference(rm)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Timeseries) != series {
		t.Fatalf("%d series, want %d", len(req.Timeseries), series)
	}
	cacheCheck(t, c, rm, req, err, logs.lines())
}

// TestWireEncodingMatchesGogo checks the wire encoder against gogo's
// Marshal on the values where protobuf encodings differ: zero values left
// out, NaN and -0, negative numbers as 10-byte varints, empty strings,
// every native histogram field.
func TestWireEncodingMatchesGogo(t *testing.T) {
	labels := []prompb.Label{{Name: "__name__", Value: "x"}, {Name: "a", Value: "é\u00ff"}, {Name: "empty", Value: ""}}
	long := []prompb.Label{{Name: "__name__", Value: strings.Repeat("n", 300)}}
	sample := func(v float64, ms int64) []prompb.Sample { return []prompb.Sample{{Value: v, Timestamp: ms}} }
	tests := []struct {
		name string
		give prompb.TimeSeries
	}{
		{"value and timestamp", prompb.TimeSeries{Labels: labels, Samples: sample(1.5, 1700000000123)}},
		{"zero value and zero timestamp are left out", prompb.TimeSeries{Labels: labels, Samples: sample(0, 0)}},
		{"negative timestamp", prompb.TimeSeries{Labels: labels, Samples: sample(-2, -1)}},
		{"NaN", prompb.TimeSeries{Labels: labels, Samples: sample(math.NaN(), 5)}},
		{"stale NaN keeps its bits", prompb.TimeSeries{Labels: labels, Samples: sample(staleNaN, 5)}},
		{"infinity", prompb.TimeSeries{Labels: labels, Samples: sample(math.Inf(-1), 5)}},
		{"long label needs a two-byte length", prompb.TimeSeries{Labels: long, Samples: sample(1, 1)}},
		{"no labels", prompb.TimeSeries{Samples: sample(1, 1)}},
		{"exemplars", prompb.TimeSeries{Labels: labels, Samples: sample(3, 9), Exemplars: []prompb.Exemplar{
			{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 2.5, Timestamp: 8},
			{Value: 0, Timestamp: 0},
			{Labels: long, Value: math.NaN(), Timestamp: -3},
		}}},
		{"native histogram", prompb.TimeSeries{Labels: labels, Histograms: []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 300}, Sum: -12.5, Schema: -3, ZeroThreshold: 1e-128,
			ZeroCount:      &prompb.Histogram_ZeroCountInt{ZeroCountInt: 0},
			NegativeSpans:  []prompb.BucketSpan{{Offset: -70000, Length: 2}, {Offset: 0, Length: 0}},
			NegativeDeltas: []int64{1, -1 << 40},
			PositiveSpans:  []prompb.BucketSpan{{Offset: 3, Length: 1}},
			PositiveDeltas: []int64{math.MaxInt64},
			Timestamp:      1700000000123,
		}}}},
		{"native histogram with zeros left out", prompb.TimeSeries{Labels: labels, Histograms: []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 0}, ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 0},
		}}}},
		{"stale native histogram", prompb.TimeSeries{Labels: labels, Histograms: []prompb.Histogram{{Sum: staleNaN, Timestamp: 7}}}},
		{"native histogram with exemplar", prompb.TimeSeries{Labels: labels,
			Exemplars: []prompb.Exemplar{{Labels: labels[:1], Value: 1, Timestamp: 2}},
			Histograms: []prompb.Histogram{{
				Count: &prompb.Histogram_CountInt{CountInt: 1}, Schema: 8, ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
			}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{tt.give}}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if got := cacheEncodeOne(tt.give); !bytes.Equal(got, want) {
				t.Errorf("encoded\n% x\ngogo\n% x", got, want)
			}
		})
	}

	meta := []prompb.MetricMetadata{
		{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "a_total", Help: "Help.", Unit: "seconds"},
		{Type: prompb.MetricMetadata_UNKNOWN},
		{Type: prompb.MetricMetadata_STATESET, MetricFamilyName: strings.Repeat("f", 200)},
	}
	want, err := (&prompb.WriteRequest{Metadata: meta}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for _, m := range meta {
		got = appendMetadata(got, m.Type, m.MetricFamilyName, m.Help, m.Unit)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("metadata encoded\n% x\ngogo\n% x", got, want)
	}
	if back := decodeLabels(string(appendLabels(nil, labels))); !cmp.Equal(back, labels, convCmpOpts) {
		t.Errorf("decodeLabels = %v, want %v", back, labels)
	}
}

// TestV2CachedEncodingMatchesFreshNumbering: the cut reuses a series'
// request-local encoding of the last export when the request's symbols
// before it are the same (seriesV2). Through exports that keep, insert and
// drop series, add exemplars (whose symbols come between a series' labels
// and its metadata), change the limits and cut by bytes, every request is
// byte for byte the one of a cache that numbers every series afresh (which
// the oracle holds to the reference); and the steady exports do reuse
// every encoding.
func TestV2CachedEncodingMatchesFreshNumbering(t *testing.T) {
	c, _ := convConverter(t)
	at := time.UnixMilli(1_700_000_000_123)
	data := func(ids []int, trace byte) *metricdata.ResourceMetrics {
		var gauges []metricdata.DataPoint[float64]
		for _, id := range ids {
			gauges = append(gauges, convPoint(float64(id), attribute.Int("id", id), attribute.String("zone", fmt.Sprint("z", id%3))))
		}
		counter := convPoint(int64(7), attribute.String("queue", "q"))
		if trace != 0 {
			counter.Exemplars = []metricdata.Exemplar[int64]{{Value: 1, Time: at, TraceID: bytes.Repeat([]byte{trace}, 16)}}
		}
		// Series of 24 labels: encodings longer than a seriesV2 holds
		// in itself.
		var wide []metricdata.DataPoint[float64]
		for _, id := range ids[:min(3, len(ids))] {
			kvs := []attribute.KeyValue{attribute.Int("id", id)}
			for a := range 23 {
				kvs = append(kvs, attribute.String(fmt.Sprint("attr", a), fmt.Sprint("value", a, "_", id%2)))
			}
			wide = append(wide, convPoint(1.5, kvs...))
		}
		return convRM(
			metricdata.Metrics{Name: "jobs", Description: "Jobs.", Unit: "{job}", Data: convSum(true, counter)},
			metricdata.Metrics{Name: "load", Description: "Load.", Unit: "1", Data: metricdata.Gauge[float64]{DataPoints: gauges}},
			metricdata.Metrics{Name: "wide", Data: metricdata.Gauge[float64]{DataPoints: wide}},
		)
	}
	ids := func(from, to int, more ...int) []int {
		var out []int
		for i := from; i < to; i++ {
			out = append(out, i)
		}
		return append(out, more...)
	}
	const all = 1 << 30
	steps := []struct {
		name               string
		ids                []int
		trace              byte
		delivered          bool // the export counts as delivered
		maxSeries, maxByte int
		steady             bool // every encoding is reused
	}{
		{name: "first", ids: ids(0, 12), maxSeries: 4, maxByte: all},
		{name: "again", ids: ids(0, 12), maxSeries: 4, maxByte: all, steady: true},
		{name: "again, one request", ids: ids(0, 12), maxSeries: all, maxByte: all},
		{name: "again, one request, steady", ids: ids(0, 12), maxSeries: all, maxByte: all, steady: true},
		{name: "cut by bytes", ids: ids(0, 12), maxSeries: all, maxByte: 250},
		{name: "cut by bytes, steady", ids: ids(0, 12), maxSeries: all, maxByte: 250, steady: true},
		{name: "a series inserted", ids: ids(0, 6, 100, 6, 7, 8, 9, 10, 11), maxSeries: 5, maxByte: all},
		{name: "inserted, steady", ids: ids(0, 6, 100, 6, 7, 8, 9, 10, 11), maxSeries: 5, maxByte: all, steady: true},
		{name: "series dropped", ids: ids(3, 9), maxSeries: 5, maxByte: all},
		{name: "an exemplar", ids: ids(3, 9), trace: 1, maxSeries: 5, maxByte: all},
		{name: "another exemplar", ids: ids(3, 9), trace: 2, maxSeries: 5, maxByte: all},
		{name: "the exemplar again", ids: ids(3, 9), trace: 2, maxSeries: 5, maxByte: all, delivered: true},
		{name: "the exemplar delivered", ids: ids(3, 9), trace: 2, maxSeries: 5, maxByte: all},
		{name: "the exemplar delivered, steady", ids: ids(3, 9), trace: 2, maxSeries: 5, maxByte: all, steady: true},
		{name: "new series, cut by bytes", ids: ids(0, 20), maxSeries: all, maxByte: 300},
		{name: "new series, cut by bytes, steady", ids: ids(0, 20), maxSeries: all, maxByte: 300, steady: true},
	}
	cached, fresh := newSeriesCache(c, true), newSeriesCache(c, true)
	cached.collectV2, fresh.collectV2 = true, true
	var bc, bf batch
	now := time.Now().UnixMilli()
	for _, st := range steps {
		rm := data(st.ids, st.trace)
		bc.reset()
		bf.reset()
		_ = cached.convert(rm, &bc, now)
		_ = fresh.convert(rm, &bf, now)
		for i := range fresh.v2series {
			fresh.v2series[i].gen = 0 // nothing cached: number every series
		}
		gens := cached.symbols.gens
		got := cacheRequestsV2(cached, &bc, st.maxSeries, st.maxByte)
		want := cacheRequestsV2(fresh, &bf, st.maxSeries, st.maxByte)
		if len(got) != len(want) {
			t.Fatalf("%s: %d requests, afresh %d", st.name, len(got), len(want))
		}
		if len(want) < 2 && st.maxSeries < all {
			t.Fatalf("%s: %d requests: the step is meant to cut", st.name, len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				var g, w writev2.Request
				if err := g.Unmarshal(got[i]); err != nil {
					t.Fatalf("%s: request %d does not decode: %v", st.name, i, err)
				}
				if err := w.Unmarshal(want[i]); err != nil {
					t.Fatal(err)
				}
				t.Fatalf("%s: request %d differs from the one numbered afresh (-afresh +cached):\n%s", st.name, i, cmp.Diff(&w, &g, convCmpOpts))
			}
		}
		if n := cached.symbols.gens - gens; st.steady && n != 0 {
			t.Errorf("%s: %d series numbered again, want every encoding reused", st.name, n)
		}
		if st.delivered {
			cached.markDelivered(&bc, bc.allRecords())
			fresh.markDelivered(&bf, bf.allRecords())
		}
	}
}

// TestRefTrackerDeliveredPartKeepsMoves: the parts of an export that failed
// later are recorded as observe found them for the whole export (their own
// times and moves), as delivered records a whole export: observed again,
// the already-moved samples of a part were recorded as not moved, and a
// duplicate at the newest time was moved once more, in the very request
// the model expected to be sent.
func TestRefTrackerDeliveredPartKeepsMoves(t *testing.T) {
	const own = 1_700_000_000_000
	labels := []prompb.Label{{Name: "__name__", Value: "load"}}
	req := func(v float64) *prompb.WriteRequest {
		return &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: labels, Samples: []prompb.Sample{{Value: v, Timestamp: own}}}}}
	}
	whole, part := newRefTracker(true), newRefTracker(true)
	for _, tr := range []*refTracker{whole, part} {
		tr.delivered(tr.observe(req(1)))
	}
	// A new value in the same millisecond: moved 1 ms.
	sent := req(2)
	live := part.observe(sent)
	whole.delivered(whole.observe(req(2)))
	part.deliveredPart(sent, live)
	if at := sent.Timeseries[0].Samples[0].Timestamp; at != own+1 {
		t.Errorf("the part delivered holds its sample at %d, want %d, as sent", at, own+1)
	}
	if w, p := whole.last[whole.key(labels)], part.last[part.key(labels)]; w.newest != p.newest || w.moved != p.moved || w.value != p.value {
		t.Errorf("after a part: newest %d moved %d, want newest %d moved %d as after the whole export", p.newest, p.moved, w.newest, w.moved)
	}
	// The same point again goes at the newest time, a duplicate.
	for _, tr := range []*refTracker{whole, part} {
		again := req(2)
		tr.observe(again)
		if at := again.Timeseries[0].Samples[0].Timestamp; at != own+1 {
			t.Errorf("the same point again at %d, want %d (the newest)", at, own+1)
		}
	}
}
