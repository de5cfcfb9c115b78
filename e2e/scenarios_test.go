package e2e

import (
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// scenario is one kind of data pushed to a backend and read back exactly.
// Every scenario writes its own metric names, so scenarios share a server.
type scenario struct {
	name string
	// selector matches every float series the scenario writes (PromQL
	// selector, also understood by VictoriaMetrics' export API).
	selector string
	// build makes the exports, stamped with times from c, and what a backend
	// must hold afterwards.
	build func(c *clock) scenarioData
}

// scenarioData is what a scenario sends and what must come back.
type scenarioData struct {
	exports []*metricdata.ResourceMetrics
	// want is every float series the selector must return, with every
	// sample; all backends store these.
	want map[string][]sample
	// wantNative are the native histograms Prometheus must hold (other
	// backends drop them).
	wantNative map[string][]nativeHistogram
	// wantVMNative are the float series VictoriaMetrics 1.151 makes of
	// those native histograms (VictoriaMetrics 1.79 drops them).
	wantVMNative map[string][]sample
	// prom checks what only Prometheus can show: exemplars and PromQL.
	prom func(t *testing.T, s *promServer)
}

// floatScenarios run against every backend.
func floatScenarios() []scenario {
	return []scenario{
		{name: "counters across exports", selector: `{__name__=~"e2e_counter_.*"}`, build: countersScenario},
		{name: "up-down counters and gauges, negative values", selector: `{__name__=~"e2e_(updown|gauge)_.*"}`, build: gaugesScenario},
		{name: "histograms", selector: `{__name__=~"e2e_histogram_.*"}`, build: histogramScenario},
		{name: "exemplars on counters and buckets", selector: `{__name__=~"e2e_exemplar_.*"}`, build: exemplarScenario},
		{name: "exponential histograms", selector: `{__name__=~"e2e_native_.*"}`, build: nativeScenario},
		{name: "label values with unicode and quotes", selector: `{__name__=~"e2e_text_.*"}`, build: textScenario},
		{name: "10000 series in one export", selector: `{__name__="e2e_many_series"}`, build: manySeriesScenario},
	}
}

// wantSeries accumulates expected samples by series.
type wantSeries map[string][]sample

func (w wantSeries) add(ls map[string]string, t time.Time, v float64) {
	k := labelKey(ls)
	w[k] = append(w[k], sample{T: t.UnixMilli(), V: v})
}

func attrs(kv ...string) attribute.Set {
	out := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, attribute.String(kv[i], kv[i+1]))
	}
	return attribute.NewSet(out...)
}

func countersScenario(c *clock) scenarioData {
	start := c.now()
	w := wantSeries{}
	var exports []*metricdata.ResourceMetrics
	requests := []struct {
		kv     []string
		values []float64
	}{
		{kv: []string{"method", "GET", "status", "200"}, values: []float64{1, 5.5, 12}},
		{kv: []string{"method", "POST", "status", "500"}, values: []float64{2, 2, 7}},
	}
	sent := []int64{100, 2048, 1 << 40}
	for i := range 3 {
		ts := c.next()
		var reqPoints []metricdata.DataPoint[float64]
		for _, r := range requests {
			reqPoints = append(reqPoints, metricdata.DataPoint[float64]{Attributes: attrs(r.kv...), StartTime: start, Time: ts, Value: r.values[i]})
			w.add(seriesLabels("e2e_counter_requests_total", r.kv...), ts, r.values[i])
		}
		w.add(seriesLabels("e2e_counter_sent_bytes_total"), ts, float64(sent[i]))
		exports = append(exports, resourceMetrics(
			metricdata.Metrics{
				Name: "e2e.counter.requests", Unit: "{request}", Description: "Requests served.",
				Data: metricdata.Sum[float64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: reqPoints},
			},
			metricdata.Metrics{
				Name: "e2e.counter.sent", Unit: "By", Description: "Bytes sent.",
				Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: []metricdata.DataPoint[int64]{
					{StartTime: start, Time: ts, Value: sent[i]},
				}},
			},
		))
	}
	return scenarioData{exports: exports, want: w}
}

func gaugesScenario(c *clock) scenarioData {
	start := c.now()
	w := wantSeries{}
	var exports []*metricdata.ResourceMetrics
	queue := []int64{3, -2, -7}
	lag := []float64{-1.5, 0, 2.25}
	usage := []float64{0.75, 0.5, 1}
	for i := range 3 {
		ts := c.next()
		w.add(seriesLabels("e2e_updown_queue", "queue", "q1"), ts, float64(queue[i]))
		w.add(seriesLabels("e2e_gauge_lag_seconds"), ts, lag[i])
		w.add(seriesLabels("e2e_gauge_usage_ratio", "disk", "sda"), ts, usage[i])
		exports = append(exports, resourceMetrics(
			metricdata.Metrics{
				Name: "e2e.updown.queue", Unit: "{item}",
				Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: false, DataPoints: []metricdata.DataPoint[int64]{
					{Attributes: attrs("queue", "q1"), StartTime: start, Time: ts, Value: queue[i]},
				}},
			},
			metricdata.Metrics{
				Name: "e2e.gauge.lag", Unit: "s",
				Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{Time: ts, Value: lag[i]}}},
			},
			metricdata.Metrics{
				Name: "e2e.gauge.usage", Unit: "1",
				Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{Attributes: attrs("disk", "sda"), Time: ts, Value: usage[i]}}},
			},
		))
	}
	return scenarioData{exports: exports, want: w}
}

// classicHistogram adds the _bucket (cumulative), _sum and _count series of
// one explicit-bucket data point to w.
func classicHistogram[N int64 | float64](w wantSeries, name string, dp metricdata.HistogramDataPoint[N], kv ...string) {
	var cum uint64
	for i, b := range dp.Bounds {
		cum += dp.BucketCounts[i]
		w.add(seriesLabels(name+"_bucket", append([]string{"le", strconv.FormatFloat(b, 'f', -1, 64)}, kv...)...), dp.Time, float64(cum))
	}
	w.add(seriesLabels(name+"_bucket", append([]string{"le", "+Inf"}, kv...)...), dp.Time, float64(dp.Count))
	w.add(seriesLabels(name+"_sum", kv...), dp.Time, float64(dp.Sum))
	w.add(seriesLabels(name+"_count", kv...), dp.Time, float64(dp.Count))
}

func histogramScenario(c *clock) scenarioData {
	start := c.now()
	w := wantSeries{}
	var exports []*metricdata.ResourceMetrics
	latency := []struct {
		counts []uint64
		sum    float64
	}{
		{counts: []uint64{1, 1, 2, 0, 0}, sum: 1.75},
		{counts: []uint64{2, 2, 4, 0, 2}, sum: 23.5},
	}
	var last time.Time
	for i, l := range latency {
		ts := c.next()
		last = ts
		lat := metricdata.HistogramDataPoint[float64]{
			Attributes: attrs("method", "GET"), StartTime: start, Time: ts,
			Bounds: []float64{0.1, 0.5, 1, 5}, BucketCounts: l.counts, Count: total(l.counts), Sum: l.sum,
		}
		size := metricdata.HistogramDataPoint[int64]{
			StartTime: start, Time: ts,
			Bounds: []float64{0, 100, 1000}, BucketCounts: []uint64{0, 1, uint64(i + 1), 3}, Count: uint64(i + 5), Sum: 12345 + int64(i),
		}
		classicHistogram(w, "e2e_histogram_latency_milliseconds", lat, "method", "GET")
		classicHistogram(w, "e2e_histogram_size_bytes", size)
		exports = append(exports, resourceMetrics(
			metricdata.Metrics{Name: "e2e.histogram.latency", Unit: "ms", Data: metricdata.Histogram[float64]{
				Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{lat},
			}},
			metricdata.Metrics{Name: "e2e.histogram.size", Unit: "By", Data: metricdata.Histogram[int64]{
				Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[int64]{size},
			}},
		))
	}
	return scenarioData{exports: exports, want: w, prom: func(t *testing.T, s *promServer) {
		// Latest buckets: cumulative 2, 4, 8, 8, 10 for le 0.1, 0.5, 1, 5,
		// +Inf. The median's rank 5 falls in (0.5, 1], which holds ranks
		// 5..8, so linear interpolation gives 0.5 + 0.5*(5-4)/(8-4).
		got := s.queryVector(t, `histogram_quantile(0.5, e2e_histogram_latency_milliseconds_bucket)`, last)
		k := labelKey(seriesLabels("", "method", "GET"))
		if len(got) != 1 || got[k] != 0.625 {
			t.Errorf("histogram_quantile(0.5) = %v, want {%s: 0.625}", got, k)
		}
	}}
}

func total(counts []uint64) uint64 {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n
}

var (
	traceID = []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID  = []byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

func exemplarScenario(c *clock) scenarioData {
	start := c.now()
	ts := c.next()
	exTime := ts.Add(-250 * time.Millisecond)
	w := wantSeries{}
	w.add(seriesLabels("e2e_exemplar_orders_total"), ts, 3)
	hist := metricdata.HistogramDataPoint[float64]{
		StartTime: start, Time: ts, Bounds: []float64{0.1, 1}, BucketCounts: []uint64{0, 1, 1}, Count: 2, Sum: 7.5,
		Exemplars: []metricdata.Exemplar[float64]{
			{Value: 0.5, Time: exTime, TraceID: traceID, SpanID: spanID, FilteredAttributes: []attribute.KeyValue{attribute.String("user", "alice")}},
			{Value: 7, Time: exTime.Add(time.Millisecond), TraceID: traceID, SpanID: spanID},
		},
	}
	classicHistogram(w, "e2e_exemplar_duration_seconds", hist)
	rm := resourceMetrics(
		metricdata.Metrics{Name: "e2e.exemplar.orders", Data: metricdata.Sum[float64]{
			Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
			DataPoints: []metricdata.DataPoint[float64]{{
				StartTime: start, Time: ts, Value: 3,
				Exemplars: []metricdata.Exemplar[float64]{{
					Value: 3, Time: exTime, TraceID: traceID, SpanID: spanID,
					FilteredAttributes: []attribute.KeyValue{attribute.String("user", "alice")},
				}},
			}},
		}},
		metricdata.Metrics{Name: "e2e.exemplar.duration", Unit: "s", Data: metricdata.Histogram[float64]{
			Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{hist},
		}},
	)
	trace, span := hex.EncodeToString(traceID), hex.EncodeToString(spanID)
	wantEx := map[string][]exemplar{
		labelKey(seriesLabels("e2e_exemplar_orders_total")): {{
			Labels: map[string]string{"trace_id": trace, "span_id": span, "user": "alice"}, Value: 3, T: exTime.UnixMilli(),
		}},
		// An exemplar goes to the first bucket whose bound is ≥ its value.
		labelKey(seriesLabels("e2e_exemplar_duration_seconds_bucket", "le", "1")): {{
			Labels: map[string]string{"trace_id": trace, "span_id": span, "user": "alice"}, Value: 0.5, T: exTime.UnixMilli(),
		}},
		labelKey(seriesLabels("e2e_exemplar_duration_seconds_bucket", "le", "+Inf")): {{
			Labels: map[string]string{"trace_id": trace, "span_id": span}, Value: 7, T: exTime.UnixMilli() + 1,
		}},
	}
	return scenarioData{exports: []*metricdata.ResourceMetrics{rm}, want: w, prom: func(t *testing.T, s *promServer) {
		got := s.queryExemplars(t, `{__name__=~"e2e_exemplar_.*"}`, start.Add(-time.Minute), ts.Add(time.Minute))
		diffExemplars(t, got, wantEx)
	}}
}

func diffExemplars(t *testing.T, got, want map[string][]exemplar) {
	t.Helper()
	render := func(m map[string][]exemplar) []string {
		var out []string
		for k, es := range m {
			for _, e := range es {
				out = append(out, fmt.Sprintf("%s: %s %v @%d", k, labelKey(e.Labels), e.Value, e.T))
			}
		}
		sort.Strings(out)
		return out
	}
	g, w := render(got), render(want)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Errorf("exemplars stored:\n\t%s\nwant:\n\t%s", joinLines(g), joinLines(w))
	}
}

func joinLines(ss []string) string {
	if len(ss) == 0 {
		return "(none)"
	}
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += "\n\t"
		}
		out += s
	}
	return out
}

func nativeScenario(c *clock) scenarioData {
	start := c.now()
	wantNative := map[string][]nativeHistogram{}
	wantVM := wantSeries{}
	var exports []*metricdata.ResourceMetrics
	var first time.Time
	// Two exports: the second adds observations to every histogram.
	for e := range uint64(2) {
		ts := c.next()
		if e == 0 {
			first = ts
		}
		dps := []metricdata.ExponentialHistogramDataPoint[float64]{
			{
				// Scale 0: bucket i is (2^i, 2^(i+1)]. Gaps longer than two
				// buckets must open a new span.
				Attributes: attrs("case", "scale0"), StartTime: start, Time: ts,
				Count: 12 + 4*e, Sum: 87.25 + 30*float64(e), Scale: 0, ZeroCount: 2, ZeroThreshold: 0.001,
				PositiveBucket: metricdata.ExponentialBucket{Offset: -2, Counts: []uint64{1, 0, 0, 0, 2 + e, 4 + 2*e, 2}},
				NegativeBucket: metricdata.ExponentialBucket{Offset: 1, Counts: []uint64{1 + e}},
			},
			{
				// What the SDK produces: zero threshold 0, no zero count.
				Attributes: attrs("case", "scale3"), StartTime: start, Time: ts,
				Count: 6 + 3*e, Sum: 9.5 + 4.5*float64(e), Scale: 3,
				PositiveBucket: metricdata.ExponentialBucket{Offset: 5, Counts: []uint64{1, 2, 3 + 3*e}},
			},
			{
				// Scale 10 is finer than Prometheus' 8: buckets are merged four
				// to one.
				Attributes: attrs("case", "scale10"), StartTime: start, Time: ts,
				Count: 6 + e, Sum: 12 + 2*float64(e), Scale: 10,
				PositiveBucket: metricdata.ExponentialBucket{Offset: 1021, Counts: []uint64{1, 1, 1, 1, 1 + e, 1}},
			},
		}
		for _, dp := range dps {
			kv := []string{"case", dp.Attributes.ToSlice()[0].Value.AsString()}
			k := labelKey(seriesLabels("e2e_native_latency_seconds", kv...))
			wantNative[k] = append(wantNative[k], expectedNative(dp))
			vmNativeHistogram(wantVM, "e2e_native_latency_seconds", dp, kv...)
		}
		exports = append(exports, resourceMetrics(metricdata.Metrics{Name: "e2e.native.latency", Unit: "s", Data: metricdata.ExponentialHistogram[float64]{
			Temporality: metricdata.CumulativeTemporality, DataPoints: dps,
		}}))
	}
	return scenarioData{exports: exports, want: wantSeries{}, wantNative: wantNative, wantVMNative: wantVM, prom: func(t *testing.T, s *promServer) {
		// Ranks of the first scale-0 histogram: [-4,-2): 1, zero bucket:
		// 2..3, (0.25,0.5]: 4, (4,8]: 5..6, so the median (rank 6) is in
		// (4, 8].
		got := s.queryVector(t, `histogram_quantile(0.5, e2e_native_latency_seconds{case="scale0"})`, first)
		k := labelKey(seriesLabels("", "case", "scale0"))
		if v, ok := got[k]; len(got) != 1 || !ok || v <= 4 || v > 8 {
			t.Errorf("histogram_quantile(0.5) of the native histogram = %v, want one value in (4, 8] for %s", got, k)
		}
	}}
}

// vmNativeHistogram adds to w the float series VictoriaMetrics (1.151)
// stores for the native histogram the exporter makes of dp
// (lib/prompb/write_request_unmarshaler.go): name_count and name_sum, and
// for each non-empty bucket a name_bucket series with its own
// (non-cumulative) count and a vmrange label "lower...upper", both bounds
// formatted %.3e. Prometheus bucket index i (OTel's i-1, after scales above
// 8 are merged down to 8) has upper bound base^i and lower bound
// upper/base, base = 2^(2^-schema), computed as VictoriaMetrics does;
// negative buckets are mirrored; the zero bucket is
// -threshold...threshold, when it holds anything.
func vmNativeHistogram(w wantSeries, name string, dp metricdata.ExponentialHistogramDataPoint[float64], kv ...string) {
	scale, shift := dp.Scale, int32(0)
	if scale > 8 {
		shift, scale = scale-8, 8
	}
	base := math.Pow(2, math.Pow(2, -float64(scale)))
	vmrange := func(lo, hi float64) string {
		return strconv.FormatFloat(lo, 'e', 3, 64) + "..." + strconv.FormatFloat(hi, 'e', 3, 64)
	}
	bucket := func(rng string, n uint64) {
		w.add(seriesLabels(name+"_bucket", append([]string{"vmrange", rng}, kv...)...), dp.Time, float64(n))
	}
	w.add(seriesLabels(name+"_count", kv...), dp.Time, float64(dp.Count))
	w.add(seriesLabels(name+"_sum", kv...), dp.Time, dp.Sum)
	if dp.ZeroCount > 0 {
		bucket(vmrange(-dp.ZeroThreshold, dp.ZeroThreshold), dp.ZeroCount)
	}
	for _, side := range []struct {
		b        metricdata.ExponentialBucket
		negative bool
	}{{dp.PositiveBucket, false}, {dp.NegativeBucket, true}} {
		merged := map[int32]uint64{}
		for j, n := range side.b.Counts {
			merged[(side.b.Offset+int32(j))>>shift] += n
		}
		for i, n := range merged {
			if n == 0 {
				continue
			}
			upper := math.Pow(base, float64(i+1))
			lower := upper / base
			if side.negative {
				lower, upper = -upper, -lower
			}
			bucket(vmrange(lower, upper), n)
		}
	}
}

// expectedNative is the native histogram Prometheus must return for dp:
// non-empty buckets only, scales above 8 merged down to 8, OTel bucket
// index i (covering (base^i, base^(i+1)]) becoming Prometheus' i+1.
func expectedNative(dp metricdata.ExponentialHistogramDataPoint[float64]) nativeHistogram {
	scale := dp.Scale
	shift := int32(0)
	if scale > 8 {
		shift, scale = scale-8, 8
	}
	bound := func(i int32) float64 { // upper bound of OTel bucket i-1 = lower bound of i
		if scale == 0 {
			return math.Ldexp(1, int(i))
		}
		return math.Pow(2, float64(i)/float64(int32(1)<<scale))
	}
	merge := func(b metricdata.ExponentialBucket) map[int32]uint64 {
		m := map[int32]uint64{}
		for j, n := range b.Counts {
			if n > 0 {
				m[(b.Offset+int32(j))>>shift] += n
			}
		}
		return m
	}
	h := nativeHistogram{T: dp.Time.UnixMilli(), Count: float64(dp.Count), Sum: dp.Sum}
	for i, n := range merge(dp.PositiveBucket) {
		h.Buckets = append(h.Buckets, nativeBucket{Rule: 0, Lower: bound(i), Upper: bound(i + 1), Count: float64(n)})
	}
	for i, n := range merge(dp.NegativeBucket) {
		h.Buckets = append(h.Buckets, nativeBucket{Rule: 1, Lower: -bound(i + 1), Upper: -bound(i), Count: float64(n)})
	}
	if dp.ZeroCount > 0 {
		h.Buckets = append(h.Buckets, nativeBucket{Rule: 3, Lower: -dp.ZeroThreshold, Upper: dp.ZeroThreshold, Count: float64(dp.ZeroCount)})
	}
	sortBuckets(h.Buckets)
	return h
}

func sortBuckets(bs []nativeBucket) {
	sort.Slice(bs, func(i, j int) bool { return bs[i].Lower < bs[j].Lower })
}

// compareNative reports differences between stored and sent native
// histograms; bucket bounds may differ in the last bit (see nearlyEqual).
func compareNative(t *testing.T, backend string, got, want map[string][]nativeHistogram) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing native histogram %s", backend, k)
			continue
		}
		if !nativeEqual(g, w) {
			t.Errorf("%s: native histogram %s:\n\tgot  %+v\n\twant %+v", backend, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected native histogram %s: %+v", backend, k, g)
		}
	}
}

func nativeEqual(got, want []nativeHistogram) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.T != w.T || g.Count != w.Count || g.Sum != w.Sum || len(g.Buckets) != len(w.Buckets) {
			return false
		}
		gb := append([]nativeBucket(nil), g.Buckets...)
		sortBuckets(gb)
		for j := range gb {
			a, b := gb[j], w.Buckets[j]
			if a.Rule != b.Rule || a.Count != b.Count || !nearlyEqual(a.Lower, b.Lower) || !nearlyEqual(a.Upper, b.Upper) {
				return false
			}
		}
	}
	return true
}

func textScenario(c *clock) scenarioData {
	ts := c.next()
	set := attribute.NewSet(
		attribute.String("quote", `she said "hi" and left \o/ 'bye'`),
		attribute.String("unicode", "ünïcødé ✓ 日本語 🚀"),
		attribute.String("http.request.method", "GET"),
		attribute.String("multi.line", "first\nsecond\ttabbed"),
		attribute.Int("int.attr", -42),
		attribute.Bool("bool.attr", true),
	)
	w := wantSeries{}
	w.add(seriesLabels("e2e_text_labels",
		"quote", `she said "hi" and left \o/ 'bye'`,
		"unicode", "ünïcødé ✓ 日本語 🚀",
		"http_request_method", "GET",
		"multi_line", "first\nsecond\ttabbed",
		"int_attr", "-42",
		"bool_attr", "true",
	), ts, 1)
	rm := resourceMetrics(metricdata.Metrics{Name: "e2e.text.labels", Data: metricdata.Gauge[int64]{
		DataPoints: []metricdata.DataPoint[int64]{{Attributes: set, Time: ts, Value: 1}},
	}})
	return scenarioData{exports: []*metricdata.ResourceMetrics{rm}, want: w}
}

// manySeries is how many attribute sets the big export carries.
const manySeries = 10_000

func manySeriesScenario(c *clock) scenarioData {
	ts := c.next()
	w := wantSeries{}
	dps := make([]metricdata.DataPoint[float64], 0, manySeries)
	for i := range manySeries {
		id := fmt.Sprintf("%05d", i)
		v := float64(i - manySeries/2)
		dps = append(dps, metricdata.DataPoint[float64]{Attributes: attrs("id", id, "shard", strconv.Itoa(i%7)), Time: ts, Value: v})
		w.add(seriesLabels("e2e_many_series", "id", id, "shard", strconv.Itoa(i%7)), ts, v)
	}
	rm := resourceMetrics(metricdata.Metrics{Name: "e2e.many.series", Data: metricdata.Gauge[float64]{DataPoints: dps}})
	return scenarioData{exports: []*metricdata.ResourceMetrics{rm}, want: w}
}
