package prwmetric

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// TestSteadyStateAllocations checks that converting and encoding an export
// whose series are cached allocates nothing, whatever the number of series.
func TestSteadyStateAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts: skipped with -short")
	}
	for _, sets := range []int{10, 200} {
		rm, series := benchData(benchW, sets, time.UnixMilli(1_700_000_000_000))
		c, _ := convConverter(t)
		sc := newSeriesCache(c, true)
		var b batch
		buf := make([]byte, 0, 4<<20)
		var cuts []cut
		export := func() {
			b.reset()
			if err := sc.convert(rm, &b, 0); err != nil {
				t.Fatal(err)
			}
			cuts = b.cut(0, defaultMaxSeriesPerRequest, defaultMaxRequestBytes, cuts)
			for _, c := range cuts {
				buf = b.encode(buf[:0], c)
			}
			sc.markDelivered(&b, b.allRecords())
		}
		export()
		if allocs := testing.AllocsPerRun(5, export); allocs != 0 {
			t.Errorf("%d series: %v allocations per export, want 0", series, allocs)
		}
	}
}

// The conversion tests compare whole write requests: every series with its
// labels in wire order, samples, exemplars and native histograms, and the
// metadata. Test helpers here are prefixed "conv" to keep clear of the
// package's other test files.

var (
	convStart = time.Unix(1700000000, 0).UTC()
	// convTime has sub-millisecond digits so that millisecond truncation
	// shows.
	convTime = time.Unix(1700000060, 123456789).UTC()
	// convLater is a second, newer data point time.
	convLater = time.Unix(1700000065, 999999999).UTC()
)

const (
	convMillis      int64 = 1700000060123
	convLaterMillis int64 = 1700000065999
)

// convScope is the instrumentation scope of most test data; convScopeLabels
// are its labels.
var convScope = instrumentation.Scope{
	Name:       "shop/cart",
	Version:    "v1.2.3",
	SchemaURL:  "https://opentelemetry.io/schemas/1.37.0",
	Attributes: attribute.NewSet(attribute.String("lib.kind", "sdk")),
}

var convScopeLabels = []string{
	"otel_scope_name", "shop/cart",
	"otel_scope_version", "v1.2.3",
	"otel_scope_schema_url", "https://opentelemetry.io/schemas/1.37.0",
	"otel_scope_lib_kind", "sdk",
}

func convResource() *resource.Resource {
	return resource.NewSchemaless(
		attribute.String("service.name", "checkout"),
		attribute.String("service.namespace", "shop"),
		attribute.String("service.instance.id", "pod-1"),
		attribute.String("host.name", "node-7"),
		attribute.Int("k8s.pod.restarts", 2),
	)
}

// convIdentity is job and instance of convResource.
var convIdentity = []string{"job", "shop/checkout", "instance", "pod-1"}

// convLabels builds a label set from name, value pairs (several slices are
// concatenated) and sorts it by name, the order the wire must have.
func convLabels(pairs ...[]string) []prompb.Label {
	var out []prompb.Label
	for _, p := range pairs {
		for i := 0; i+1 < len(p); i += 2 {
			out = append(out, prompb.Label{Name: p[i], Value: p[i+1]})
		}
	}
	slices.SortFunc(out, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func convL(pairs ...string) []string { return pairs }

// convSeries is a series with one sample.
func convSeries(v float64, ms int64, labels ...[]string) prompb.TimeSeries {
	return prompb.TimeSeries{Labels: convLabels(labels...), Samples: []prompb.Sample{{Value: v, Timestamp: ms}}}
}

// convStd is a series of convRM's data: scope labels and job/instance.
func convStd(name string, v float64, extra ...string) prompb.TimeSeries {
	return convSeries(v, convMillis, convL("__name__", name), extra, convScopeLabels, convIdentity)
}

// convTargetInfo is the target_info of convResource at time ms.
func convTargetInfo(ms int64, extra ...string) prompb.TimeSeries {
	return convSeries(1, ms, convL("__name__", "target_info", "host_name", "node-7", "k8s_pod_restarts", "2"), convIdentity, extra)
}

func convMeta(typ prompb.MetricMetadata_MetricType, family, help, unit string) prompb.MetricMetadata {
	return prompb.MetricMetadata{Type: typ, MetricFamilyName: family, Help: help, Unit: unit}
}

var convTargetInfoMeta = convMeta(prompb.MetricMetadata_GAUGE, "target_info", "Target metadata", "")

// convRM wraps metrics in convResource and convScope.
func convRM(metrics ...metricdata.Metrics) *metricdata.ResourceMetrics {
	return &metricdata.ResourceMetrics{
		Resource:     convResource(),
		ScopeMetrics: []metricdata.ScopeMetrics{{Scope: convScope, Metrics: metrics}},
	}
}

func convAttrs(kvs ...attribute.KeyValue) attribute.Set { return attribute.NewSet(kvs...) }

// convConverter builds a rules through the real options.
func convConverter(t testing.TB, opts ...Option) (*rules, *logCapture) {
	t.Helper()
	logger, logs := newLogCapture()
	all := append([]Option{WithEndpoint("http://127.0.0.1:9/api/v1/write"), WithLogger(logger)}, opts...)
	cfg, err := newConfig(all)
	if err != nil {
		t.Fatalf("newConfig: %v", err)
	}
	c, err := newRules(cfg)
	if err != nil {
		t.Fatalf("newRules: %v", err)
	}
	return c, logs
}

// convCmpOpts compare floats by their bits, so a stale-marker NaN never
// passes for an ordinary one.
var convCmpOpts = cmp.Options{
	cmpopts.IgnoreUnexported(prompb.WriteRequest{}, prompb.TimeSeries{}, prompb.Label{}, prompb.Sample{},
		prompb.Exemplar{}, prompb.Histogram{}, prompb.BucketSpan{}, prompb.MetricMetadata{}),
	cmpopts.IgnoreFields(prompb.WriteRequest{}, "XXX_NoUnkeyedLiteral"),
	cmpopts.IgnoreFields(prompb.TimeSeries{}, "XXX_NoUnkeyedLiteral"),
	cmpopts.IgnoreFields(prompb.Label{}, "XXX_NoUnkeyedLiteral"),
	cmpopts.IgnoreFields(prompb.Sample{}, "XXX_NoUnkeyedLiteral"),
	cmpopts.IgnoreFields(prompb.Exemplar{}, "XXX_NoUnkeyedLiteral"),
	cmpopts.IgnoreFields(prompb.Histogram{}, "XXX_NoUnkeyedLiteral"),
	cmpopts.IgnoreFields(prompb.BucketSpan{}, "XXX_NoUnkeyedLiteral"),
	cmpopts.IgnoreFields(prompb.MetricMetadata{}, "XXX_NoUnkeyedLiteral"),
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }),
}

// Wire rules of SPEC §1, checked on every request the tests produce.
var (
	convMetricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	convLabelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// convCheckWire fails t for every way req breaks SPEC §1 or §3: label sets
// sorted, unique, with valid non-reserved names and non-empty UTF-8 values;
// a valid metric name; samples xor native histograms; valid native
// histograms; no stale-marker NaN; exemplar labels within 128 runes; no series
// twice; and a marshal/unmarshal round trip that preserves every byte.
// convCheckWire checks the wire rules; utf8Names allows the UTF-8 names of
// 2.0 translation strategies.
func convCheckWire(t testing.TB, req *prompb.WriteRequest, utf8Names bool) {
	convCheckWireDunder(t, req, utf8Names, false)
}

// convCheckWireDunder is convCheckWire allowing label names starting with
// "__" when dunder is set (the OTLP paths' profiles keep such attributes).
func convCheckWireDunder(t testing.TB, req *prompb.WriteRequest, utf8Names, dunder bool) {
	t.Helper()
	seen := map[string]bool{}
	for i, ts := range req.Timeseries {
		key := seriesString(ts.Labels)
		if seen[key] {
			t.Errorf("series %d %s: sent twice", i, key)
		}
		seen[key] = true
		convCheckLabels(t, key, ts.Labels, true, utf8Names, dunder)
		if (len(ts.Samples) == 0) == (len(ts.Histograms) == 0) {
			t.Errorf("series %s: %d samples and %d histograms, want exactly one kind", key, len(ts.Samples), len(ts.Histograms))
		}
		for _, s := range ts.Samples {
			if math.Float64bits(s.Value) == 0x7ff0000000000002 {
				t.Errorf("series %s: sample carries the stale marker", key)
			}
		}
		for _, h := range ts.Histograms {
			if (h.Schema < -4 || h.Schema > 8) && h.Schema != customBucketsSchema {
				t.Errorf("series %s: schema %d", key, h.Schema)
			}
			if h.IsFloatHistogram() {
				t.Errorf("series %s: float histogram, want integer counts", key)
			}
			if err := h.ToIntHistogram().Validate(); err != nil {
				t.Errorf("series %s: Prometheus refuses the native histogram: %v", key, err)
			}
			if math.Float64bits(h.Sum) == 0x7ff0000000000002 {
				t.Errorf("series %s: histogram sum carries the stale marker", key)
			}
			if h.ResetHint != prompb.Histogram_UNKNOWN {
				t.Errorf("series %s: reset hint %v", key, h.ResetHint)
			}
		}
		for _, e := range ts.Exemplars {
			convCheckLabels(t, key+" exemplar", e.Labels, false, utf8Names, false)
			if n := labelRunes(e.Labels); n > 128 {
				t.Errorf("series %s: exemplar labels have %d runes, limit 128", key, n)
			}
			if math.Float64bits(e.Value) == 0x7ff0000000000002 {
				t.Errorf("series %s: exemplar carries the stale marker", key)
			}
		}
	}
	for _, md := range req.Metadata {
		if !convMetricNameRE.MatchString(md.MetricFamilyName) && !(utf8Names && utf8.ValidString(md.MetricFamilyName) && md.MetricFamilyName != "") {
			t.Errorf("metadata family %q: invalid name", md.MetricFamilyName)
		}
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var back prompb.WriteRequest
	if err := back.Unmarshal(raw); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	again, err := back.Marshal()
	if err != nil {
		t.Fatalf("Marshal after Unmarshal: %v", err)
	}
	if string(raw) != string(again) {
		t.Errorf("request does not round-trip through protobuf")
	}
	if diff := cmp.Diff(req, &back, convCmpOpts); diff != "" {
		t.Errorf("decoded request differs (-sent +decoded):\n%s", diff)
	}
}

func convCheckLabels(t testing.TB, key string, labels []prompb.Label, series, utf8Names, dunder bool) {
	t.Helper()
	hasName := false
	for i, l := range labels {
		if i > 0 && labels[i-1].Name >= l.Name {
			t.Errorf("%s: labels not sorted and unique at %q", key, l.Name)
		}
		if l.Value == "" {
			t.Errorf("%s: label %q has an empty value", key, l.Name)
		}
		if !utf8.ValidString(l.Value) {
			t.Errorf("%s: label %q: value is not UTF-8", key, l.Name)
		}
		switch {
		case l.Name == "__name__" && series:
			hasName = true
			if !convMetricNameRE.MatchString(l.Value) && !(utf8Names && utf8.ValidString(l.Value)) {
				t.Errorf("%s: invalid metric name %q", key, l.Value)
			}
		case (l.Name == "__type__" || l.Name == "__unit__") && series && l.Value != "":
			// WithTypeAndUnitLabels: Prometheus' own metadata labels.
		case !convLabelNameRE.MatchString(l.Name) && !(utf8Names && utf8.ValidString(l.Name) && l.Name != ""), strings.HasPrefix(l.Name, "__") && !dunder:
			t.Errorf("%s: invalid or reserved label name %q", key, l.Name)
		}
	}
	if series && !hasName {
		t.Errorf("%s: no __name__", key)
	}
}

// convRun converts rm and checks the wire rules, and that the exporter's
// cached conversion sends the same (cacheCheck).
func convRun(t testing.TB, c *rules, rm *metricdata.ResourceMetrics) (*prompb.WriteRequest, error) {
	t.Helper()
	logs := c.logger.Handler().(*logCapture)
	before := len(logs.lines())
	req, err := c.reference(rm)
	if req == nil {
		t.Fatalf("convert returned a nil request (error %v)", err)
	}
	convCheckWireDunder(t, req, c.labelNamer.UTF8Allowed, c.otlpLabels)
	cacheCheck(t, c, rm, req, err, logs.lines()[before:])
	return req, err
}

func convSum[N int64 | float64](monotonic bool, dps ...metricdata.DataPoint[N]) metricdata.Sum[N] {
	return metricdata.Sum[N]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: monotonic, DataPoints: dps}
}

func convPoint[N int64 | float64](v N, kvs ...attribute.KeyValue) metricdata.DataPoint[N] {
	return metricdata.DataPoint[N]{Attributes: convAttrs(kvs...), StartTime: convStart, Time: convTime, Value: v}
}

func convHist[N int64 | float64](dps ...metricdata.HistogramDataPoint[N]) metricdata.Histogram[N] {
	return metricdata.Histogram[N]{Temporality: metricdata.CumulativeTemporality, DataPoints: dps}
}

func convHistPoint[N int64 | float64](sum N, bounds []float64, counts []uint64, kvs ...attribute.KeyValue) metricdata.HistogramDataPoint[N] {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return metricdata.HistogramDataPoint[N]{
		Attributes: convAttrs(kvs...), StartTime: convStart, Time: convTime,
		Count: n, Bounds: bounds, BucketCounts: counts, Sum: sum,
	}
}

func convExpHist[N int64 | float64](dps ...metricdata.ExponentialHistogramDataPoint[N]) metricdata.ExponentialHistogram[N] {
	return metricdata.ExponentialHistogram[N]{Temporality: metricdata.CumulativeTemporality, DataPoints: dps}
}

// convExpPoint is a consistent exponential data point: its count is the sum
// of its buckets.
func convExpPoint[N int64 | float64](scale int32, zero uint64, pos, neg metricdata.ExponentialBucket, sum N) metricdata.ExponentialHistogramDataPoint[N] {
	n := zero
	for _, c := range pos.Counts {
		n += c
	}
	for _, c := range neg.Counts {
		n += c
	}
	return metricdata.ExponentialHistogramDataPoint[N]{
		StartTime: convStart, Time: convTime, Count: n, Sum: sum, Scale: scale,
		ZeroCount: zero, PositiveBucket: pos, NegativeBucket: neg,
	}
}

func convNative(h prompb.Histogram, labels ...[]string) prompb.TimeSeries {
	return prompb.TimeSeries{Labels: convLabels(labels...), Histograms: []prompb.Histogram{h}}
}

// TestConvertTypes covers every aggregation in its int64 and float64 form.
func TestConvertTypes(t *testing.T) {
	counter, gauge, hist, summary := prompb.MetricMetadata_COUNTER, prompb.MetricMetadata_GAUGE, prompb.MetricMetadata_HISTOGRAM, prompb.MetricMetadata_SUMMARY
	bounds := []float64{0.005, 0.1, 1, 2.5}
	histSeries := func(name string, sum float64) []prompb.TimeSeries {
		return []prompb.TimeSeries{
			convStd(name+"_bucket", 1, "le", "0.005", "route", "/cart"),
			convStd(name+"_bucket", 1, "le", "0.1", "route", "/cart"),
			convStd(name+"_bucket", 4, "le", "1", "route", "/cart"),
			convStd(name+"_bucket", 9, "le", "2.5", "route", "/cart"),
			convStd(name+"_bucket", 10, "le", "+Inf", "route", "/cart"),
			convStd(name+"_sum", sum, "route", "/cart"),
			convStd(name+"_count", 10, "route", "/cart"),
		}
	}
	wantNative := prompb.Histogram{
		Count: &prompb.Histogram_CountInt{CountInt: 8}, Sum: 12.5, Schema: 1, ZeroThreshold: 1e-128,
		ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1},
		// OpenTelemetry indexes -2, 2 and 4 are Prometheus' -1, 3 and
		// 5; the gap of three empty buckets opens a second span, the
		// gap of one stays inside it.
		PositiveSpans:  []prompb.BucketSpan{{Offset: -1, Length: 1}, {Offset: 3, Length: 3}},
		PositiveDeltas: []int64{1, 1, -2, 1},
		NegativeSpans:  []prompb.BucketSpan{{Offset: 1, Length: 1}},
		NegativeDeltas: []int64{3},
		Timestamp:      convMillis,
	}
	expPos := metricdata.ExponentialBucket{Offset: -2, Counts: []uint64{1, 0, 0, 0, 2, 0, 1}}
	expNeg := metricdata.ExponentialBucket{Offset: 0, Counts: []uint64{3}}

	tests := []struct {
		name     string
		give     metricdata.Metrics
		want     []prompb.TimeSeries
		wantMeta []prompb.MetricMetadata
	}{
		{
			name: "int64 monotonic sum is a counter with unit and _total",
			give: metricdata.Metrics{Name: "http.server.request.size", Description: "Request bytes.", Unit: "By",
				Data: convSum(true, convPoint[int64](42, attribute.String("http.request.method", "GET")))},
			want:     []prompb.TimeSeries{convStd("http_server_request_size_bytes_total", 42, "http_request_method", "GET")},
			wantMeta: []prompb.MetricMetadata{convMeta(counter, "http_server_request_size_bytes_total", "Request bytes.", "bytes")},
		},
		{
			name:     "float64 monotonic sum is a counter",
			give:     metricdata.Metrics{Name: "energy", Unit: "J", Data: convSum(true, convPoint(1.5))},
			want:     []prompb.TimeSeries{convStd("energy_joules_total", 1.5)},
			wantMeta: []prompb.MetricMetadata{convMeta(counter, "energy_joules_total", "", "joules")},
		},
		{
			name:     "int64 non-monotonic sum is a gauge without _total",
			give:     metricdata.Metrics{Name: "queue.length", Unit: "{item}", Data: convSum(false, convPoint[int64](-3))},
			want:     []prompb.TimeSeries{convStd("queue_length", -3)},
			wantMeta: []prompb.MetricMetadata{convMeta(gauge, "queue_length", "", "")},
		},
		{
			name:     "float64 non-monotonic sum with unit 1 gets no _ratio",
			give:     metricdata.Metrics{Name: "balance", Unit: "1", Data: convSum(false, convPoint(-0.25))},
			want:     []prompb.TimeSeries{convStd("balance", -0.25)},
			wantMeta: []prompb.MetricMetadata{convMeta(gauge, "balance", "", "")},
		},
		{
			name: "float64 gauge with unit 1 ends in _ratio",
			give: metricdata.Metrics{Name: "cpu.utilization", Unit: "1", Description: "CPU share.",
				Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{convPoint(0.75, attribute.Int("cpu", 3))}}},
			want:     []prompb.TimeSeries{convStd("cpu_utilization_ratio", 0.75, "cpu", "3")},
			wantMeta: []prompb.MetricMetadata{convMeta(gauge, "cpu_utilization_ratio", "CPU share.", "")},
		},
		{
			name: "int64 gauge with two points in input order",
			give: metricdata.Metrics{Name: "temperature", Unit: "Cel",
				Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{
					convPoint[int64](21, attribute.String("room", "lab")),
					convPoint[int64](19, attribute.String("room", "hall")),
				}}},
			want: []prompb.TimeSeries{
				convStd("temperature_celsius", 21, "room", "lab"),
				convStd("temperature_celsius", 19, "room", "hall"),
			},
			wantMeta: []prompb.MetricMetadata{convMeta(gauge, "temperature_celsius", "", "celsius")},
		},
		{
			name: "int64 histogram has cumulative buckets, +Inf, _sum, _count",
			give: metricdata.Metrics{Name: "rpc.duration", Unit: "s", Description: "RPC time.",
				Data: convHist(convHistPoint[int64](17, bounds, []uint64{1, 0, 3, 5, 1}, attribute.String("route", "/cart")))},
			want:     histSeries("rpc_duration_seconds", 17),
			wantMeta: []prompb.MetricMetadata{convMeta(hist, "rpc_duration_seconds", "RPC time.", "seconds")},
		},
		{
			name: "float64 histogram",
			give: metricdata.Metrics{Name: "rpc.duration", Unit: "ms",
				Data: convHist(convHistPoint(12.75, bounds, []uint64{1, 0, 3, 5, 1}, attribute.String("route", "/cart")))},
			want:     histSeries("rpc_duration_milliseconds", 12.75),
			wantMeta: []prompb.MetricMetadata{convMeta(hist, "rpc_duration_milliseconds", "", "milliseconds")},
		},
		{
			name: "histogram points go sorted by labels, bucket by bucket",
			give: metricdata.Metrics{Name: "rpc.duration", Unit: "s",
				Data: convHist(
					convHistPoint[int64](4, []float64{1}, []uint64{2, 1}, attribute.String("route", "/pay")),
					convHistPoint[int64](5, []float64{0.5, 1, 2}, []uint64{1, 0, 3, 1}, attribute.String("route", "/buy")),
				)},
			want: []prompb.TimeSeries{
				convStd("rpc_duration_seconds_bucket", 1, "le", "0.5", "route", "/buy"),
				convStd("rpc_duration_seconds_bucket", 2, "le", "1", "route", "/pay"),
				convStd("rpc_duration_seconds_bucket", 1, "le", "1", "route", "/buy"),
				convStd("rpc_duration_seconds_bucket", 3, "le", "+Inf", "route", "/pay"),
				convStd("rpc_duration_seconds_bucket", 4, "le", "2", "route", "/buy"),
				convStd("rpc_duration_seconds_bucket", 5, "le", "+Inf", "route", "/buy"),
				convStd("rpc_duration_seconds_sum", 5, "route", "/buy"),
				convStd("rpc_duration_seconds_sum", 4, "route", "/pay"),
				convStd("rpc_duration_seconds_count", 5, "route", "/buy"),
				convStd("rpc_duration_seconds_count", 3, "route", "/pay"),
			},
			wantMeta: []prompb.MetricMetadata{convMeta(hist, "rpc_duration_seconds", "", "seconds")},
		},
		{
			name: "histogram without bounds has only +Inf",
			give: metricdata.Metrics{Name: "sizes", Data: convHist(convHistPoint[int64](9, nil, []uint64{3}))},
			want: []prompb.TimeSeries{
				convStd("sizes_bucket", 3, "le", "+Inf"),
				convStd("sizes_sum", 9),
				convStd("sizes_count", 3),
			},
			wantMeta: []prompb.MetricMetadata{convMeta(hist, "sizes", "", "")},
		},
		{
			name: "histogram without bounds or bucket counts has its count in +Inf",
			give: metricdata.Metrics{Name: "sizes", Data: convHist(func() metricdata.HistogramDataPoint[int64] {
				p := convHistPoint[int64](9, nil, nil)
				p.Count = 3
				return p
			}())},
			want: []prompb.TimeSeries{
				convStd("sizes_bucket", 3, "le", "+Inf"),
				convStd("sizes_sum", 9),
				convStd("sizes_count", 3),
			},
			wantMeta: []prompb.MetricMetadata{convMeta(hist, "sizes", "", "")},
		},
		{
			name: "histogram bounds are shortest decimals without exponent",
			give: metricdata.Metrics{Name: "sizes", Data: convHist(convHistPoint[float64](0, []float64{-1, 1e-7, 1e6}, []uint64{0, 0, 0, 0}))},
			want: []prompb.TimeSeries{
				convStd("sizes_bucket", 0, "le", "-1"),
				convStd("sizes_bucket", 0, "le", "0.0000001"),
				convStd("sizes_bucket", 0, "le", "1000000"),
				convStd("sizes_bucket", 0, "le", "+Inf"),
				convStd("sizes_sum", 0),
				convStd("sizes_count", 0),
			},
			wantMeta: []prompb.MetricMetadata{convMeta(hist, "sizes", "", "")},
		},
		{
			name: "float64 exponential histogram is a native histogram",
			give: metricdata.Metrics{Name: "latency", Unit: "s",
				Data: convExpHist(convExpPoint(1, 1, expPos, expNeg, 12.5))},
			want:     []prompb.TimeSeries{convNative(wantNative, convL("__name__", "latency_seconds"), convScopeLabels, convIdentity)},
			wantMeta: []prompb.MetricMetadata{convMeta(hist, "latency_seconds", "", "seconds")},
		},
		{
			name: "int64 exponential histogram",
			give: metricdata.Metrics{Name: "latency", Unit: "s",
				Data: convExpHist(convExpPoint[int64](1, 1, expPos, expNeg, 12))},
			want: []prompb.TimeSeries{convNative(func() prompb.Histogram { h := wantNative; h.Sum = 12; return h }(),
				convL("__name__", "latency_seconds"), convScopeLabels, convIdentity)},
			wantMeta: []prompb.MetricMetadata{convMeta(hist, "latency_seconds", "", "seconds")},
		},
		{
			name: "summary has quantiles, _sum and _count",
			give: metricdata.Metrics{Name: "gc.pause", Unit: "s", Description: "GC pauses.",
				Data: metricdata.Summary{DataPoints: []metricdata.SummaryDataPoint{{
					Attributes: convAttrs(attribute.String("gen", "young")), StartTime: convStart, Time: convTime,
					Count: 7, Sum: 0.5,
					QuantileValues: []metricdata.QuantileValue{{Quantile: 0, Value: 0.01}, {Quantile: 0.5, Value: 0.05}, {Quantile: 0.99, Value: 0.2}, {Quantile: 1, Value: 0.3}},
				}}}},
			want: []prompb.TimeSeries{
				convStd("gc_pause_seconds", 0.01, "gen", "young", "quantile", "0"),
				convStd("gc_pause_seconds", 0.05, "gen", "young", "quantile", "0.5"),
				convStd("gc_pause_seconds", 0.2, "gen", "young", "quantile", "0.99"),
				convStd("gc_pause_seconds", 0.3, "gen", "young", "quantile", "1"),
				convStd("gc_pause_seconds_sum", 0.5, "gen", "young"),
				convStd("gc_pause_seconds_count", 7, "gen", "young"),
			},
			wantMeta: []prompb.MetricMetadata{convMeta(summary, "gc_pause_seconds", "GC pauses.", "seconds")},
		},
		{
			name:     "metric without data points sends nothing",
			give:     metricdata.Metrics{Name: "idle", Data: convSum[int64](true)},
			want:     nil,
			wantMeta: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, logs := convConverter(t)
			got, err := convRun(t, c, convRM(tt.give))
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			want := &prompb.WriteRequest{Timeseries: tt.want, Metadata: tt.wantMeta}
			if len(tt.want) > 0 {
				want.Timeseries = append(slices.Clone(tt.want), convTargetInfo(convMillis))
				want.Metadata = append(slices.Clone(tt.wantMeta), convTargetInfoMeta)
			}
			if diff := cmp.Diff(want, got, convCmpOpts); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if l := logs.lines(); len(l) > 0 {
				t.Errorf("unexpected log records: %q", l)
			}
		})
	}
}

// TestConvertResource covers job, instance and target_info.
func TestConvertResource(t *testing.T) {
	gauge := metricdata.Metrics{Name: "up", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1)}}}
	tests := []struct {
		name string
		give *resource.Resource
		want []prompb.TimeSeries
	}{
		{
			name: "namespace/name is job, instance id is instance, the rest is target_info",
			give: convResource(),
			want: []prompb.TimeSeries{convStd("up", 1), convTargetInfo(convMillis)},
		},
		{
			name: "service name alone is job",
			give: resource.NewSchemaless(attribute.String("service.name", "checkout"), attribute.String("host.name", "node-7")),
			want: []prompb.TimeSeries{
				convSeries(1, convMillis, convL("__name__", "up", "job", "checkout"), convScopeLabels),
				convSeries(1, convMillis, convL("__name__", "target_info", "job", "checkout", "host_name", "node-7")),
			},
		},
		{
			name: "namespace without service name gives no job",
			give: resource.NewSchemaless(attribute.String("service.namespace", "shop"), attribute.String("service.instance.id", "pod-1")),
			want: []prompb.TimeSeries{convSeries(1, convMillis, convL("__name__", "up", "instance", "pod-1"), convScopeLabels)},
		},
		{
			name: "nil resource: no job, instance or target_info",
			give: nil,
			want: []prompb.TimeSeries{convSeries(1, convMillis, convL("__name__", "up"), convScopeLabels)},
		},
		{
			name: "resource attributes are labels of target_info only, translated and joined on collision",
			give: resource.NewSchemaless(attribute.String("service.name", "checkout"), attribute.String("a.b", "1"), attribute.String("a_b", "2"), attribute.String("empty", "")),
			want: []prompb.TimeSeries{
				convSeries(1, convMillis, convL("__name__", "up", "job", "checkout"), convScopeLabels),
				convSeries(1, convMillis, convL("__name__", "target_info", "job", "checkout", "a_b", "1;2")),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := convConverter(t, WithoutMetadata())
			rm := convRM(gauge)
			rm.Resource = tt.give
			got, err := convRun(t, c, rm)
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			if diff := cmp.Diff(tt.want, got.Timeseries, convCmpOpts); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConvertTargetInfoTime checks that target_info carries the newest
// sample time of the request and is sent only with other series.
func TestConvertTargetInfoTime(t *testing.T) {
	c, _ := convConverter(t, WithoutMetadata(), WithoutScopeInfo())
	later := convPoint[int64](2)
	later.Time = convLater
	rm := convRM(
		metricdata.Metrics{Name: "a", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{later}}},
		metricdata.Metrics{Name: "b", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1)}}},
	)
	got, err := convRun(t, c, rm)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	want := []prompb.TimeSeries{
		convSeries(2, convLaterMillis, convL("__name__", "a"), convIdentity),
		convSeries(1, convMillis, convL("__name__", "b"), convIdentity),
		convTargetInfo(convLaterMillis),
	}
	if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}

	empty, err := convRun(t, c, convRM())
	if err != nil || len(empty.Timeseries) != 0 || len(empty.Metadata) != 0 {
		t.Errorf("no metrics: got %d series, %d metadata, error %v; want an empty request", len(empty.Timeseries), len(empty.Metadata), err)
	}
}

// TestConvertOptions covers the conversion options one by one.
func TestConvertOptions(t *testing.T) {
	counter := metricdata.Metrics{Name: "http.requests", Unit: "{request}", Description: "Requests.",
		Data: convSum(true, convPoint[int64](5, attribute.String("method", "GET")))}
	gaugeRatio := metricdata.Metrics{Name: "cpu.utilization", Unit: "1",
		Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{convPoint(0.5)}}}
	histPoint := convHistPoint[float64](3, []float64{1}, []uint64{1, 1})
	histPoint.Min, histPoint.Max = metricdata.NewExtrema(0.5), metricdata.NewExtrema(2.5)
	histogram := metricdata.Metrics{Name: "rpc.duration", Unit: "s", Data: convHist(histPoint)}
	buyPoint := convHistPoint[float64](4, []float64{1}, []uint64{0, 1}, attribute.String("route", "/buy"))
	buyPoint.Min, buyPoint.Max = metricdata.NewExtrema(4.0), metricdata.NewExtrema(4.0)
	// twoPoints has its points out of order: the point with fewer labels
	// goes first.
	twoPoints := metricdata.Metrics{Name: "rpc.duration", Unit: "s", Data: convHist(buyPoint, histPoint)}
	noMinMax := metricdata.Metrics{Name: "rpc.size", Unit: "By", Data: convHist(convHistPoint[int64](3, nil, []uint64{2}))}

	std := func(name string, v float64, extra ...string) prompb.TimeSeries {
		return convSeries(v, convMillis, convL("__name__", name), extra, convScopeLabels, convIdentity)
	}
	tests := []struct {
		name     string
		opts     []Option
		give     []metricdata.Metrics
		want     []prompb.TimeSeries
		wantMeta []prompb.MetricMetadata
	}{
		{
			name: "WithNamespace prefixes metric names but not target_info",
			opts: []Option{WithNamespace("my.app")},
			give: []metricdata.Metrics{counter, gaugeRatio},
			want: []prompb.TimeSeries{
				std("my_app_http_requests_total", 5, "method", "GET"),
				std("my_app_cpu_utilization_ratio", 0.5),
				convTargetInfo(convMillis),
			},
			wantMeta: []prompb.MetricMetadata{
				convMeta(prompb.MetricMetadata_COUNTER, "my_app_http_requests_total", "Requests.", ""),
				convMeta(prompb.MetricMetadata_GAUGE, "my_app_cpu_utilization_ratio", "", ""),
				convTargetInfoMeta,
			},
		},
		{
			name: "WithoutNativeHistograms sends exponential histograms as classic ones",
			opts: []Option{WithoutNativeHistograms(), WithoutTargetInfo()},
			give: []metricdata.Metrics{{Name: "latency", Unit: "s", Data: convExpHist(convExpPoint(0, 1,
				metricdata.ExponentialBucket{Offset: 0, Counts: []uint64{1, 2}}, metricdata.ExponentialBucket{Offset: 1, Counts: []uint64{3}}, 10.5))}},
			want: []prompb.TimeSeries{
				std("latency_seconds_bucket", 3, "le", "-2"),
				std("latency_seconds_bucket", 4, "le", "0"),
				std("latency_seconds_bucket", 5, "le", "2"),
				std("latency_seconds_bucket", 7, "le", "4"),
				std("latency_seconds_bucket", 7, "le", "+Inf"),
				std("latency_seconds_sum", 10.5),
				std("latency_seconds_count", 7),
			},
			wantMeta: []prompb.MetricMetadata{convMeta(prompb.MetricMetadata_HISTOGRAM, "latency_seconds", "", "seconds")},
		},
		{
			name: "WithTranslationStrategy without suffixes drops _total, units and _ratio",
			opts: []Option{WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes), WithoutTargetInfo()},
			give: []metricdata.Metrics{counter, gaugeRatio, histogram},
			want: []prompb.TimeSeries{
				std("http_requests", 5, "method", "GET"),
				std("cpu_utilization", 0.5),
				std("rpc_duration_bucket", 1, "le", "1"),
				std("rpc_duration_bucket", 2, "le", "+Inf"),
				std("rpc_duration_sum", 3),
				std("rpc_duration_count", 2),
			},
			wantMeta: []prompb.MetricMetadata{
				convMeta(prompb.MetricMetadata_COUNTER, "http_requests", "Requests.", ""),
				convMeta(prompb.MetricMetadata_GAUGE, "cpu_utilization", "", ""),
				convMeta(prompb.MetricMetadata_HISTOGRAM, "rpc_duration", "", "seconds"),
			},
		},
		{
			name: "WithoutScopeInfo and WithoutTargetInfo and WithoutMetadata",
			opts: []Option{WithoutScopeInfo(), WithoutTargetInfo(), WithoutMetadata()},
			give: []metricdata.Metrics{counter},
			want: []prompb.TimeSeries{convSeries(5, convMillis, convL("__name__", "http_requests_total", "method", "GET"), convIdentity)},
		},
		{
			name: "WithResourceAsLabels copies the filtered resource attributes; attributes win",
			opts: []Option{WithoutTargetInfo(), WithoutMetadata(), WithResourceAsLabels(func(kv attribute.KeyValue) bool { return kv.Key != "k8s.pod.restarts" })},
			give: []metricdata.Metrics{
				counter,
				{Name: "hosts", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1, attribute.String("host.name", "other"))}}},
			},
			want: []prompb.TimeSeries{
				std("http_requests_total", 5, "method", "GET", "host_name", "node-7", "service_name", "checkout", "service_namespace", "shop", "service_instance_id", "pod-1"),
				std("hosts", 1, "host_name", "other", "service_name", "checkout", "service_namespace", "shop", "service_instance_id", "pod-1"),
			},
		},
		{
			name: "WithResourceAsLabels(nil) copies all",
			opts: []Option{WithoutScopeInfo(), WithoutTargetInfo(), WithoutMetadata(), WithResourceAsLabels(nil)},
			give: []metricdata.Metrics{counter},
			want: []prompb.TimeSeries{convSeries(5, convMillis, convL("__name__", "http_requests_total", "method", "GET",
				"host_name", "node-7", "k8s_pod_restarts", "2", "service_name", "checkout", "service_namespace", "shop", "service_instance_id", "pod-1"), convIdentity)},
		},
		{
			name: "WithExternalLabels is on every series, target_info included, and wins",
			opts: []Option{WithoutMetadata(), WithoutScopeInfo(), WithExternalLabels(map[string]string{"cluster": "eu-1", "method": "ANY", "job": "pinned"})},
			give: []metricdata.Metrics{counter},
			want: []prompb.TimeSeries{
				convSeries(5, convMillis, convL("__name__", "http_requests_total", "method", "ANY", "cluster", "eu-1", "job", "pinned", "instance", "pod-1")),
				convSeries(1, convMillis, convL("__name__", "target_info", "host_name", "node-7", "k8s_pod_restarts", "2", "cluster", "eu-1", "method", "ANY", "job", "pinned", "instance", "pod-1")),
			},
		},
		{
			name: "WithHistogramMinMax adds _min and _max gauges where recorded",
			opts: []Option{WithHistogramMinMax(), WithoutTargetInfo()},
			give: []metricdata.Metrics{twoPoints, noMinMax},
			want: []prompb.TimeSeries{
				std("rpc_duration_seconds_bucket", 1, "le", "1"),
				std("rpc_duration_seconds_bucket", 0, "le", "1", "route", "/buy"),
				std("rpc_duration_seconds_bucket", 2, "le", "+Inf"),
				std("rpc_duration_seconds_bucket", 1, "le", "+Inf", "route", "/buy"),
				std("rpc_duration_seconds_sum", 3),
				std("rpc_duration_seconds_sum", 4, "route", "/buy"),
				std("rpc_duration_seconds_count", 2),
				std("rpc_duration_seconds_count", 1, "route", "/buy"),
				std("rpc_duration_seconds_min", 0.5),
				std("rpc_duration_seconds_min", 4, "route", "/buy"),
				std("rpc_duration_seconds_max", 2.5),
				std("rpc_duration_seconds_max", 4, "route", "/buy"),
				std("rpc_size_bytes_bucket", 2, "le", "+Inf"),
				std("rpc_size_bytes_sum", 3),
				std("rpc_size_bytes_count", 2),
			},
			wantMeta: []prompb.MetricMetadata{
				convMeta(prompb.MetricMetadata_HISTOGRAM, "rpc_duration_seconds", "", "seconds"),
				convMeta(prompb.MetricMetadata_GAUGE, "rpc_duration_seconds_min", "", "seconds"),
				convMeta(prompb.MetricMetadata_GAUGE, "rpc_duration_seconds_max", "", "seconds"),
				convMeta(prompb.MetricMetadata_HISTOGRAM, "rpc_size_bytes", "", "bytes"),
			},
		},
		{
			name: "min and max are not sent by default",
			opts: []Option{WithoutTargetInfo(), WithoutMetadata()},
			give: []metricdata.Metrics{histogram},
			want: []prompb.TimeSeries{
				std("rpc_duration_seconds_bucket", 1, "le", "1"),
				std("rpc_duration_seconds_bucket", 2, "le", "+Inf"),
				std("rpc_duration_seconds_sum", 3),
				std("rpc_duration_seconds_count", 2),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := convConverter(t, tt.opts...)
			got, err := convRun(t, c, convRM(tt.give...))
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			want := &prompb.WriteRequest{Timeseries: tt.want, Metadata: tt.wantMeta}
			if diff := cmp.Diff(want, got, convCmpOpts); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConvertNamespaceInvalid checks that a namespace that cannot become a
// name fails New, as it does in the pull exporter.
func TestConvertNamespaceInvalid(t *testing.T) {
	_, err := New(WithEndpoint("http://127.0.0.1:9/api/v1/write"), WithNamespace("..."))
	if err == nil || !strings.Contains(err.Error(), "WithNamespace") {
		t.Fatalf("New(WithNamespace(\"...\")) error = %v, want one naming WithNamespace", err)
	}
}

// TestConvertLabels covers attribute values of every type and the label
// rules: translation, collisions, empty values, precedence.
func TestConvertLabels(t *testing.T) {
	tests := []struct {
		name      string
		give      []attribute.KeyValue
		want      []string
		wantError string
	}{
		{
			name: "values of every type as text, slices as JSON",
			give: []attribute.KeyValue{
				attribute.Bool("b", true), attribute.Int64("i", -7), attribute.Float64("f", 0.1),
				attribute.Float64("big", 1e21), attribute.String("s", "x y"),
				attribute.BoolSlice("bs", []bool{true, false}), attribute.Int64Slice("is", []int64{1, 2}),
				attribute.Float64Slice("fs", []float64{1.5, math.Inf(1)}), attribute.StringSlice("ss", []string{"a", `q"`}),
			},
			want: []string{"b", "true", "i", "-7", "f", "0.1", "big", "1e+21", "s", "x y",
				"bs", "[true,false]", "is", "[1,2]", "fs", `[1.5,"Infinity"]`, "ss", `["a","q\""]`},
		},
		{
			name: "names are translated; colliding ones are joined by original key order",
			give: []attribute.KeyValue{
				attribute.String("http.method", "GET"), attribute.String("http_method", "get"), attribute.String("http/method", "Get"),
				attribute.String("0day", "x"), attribute.String("Üner", "y"),
			},
			// Key order: "http.method" < "http/method" < "http_method".
			want: []string{"http_method", "GET;Get;get", "key_0day", "x", "_ner", "y"},
		},
		{
			name: "empty values are dropped, also inside collisions",
			give: []attribute.KeyValue{attribute.String("a", ""), attribute.String("b.c", ""), attribute.String("b_c", "z")},
			want: []string{"b_c", "z"},
		},
		{
			name: "invalid UTF-8 in values is replaced",
			give: []attribute.KeyValue{attribute.String("v", "a\xffb")},
			want: []string{"v", "a\uFFFDb"},
		},
		{
			name: "upper-case names sort before __name__",
			give: []attribute.KeyValue{attribute.String("Zone", "z1"), attribute.String("az", "1")},
			want: []string{"Zone", "z1", "az", "1"},
		},
		{
			name:      "attributes that cannot be label names are dropped and reported",
			give:      []attribute.KeyValue{attribute.String("...", "x"), attribute.String("__name__", "evil"), attribute.String("ok", "1")},
			want:      []string{"ok", "1"},
			wantError: `metric "m": attribute "...": normalization for label name "..." resulted in invalid name "_"; attribute "__name__": label name "__name__" is reserved for Prometheus`,
		},
		{
			name:      "scope labels, job and instance win over attributes; job and instance say so",
			give:      []attribute.KeyValue{attribute.String("job", "mine"), attribute.String("otel.scope.name", "mine"), attribute.String("instance", "mine")},
			want:      nil,
			wantError: `attribute "instance" dropped: the instance label comes from the resource`,
		},
		{
			name:      "an attribute named job is dropped with a warning",
			give:      []attribute.KeyValue{attribute.String("job", "batch-7"), attribute.String("a", "1")},
			want:      []string{"a", "1"},
			wantError: `attribute "job" dropped: the job label comes from the resource`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, logs := convConverter(t, WithoutTargetInfo(), WithoutMetadata())
			got, err := convRun(t, c, convRM(metricdata.Metrics{Name: "m",
				Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1, tt.give...)}}}))
			if tt.wantError == "" && err != nil {
				t.Fatalf("convert: %v", err)
			}
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("convert error = %v, want it to contain %q", err, tt.wantError)
				}
				if l := logs.lines(); len(l) != 1 || !strings.Contains(l[0], "metric=m") {
					t.Errorf("log records = %q, want one warning naming metric m", l)
				}
			}
			want := []prompb.TimeSeries{convStd("m", 1, tt.want...)}
			if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConvertScopeLabels covers otel_scope_* labels.
func TestConvertScopeLabels(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo(), WithoutMetadata())
	rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{
		Scope: instrumentation.Scope{Name: "lib", Attributes: convAttrs(
			attribute.String("name", "skipped"), attribute.String("schema.url", "skipped"), attribute.String("version", "skipped"),
			attribute.String("team", "payments"), attribute.Int("shard", 3), attribute.String("blank", ""))},
		Metrics: []metricdata.Metrics{{Name: "m", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1)}}}},
	}}}
	got, err := convRun(t, c, rm)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	// Version and schema URL are empty, so they are not labels.
	want := []prompb.TimeSeries{convSeries(1, convMillis, convL("__name__", "m", "otel_scope_name", "lib", "otel_scope_team", "payments", "otel_scope_shard", "3"))}
	if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

var (
	convTraceID = []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	convSpanID  = []byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

const (
	convTraceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	convSpanHex  = "00f067aa0ba902b7"
)

func convExemplar[N int64 | float64](v N, at time.Time, kvs ...attribute.KeyValue) metricdata.Exemplar[N] {
	return metricdata.Exemplar[N]{FilteredAttributes: kvs, Time: at, Value: v, TraceID: convTraceID, SpanID: convSpanID}
}

func convPromExemplar(v float64, ms int64, extra ...string) prompb.Exemplar {
	return prompb.Exemplar{Labels: convLabels(convL("trace_id", convTraceHex, "span_id", convSpanHex), extra), Value: v, Timestamp: ms}
}

// TestConvertExemplars covers exemplars on counters, buckets and native
// histograms, and the 128-rune limit.
func TestConvertExemplars(t *testing.T) {
	long := strings.Repeat("x", 60)
	counterPoint := convPoint[int64](10)
	counterPoint.Exemplars = []metricdata.Exemplar[int64]{
		convExemplar[int64](3, convLater, attribute.String("user", "u1")),
		convExemplar[int64](2, convTime, attribute.String("user.id", long)),
		{Value: 1}, // no ids, no time: no labels, the point's time
	}
	gaugePoint := convPoint[int64](10)
	gaugePoint.Exemplars = counterPoint.Exemplars
	histPoint := convHistPoint[float64](7, []float64{1, 5}, []uint64{1, 1, 1})
	histPoint.Exemplars = []metricdata.Exemplar[float64]{
		convExemplar(0.5, convTime), convExemplar(1.0, convTime), convExemplar(5.0, convLater), convExemplar(9.0, convTime),
	}
	expPoint := convExpPoint(0, 0, metricdata.ExponentialBucket{Offset: 0, Counts: []uint64{1}}, metricdata.ExponentialBucket{}, 1.5)
	expPoint.Exemplars = []metricdata.Exemplar[float64]{convExemplar(1.5, convTime)}

	c, _ := convConverter(t, WithoutTargetInfo(), WithoutMetadata(), WithoutScopeInfo())
	got, err := convRun(t, c, convRM(
		metricdata.Metrics{Name: "hits", Data: convSum(true, counterPoint)},
		metricdata.Metrics{Name: "level", Data: convSum(false, gaugePoint)},
		metricdata.Metrics{Name: "lat", Data: convHist(histPoint)},
		metricdata.Metrics{Name: "nat", Data: convExpHist(expPoint)},
	))
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	withEx := func(ts prompb.TimeSeries, ex ...prompb.Exemplar) prompb.TimeSeries { ts.Exemplars = ex; return ts }
	id := func(name string, v float64, extra ...string) prompb.TimeSeries {
		return convSeries(v, convMillis, convL("__name__", name), extra, convIdentity)
	}
	want := []prompb.TimeSeries{
		withEx(id("hits_total", 10),
			// Sorted by time, then value, as Prometheus takes them; the
			// long attribute would pass 128 runes, so that exemplar keeps
			// only its ids.
			prompb.Exemplar{Value: 1, Timestamp: convMillis},
			convPromExemplar(2, convMillis),
			convPromExemplar(3, convLaterMillis, "user", "u1")),
		id("level", 10), // no exemplars on gauges
		withEx(id("lat_bucket", 1, "le", "1"), convPromExemplar(0.5, convMillis), convPromExemplar(1, convMillis)),
		withEx(id("lat_bucket", 2, "le", "5"), convPromExemplar(5, convLaterMillis)),
		withEx(id("lat_bucket", 3, "le", "+Inf"), convPromExemplar(9, convMillis)),
		id("lat_sum", 7),
		id("lat_count", 3),
		{
			Labels: convLabels(convL("__name__", "nat"), convIdentity),
			Histograms: []prompb.Histogram{{
				Count: &prompb.Histogram_CountInt{CountInt: 1}, Sum: 1.5, Schema: 0, ZeroThreshold: 1e-128,
				ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 0},
				PositiveSpans: []prompb.BucketSpan{{Offset: 1, Length: 1}}, PositiveDeltas: []int64{1},
				Timestamp: convMillis,
			}},
			Exemplars: []prompb.Exemplar{convPromExemplar(1.5, convMillis)},
		},
	}
	if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

// TestConvertNaN checks that NaN and ±Inf pass as values, that a NaN never
// goes out with the bits of Prometheus' staleness marker, and that -0 is
// sent as 0 (protobuf cannot carry -0: it omits zero fields).
func TestConvertNaN(t *testing.T) {
	stale := math.Float64frombits(0x7ff0000000000002)
	hp := convHistPoint(stale, []float64{1}, []uint64{0, 0})
	hp.Count = 2 // with a NaN sum, the count may exceed the buckets
	c, _ := convConverter(t, WithoutTargetInfo(), WithoutMetadata(), WithoutScopeInfo())
	got, err := convRun(t, c, convRM(
		metricdata.Metrics{Name: "g", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{
			convPoint(math.NaN(), attribute.Int("i", 1)), convPoint(stale, attribute.Int("i", 2)),
			convPoint(math.Inf(1), attribute.Int("i", 3)), convPoint(math.Inf(-1), attribute.Int("i", 4)),
			convPoint(math.Copysign(0, -1), attribute.Int("i", 5)),
		}}},
		metricdata.Metrics{Name: "h", Data: convHist(hp)},
	))
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	nan := math.NaN()
	id := func(name string, v float64, extra ...string) prompb.TimeSeries {
		return convSeries(v, convMillis, convL("__name__", name), extra, convIdentity)
	}
	want := []prompb.TimeSeries{
		id("g", nan, "i", "1"), id("g", nan, "i", "2"), id("g", math.Inf(1), "i", "3"), id("g", math.Inf(-1), "i", "4"),
		id("g", 0, "i", "5"), // -0 becomes 0, which is what protobuf delivers
		id("h_bucket", 0, "le", "1"), id("h_bucket", 2, "le", "+Inf"), id("h_sum", nan), id("h_count", 2),
	}
	if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

// TestConvertDropsInvalid checks that data Prometheus would refuse is left
// out with one warning naming the metric, and that the rest is still sent.
func TestConvertDropsInvalid(t *testing.T) {
	good := metricdata.Metrics{Name: "good", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1)}}}
	goodSeries := convSeries(1, convMillis, convL("__name__", "good"), convIdentity)
	badHist := convHistPoint[int64](1, []float64{1, 2}, []uint64{1, 1})
	unsorted := convHistPoint[int64](1, []float64{2, 1}, []uint64{1, 1, 1})
	wrongCount := convHistPoint[int64](1, []float64{1}, []uint64{1, 1})
	wrongCount.Count = 5
	tooCoarse := convExpPoint[int64](-5, 0, metricdata.ExponentialBucket{Counts: []uint64{1}}, metricdata.ExponentialBucket{}, 1)
	expWrongCount := convExpPoint[int64](0, 0, metricdata.ExponentialBucket{Counts: []uint64{1}}, metricdata.ExponentialBucket{}, 1)
	expWrongCount.Count = 9
	hugeBucket := convExpPoint[int64](0, 0, metricdata.ExponentialBucket{Counts: []uint64{math.MaxUint64}}, metricdata.ExponentialBucket{}, 1)

	tests := []struct {
		name      string
		give      metricdata.Metrics
		want      []prompb.TimeSeries // besides goodSeries
		wantError string
	}{
		{
			name:      "name that translates to nothing",
			give:      metricdata.Metrics{Name: "...", Data: good.Data},
			wantError: `metric "...": the whole metric: normalization for metric "..." resulted in empty name`,
		},
		{
			name:      "histogram with bucket counts not matching its bounds",
			give:      metricdata.Metrics{Name: "h", Data: convHist(badHist, convHistPoint[int64](1, nil, []uint64{1}))},
			want:      []prompb.TimeSeries{convStd("h_bucket", 1, "le", "+Inf"), convStd("h_sum", 1), convStd("h_count", 1)},
			wantError: `metric "h": data point with 2 bucket counts for 2 bounds (want 3)`,
		},
		{
			name:      "histogram with unsorted bounds",
			give:      metricdata.Metrics{Name: "h", Data: convHist(unsorted)},
			wantError: `metric "h": data point with bounds [2 1]: bounds must increase strictly and be below +Inf`,
		},
		{
			name:      "histogram whose count is not the sum of its buckets",
			give:      metricdata.Metrics{Name: "h", Data: convHist(wrongCount)},
			wantError: `metric "h": data point with count 5 but 2 observations in its buckets`,
		},
		{
			name:      "exponential histogram with scale below -4",
			give:      metricdata.Metrics{Name: "e", Data: convExpHist(tooCoarse)},
			wantError: `metric "e": data point with scale -5: Prometheus native histograms have scales -4 to 8`,
		},
		{
			name:      "exponential histogram whose count is not the sum of its buckets",
			give:      metricdata.Metrics{Name: "e", Data: convExpHist(expWrongCount, expWrongCount)},
			wantError: `metric "e": data point with count 9 but 1 observations in its buckets (2 times)`,
		},
		{
			name:      "exponential histogram with a count beyond int64",
			give:      metricdata.Metrics{Name: "e", Data: convExpHist(hugeBucket)},
			wantError: `metric "e": data point with bucket count 18446744073709551615: native histogram counts must fit in int64`,
		},
		{
			name: "attributes named le and quantile on histograms and summaries",
			give: metricdata.Metrics{Name: "h", Data: convHist(convHistPoint[int64](1, nil, []uint64{1}, attribute.String("le", "x"), attribute.String("quantile", "q")))},
			want: []prompb.TimeSeries{
				convStd("h_bucket", 1, "le", "+Inf", "quantile", "q"),
				convStd("h_sum", 1, "quantile", "q"),
				convStd("h_count", 1, "quantile", "q"),
			},
			wantError: `metric "h": label "le" dropped: Prometheus reserves it for histogram buckets and summary quantiles`,
		},
		{
			name: "attribute named quantile on a summary",
			give: metricdata.Metrics{Name: "s", Data: metricdata.Summary{DataPoints: []metricdata.SummaryDataPoint{{
				Attributes: convAttrs(attribute.String("quantile", "q")), Time: convTime, Count: 1, Sum: 2,
				QuantileValues: []metricdata.QuantileValue{{Quantile: 0.5, Value: 2}},
			}}}},
			want: []prompb.TimeSeries{
				convStd("s", 2, "quantile", "0.5"),
				convStd("s_sum", 2),
				convStd("s_count", 1),
			},
			wantError: `metric "s": label "quantile" dropped: Prometheus reserves it for histogram buckets and summary quantiles`,
		},
		{
			name:      "unknown data type",
			give:      metricdata.Metrics{Name: "u", Data: nil},
			wantError: `metric "u": unsupported data type <nil>: the whole metric`,
		},
		{
			name: "delta temporality",
			give: metricdata.Metrics{Name: "d", Data: metricdata.Sum[int64]{Temporality: metricdata.DeltaTemporality, IsMonotonic: true,
				DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1)}}},
			wantError: `metric "d": the whole metric: delta temporality cannot be sent as Prometheus series`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, logs := convConverter(t, WithoutMetadata(), WithoutTargetInfo())
			rm := convRM(tt.give)
			rm.ScopeMetrics = append(rm.ScopeMetrics, metricdata.ScopeMetrics{Metrics: []metricdata.Metrics{good}})
			got, err := convRun(t, c, rm)
			if err == nil || !strings.Contains(err.Error(), tt.wantError) {
				t.Fatalf("convert error = %v, want it to contain %q", err, tt.wantError)
			}
			want := append(slices.Clone(tt.want), goodSeries)
			if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
			l := logs.lines()
			if len(l) != 1 || !strings.HasPrefix(l[0], "WARN ") || !strings.Contains(l[0], "metric="+tt.give.Name) {
				t.Errorf("log records = %q, want one warning naming metric %q", l, tt.give.Name)
			}
		})
	}
}

// TestConvertConflicts checks that a family name is kept by its first type
// and that no series goes out twice.
func TestConvertConflicts(t *testing.T) {
	c, logs := convConverter(t, WithoutTargetInfo(), WithoutScopeInfo())
	rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{
		{Scope: instrumentation.Scope{Name: "a"}, Metrics: []metricdata.Metrics{
			{Name: "jobs", Description: "first", Data: convSum(true, convPoint[int64](1))},
			{Name: "jobs.total", Description: "gauge", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](2)}}},
		}},
		{Scope: instrumentation.Scope{Name: "b"}, Metrics: []metricdata.Metrics{
			{Name: "jobs", Description: "second", Data: convSum(true, convPoint[int64](3), convPoint[int64](4, attribute.String("k", "v")))},
		}},
	}}
	got, err := convRun(t, c, rm)
	want := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			convSeries(1, convMillis, convL("__name__", "jobs_total")),
			convSeries(4, convMillis, convL("__name__", "jobs_total", "k", "v")),
		},
		Metadata: []prompb.MetricMetadata{convMeta(prompb.MetricMetadata_COUNTER, "jobs_total", "first", "")},
	}
	if diff := cmp.Diff(want, got, convCmpOpts); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	for _, w := range []string{
		`metric "jobs.total": series named "jobs_total": a COUNTER of that name is already sent in this export; GAUGE dropped`,
		`metric "jobs": series {__name__="jobs_total"} sent twice in one export: kept the first`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("convert error = %v, want it to contain %q", err, w)
		}
	}
	if l := logs.lines(); len(l) != 2 {
		t.Errorf("log records = %q, want one warning per metric with dropped data", l)
	}
}

// TestNativeHistogram covers the exponential → native histogram mapping:
// spans and deltas, downscaling and the bucket bounds Prometheus reads.
func TestNativeHistogram(t *testing.T) {
	type bucket struct {
		Lower, Upper float64
		Count        uint64
	}
	tests := []struct {
		name           string
		scale          int32
		pos, neg       metricdata.ExponentialBucket
		zeroThreshold  float64
		wantSchema     int32
		wantPosSpans   []prompb.BucketSpan
		wantPosDeltas  []int64
		wantNegSpans   []prompb.BucketSpan
		wantNegDeltas  []int64
		wantPosBuckets []bucket
		wantZT         float64
	}{
		{
			name: "contiguous", scale: 0,
			pos:           metricdata.ExponentialBucket{Offset: 0, Counts: []uint64{2, 3, 1}},
			wantSchema:    0,
			wantPosSpans:  []prompb.BucketSpan{{Offset: 1, Length: 3}},
			wantPosDeltas: []int64{2, 1, -2},
			// OpenTelemetry bucket i at scale 0 is (2^i, 2^(i+1)].
			wantPosBuckets: []bucket{{1, 2, 2}, {2, 4, 3}, {4, 8, 1}},
			wantZT:         1e-128,
		},
		{
			name: "gaps of two stay in the span, three open a new one; zeros at the ends are dropped", scale: 2,
			pos:           metricdata.ExponentialBucket{Offset: -3, Counts: []uint64{0, 1, 0, 0, 1, 0, 0, 0, 5, 0}},
			wantSchema:    2,
			wantPosSpans:  []prompb.BucketSpan{{Offset: -1, Length: 4}, {Offset: 3, Length: 1}},
			wantPosDeltas: []int64{1, -1, 0, 1, 4},
			wantPosBuckets: []bucket{
				// The two empty buckets inside the first span are read
				// as such.
				{math.Exp2(-2.0 / 4), math.Exp2(-1.0 / 4), 1}, {math.Exp2(-1.0 / 4), 1, 0}, {1, math.Exp2(1.0 / 4), 0},
				{math.Exp2(1.0 / 4), math.Exp2(2.0 / 4), 1}, {math.Exp2(5.0 / 4), math.Exp2(6.0 / 4), 5},
			},
			zeroThreshold: 0.001,
			wantZT:        0.001,
		},
		{
			name: "scale 10 is merged down to 8", scale: 10,
			pos:           metricdata.ExponentialBucket{Offset: 5, Counts: []uint64{1, 1, 1, 1, 1}},
			neg:           metricdata.ExponentialBucket{Offset: -3, Counts: []uint64{1, 1}},
			wantSchema:    8,
			wantPosSpans:  []prompb.BucketSpan{{Offset: 2, Length: 2}},
			wantPosDeltas: []int64{3, -1},
			wantNegSpans:  []prompb.BucketSpan{{Offset: 0, Length: 1}},
			wantNegDeltas: []int64{2},
			wantPosBuckets: []bucket{
				{math.Exp2(1.0 / 256), math.Exp2(2.0 / 256), 3}, {math.Exp2(2.0 / 256), math.Exp2(3.0 / 256), 2},
			},
			wantZT: 1e-128,
		},
		{
			name: "scale -4 is the coarsest", scale: -4,
			pos:            metricdata.ExponentialBucket{Offset: -1, Counts: []uint64{7}},
			wantSchema:     -4,
			wantPosSpans:   []prompb.BucketSpan{{Offset: 0, Length: 1}},
			wantPosDeltas:  []int64{7},
			wantPosBuckets: []bucket{{math.Exp2(-16), 1, 7}},
			wantZT:         1e-128,
		},
		{
			name: "empty", scale: 3, wantSchema: 3, wantZT: 1e-128,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dp := convExpPoint[float64](tt.scale, 4, tt.pos, tt.neg, 10)
			dp.ZeroThreshold = tt.zeroThreshold
			h, msg := nativeHistogram(dp)
			if msg != "" {
				t.Fatalf("nativeHistogram: %s", msg)
			}
			want := prompb.Histogram{
				Count: &prompb.Histogram_CountInt{CountInt: dp.Count}, Sum: 10, Schema: tt.wantSchema, ZeroThreshold: tt.wantZT,
				ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 4},
				PositiveSpans: tt.wantPosSpans, PositiveDeltas: tt.wantPosDeltas,
				NegativeSpans: tt.wantNegSpans, NegativeDeltas: tt.wantNegDeltas,
				Timestamp: convMillis,
			}
			if diff := cmp.Diff(want, h, convCmpOpts); diff != "" {
				t.Errorf("histogram (-want +got):\n%s", diff)
			}
			ih := h.ToIntHistogram()
			if err := ih.Validate(); err != nil {
				t.Fatalf("Prometheus refuses the histogram: %v", err)
			}
			var got []bucket
			for it := ih.PositiveBucketIterator(); it.Next(); {
				b := it.At()
				got = append(got, bucket{b.Lower, b.Upper, b.Count})
			}
			if diff := cmp.Diff(tt.wantPosBuckets, got, cmpopts.EquateApprox(0, 1e-12), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("buckets as Prometheus reads them (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConvertOverHTTP sends converted data through the real Exporter and
// compares what the receiver decodes (snappy block + protobuf).
func TestConvertOverHTTP(t *testing.T) {
	bodies := make(chan []byte, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			t.Errorf("reading body: %v", err)
		}
		select {
		case bodies <- body:
		default:
			t.Errorf("more than one request")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Start()
	defer srv.Close()

	logger, logs := newLogCapture()
	exp, err := New(WithEndpoint(srv.URL+"/api/v1/write"), WithLogger(logger), WithNamespace("shop"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer func() {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	hp := convHistPoint[float64](2.5, []float64{1}, []uint64{1, 1}, attribute.String("route", "/"))
	hp.Exemplars = []metricdata.Exemplar[float64]{convExemplar(2.0, convTime)}
	rm := convRM(
		metricdata.Metrics{Name: "orders", Description: "Orders placed.", Data: convSum(true, convPoint[int64](3))},
		metricdata.Metrics{Name: "wait", Unit: "s", Data: convHist(hp)},
		metricdata.Metrics{Name: "broken", Data: convHist(convHistPoint[int64](1, []float64{1}, []uint64{1}))},
	)
	err = exp.Export(context.Background(), rm)
	if err == nil || !strings.Contains(err.Error(), `metric "broken"`) {
		t.Errorf("Export error = %v, want it to name the dropped metric \"broken\"", err)
	}
	var body []byte
	select {
	case body = <-bodies:
	default:
		t.Fatal("no request arrived")
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatalf("snappy: %v", err)
	}
	var got prompb.WriteRequest
	if err := got.Unmarshal(raw); err != nil {
		t.Fatalf("protobuf: %v", err)
	}
	convCheckWire(t, &got, false)
	bucketInf := convStd("shop_wait_seconds_bucket", 2, "le", "+Inf", "route", "/")
	bucketInf.Exemplars = []prompb.Exemplar{convPromExemplar(2, convMillis)}
	want := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			convStd("shop_orders_total", 3),
			convStd("shop_wait_seconds_bucket", 1, "le", "1", "route", "/"),
			bucketInf,
			convStd("shop_wait_seconds_sum", 2.5, "route", "/"),
			convStd("shop_wait_seconds_count", 2, "route", "/"),
			convTargetInfo(convMillis),
		},
		Metadata: []prompb.MetricMetadata{
			convMeta(prompb.MetricMetadata_COUNTER, "shop_orders_total", "Orders placed.", ""),
			convMeta(prompb.MetricMetadata_HISTOGRAM, "shop_wait_seconds", "", "seconds"),
			convTargetInfoMeta,
		},
	}
	if diff := cmp.Diff(want, &got, convCmpOpts); diff != "" {
		t.Errorf("received request (-want +got):\n%s", diff)
	}
	if l := logs.lines(); len(l) != 1 || !strings.Contains(l[0], "metric=broken") {
		t.Errorf("log records = %q, want one warning about metric broken", l)
	}
}
