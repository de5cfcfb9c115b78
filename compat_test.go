package prwmetric

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestCompatibilityProfiles pins each profile's rules as its path documents
// them (Prometheus' otlp: block, Mimir's -distributor.otel-* flags, the
// Collector exporter's defaults), on one counter and one histogram whose
// names and attributes meet every rule that differs: a leading "_", a run of
// "_", a leading digit, units and the _total suffix, and scope labels.
func TestCompatibilityProfiles(t *testing.T) {
	counter := metricdata.Metrics{Name: "http.requests", Unit: "{request}", Data: convSum(true, convPoint[int64](7,
		attribute.String("_tenant.__id", "t7"), attribute.String("1st", "a"), attribute.String("http.route", "/buy")))}
	histogram := metricdata.Metrics{Name: "rpc.duration", Unit: "s", Data: convHist(convHistPoint[float64](3, []float64{1}, []uint64{1, 1}))}
	scope := convScopeLabels
	collectorScope := convL("otel_scope_name", "shop/cart", "otel_scope_version", "v1.2.3", "otel_scope_lib_kind", "sdk")
	// want is the counter and histogram's series: the counter's name and
	// tenant label, the histogram's name, and the labels of every series.
	want := func(counter, tenant, histogram string, common ...string) []prompb.TimeSeries {
		return []prompb.TimeSeries{
			convSeries(7, convMillis, convL("__name__", counter, tenant, "t7", "key_1st", "a", "http_route", "/buy"), common, convIdentity),
			convSeries(1, convMillis, convL("__name__", histogram+"_bucket", "le", "1"), common, convIdentity),
			convSeries(2, convMillis, convL("__name__", histogram+"_bucket", "le", "+Inf"), common, convIdentity),
			convSeries(3, convMillis, convL("__name__", histogram+"_sum"), common, convIdentity),
			convSeries(2, convMillis, convL("__name__", histogram+"_count"), common, convIdentity),
		}
	}
	tests := []struct {
		name string
		opts []Option
		want []prompb.TimeSeries
	}{
		{
			name: "pull exporter (default)",
			want: want("http_requests_total", "_tenant_id", "rpc_duration_seconds", scope...),
		},
		{
			name: "Prometheus OTLP receiver: key_ prefix, runs kept, no scope labels",
			opts: []Option{WithCompatibility(CompatibilityPrometheusOTLP)},
			want: want("http_requests_total", "key_tenant___id", "rpc_duration_seconds"),
		},
		{
			name: "Mimir OTLP: as Prometheus' receiver, without suffixes",
			opts: []Option{WithCompatibility(CompatibilityMimirOTLP)},
			want: want("http_requests", "key_tenant___id", "rpc_duration"),
		},
		{
			name: "Collector exporter: leading _ and runs kept, scope labels without the schema URL",
			opts: []Option{WithCompatibility(CompatibilityCollector)},
			want: want("http_requests_total", "_tenant___id", "rpc_duration_seconds", collectorScope...),
		},
		{
			name: "an individual option wins over the profile: Mimir with suffixes",
			opts: []Option{WithCompatibility(CompatibilityMimirOTLP), WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes)},
			want: want("http_requests_total", "key_tenant___id", "rpc_duration_seconds"),
		},
		{
			name: "the option order does not matter: suffixes set before the profile",
			opts: []Option{WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes), WithCompatibility(CompatibilityCollector), WithoutScopeInfo()},
			want: want("http_requests", "_tenant___id", "rpc_duration"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := convConverter(t, append([]Option{WithoutTargetInfo(), WithoutMetadata()}, tt.opts...)...)
			got, err := convRun(t, c, convRM(counter, histogram))
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			if diff := cmp.Diff(tt.want, got.Timeseries, convCmpOpts); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTypeAndUnitLabels(t *testing.T) {
	counter := metricdata.Metrics{Name: "http.requests", Data: convSum(true, convPoint[int64](5))}
	upDown := metricdata.Metrics{Name: "queue.size", Unit: "By", Data: convSum(false, convPoint[int64](3))}
	ratio := metricdata.Metrics{Name: "cpu.utilization", Unit: "1", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{convPoint(0.5)}}}
	hist := convHistPoint[float64](3, []float64{1}, []uint64{1, 1})
	hist.Min, hist.Max = metricdata.NewExtrema(0.5), metricdata.NewExtrema(2.5)
	histogram := metricdata.Metrics{Name: "rpc.duration", Unit: "s", Data: convHist(hist)}
	summary := metricdata.Metrics{Name: "gc.pause", Unit: "s", Data: metricdata.Summary{DataPoints: []metricdata.SummaryDataPoint{{
		StartTime: convStart, Time: convTime, Count: 1, Sum: 2, QuantileValues: []metricdata.QuantileValue{{Quantile: 0.5, Value: 2}}}}}}

	c, _ := convConverter(t, WithoutMetadata(), WithoutScopeInfo(), WithTypeAndUnitLabels(), WithHistogramMinMax())
	got, err := convRun(t, c, convRM(counter, upDown, ratio, histogram, summary))
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	typed := func(v float64, name, typ, unit string, extra ...string) prompb.TimeSeries {
		l := convL("__name__", name, "__type__", typ)
		if unit != "" {
			l = append(l, "__unit__", unit)
		}
		return convSeries(v, convMillis, l, extra, convIdentity)
	}
	want := []prompb.TimeSeries{
		typed(5, "http_requests_total", "counter", ""),
		typed(3, "queue_size_bytes", "gauge", "bytes"),
		typed(0.5, "cpu_utilization_ratio", "gauge", ""), // unit "1" is no unit, as in the metadata
		typed(1, "rpc_duration_seconds_bucket", "histogram", "seconds", "le", "1"),
		typed(2, "rpc_duration_seconds_bucket", "histogram", "seconds", "le", "+Inf"),
		typed(3, "rpc_duration_seconds_sum", "histogram", "seconds"),
		typed(2, "rpc_duration_seconds_count", "histogram", "seconds"),
		// _min and _max are gauges of the histogram's unit.
		typed(0.5, "rpc_duration_seconds_min", "gauge", "seconds"),
		typed(2.5, "rpc_duration_seconds_max", "gauge", "seconds"),
		typed(2, "gc_pause_seconds", "summary", "seconds", "quantile", "0.5"),
		typed(2, "gc_pause_seconds_sum", "summary", "seconds"),
		typed(1, "gc_pause_seconds_count", "summary", "seconds"),
		convTargetInfo(convMillis), // none on target_info, as Prometheus' OTLP receiver does
	}
	if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

func TestIdentifyingResourceAttributes(t *testing.T) {
	gauge := metricdata.Metrics{Name: "up", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1)}}}
	c, _ := convConverter(t, WithoutMetadata(), WithoutScopeInfo(), WithIdentifyingResourceAttributes())
	got, err := convRun(t, c, convRM(gauge))
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	want := []prompb.TimeSeries{
		convSeries(1, convMillis, convL("__name__", "up"), convIdentity),
		convTargetInfo(convMillis, "service_name", "checkout", "service_namespace", "shop", "service_instance_id", "pod-1"),
	}
	if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

func TestResourceConstantLabels(t *testing.T) {
	gauge := metricdata.Metrics{Name: "up", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1)}}}
	tests := []struct {
		name               string
		included, excluded []string
		want               []string
	}{
		{name: "a pattern", included: []string{"host.*"}, want: convL("host_name", "node-7")},
		{name: "all but excluded", excluded: []string{"service.*", "k8s.?od.restarts"}, want: convL("host_name", "node-7")},
		{name: "excluded wins", included: []string{"*"}, excluded: []string{"*.name", "k8s*"}, want: convL("service_namespace", "shop", "service_instance_id", "pod-1")},
		{name: "nothing matches", included: []string{"host"}},
		{name: "exact keys", included: []string{"service.name", "k8s.pod.restarts"}, want: convL("service_name", "checkout", "k8s_pod_restarts", "2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := convConverter(t, WithoutMetadata(), WithoutScopeInfo(), WithResourceConstantLabels(tt.included, tt.excluded))
			got, err := convRun(t, c, convRM(gauge))
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			want := []prompb.TimeSeries{
				convSeries(1, convMillis, convL("__name__", "up"), tt.want, convIdentity),
				convTargetInfo(convMillis), // which keeps them all
			}
			if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWildcardMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "a/b.c", true},
		{"", "", true},
		{"", "a", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a*c", "ac", true},
		{"a*c", "abcbc", true},
		{"a*c", "abcb", false},
		{"*.name", "service.name", true},
		{"*.name", "service.names", false},
		{"k8s.*.name", "k8s.pod.name", true},
		{"[a]", "[a]", true}, // no character classes: literal
		{"a\\b", "a\\b", true},
		{"**a", "xa", true},
		{"é?", "éü", true}, // runes, not bytes
	}
	for _, tt := range tests {
		if got := wildcardMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestCompatibilityConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		env  map[string]string
		want string
	}{
		{name: "unknown profile", opts: []Option{WithCompatibility(9)}, want: "WithCompatibility(9): unknown profile"},
		{name: "two resource label options", opts: []Option{WithResourceAsLabels(nil), WithResourceConstantLabels([]string{"*"}, nil)},
			want: "WithResourceAsLabels and WithResourceConstantLabels: both choose"},
		{name: "unknown profile in the environment", env: map[string]string{envCompatibility: "grafana"},
			want: envCompatibility + `: unknown compatibility "grafana"; use pull-exporter, prometheus-otlp, mimir-otlp or collector`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := New(append([]Option{WithEndpoint("http://127.0.0.1:9/api/v1/write")}, tt.opts...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestCompatibilityFromEnvironment(t *testing.T) {
	for c := CompatibilityPullExporter; c <= CompatibilityCollector; c++ {
		t.Run(c.String(), func(t *testing.T) {
			t.Setenv(envCompatibility, strings.ToUpper(c.String()))
			cfg, err := newConfig([]Option{WithEndpoint("http://127.0.0.1:9/api/v1/write")})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.compatibility != c {
				t.Errorf("compatibility %v, want %v", cfg.compatibility, c)
			}
		})
	}
	t.Setenv(envCompatibility, "mimir-otlp")
	cfg, err := newConfig([]Option{WithEndpoint("http://127.0.0.1:9/api/v1/write"), WithCompatibility(CompatibilityCollector)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.compatibility != CompatibilityCollector {
		t.Errorf("code's WithCompatibility lost to the environment: %v", cfg.compatibility)
	}
}

// TestWithoutShutdownMarkers: a vanished series still gets its marker; at
// Shutdown none is sent, so a finished job's last values stay queryable.
func TestWithoutShutdownMarkers(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp, err := New(WithEndpoint(srv.URL()), WithoutEnvironment(), WithoutTargetInfo(), WithoutScopeInfo(), WithoutShutdownMarkers())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.UnixMilli(1_700_000_000_000)
	if err := exp.Export(ctx, manyGauges(3, at)); err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(ctx, manyGauges(1, at.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if got := staleIn(t, srv, 2); !cmp.Equal(got, []string{"1", "2"}) {
		t.Errorf("vanished series: stale %v, want [1 2]", got)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := srv.RequestCount(); n != 2 {
		t.Errorf("%d requests, want 2: Shutdown sends no markers", n)
	}
	s, err := srv.Latest("load", map[string]string{"i": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if s.IsStale() || s.Value != 0 {
		t.Errorf("last sample of the remaining series %+v: want its value, not a marker", s)
	}
}

// TestTypeAndUnitLabelsAccepted sends the labels through the exporter to a
// receiver checking the wire rules, which accepts __type__ and __unit__ as
// Prometheus does.
func TestTypeAndUnitLabelsAccepted(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp, err := New(WithEndpoint(srv.URL()), WithoutEnvironment(), WithTypeAndUnitLabels(), WithCompatibility(CompatibilityPrometheusOTLP))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	rm := convRM(metricdata.Metrics{Name: "queue.size", Unit: "By", Data: convSum(false, convPoint[int64](3, attribute.String("_q", "a")))})
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatal(err)
	}
	s, err := srv.Latest("queue_size_bytes", map[string]string{"__type__": "gauge", "__unit__": "bytes", "key_q": "a", "job": "shop/checkout", "instance": "pod-1"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Value != 3 || s.Timestamp != convMillis {
		t.Errorf("sample %+v, want 3 at %d", s, convMillis)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// TestCollectorLabelRules pins where the Collector's translator differs
// from the pull exporter beyond the label namer (its createAttributes):
// colliding attributes with equal values are not repeated, and a scope
// attribute's name is translated with its prefix.
func TestCollectorLabelRules(t *testing.T) {
	scope := instrumentation.Scope{Name: "shop", Attributes: attribute.NewSet(attribute.String("1x", "v"), attribute.String("name", "n"))}
	rm := &metricdata.ResourceMetrics{Resource: convResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Scope: scope, Metrics: []metricdata.Metrics{{
		Name: "up", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](1,
			attribute.String("a.b", "x"), attribute.String("a/b", "x"), attribute.String("a_b", "y"), attribute.String("a:b", "y"))}},
	}}}}}
	tests := []struct {
		profile Compatibility
		want    []string
	}{
		{CompatibilityPullExporter, convL("a_b", "x;x;y;y", "otel_scope_name", "shop", "otel_scope_key_1x", "v")},
		{CompatibilityCollector, convL("a_b", "x;y;y", "otel_scope_name", "shop", "otel_scope_1x", "v")},
	}
	for _, tt := range tests {
		t.Run(tt.profile.String(), func(t *testing.T) {
			c, _ := convConverter(t, WithoutTargetInfo(), WithoutMetadata(), WithCompatibility(tt.profile))
			got, err := convRun(t, c, rm)
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			want := []prompb.TimeSeries{convSeries(1, convMillis, convL("__name__", "up"), tt.want, convIdentity)}
			if diff := cmp.Diff(want, got.Timeseries, convCmpOpts); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOTLPPathLabelRules pins what Prometheus' OTLP receiver and the
// Collector do alike, unlike the pull exporter's rules: attributes starting
// with "__" are labels (but __name__), a resource with neither job nor
// instance has no target_info, and (the Collector) the namespace prefixes
// target_info.
func TestOTLPPathLabelRules(t *testing.T) {
	gauge := metricdata.Metrics{Name: "up", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{
		convPoint[int64](1, attribute.String("__dunder", "d"), attribute.String("__name__", "n"))}}}
	anonymous := func() *metricdata.ResourceMetrics {
		return &metricdata.ResourceMetrics{Resource: resource.NewSchemaless(attribute.String("host.name", "h")),
			ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{gauge}}}}
	}
	tests := []struct {
		name string
		opts []Option
		rm   *metricdata.ResourceMetrics
		want []prompb.TimeSeries
		err  []string
	}{
		{
			name: "pull exporter: __ collapsed, target_info without job and instance",
			rm:   anonymous(),
			want: []prompb.TimeSeries{
				convSeries(1, convMillis, convL("__name__", "up", "_dunder", "d")),
				convSeries(1, convMillis, convL("__name__", "target_info", "host_name", "h")),
			},
			err: []string{`label name "__name__" is reserved`},
		},
		{
			name: "Prometheus OTLP: __ attributes kept but __name__, no target_info without job and instance",
			opts: []Option{WithCompatibility(CompatibilityPrometheusOTLP)},
			rm:   anonymous(),
			want: []prompb.TimeSeries{convSeries(1, convMillis, convL("__name__", "up", "__dunder", "d"))},
			err:  []string{`label name "__name__" is reserved`},
		},
		{
			name: "Collector: namespace on target_info",
			opts: []Option{WithCompatibility(CompatibilityCollector), WithNamespace("my.app")},
			rm: &metricdata.ResourceMetrics{Resource: convResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
				{Name: "v", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{convPoint[int64](2)}}}}}}},
			want: []prompb.TimeSeries{
				convSeries(2, convMillis, convL("__name__", "my_app_v"), convIdentity),
				convSeries(1, convMillis, convL("__name__", "my_app_target_info", "host_name", "node-7", "k8s_pod_restarts", "2"), convIdentity),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := convConverter(t, append([]Option{WithoutMetadata()}, tt.opts...)...)
			got, err := convRun(t, c, tt.rm)
			for _, w := range tt.err {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to say %q", err, w)
				}
			}
			if len(tt.err) == 0 && err != nil {
				t.Errorf("convert: %v", err)
			}
			if diff := cmp.Diff(tt.want, got.Timeseries, convCmpOpts); diff != "" {
				t.Errorf("series (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOpenMetricsFloatLabels: le and quantile as Prometheus 3 stores
// scraped series, so that a pushed registry equals a scraped one.
func TestOpenMetricsFloatLabels(t *testing.T) {
	hist := metricdata.Metrics{Name: "size", Data: convHist(convHistPoint[float64](3, []float64{0.005, 1, 10, 1e6}, []uint64{0, 1, 0, 1, 0}))}
	summary := metricdata.Metrics{Name: "pause", Data: metricdata.Summary{DataPoints: []metricdata.SummaryDataPoint{{
		StartTime: convStart, Time: convTime, Count: 2, Sum: 3, QuantileValues: []metricdata.QuantileValue{{Quantile: 0.5, Value: 1}, {Quantile: 1, Value: 2}}}}}}
	for _, tt := range []struct {
		name      string
		opts      []Option
		le, quant []string
	}{
		{name: "default: shortest decimal", le: []string{"0.005", "1", "10", "1000000", "+Inf"}, quant: []string{"0.5", "1"}},
		{name: "OpenMetrics", opts: []Option{WithOpenMetricsFloatLabels()}, le: []string{"0.005", "1.0", "10.0", "1e+06", "+Inf"}, quant: []string{"0.5", "1.0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := convConverter(t, append([]Option{WithoutTargetInfo(), WithoutMetadata(), WithoutScopeInfo()}, tt.opts...)...)
			got, err := convRun(t, c, convRM(hist, summary))
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			var le, quant []string
			for _, ts := range got.Timeseries {
				for _, l := range ts.Labels {
					switch l.Name {
					case "le":
						le = append(le, l.Value)
					case "quantile":
						quant = append(quant, l.Value)
					}
				}
			}
			if !cmp.Equal(le, tt.le) || !cmp.Equal(quant, tt.quant) {
				t.Errorf("le %q, quantile %q; want %q, %q", le, quant, tt.le, tt.quant)
			}
		})
	}
}
