package prwmetric

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The 2.0 encoding (v2.go) is held to a reference built the plain way: the
// reference conversion's 1.0 request and series infos, turned into a
// writev2.Request with writev2's own symbol table, marshalled by gogo.

// referenceV2 converts rm with c into the 2.0 request the exporter should
// send in one piece.
func referenceV2(c *rules, rm *metricdata.ResourceMetrics) (*writev2.Request, error) {
	req, infos, err := c.referenceInfo(rm)
	return toV2(c, req.Timeseries, infos), err
}

// toV2 turns 1.0 series and their infos into a 2.0 request: symbols in the
// order of first use (labels, exemplar labels, help, unit), metadata per
// series, start times on samples and histograms. Exemplars not later than
// the previous one of their series are left out, as 2.0 receivers refuse
// them.
func toV2(c *rules, series []prompb.TimeSeries, infos []seriesInfo) *writev2.Request {
	st := writev2.NewSymbolTable()
	out := &writev2.Request{}
	for i, ts := range series {
		info := infos[i]
		var v2 writev2.TimeSeries
		for _, l := range ts.Labels {
			v2.LabelsRefs = append(v2.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
		}
		for _, s := range ts.Samples {
			v2.Samples = append(v2.Samples, writev2.Sample{Value: s.Value, Timestamp: s.Timestamp, StartTimestamp: info.start})
		}
		for _, h := range ts.Histograms {
			v2.Histograms = append(v2.Histograms, histogramV2(h, info.start))
		}
		var newest int64
		for _, e := range ts.Exemplars {
			if newest != 0 && e.Timestamp <= newest {
				continue
			}
			newest = e.Timestamp
			ex := writev2.Exemplar{Value: e.Value, Timestamp: e.Timestamp}
			for _, l := range e.Labels {
				ex.LabelsRefs = append(ex.LabelsRefs, st.Symbolize(l.Name), st.Symbolize(l.Value))
			}
			v2.Exemplars = append(v2.Exemplars, ex)
		}
		if !c.withoutMetadata && info.family != "" {
			v2.Metadata = writev2.Metadata{
				Type:    writev2.Metadata_MetricType(info.typ),
				HelpRef: st.Symbolize(info.help),
				UnitRef: st.Symbolize(info.unit),
			}
		}
		out.Timeseries = append(out.Timeseries, v2)
	}
	out.Symbols = st.Symbols()
	return out
}

func histogramV2(h prompb.Histogram, start int64) writev2.Histogram {
	out := writev2.Histogram{
		Sum: h.Sum, Schema: h.Schema, ZeroThreshold: h.ZeroThreshold,
		NegativeDeltas: h.NegativeDeltas, NegativeCounts: h.NegativeCounts,
		PositiveDeltas: h.PositiveDeltas, PositiveCounts: h.PositiveCounts,
		ResetHint: writev2.Histogram_ResetHint(h.ResetHint), Timestamp: h.Timestamp,
		CustomValues: h.CustomValues, StartTimestamp: start,
	}
	switch c := h.Count.(type) {
	case *prompb.Histogram_CountInt:
		out.Count = &writev2.Histogram_CountInt{CountInt: c.CountInt}
	case *prompb.Histogram_CountFloat:
		out.Count = &writev2.Histogram_CountFloat{CountFloat: c.CountFloat}
	}
	switch z := h.ZeroCount.(type) {
	case *prompb.Histogram_ZeroCountInt:
		out.ZeroCount = &writev2.Histogram_ZeroCountInt{ZeroCountInt: z.ZeroCountInt}
	case *prompb.Histogram_ZeroCountFloat:
		out.ZeroCount = &writev2.Histogram_ZeroCountFloat{ZeroCountFloat: z.ZeroCountFloat}
	}
	for _, s := range h.NegativeSpans {
		out.NegativeSpans = append(out.NegativeSpans, writev2.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	for _, s := range h.PositiveSpans {
		out.PositiveSpans = append(out.PositiveSpans, writev2.BucketSpan{Offset: s.Offset, Length: s.Length})
	}
	return out
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
	start := 0
	for _, c := range sc.cutV2(b, 0, maxSeries, maxBytes, &x, nil) {
		out = append(out, x.encodeV2(nil, b, start, c))
		start = c.end
	}
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
			if diff := cmp.Diff(wantSeries, all, convCmpOpts); diff != "" {
				t.Errorf("%s: series differ (-reference +cached):\n%s", what, diff)
			}
		}
	}
}

// TestSeriesStateSize guards the per-series memory of 1.0 exports (the
// 1 000 000-series target): a seriesState fits a 32-byte allocation, so
// what 2.0 keeps per series lives aside, in seriesCache.v2series.
func TestSeriesStateSize(t *testing.T) {
	if n := unsafe.Sizeof(seriesState{}); n > 32 {
		t.Errorf("seriesState is %d bytes, want at most 32", n)
	}
}

// TestSymbolTableRebuild: when most of the symbol table is strings no
// request uses any more (series gone), it is rebuilt, and later requests
// are still exactly the reference's; so are those of series evicted and
// back again.
func TestSymbolTableRebuild(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo(), WithoutScopeInfo(), WithoutMetadata())
	gauge := func(from, n int) *metricdata.ResourceMetrics {
		dps := make([]metricdata.DataPoint[int64], n)
		for i := range dps {
			dps[i] = convPoint(int64(i), attribute.Int("id", from+i))
		}
		return convRM(metricdata.Metrics{Name: "g", Data: metricdata.Gauge[int64]{DataPoints: dps}})
	}
	sc := newSeriesCache(c, false)
	sc.collectV2 = true
	var b batch
	export := func(rm *metricdata.ResourceMetrics) {
		t.Helper()
		b.reset()
		_ = sc.convert(rm, &b, time.Now().UnixMilli())
		got := cacheRequestsV2(sc, &b, 1<<30, 1<<40)
		want, _ := referenceV2(c, rm)
		raw, err := want.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !bytes.Equal(got[0], raw) {
			t.Fatalf("request differs from the reference")
		}
	}
	export(gauge(0, 70000)) // 70 000 distinct values, never delivered
	epoch := sc.symbols.epoch
	export(gauge(1000000, 10)) // the 70 000 are evicted, the table rebuilt
	if sc.symbols.epoch == epoch {
		t.Fatalf("table of %d strings not rebuilt for a request of 10 series", len(sc.symbols.strs))
	}
	export(gauge(1000000, 10))
	export(gauge(0, 10)) // evicted series back again
	if n := len(sc.symbols.strs); n > 100 {
		t.Errorf("table holds %d strings for 20 series", n)
	}
	if n := len(sc.v2series) - len(sc.v2free); n > 21 {
		t.Errorf("%d series states in use for 20 series", n)
	}
}
