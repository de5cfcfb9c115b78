package e2e

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric"
)

// TestParityWithPullExporter feeds one MeterProvider to both prwmetric and
// the OpenTelemetry Go Prometheus (pull) exporter v0.69.0, and checks that
// for every instrument kind and option pair the series we push have the
// names, labels and values the pull exporter exposes, and the same
// metadata (type and help per family). So a user can switch between pull
// and push without breaking dashboards.
//
// Documented differences, left out of the comparison:
//   - job and instance: we derive them from the resource (SPEC §3); a pull
//     exporter cannot have them, its scraper adds them. For the same reason
//     the pull exporter's target_info carries service.name,
//     service.namespace and service.instance.id, which ours carries as job
//     and instance.
//   - Attributes whose names collide after translation: SPEC §3 joins their
//     values in the order of the original keys, the pull exporter sorts the
//     values. The data here has no collisions.
//   - Native histograms' zero threshold: the SDK leaves it 0, which the pull
//     exporter passes on; we send 1e-128 (SPEC §3). Exemplars and timestamps
//     are not part of the pull exporter's exposition and are covered by
//     prwmetric's unit tests.
func TestParityWithPullExporter(t *testing.T) {
	type options struct {
		namespace      string
		withoutScope   bool
		withoutSuffix  bool
		resourceLabels bool
	}
	base := []struct {
		name string
		opt  func(*options)
	}{
		{"namespace", func(o *options) { o.namespace = "my.app" }},
		{"without scope info", func(o *options) { o.withoutScope = true }},
		{"without suffixes", func(o *options) { o.withoutSuffix = true }},
		{"resource as labels", func(o *options) { o.resourceLabels = true }},
	}
	type tc struct {
		name string
		opts options
	}
	cases := []tc{{name: "defaults"}}
	for i := range base {
		var o options
		base[i].opt(&o)
		cases = append(cases, tc{name: base[i].name, opts: o})
		for j := i + 1; j < len(base); j++ {
			o := o
			base[j].opt(&o)
			cases = append(cases, tc{name: base[i].name + " + " + base[j].name, opts: o})
		}
	}

	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			resourceFilter := func(kv attribute.KeyValue) bool { return kv.Key == "host.name" || kv.Key == "service.name" }
			var ours []prwmetric.Option
			var pull []otelprom.Option
			if tt.opts.namespace != "" {
				ours = append(ours, prwmetric.WithNamespace(tt.opts.namespace))
				pull = append(pull, otelprom.WithNamespace(tt.opts.namespace))
			}
			if tt.opts.withoutScope {
				ours = append(ours, prwmetric.WithoutScopeInfo())
				pull = append(pull, otelprom.WithoutScopeInfo())
			}
			if tt.opts.withoutSuffix {
				ours = append(ours, prwmetric.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes))
				pull = append(pull, otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes))
			}
			if tt.opts.resourceLabels {
				ours = append(ours, prwmetric.WithResourceAsLabels(resourceFilter))
				pull = append(pull, otelprom.WithResourceAsConstantLabels(resourceFilter))
			}
			pushed, pulled := parityCollect(t, ours, pull)
			if diff := cmp.Diff(pulled.series, pushed.series); diff != "" {
				t.Errorf("series (-pull exporter +prwmetric):\n%s", diff)
			}
			if diff := cmp.Diff(pulled.families, pushed.families); diff != "" {
				t.Errorf("families: type and help (-pull exporter +prwmetric):\n%s", diff)
			}
			if len(pushed.series) < 40 {
				t.Errorf("only %d series compared; the instruments did not all report", len(pushed.series))
			}
		})
	}
}

// parityData is what both exporters produced, in one comparable form:
// series keyed by their label set (job and instance removed), and family
// name → "TYPE help".
type parityData struct {
	series   map[string]string
	families map[string]string
}

// parityCollect records the same measurements once, then pushes them
// through prwmetric to an httptest receiver and gathers them through the
// pull exporter.
func parityCollect(t *testing.T, ours []prwmetric.Option, pull []otelprom.Option) (pushed, pulled parityData) {
	t.Helper()
	requests := make(chan *prompb.WriteRequest, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			t.Errorf("receiver: reading body: %v", err)
		}
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			t.Errorf("receiver: snappy: %v", err)
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			t.Errorf("receiver: protobuf: %v", err)
		}
		select {
		case requests <- &req:
		default:
			t.Errorf("receiver: more requests than expected")
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	logs := &parityLogs{}
	exp, err := prwmetric.New(append([]prwmetric.Option{
		prwmetric.WithEndpoint(srv.URL + "/api/v1/write"),
		prwmetric.WithLogger(slog.New(logs)),
	}, ours...)...)
	if err != nil {
		t.Fatalf("prwmetric.New: %v", err)
	}
	reg := prometheus.NewRegistry()
	pullExp, err := otelprom.New(append([]otelprom.Option{otelprom.WithRegisterer(reg)}, pull...)...)
	if err != nil {
		t.Fatalf("otelprom.New: %v", err)
	}
	// The default aggregations, plus base-2 exponential histograms: two
	// wide ones (float64 and int64) and a narrow one whose scale (20) must
	// be reduced to 8.
	exponential := func(name string) sdkmetric.View {
		return sdkmetric.NewView(sdkmetric.Instrument{Name: name},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(resource.NewSchemaless(
			attribute.String("service.namespace", "shop"),
			attribute.String("service.name", "checkout"),
			attribute.String("service.instance.id", "checkout-1"),
			attribute.String("host.name", "e2e-host"),
			attribute.Int("host.cpus", 2),
		)),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithReader(pullExp),
		sdkmetric.WithView(exponential("payload.exp"), exponential("latency.narrow"), exponential("batch.exp")),
	)
	defer func() {
		if err := mp.Shutdown(context.Background()); err != nil {
			t.Errorf("MeterProvider.Shutdown: %v", err)
		}
	}()
	parityRecord(t, mp)

	if err := mp.ForceFlush(context.Background()); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	var req *prompb.WriteRequest
	select {
	case req = <-requests:
	default:
		t.Fatal("ForceFlush returned but no request arrived")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	if l := logs.all(); len(l) > 0 {
		t.Errorf("prwmetric logged: %q", l)
	}
	return parityFromPush(t, req), parityFromPull(t, mfs)
}

// parityRecord makes one measurement set on every instrument kind, with
// units that exercise the name suffixes and attributes of every value type.
func parityRecord(t *testing.T, mp metric.MeterProvider) {
	t.Helper()
	meter := mp.Meter("github.com/prwmetric/parity",
		metric.WithInstrumentationVersion("v0.9.1"),
		metric.WithSchemaURL("https://opentelemetry.io/schemas/1.37.0"),
		metric.WithInstrumentationAttributes(attribute.String("team.name", "payments")))
	ctx := context.Background()
	attrs := metric.WithAttributes(
		attribute.String("http.request.method", "GET"),
		attribute.Int("http.response.status_code", 200),
		attribute.Bool("cache.hit", true),
		attribute.Float64("ratio.value", 0.25),
		attribute.StringSlice("tags", []string{"a", "b"}),
		attribute.String("2fa", "on"),
	)
	other := metric.WithAttributes(attribute.String("http.request.method", "POST"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	ic, err := meter.Int64Counter("http.server.requests", metric.WithUnit("{request}"), metric.WithDescription("Requests served."))
	must(err)
	ic.Add(ctx, 5, attrs)
	ic.Add(ctx, 2, other)
	fc, err := meter.Float64Counter("energy", metric.WithUnit("J"), metric.WithDescription("Energy used."))
	must(err)
	fc.Add(ctx, 1.5, attrs)
	bc, err := meter.Int64Counter("io.read", metric.WithUnit("By"))
	must(err)
	bc.Add(ctx, 4096)
	tc, err := meter.Float64Counter("jobs.total", metric.WithUnit("1"))
	must(err)
	tc.Add(ctx, 3)
	iu, err := meter.Int64UpDownCounter("queue.length", metric.WithUnit("{item}"))
	must(err)
	iu.Add(ctx, -3, attrs)
	fu, err := meter.Float64UpDownCounter("balance", metric.WithUnit("1"))
	must(err)
	fu.Add(ctx, -0.5)
	ig, err := meter.Int64Gauge("temperature", metric.WithUnit("Cel"))
	must(err)
	ig.Record(ctx, 21, attrs)
	fg, err := meter.Float64Gauge("cpu.utilization", metric.WithUnit("1"), metric.WithDescription("CPU share."))
	must(err)
	fg.Record(ctx, 0.75, attrs)
	ih, err := meter.Int64Histogram("payload.size", metric.WithUnit("By"))
	must(err)
	for _, v := range []int64{10, 300, 7000, 20000} {
		ih.Record(ctx, v, attrs)
	}
	fh, err := meter.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.1, 1, 2.5), metric.WithDescription("Request time."))
	must(err)
	for _, v := range []float64{0.001, 0.05, 0.05, 0.5, 3} {
		fh.Record(ctx, v, attrs)
	}
	fh.Record(ctx, 0.2, other)
	eh, err := meter.Float64Histogram("payload.exp", metric.WithUnit("KiBy"))
	must(err)
	for _, v := range []float64{0, 0.001, 1.5, 3, 3, 1000, 123456} {
		eh.Record(ctx, v, attrs)
	}
	nh, err := meter.Float64Histogram("latency.narrow", metric.WithUnit("ms"))
	must(err)
	for _, v := range []float64{1.0001, 1.0002, 1.0002, 1.0009} {
		nh.Record(ctx, v)
	}
	ieh, err := meter.Int64Histogram("batch.exp", metric.WithUnit("{message}"))
	must(err)
	for _, v := range []int64{1, 2, 3, 3, 500} {
		ieh.Record(ctx, v, other)
	}

	_, err = meter.Int64ObservableCounter("process.cpu.time", metric.WithUnit("s"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(42, attrs); return nil }))
	must(err)
	_, err = meter.Float64ObservableCounter("network.io", metric.WithUnit("By"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error { o.Observe(1e6); return nil }))
	must(err)
	_, err = meter.Int64ObservableUpDownCounter("connections", metric.WithUnit("{connection}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(7, other); return nil }))
	must(err)
	_, err = meter.Float64ObservableUpDownCounter("memory.delta", metric.WithUnit("MiBy"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error { o.Observe(-1.25); return nil }))
	must(err)
	_, err = meter.Int64ObservableGauge("threads", metric.WithUnit("{thread}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(12); return nil }))
	must(err)
	_, err = meter.Float64ObservableGauge("disk.utilization", metric.WithUnit("%"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error { o.Observe(33.5, attrs); return nil }))
	must(err)
	_, err = meter.Float64ObservableGauge("speed", metric.WithUnit("m/s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error { o.Observe(3.5); return nil }))
	must(err)

	// A second scope, without version and schema URL.
	meter2 := mp.Meter("second")
	c2, err := meter2.Int64Counter("http.server.requests", metric.WithUnit("{request}"), metric.WithDescription("Requests served."))
	must(err)
	c2.Add(ctx, 1)
}

// parityKey is a label set as text, sorted, without job and instance and
// without empty values (Prometheus treats those as absent).
func parityKey(labels map[string]string) string {
	var pairs []string
	for n, v := range labels {
		if v != "" && n != "__name__" && n != "job" && n != "instance" {
			pairs = append(pairs, n+"="+strconv.Quote(v))
		}
	}
	sort.Strings(pairs)
	return labels["__name__"] + "{" + strings.Join(pairs, ",") + "}"
}

func parityFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// parityNative is a native histogram as text: schema, count, sum, zero
// bucket and the non-empty buckets by Prometheus index, so that two
// encodings of the same buckets (spans with or without empty buckets)
// compare equal.
func parityNative(schema int32, count uint64, sum float64, zero uint64, pos, neg map[int32]int64) string {
	var b strings.Builder
	b.WriteString("native schema=" + strconv.Itoa(int(schema)) + " count=" + strconv.FormatUint(count, 10) +
		" sum=" + parityFloat(sum) + " zero=" + strconv.FormatUint(zero, 10))
	for _, side := range []struct {
		name    string
		buckets map[int32]int64
	}{{"pos", pos}, {"neg", neg}} {
		idx := make([]int, 0, len(side.buckets))
		for i, c := range side.buckets {
			if c != 0 {
				idx = append(idx, int(i))
			}
		}
		sort.Ints(idx)
		for _, i := range idx {
			b.WriteString(" " + side.name + "[" + strconv.Itoa(i) + "]=" + strconv.FormatInt(side.buckets[int32(i)], 10))
		}
	}
	return b.String()
}

// parityExpand turns spans and deltas (prompb's or dto's) into index →
// count.
func parityExpand(offsets []int32, lengths []uint32, deltas []int64) map[int32]int64 {
	out := map[int32]int64{}
	var idx int32
	var count int64
	k := 0
	for s := range offsets {
		idx += offsets[s]
		for range lengths[s] {
			count += deltas[k]
			k++
			out[idx] = count
			idx++
		}
	}
	return out
}

func parityFromPush(t *testing.T, req *prompb.WriteRequest) parityData {
	t.Helper()
	d := parityData{series: map[string]string{}, families: map[string]string{}}
	for _, ts := range req.Timeseries {
		labels := map[string]string{}
		for _, l := range ts.Labels {
			labels[l.Name] = l.Value
		}
		if labels["__name__"] == "target_info" {
			if labels["job"] != "shop/checkout" || labels["instance"] != "checkout-1" {
				t.Errorf("target_info job/instance = %q/%q, want shop/checkout and checkout-1", labels["job"], labels["instance"])
			}
		}
		key := parityKey(labels)
		for _, s := range ts.Samples {
			d.series[key] = parityFloat(s.Value)
		}
		for _, h := range ts.Histograms {
			if h.ZeroThreshold != 1e-128 {
				t.Errorf("%s: zero threshold %v, want 1e-128", key, h.ZeroThreshold)
			}
			var po, no []int32
			var pl, nl []uint32
			for _, s := range h.PositiveSpans {
				po, pl = append(po, s.Offset), append(pl, s.Length)
			}
			for _, s := range h.NegativeSpans {
				no, nl = append(no, s.Offset), append(nl, s.Length)
			}
			d.series[key] = parityNative(h.Schema, h.GetCountInt(), h.Sum, h.GetZeroCountInt(),
				parityExpand(po, pl, h.PositiveDeltas), parityExpand(no, nl, h.NegativeDeltas))
		}
	}
	for _, md := range req.Metadata {
		d.families[md.MetricFamilyName] = md.Type.String() + " " + md.Help
	}
	return d
}

func parityFromPull(t *testing.T, mfs []*dto.MetricFamily) parityData {
	t.Helper()
	d := parityData{series: map[string]string{}, families: map[string]string{}}
	for _, mf := range mfs {
		name := mf.GetName()
		d.families[name] = mf.GetType().String() + " " + mf.GetHelp()
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if name == "target_info" {
				// Ours carries these as job and instance.
				delete(labels, "service_name")
				delete(labels, "service_namespace")
				delete(labels, "service_instance_id")
			}
			series := func(n string, v float64, extra ...string) {
				l := map[string]string{"__name__": n}
				for k, v := range labels {
					l[k] = v
				}
				for i := 0; i+1 < len(extra); i += 2 {
					l[extra[i]] = extra[i+1]
				}
				d.series[parityKey(l)] = parityFloat(v)
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				series(name, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				series(name, m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				if h.Schema != nil { // a native histogram
					var po, no []int32
					var pl, nl []uint32
					for _, s := range h.GetPositiveSpan() {
						po, pl = append(po, s.GetOffset()), append(pl, s.GetLength())
					}
					for _, s := range h.GetNegativeSpan() {
						no, nl = append(no, s.GetOffset()), append(nl, s.GetLength())
					}
					l := map[string]string{"__name__": name}
					for k, v := range labels {
						l[k] = v
					}
					d.series[parityKey(l)] = parityNative(h.GetSchema(), h.GetSampleCount(), h.GetSampleSum(), h.GetZeroCount(),
						parityExpand(po, pl, h.GetPositiveDelta()), parityExpand(no, nl, h.GetNegativeDelta()))
					continue
				}
				for _, b := range h.GetBucket() {
					if math.IsInf(b.GetUpperBound(), 1) {
						continue
					}
					series(name+"_bucket", float64(b.GetCumulativeCount()), "le", strconv.FormatFloat(b.GetUpperBound(), 'f', -1, 64))
				}
				series(name+"_bucket", float64(h.GetSampleCount()), "le", "+Inf")
				series(name+"_sum", h.GetSampleSum())
				series(name+"_count", float64(h.GetSampleCount()))
			default:
				t.Errorf("family %s: unexpected type %v", name, mf.GetType())
			}
		}
	}
	return d
}

// parityLogs keeps what prwmetric logs; the comparison expects nothing.
type parityLogs struct {
	mu      sync.Mutex
	records []string
}

func (*parityLogs) Enabled(context.Context, slog.Level) bool { return true }

func (l *parityLogs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Message)
	return nil
}

func (l *parityLogs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *parityLogs) WithGroup(string) slog.Handler      { return l }

func (l *parityLogs) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.records...)
}
