package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	prombridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// clientGolangJob is the job name of the scrape, and the service.name of
// the pushed resource, so that both paths carry the same job label.
const clientGolangJob = "shop-api"

// clientGolangPushOptions are the options that make a client_golang
// registry pushed through the OpenTelemetry bridge read back exactly as a
// scrape of it (see TestClientGolangRegistryPushedAsScraped): label names
// as the registry has them (runs of '_' and a leading '_' kept: the
// Collector profile's label rules), no otel_scope_* labels (the bridge's
// scope is not the application's), and metric names as registered (the
// bridge's metrics carry no unit, and a counter registered without _total
// keeps its name, as a scrape stores it), le and quantile values as
// Prometheus 3 stores scraped ones ("1.0"). With a resource of service.name
// and service.instance.id only, job and instance equal the scrape's and
// there is no target_info.
func clientGolangPushOptions() []prwmetric.Option {
	return []prwmetric.Option{
		prwmetric.WithCompatibility(prwmetric.CompatibilityCollector),
		prwmetric.WithoutScopeInfo(),
		prwmetric.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes),
		prwmetric.WithOpenMetricsFloatLabels(),
	}
}

// newShopRegistry returns a client_golang registry with every metric type
// (counters with and without _total, gauges, a classic histogram, a
// summary), label names with a leading '_' and a run of '_', and fixed
// values.
func newShopRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	orders := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shop_orders_total", Help: "Orders placed.",
	}, []string{"method", "status"})
	legacy := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "shop_legacy_events", Help: "A counter registered without _total.",
	})
	queue := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "shop_queue_length", Help: "Items waiting.",
	}, []string{"queue", "_shard"})
	temp := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "shop_temperature_celsius", Help: "Room temperature.",
		ConstLabels: prometheus.Labels{"room": "server"},
	})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "shop_request_duration_seconds", Help: "Request latency.",
		Buckets: []float64{0.005, 0.1, 1, 2.5, 10, 1e6},
	}, []string{"handler", "status__code"})
	rpc := prometheus.NewSummaryVec(prometheus.SummaryOpts{
		Name: "shop_rpc_latency_seconds", Help: "RPC latency.",
		Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001},
	}, []string{"service"})
	reg.MustRegister(orders, legacy, queue, temp, latency, rpc)

	orders.WithLabelValues("GET", "200").Add(5)
	orders.WithLabelValues("POST", "500").Add(2)
	legacy.Add(7)
	queue.WithLabelValues("mail", "a").Set(3)
	queue.WithLabelValues("sms", "b").Set(-1.5)
	temp.Set(21.25)
	for i, v := range []float64{0.001, 0.05, 0.2, 0.7, 1, 3, 12} {
		latency.WithLabelValues("/checkout", strconv.Itoa(200+100*(i%2))).Observe(v)
	}
	for i := range 50 {
		rpc.WithLabelValues("billing").Observe(float64(i) / 100)
	}
	return reg
}

// TestClientGolangRegistryPushedAsScraped pushes a client_golang registry
// through go.opentelemetry.io/contrib/bridges/prometheus (a producer on the
// PeriodicReader) and prwmetric into Prometheus 3, lets a second Prometheus
// 3 scrape the same registry (promhttp, job shop-api), and compares every
// series both hold (names, full label sets, values) and each family's type
// and help (scrape metadata against the metadata prwmetric sends).
//
// With clientGolangPushOptions they are identical. With prwmetric's
// defaults and the SDK's default resource the differences are the ones the
// "defaults" case lists: otel_scope_name on every series, runs of '_'
// collapsed, _total added to a counter registered without it, a
// target_info with the telemetry.sdk.* attributes, and the text of le (and
// quantile) values: a scrape stores them as the text exposition writes
// them, Go's %g ("1e+06"), and Prometheus 3 then normalizes them to
// OpenMetrics form ("1" → "1.0", model/textparse
// normalizeFloatsInLabelValues); prwmetric by default, like the Collector
// and Prometheus' own OTLP receiver, sends the shortest decimal without
// exponent ("1", "1000000"). That case requires exactly those rewrites.
func TestClientGolangRegistryPushedAsScraped(t *testing.T) {
	reg := newShopRegistry(t)
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(target.Close)
	targetHost := strings.TrimPrefix(target.URL, "http://")

	scraper := startPrometheus3(t, promConfig{config: fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%q]
`, clientGolangJob, targetHost)})
	awaitQuery(t, scraper, fmt.Sprintf(`count({job=%q,__name__=~"shop_.*"})`, clientGolangJob), func(v float64) bool { return v > 0 })

	// The resource a service pushing its registry would set: what its
	// scrape job and target were.
	pushResource := resource.NewSchemaless(
		attribute.String("service.name", clientGolangJob),
		attribute.String("service.instance.id", targetHost),
	)

	cases := []struct {
		name     string
		opts     []prwmetric.Option
		resource *resource.Resource
		// adjust turns a scraped series' labels into the pushed
		// series' labels: the documented differences of the case.
		adjust func(ls map[string]string)
		// pushedOnly are the series only the push has (target_info).
		pushedOnly []string
		// families maps a scraped family name to the pushed one.
		families map[string]string
		// shortestFloats: the push writes le and quantile as the
		// shortest decimal, not as Prometheus 3 stores scraped ones.
		shortestFloats bool
	}{
		{
			// What a user gets by adding the bridge to a reader with
			// prwmetric's defaults and the SDK's default resource.
			name:     "defaults",
			resource: mustMerge(t, resource.Default(), pushResource),
			adjust: func(ls map[string]string) {
				// The bridge's scope becomes a label of every series.
				ls["otel_scope_name"] = "go.opentelemetry.io/contrib/bridges/prometheus"
				// The pull exporter's rules collapse runs of '_'.
				if v, ok := ls["status__code"]; ok {
					delete(ls, "status__code")
					ls["status_code"] = v
				}
				// A counter's name gets _total.
				if ls["__name__"] == "shop_legacy_events" {
					ls["__name__"] = "shop_legacy_events_total"
				}
			},
			pushedOnly: []string{labelKey(map[string]string{
				"__name__": "target_info", "job": clientGolangJob, "instance": targetHost,
				"telemetry_sdk_language": "go", "telemetry_sdk_name": "opentelemetry", "telemetry_sdk_version": sdkVersion(t),
			})},
			families:       map[string]string{"shop_legacy_events": "shop_legacy_events_total"},
			shortestFloats: true,
		},
		{
			name:     "recommended options",
			opts:     clientGolangPushOptions(),
			resource: pushResource,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pushed := startPrometheus3(t, promConfig{})
			recv := prwmetrictest.NewServer()
			t.Cleanup(recv.Close)
			promExp, logs := newExporter(t, pushed.writeURL(), tc.opts...)
			recvExp, _ := newExporter(t, recv.URL(), tc.opts...)
			producer := func() sdkmetric.Producer {
				return prombridge.NewMetricProducer(prombridge.WithGatherer(reg))
			}
			mp := sdkmetric.NewMeterProvider(
				sdkmetric.WithResource(tc.resource),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(promExp, sdkmetric.WithInterval(time.Hour), sdkmetric.WithProducer(producer()))),
				sdkmetric.WithReader(sdkmetric.NewPeriodicReader(recvExp, sdkmetric.WithInterval(time.Hour), sdkmetric.WithProducer(producer()))),
			)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := mp.ForceFlush(ctx); err != nil {
				t.Fatalf("ForceFlush: %v", err)
			}
			// Shutdown would send staleness markers; the comparison reads
			// the latest values, so it comes first.
			at := time.Now()
			got := pushed.queryVector(t, `{__name__=~"shop_.*|target_info"}`, at)
			scraped := scraper.queryVector(t, fmt.Sprintf(`{job=%q,__name__=~"shop_.*|target_info"}`, clientGolangJob), at)
			if len(scraped) != 29 {
				t.Fatalf("%d series scraped, want 29: %v", len(scraped), keysOf(scraped))
			}
			want, normalized := scrapedAsPushed(t, scraped, tc.adjust, tc.shortestFloats)
			for _, k := range tc.pushedOnly {
				if _, ok := got[k]; ok {
					want[k] = got[k]
				}
			}
			if d := cmpLines(nil, diffSeries(want, got)); d != "" {
				t.Errorf("scrape (adjusted by the case's documented differences) vs push:\n%s", d)
			}
			for _, k := range tc.pushedOnly {
				if _, ok := got[k]; !ok {
					t.Errorf("pushed series %s missing", k)
				}
			}
			// A scrape stores le as the text exposition writes it ("1e+06",
			// Go's %g) and Prometheus 3 then normalizes it to OpenMetrics
			// form ("1" → "1.0"); a push, like every OTLP path, sends the
			// shortest decimal without exponent ("1", "1000000").
			wantNorm := []string{"1 → 1.0", "10 → 10.0", "1000000 → 1e+06"}
			if !tc.shortestFloats {
				wantNorm = []string{}
			}
			if !slicesEqual(normalized, wantNorm) {
				t.Errorf("Prometheus 3 normalized these le/quantile values of the scrape: %v, want %v", normalized, wantNorm)
			}

			wantFam := map[string]family{}
			for n, f := range scraper.scrapeMetadata(t, "shop_") {
				if r, ok := tc.families[n]; ok {
					n = r
				}
				wantFam[n] = f
			}
			if d := cmpLines(nil, diffFamilies(wantFam, pushedMetadata(recv, "shop_"))); d != "" {
				t.Errorf("families (type, help), scrape vs push:\n%s", d)
			}
			if v := recv.Violations(); len(v) > 0 {
				t.Errorf("receiver violations: %v", v)
			}
			requireNoWarnings(t, logs)
			if err := mp.Shutdown(ctx); err != nil {
				t.Errorf("MeterProvider.Shutdown: %v", err)
			}
		})
	}
}

// scrapedAsPushed rewrites the scraped series' label sets with adjust and,
// with shortest, turns the le and quantile values Prometheus 3 normalized
// ("1.0") back into the registry's text ("1"), listing each such rewrite
// once, sorted.
func scrapedAsPushed(t *testing.T, scraped map[string]float64, adjust func(map[string]string), shortest bool) (map[string]float64, []string) {
	t.Helper()
	out := map[string]float64{}
	seen := map[string]bool{}
	for k, v := range scraped {
		ls := parseLabelKey(t, k)
		for _, n := range []string{"le", "quantile"} {
			s, ok := ls[n]
			if !ok {
				continue
			}
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s=%q in %s: %v", n, s, k, err)
			}
			if r := strconv.FormatFloat(f, 'f', -1, 64); shortest && r != s && s != "+Inf" {
				seen[r+" → "+s] = true
				ls[n] = r
			}
		}
		if adjust != nil {
			adjust(ls)
		}
		out[labelKey(ls)] = v
	}
	normalized := make([]string, 0, len(seen))
	for s := range seen {
		normalized = append(normalized, s)
	}
	sort.Strings(normalized)
	return out, normalized
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sdkVersion is the OpenTelemetry SDK version the default resource names.
func sdkVersion(t *testing.T) string {
	t.Helper()
	v, ok := resource.Default().Set().Value("telemetry.sdk.version")
	if !ok {
		t.Fatal("the default resource has no telemetry.sdk.version")
	}
	return v.AsString()
}

// awaitQuery runs query against s until its single result satisfies ok,
// for at most 30 s (a scrape every second makes that plenty).
func awaitQuery(t *testing.T, s *promServer, query string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		res := s.queryVector(t, query, time.Now())
		for _, v := range res {
			if ok(v) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not give the awaited value within 30 s (last: %v)", s.name, query, res)
		}
		<-tick.C
	}
}

// diffSeries lists, in order, each series only one side has and each
// value that differs.
func diffSeries(want, got map[string]float64) []string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, "only scraped: "+k)
		case g != w:
			out = append(out, fmt.Sprintf("value of %s: scraped %v, pushed %v", k, w, g))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			out = append(out, "only pushed: "+k)
		}
	}
	sort.Strings(out)
	return out
}

// parseLabelKey inverts labelKey.
func parseLabelKey(t *testing.T, k string) map[string]string {
	t.Helper()
	name, rest, ok := strings.Cut(k, "{")
	if !ok || !strings.HasSuffix(rest, "}") {
		t.Fatalf("not a label key: %s", k)
	}
	rest = strings.TrimSuffix(rest, "}")
	ls := map[string]string{"__name__": name}
	for rest != "" {
		n, after, ok := strings.Cut(rest, "=")
		if !ok {
			t.Fatalf("not a label key: %s", k)
		}
		v, tail, err := unquotePrefix(after)
		if err != nil {
			t.Fatalf("label key %s: %v", k, err)
		}
		ls[n] = v
		rest = strings.TrimPrefix(tail, ",")
	}
	return ls
}

// unquotePrefix unquotes the Go-quoted string at the start of s and returns
// it and what follows.
func unquotePrefix(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	v, err := strconv.Unquote(q)
	return v, s[len(q):], err
}

// cmpLines returns "" when got equals want (as sets of lines), else the
// lines only in one of them.
func cmpLines(want, got []string) string {
	w := map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	g := map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	var b strings.Builder
	for _, l := range got {
		if !w[l] {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	for _, l := range want {
		if !g[l] {
			fmt.Fprintf(&b, "- %s (expected, not found)\n", l)
		}
	}
	return b.String()
}

// family is a metric family's type and help.
type family struct{ Type, Help string }

// scrapeMetadata returns the type and help Prometheus keeps from its
// scrapes for the families whose names start with prefix.
func (s *promServer) scrapeMetadata(t *testing.T, prefix string) map[string]family {
	t.Helper()
	data := s.get(t, "/api/v1/metadata", url.Values{})
	var res map[string][]struct {
		Type string `json:"type"`
		Help string `json:"help"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%s: decode metadata: %v\n%s", s.name, err, data)
	}
	out := map[string]family{}
	for name, ms := range res {
		if strings.HasPrefix(name, prefix) && len(ms) > 0 {
			out[name] = family{Type: ms[0].Type, Help: ms[0].Help}
		}
	}
	return out
}

// pushedMetadata returns the type and help prwmetric sent for the families
// whose names start with prefix.
func pushedMetadata(recv *prwmetrictest.Server, prefix string) map[string]family {
	out := map[string]family{}
	for _, m := range recv.Metadata() {
		if strings.HasPrefix(m.MetricFamilyName, prefix) {
			out[m.MetricFamilyName] = family{Type: m.Type, Help: m.Help}
		}
	}
	return out
}

func diffFamilies(scraped, pushed map[string]family) []string {
	var out []string
	for n, s := range scraped {
		p, ok := pushed[n]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("only scraped: %s %s %q", n, s.Type, s.Help))
		case p != s:
			out = append(out, fmt.Sprintf("%s: scraped %s %q, pushed %s %q", n, s.Type, s.Help, p.Type, p.Help))
		}
	}
	for n, p := range pushed {
		if _, ok := scraped[n]; !ok {
			out = append(out, fmt.Sprintf("only pushed: %s %s %q", n, p.Type, p.Help))
		}
	}
	sort.Strings(out)
	return out
}

func mustMerge(t *testing.T, a, b *resource.Resource) *resource.Resource {
	t.Helper()
	r, err := resource.Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
