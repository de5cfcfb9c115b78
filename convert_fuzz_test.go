package prwmetric

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// FuzzConvert builds random metric data from the fuzz input (odd names and
// units, attributes of every type and colliding names, NaN and infinities,
// huge counts, empty and mismatched buckets, odd scales) and checks that
// conversion never panics, that every series obeys the wire rules of
// SPEC §1 (convCheckWire), that the request round-trips through protobuf,
// that conversion is deterministic, and that the exporter's cached
// conversion sends the same (cacheCheck).
func FuzzConvert(f *testing.F) {
	f.Add([]byte{})
	// Zero bytes choose the plain path: one scope with one metric of the
	// kind chosen by byte 11, so these seeds start from every kind.
	for kind := byte(0); kind <= 10; kind++ {
		seed := make([]byte, 64)
		seed[11] = kind
		f.Add(seed)
		for i := 12; i < len(seed); i++ {
			seed[i] = byte(i * 37)
		}
		f.Add(seed)
	}
	// Exponential histograms (kinds 6 and 7) with scale byte 17 and
	// buckets: positive offset -2 with 5 counts, negative offset 0 with 2.
	for _, kind := range []byte{6, 7} {
		for _, scale := range []int8{12, 9, 8, 3, -4, -5} {
			seed := make([]byte, 64)
			seed[11], seed[17], seed[19], seed[21] = kind, byte(scale), 0xfe, 5
			copy(seed[22:], []byte{0, 1, 0, 0, 0, 2, 0, 5, 0, 1, 0, 0, 2, 0, 1, 0, 1})
			f.Add(seed)
		}
	}
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte("\x03\x02\x01\x05http.server.duration\x02\x07\x03\x04\x01\x02\x03\x04\x05\x06\x07\x08"))
	f.Add([]byte("\x81\x01\x02\x08\x0c\x03\x01\x02\x7f\x80\x90\xa0\xb0\xc0\xd0\xe0\xf0"))
	f.Add([]byte("\x40\x02\x03\x09\x11\x21\x41\x81\x03\x05\x07\x0b\x0d\x11\x13\x17\x1d\x1f\x25"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &convFuzzReader{b: data}
		opts := r.options()
		rm := r.resourceMetrics()

		logger, logs := newLogCapture()
		cfg, err := newConfig(append([]Option{WithEndpoint("http://127.0.0.1:9/api/v1/write"), WithLogger(logger)}, opts...))
		if err != nil {
			if msg := err.Error(); strings.HasPrefix(msg, "prwmetric: WithNamespace(") && !strings.Contains(msg, "\n") {
				return // an invalid namespace, refused by New
			}
			t.Fatalf("newConfig: %v", err)
		}
		c, err := newRules(cfg)
		if err != nil {
			t.Fatalf("newRules of a configuration newConfig accepted: %v", err)
		}
		req, convErr := c.reference(rm)
		if req == nil {
			t.Fatalf("nil request, error %v", convErr)
		}
		convCheckWireDunder(t, req, c.labelNamer.UTF8Allowed, c.otlpLabels)
		cacheCheck(t, c, rm, req, convErr, logs.lines())
		if warned := len(logs.lines()) > 0; warned != (convErr != nil) {
			t.Errorf("warnings %q but error %v: want both or neither", logs.lines(), convErr)
		}
		again, _ := c.reference(rm)
		first, err1 := req.Marshal()
		second, err2 := again.Marshal()
		if err1 != nil || err2 != nil || string(first) != string(second) {
			t.Errorf("second conversion differs from the first (marshal errors %v, %v)", err1, err2)
		}
	})
}

// convFuzzReader turns fuzz bytes into choices; past the end it reads zeros.
type convFuzzReader struct{ b []byte }

func (r *convFuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *convFuzzReader) n(max int) int { return int(r.byte()) % (max + 1) }

func (r *convFuzzReader) bool() bool { return r.byte()&1 == 1 }

func (r *convFuzzReader) uint64() uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = r.byte()
	}
	return binary.LittleEndian.Uint64(buf[:])
}

// str is either one of names that hit the translator's corner cases, or
// raw bytes (possibly invalid UTF-8).
func (r *convFuzzReader) str() string {
	pool := []string{"a", "", "a.b", "a_b", "a/b", "_", "__", "__name__", "__x__", "le", "quantile", "job",
		"instance", "0day", "Üml", "total", "ratio", "http.server.duration", "target_info", "otel_scope_name",
		"name", "version", "schema_url", "service.name", "service.namespace", "service.instance.id", "a..b", "A"}
	i := int(r.byte())
	if i < len(pool) {
		return pool[i]
	}
	n := r.n(24)
	if n > len(r.b) {
		n = len(r.b)
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *convFuzzReader) unit() string {
	pool := []string{"", "1", "s", "ms", "By", "KiBy", "m/s", "{request}", "%", "Cel", "1/s", "/", "{a}/s", "By/{x}"}
	if i := r.n(len(pool)); i < len(pool) {
		return pool[i]
	}
	return r.str()
}

func (r *convFuzzReader) float() float64 {
	switch r.n(11) {
	case 0:
		return 0
	case 1:
		return math.NaN()
	case 2:
		return math.Float64frombits(0x7ff0000000000002) // the stale marker
	case 3:
		return math.Inf(1)
	case 4:
		return math.Inf(-1)
	case 5:
		return math.Copysign(0, -1)
	case 6:
		return math.MaxFloat64
	case 7:
		return math.SmallestNonzeroFloat64
	case 8:
		return float64(int8(r.byte())) / 4
	default:
		return math.Float64frombits(r.uint64())
	}
}

// count is mostly small, so that most histograms are valid, and sometimes
// huge.
func (r *convFuzzReader) count() uint64 {
	switch c := r.byte(); {
	case c < 200:
		return uint64(c % 8)
	case c < 215:
		return math.MaxUint64
	case c < 230:
		return math.MaxInt64 + uint64(r.byte())
	default:
		return r.uint64()
	}
}

func (r *convFuzzReader) value() attribute.Value {
	switch r.n(8) {
	case 0:
		return attribute.BoolValue(r.bool())
	case 1:
		return attribute.Int64Value(int64(r.uint64()))
	case 2:
		return attribute.Float64Value(r.float())
	case 3:
		return attribute.BoolSliceValue([]bool{r.bool(), r.bool()})
	case 4:
		return attribute.Int64SliceValue([]int64{int64(r.byte()), -1})
	case 5:
		return attribute.Float64SliceValue([]float64{r.float(), r.float()})
	case 6:
		return attribute.StringSliceValue([]string{r.str(), r.str()})
	default:
		return attribute.StringValue(r.str())
	}
}

func (r *convFuzzReader) attrs(max int) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, r.n(max))
	for i := range kvs {
		kvs[i] = attribute.KeyValue{Key: attribute.Key(r.str()), Value: r.value()}
	}
	return kvs
}

func (r *convFuzzReader) set(max int) attribute.Set { return attribute.NewSet(r.attrs(max)...) }

func (r *convFuzzReader) time() time.Time {
	switch r.n(3) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, int64(r.uint64()))
	default:
		return time.Unix(1700000000+int64(r.byte()), int64(r.byte())*1e6)
	}
}

func (r *convFuzzReader) options() []Option {
	var opts []Option
	flags := r.byte()
	if flags&1 != 0 {
		opts = append(opts, WithNamespace(r.str()))
	}
	if flags&2 != 0 {
		opts = append(opts, WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes))
	}
	if flags&4 != 0 {
		opts = append(opts, WithoutScopeInfo())
	}
	if flags&8 != 0 {
		opts = append(opts, WithoutTargetInfo())
	}
	if flags&16 != 0 {
		opts = append(opts, WithResourceAsLabels(nil))
	}
	if flags&32 != 0 {
		opts = append(opts, WithExternalLabels(map[string]string{"cluster": "c1", "job": "ext"}))
	}
	if flags&64 != 0 {
		opts = append(opts, WithoutMetadata())
	}
	if flags&128 != 0 {
		opts = append(opts, WithHistogramMinMax())
	}
	more := r.byte()
	opts = append(opts, WithCompatibility(Compatibility(more&3)))
	if more&4 != 0 {
		opts = append(opts, WithTypeAndUnitLabels())
	}
	if more&8 != 0 {
		opts = append(opts, WithIdentifyingResourceAttributes())
	}
	if more&32 != 0 {
		opts = append(opts, WithOpenMetricsFloatLabels())
	}
	if more&16 != 0 && flags&16 == 0 {
		opts = append(opts, WithResourceConstantLabels([]string{r.str()}, []string{r.str()}))
	}
	switch r.n(5) {
	case 4:
		opts = append(opts, WithoutNativeHistograms())
	case 3:
		opts = append(opts, WithProtocol(ProtocolV2), WithTranslationStrategy(otlptranslator.NoUTF8EscapingWithSuffixes))
	case 1:
		opts = append(opts, WithProtocol(ProtocolV2), WithNativeHistogramsForExplicitBuckets())
	case 2:
		opts = append(opts, WithProtocol(ProtocolV2), WithNativeHistogramsForExplicitBuckets(), WithClassicHistograms())
	}
	return opts
}

func (r *convFuzzReader) resourceMetrics() *metricdata.ResourceMetrics {
	rm := &metricdata.ResourceMetrics{}
	if r.bool() {
		rm.Resource = resource.NewSchemaless(r.attrs(5)...)
	}
	rm.ScopeMetrics = make([]metricdata.ScopeMetrics, 1+r.n(2))
	for i := range rm.ScopeMetrics {
		sm := &rm.ScopeMetrics[i]
		sm.Scope = instrumentation.Scope{Name: r.str(), Version: r.str(), SchemaURL: r.str(), Attributes: r.set(3)}
		sm.Metrics = make([]metricdata.Metrics, 1+r.n(3))
		for j := range sm.Metrics {
			sm.Metrics[j] = metricdata.Metrics{Name: r.str(), Description: r.str(), Unit: r.unit(), Data: r.aggregation()}
		}
	}
	return rm
}

func (r *convFuzzReader) temporality() metricdata.Temporality {
	if r.byte()%8 == 7 {
		return metricdata.DeltaTemporality
	}
	return metricdata.CumulativeTemporality
}

func (r *convFuzzReader) aggregation() metricdata.Aggregation {
	switch r.n(10) {
	case 0:
		return metricdata.Sum[int64]{Temporality: r.temporality(), IsMonotonic: r.bool(), DataPoints: convFuzzPoints(r, func() int64 { return int64(r.uint64()) })}
	case 1:
		return metricdata.Sum[float64]{Temporality: r.temporality(), IsMonotonic: r.bool(), DataPoints: convFuzzPoints(r, r.float)}
	case 2:
		return metricdata.Gauge[int64]{DataPoints: convFuzzPoints(r, func() int64 { return int64(r.uint64()) })}
	case 3:
		return metricdata.Gauge[float64]{DataPoints: convFuzzPoints(r, r.float)}
	case 4:
		return metricdata.Histogram[int64]{Temporality: r.temporality(), DataPoints: convFuzzHistPoints(r, func() int64 { return int64(r.byte()) })}
	case 5:
		return metricdata.Histogram[float64]{Temporality: r.temporality(), DataPoints: convFuzzHistPoints(r, r.float)}
	case 6:
		return metricdata.ExponentialHistogram[int64]{Temporality: r.temporality(), DataPoints: convFuzzExpPoints(r, func() int64 { return int64(r.byte()) })}
	case 7:
		return metricdata.ExponentialHistogram[float64]{Temporality: r.temporality(), DataPoints: convFuzzExpPoints(r, r.float)}
	case 8:
		dps := make([]metricdata.SummaryDataPoint, 1+r.n(1))
		for i := range dps {
			dps[i] = metricdata.SummaryDataPoint{Attributes: r.set(3), Time: r.time(), Count: r.count(), Sum: r.float()}
			for range r.n(3) {
				dps[i].QuantileValues = append(dps[i].QuantileValues, metricdata.QuantileValue{Quantile: r.float(), Value: r.float()})
			}
		}
		return metricdata.Summary{DataPoints: dps}
	default:
		return nil
	}
}

func convFuzzExemplars[N int64 | float64](r *convFuzzReader, value func() N) []metricdata.Exemplar[N] {
	out := make([]metricdata.Exemplar[N], []int{1, 0, 2}[r.n(2)])
	for i := range out {
		out[i] = metricdata.Exemplar[N]{FilteredAttributes: r.attrs(3), Time: r.time(), Value: value(),
			TraceID: make([]byte, []int{16, 0, 5, 80}[r.n(3)]), SpanID: make([]byte, []int{8, 0, 3, 40}[r.n(3)])}
		for j := range out[i].TraceID {
			out[i].TraceID[j] = byte(j)
		}
	}
	return out
}

func convFuzzPoints[N int64 | float64](r *convFuzzReader, value func() N) []metricdata.DataPoint[N] {
	dps := make([]metricdata.DataPoint[N], 1+r.n(2))
	for i := range dps {
		dps[i] = metricdata.DataPoint[N]{Attributes: r.set(4), Time: r.time(), Value: value(), Exemplars: convFuzzExemplars(r, value)}
	}
	return dps
}

func convFuzzHistPoints[N int64 | float64](r *convFuzzReader, value func() N) []metricdata.HistogramDataPoint[N] {
	dps := make([]metricdata.HistogramDataPoint[N], 1+r.n(1))
	for i := range dps {
		dp := metricdata.HistogramDataPoint[N]{Attributes: r.set(3), Time: r.time(), Sum: value(), Exemplars: convFuzzExemplars(r, value)}
		bound := -1.0
		for range r.n(5) {
			if r.byte()%16 == 15 {
				dp.Bounds = append(dp.Bounds, r.float()) // anything, maybe out of order
			} else {
				bound += float64(1+r.byte()%10) / 4 // increasing
				dp.Bounds = append(dp.Bounds, bound)
			}
		}
		n := len(dp.Bounds) + 1
		if r.byte()%16 == 15 {
			n = r.n(6) // mismatched
		}
		for range n {
			c := r.count()
			dp.BucketCounts = append(dp.BucketCounts, c)
			dp.Count += c
		}
		if r.byte()%8 == 7 {
			dp.Count = r.count()
		}
		if r.bool() {
			dp.Min = metricdata.NewExtrema(value())
		}
		if r.bool() {
			dp.Max = metricdata.NewExtrema(value())
		}
		dps[i] = dp
	}
	return dps
}

func (r *convFuzzReader) expBucket() metricdata.ExponentialBucket {
	b := metricdata.ExponentialBucket{Offset: int32(int8(r.byte()))}
	if r.byte()%8 == 7 {
		b.Offset = int32(uint32(r.uint64())) // anywhere, near the int32 limits too
	}
	b.Counts = make([]uint64, r.n(12))
	for i := range b.Counts {
		if !r.bool() {
			b.Counts[i] = r.count()
		}
	}
	return b
}

func convFuzzExpPoints[N int64 | float64](r *convFuzzReader, value func() N) []metricdata.ExponentialHistogramDataPoint[N] {
	dps := make([]metricdata.ExponentialHistogramDataPoint[N], 1+r.n(1))
	for i := range dps {
		dp := metricdata.ExponentialHistogramDataPoint[N]{
			Attributes: r.set(3), Time: r.time(), Sum: value(),
			Scale: int32(int8(r.byte()) % 16), ZeroCount: r.count(),
			PositiveBucket: r.expBucket(), NegativeBucket: r.expBucket(),
			Exemplars: convFuzzExemplars(r, value),
		}
		if r.byte()%16 == 15 {
			dp.Scale = int32(uint32(r.uint64()))
		}
		if r.byte()%8 == 7 {
			dp.ZeroThreshold = r.float()
		}
		dp.Count = dp.ZeroCount
		for _, c := range slices.Concat(dp.PositiveBucket.Counts, dp.NegativeBucket.Counts) {
			dp.Count += c
		}
		if r.byte()%8 == 7 {
			dp.Count = r.count()
		}
		dps[i] = dp
	}
	return dps
}
