package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric"
)

// compatResource exercises the resource rules: service.* (job, instance,
// and whether target_info keeps them), attributes to promote by name and
// by pattern, one with a leading '_', one not a string.
var compatResource = resource.NewSchemaless(
	attribute.String("service.namespace", "shop"),
	attribute.String("service.name", "checkout"),
	attribute.String("service.instance.id", "checkout-1"),
	attribute.String("host.name", "e2e-host"),
	attribute.String("host.arch", "amd64"),
	attribute.String("deployment.environment.name", "test"),
	attribute.String("_private.attr", "p"),
	attribute.Int("process.pid", 42),
)

// compatAttrs exercises the label name rules: a leading '_' (Prometheus'
// OTLP receiver makes it key_…), runs of '_' in the name and made of dots
// (preserved by the OTLP receiver and the Collector, collapsed by the pull
// exporter), a leading digit (key_…), names that collide after translation
// (values joined with ';' in key order; equal values: the Collector keeps
// one, Prometheus joins both), an empty value (no label), a name starting
// with "__" (kept as it is by both paths, which the pull exporter's rules
// refuse).
var compatAttrs = []attribute.KeyValue{
	attribute.String("_leading", "l"),
	attribute.String("double__under", "du"),
	attribute.String("dots.in.name", "dn"),
	attribute.String("dots..twice", "dt"),
	attribute.String("9digits", "nd"),
	attribute.String("a.b", "x"),
	attribute.String("a_b", "y"),
	attribute.String("c.d", "same"),
	attribute.String("c_d", "same"),
	attribute.String("empty", ""),
	attribute.String("__dunder", "d"),
	attribute.String("___triple", "t"),
	attribute.Int("http.response.status_code", 200),
}

// compatRecord records every instrument kind once, in a scope with a
// version, a schema URL and attributes, with compatAttrs and a second,
// plain attribute set.
func compatRecord(t *testing.T, mp metric.MeterProvider) {
	t.Helper()
	m := mp.Meter("github.com/prwmetric/prwmetric/e2e/compat",
		metric.WithInstrumentationVersion("v1.2.3"),
		metric.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0"),
		metric.WithInstrumentationAttributes(attribute.String("scope.attr", "s"), attribute.String("_scope.lead", "sl")),
	)
	ctx := context.Background()
	tricky := metric.WithAttributes(compatAttrs...)
	plain := metric.WithAttributes(attribute.String("http.request.method", "GET"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	requests, err := m.Float64Counter("compat.requests", metric.WithUnit("{request}"), metric.WithDescription("Requests served."))
	must(err)
	requests.Add(ctx, 5.5, tricky)
	requests.Add(ctx, 2, plain)

	sent, err := m.Int64Counter("compat.sent", metric.WithUnit("By"), metric.WithDescription("Bytes sent."))
	must(err)
	sent.Add(ctx, 1024, tricky)

	busy, err := m.Float64Counter("compat.busy", metric.WithUnit("s"))
	must(err)
	busy.Add(ctx, 0.25, plain)

	queue, err := m.Int64UpDownCounter("compat.queue", metric.WithUnit("{item}"))
	must(err)
	queue.Add(ctx, 7, tricky)
	queue.Add(ctx, -3, plain)

	temp, err := m.Float64Gauge("compat.temperature", metric.WithUnit("Cel"))
	must(err)
	temp.Record(ctx, -4.5, tricky)

	util, err := m.Float64Gauge("compat.utilization", metric.WithUnit("1"))
	must(err)
	util.Record(ctx, 0.75, plain)

	latency, err := m.Float64Histogram("compat.latency", metric.WithUnit("ms"),
		metric.WithExplicitBucketBoundaries(1, 10, 100))
	must(err)
	for _, v := range []float64{0.5, 3, 30, 300} {
		latency.Record(ctx, v, tricky)
	}
	latency.Record(ctx, 7, plain)

	size, err := m.Int64Histogram("compat.size", metric.WithUnit("By"))
	must(err)
	for _, v := range []int64{0, 1, 3, 100, 4096} {
		size.Record(ctx, v, tricky)
	}
}

// compatExponential makes compat.size a base-2 exponential histogram on
// both readers (a native histogram on both paths).
var compatExponential = sdkmetric.NewView(sdkmetric.Instrument{Name: "compat.size"},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})

// TestPrometheusOTLPParity feeds one MeterProvider to two readers: the
// OpenTelemetry OTLP/HTTP exporter into Prometheus 3's OTLP receiver
// (--web.enable-otlp-receiver, the otlp: block of the case), and prwmetric
// with the Prometheus-OTLP profile (and the case's options) over Remote
// Write into a second Prometheus 3. Both then hold exactly the same series:
// /api/v1/series gives the same label sets (names, every label), and an
// instant query at one time gives the same value for each (floats, and
// native histograms bucket by bucket). Each reader collects on its own, so
// sample timestamps differ by the milliseconds between the collections;
// the values do not, as nothing is recorded in between.
func TestPrometheusOTLPParity(t *testing.T) {
	profile := prwmetric.WithCompatibility(prwmetric.CompatibilityPrometheusOTLP)
	cases := []struct {
		name string
		// otlp is the otlp: block of the OTLP receiver's configuration
		// ("" for the defaults).
		otlp string
		// flags are more flags for both servers.
		flags []string
		opts  []prwmetric.Option
		// res replaces compatResource.
		res *resource.Resource
	}{
		{name: "defaults", opts: []prwmetric.Option{profile}},
		{name: "defaults over Remote Write 2.0", opts: []prwmetric.Option{profile, prwmetric.WithProtocol(prwmetric.ProtocolV2)}},
		{
			name: "identifying resource attributes on target_info",
			otlp: "  keep_identifying_resource_attributes: true\n",
			opts: []prwmetric.Option{profile, prwmetric.WithIdentifyingResourceAttributes()},
		},
		{
			name: "resource attributes promoted by name and pattern",
			otlp: "  promote_resource_attributes: [host.name, host.arch, _private.attr]\n",
			opts: []prwmetric.Option{profile, prwmetric.WithResourceConstantLabels([]string{"host.*", "_private.attr"}, nil)},
		},
		{
			name: "all resource attributes promoted but some",
			otlp: "  promote_all_resource_attributes: true\n  ignore_resource_attributes: [process.pid, host.arch]\n",
			opts: []prwmetric.Option{profile, prwmetric.WithResourceConstantLabels([]string{"*"}, []string{"process.pid", "host.a?ch"})},
		},
		{
			// Mimir's OTLP endpoint is Prometheus' translator with
			// -distributor.otel-metric-suffixes-enabled=false by default:
			// the Mimir profile against a Prometheus set up the same way.
			name: "Mimir profile vs translation_strategy UnderscoreEscapingWithoutSuffixes",
			otlp: "  translation_strategy: UnderscoreEscapingWithoutSuffixes\n",
			opts: []prwmetric.Option{prwmetric.WithCompatibility(prwmetric.CompatibilityMimirOTLP)},
		},
		{
			name:  "type and unit labels",
			flags: []string{"--enable-feature=type-and-unit-labels"},
			opts:  []prwmetric.Option{profile, prwmetric.WithTypeAndUnitLabels()},
		},
		{
			// Without service.name and service.instance.id there is no job
			// or instance, and then no target_info.
			name: "resource without service attributes",
			opts: []prwmetric.Option{profile},
			res: resource.NewSchemaless(
				attribute.String("host.name", "e2e-host"),
				attribute.String("_private.attr", "p"),
			),
		},
		{
			name: "identifying attributes and promotion together",
			otlp: "  keep_identifying_resource_attributes: true\n  promote_resource_attributes: [service.name, deployment.environment.name]\n",
			opts: []prwmetric.Option{profile, prwmetric.WithIdentifyingResourceAttributes(),
				prwmetric.WithResourceConstantLabels([]string{"service.name", "deployment.*"}, nil)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config := minimalPromConfig
			if tc.otlp != "" {
				config += "otlp:\n" + tc.otlp
			}
			otlpServer := startPrometheus3(t, promConfig{config: config,
				extraArgs: append([]string{"--web.enable-otlp-receiver"}, tc.flags...)})
			rwServer := startPrometheus3(t, promConfig{extraArgs: tc.flags})

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			otlpExp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(otlpServer.baseURL+"/api/v1/otlp/v1/metrics"))
			if err != nil {
				t.Fatalf("otlpmetrichttp.New: %v", err)
			}
			prwExp, logs := newExporter(t, rwServer.writeURL(), tc.opts...)
			res := tc.res
			if res == nil {
				res = compatResource
			}
			mp := sdkmetric.NewMeterProvider(
				sdkmetric.WithResource(res),
				sdkmetric.WithView(compatExponential),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(otlpExp, sdkmetric.WithInterval(time.Hour))),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(prwExp, sdkmetric.WithInterval(time.Hour))),
			)
			compatRecord(t, mp)
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatalf("ForceFlush: %v", err)
			}
			at := time.Now().Add(time.Second)

			viaOTLP := otlpServer.allSeries(t, at)
			viaRW := rwServer.allSeries(t, at)
			if len(viaOTLP) < 20 {
				t.Fatalf("only %d series via OTLP: %v", len(viaOTLP), viaOTLP)
			}
			if diff := diffSets(viaOTLP, viaRW); diff != "" {
				t.Errorf("/api/v1/series (- only via the Prometheus OTLP receiver, + only via prwmetric):\n%s", diff)
			}
			if diff := diffValues(otlpServer.instantAll(t, at), rwServer.instantAll(t, at)); diff != "" {
				t.Errorf("values at one time (- Prometheus OTLP receiver, + prwmetric):\n%s", diff)
			}
			requireNoWarnings(t, logs)
			// Staleness markers at Shutdown would hide the series from
			// the queries above; it comes after them.
			if err := mp.Shutdown(ctx); err != nil {
				t.Errorf("MeterProvider.Shutdown: %v", err)
			}
		})
	}
}

// allSeries returns every series' label set (labelKey) that Prometheus
// holds from the hour before at, sorted.
func (s *promServer) allSeries(t *testing.T, at time.Time) []string {
	t.Helper()
	data := s.get(t, "/api/v1/series", url.Values{
		"match[]": {`{__name__=~".+"}`},
		"start":   {promTime(at.Add(-time.Hour))},
		"end":     {promTime(at)},
	})
	var res []map[string]string
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%s: decode series: %v\n%s", s.name, err, data)
	}
	out := make([]string, 0, len(res))
	for _, ls := range res {
		out = append(out, labelKey(ls))
	}
	sort.Strings(out)
	return out
}

// instantAll returns the value of every series at at: a float as text, a
// native histogram as count, sum and its buckets.
func (s *promServer) instantAll(t *testing.T, at time.Time) map[string]string {
	t.Helper()
	data := s.get(t, "/api/v1/query", url.Values{"query": {`{__name__=~".+"}`}, "time": {promTime(at)}})
	var res struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric    map[string]string `json:"metric"`
			Value     []json.RawMessage `json:"value"`
			Histogram []json.RawMessage `json:"histogram"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%s: decode vector: %v\n%s", s.name, err, data)
	}
	out := map[string]string{}
	for _, r := range res.Result {
		k := labelKey(r.Metric)
		switch {
		case len(r.Value) == 2:
			out[k] = fmt.Sprint(parseValue(t, r.Value[1]))
		case len(r.Histogram) == 2:
			h := parseHistogram(t, r.Histogram[0], r.Histogram[1])
			var b strings.Builder
			fmt.Fprintf(&b, "count=%v sum=%v", h.Count, h.Sum)
			for _, bk := range h.Buckets {
				fmt.Fprintf(&b, " %d:(%g,%g]=%v", bk.Rule, bk.Lower, bk.Upper, bk.Count)
			}
			out[k] = b.String()
		default:
			t.Fatalf("%s: result for %s has neither value nor histogram", s.name, k)
		}
	}
	return out
}

// diffSets lists the lines only in a (prefixed "- ") and only in b ("+ "),
// sorted; "" when the sets are equal.
func diffSets(a, b []string) string {
	in := func(ss []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range ss {
			m[s] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for s := range ma {
		if !mb[s] {
			out = append(out, "- "+s)
		}
	}
	for s := range mb {
		if !ma[s] {
			out = append(out, "+ "+s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] || out[i][2:] == out[j][2:] && out[i] < out[j] })
	return strings.Join(out, "\n")
}

// diffValues lists the series whose values differ, and the series only one
// side has; "" when a equals b.
func diffValues(a, b map[string]string) string {
	var out []string
	for k, va := range a {
		vb, ok := b[k]
		switch {
		case !ok:
			out = append(out, "- "+k+" "+va)
		case va != vb:
			out = append(out, fmt.Sprintf("  %s\n\t- %s\n\t+ %s", k, va, vb))
		}
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "+ "+k+" "+vb)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return strings.Join(out, "\n")
}
