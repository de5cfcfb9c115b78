package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	prometheustranslator "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheus"
	prwcollector "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/histogram"
	"go.opentelemetry.io/collector/featuregate"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/internal/pdataconv"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestCollectorTranslatorParity converts one collection of every
// instrument kind (compatRecord: the label rules' edge cases, a scope with
// version, schema URL and attributes) twice: with the OpenTelemetry
// Collector's translator library (pkg/translator/prometheusremotewrite
// v0.165.1, what its prometheusremotewrite exporter sends), from the
// Collector's pdata of the same data, and with prwmetric and the
// Collector profile, posted to prwmetrictest. Every series must have the
// same full label set and the same samples (timestamps and values; native
// histograms by schema, zero bucket and every bucket), and each family the
// same metadata, for each pair of equivalent settings.
func TestCollectorTranslatorParity(t *testing.T) {
	profile := prwmetric.WithCompatibility(prwmetric.CompatibilityCollector)
	withSuffixes := prwcollector.Settings{AddMetricSuffixes: true}
	cases := []struct {
		name     string
		settings prwcollector.Settings
		// keepIdentifying turns the Collector's feature gate
		// pkg.translator.prometheus.KeepIdentifyingResourceAttributes on.
		keepIdentifying bool
		res             *resource.Resource
		opts            []prwmetric.Option
	}{
		{name: "defaults", settings: withSuffixes, opts: []prwmetric.Option{profile}},
		{
			name:     "without scope info",
			settings: prwcollector.Settings{AddMetricSuffixes: true, DisableScopeInfo: true},
			opts:     []prwmetric.Option{profile, prwmetric.WithoutScopeInfo()},
		},
		{
			name:     "without target info",
			settings: prwcollector.Settings{AddMetricSuffixes: true, DisableTargetInfo: true},
			opts:     []prwmetric.Option{profile, prwmetric.WithoutTargetInfo()},
		},
		{
			name:     "without suffixes",
			settings: prwcollector.Settings{TranslationStrategy: string(otlptranslator.UnderscoreEscapingWithoutSuffixes)},
			opts:     []prwmetric.Option{profile, prwmetric.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes)},
		},
		{
			name:     "namespace",
			settings: prwcollector.Settings{AddMetricSuffixes: true, Namespace: "my_app"},
			opts:     []prwmetric.Option{profile, prwmetric.WithNamespace("my_app")},
		},
		{
			name:     "external labels",
			settings: prwcollector.Settings{AddMetricSuffixes: true, ExternalLabels: map[string]string{"cluster": "eu-1"}},
			opts:     []prwmetric.Option{profile, prwmetric.WithExternalLabels(map[string]string{"cluster": "eu-1"})},
		},
		{
			name:            "identifying resource attributes on target_info",
			settings:        withSuffixes,
			keepIdentifying: true,
			opts:            []prwmetric.Option{profile, prwmetric.WithIdentifyingResourceAttributes()},
		},
		{
			name:     "resource without service attributes",
			settings: withSuffixes,
			res: resource.NewSchemaless(
				attribute.String("host.name", "e2e-host"),
				attribute.String("_private.attr", "p"),
			),
			opts: []prwmetric.Option{profile},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.keepIdentifying {
				setFeatureGate(t, prometheustranslator.KeepIdentifyingResourceAttributesGate.ID(), true)
			}
			res := tc.res
			if res == nil {
				res = compatResource
			}
			rm := collectOnce(t, res)

			md := pdataconv.ToPdata(rm)
			tsMap, err := prwcollector.FromMetrics(md, tc.settings)
			if err != nil {
				t.Fatalf("Collector FromMetrics: %v", err)
			}
			theirs := map[string][]string{}
			for _, ts := range tsMap {
				ls := map[string]string{}
				for _, l := range ts.Labels {
					ls[l.Name] = l.Value
				}
				k := labelKey(ls)
				for _, s := range ts.Samples {
					theirs[k] = append(theirs[k], fmt.Sprintf("%d %v", s.Timestamp, s.Value))
				}
				for _, h := range ts.Histograms {
					theirs[k] = append(theirs[k], fmt.Sprintf("%d %s", h.Timestamp, renderFloatHistogram(h.ToFloatHistogram())))
				}
			}
			metas, err := prwcollector.OtelMetricsToMetadata(md, tc.settings)
			if err != nil {
				t.Fatalf("Collector OtelMetricsToMetadata: %v", err)
			}
			theirFamilies := map[string]family{}
			for _, m := range metas {
				theirFamilies[m.MetricFamilyName] = family{Type: strings.ToLower(m.Type.String()), Help: m.Help}
			}

			// Lenient: the attributes starting with "__" that both paths
			// keep break prwmetrictest's rule (the pull exporter's), not
			// Prometheus'.
			recv := prwmetrictest.NewServer(prwmetrictest.WithLenient())
			t.Cleanup(recv.Close)
			exp, logs := newExporter(t, recv.URL(), tc.opts...)
			export(t, exp, rm)
			ours := map[string][]string{}
			for _, s := range recv.Series() {
				k := labelKey(s.Labels)
				for _, smp := range s.Samples {
					ours[k] = append(ours[k], fmt.Sprintf("%d %v", smp.Timestamp, smp.Value))
				}
				for _, h := range s.Histograms {
					ours[k] = append(ours[k], fmt.Sprintf("%d %s", h.Timestamp, renderFloatHistogram(h.Histogram)))
				}
			}
			if len(theirs) < 20 {
				t.Fatalf("the Collector's translator made only %d series", len(theirs))
			}
			if diff := diffSets(keysOf(theirs), keysOf(ours)); diff != "" {
				t.Errorf("label sets differ; labels (name=value) only one side has, - the Collector's translator, + prwmetric:\n%s\nseries (- Collector, + prwmetric):\n%s",
					diffLabelPairs(t, keysOf(theirs), keysOf(ours)), firstLines(diff, 12))
			}
			for k, want := range theirs {
				if got, ok := ours[k]; ok && strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s:\n\tCollector %v\n\tprwmetric %v", k, want, got)
				}
			}
			ourFamilies := pushedMetadata(recv, "")
			// The Collector's exporter sends no metadata for target_info
			// (OtelMetricsToMetadata covers the data's metrics only).
			delete(ourFamilies, "target_info")
			delete(ourFamilies, tc.settings.Namespace+"_target_info")
			if d := cmpLines(nil, diffFamilies(theirFamilies, ourFamilies)); d != "" {
				t.Errorf("metadata (type, help), Collector (as \"scraped\") vs prwmetric (\"pushed\"):\n%s", d)
			}
			for _, v := range recv.Violations() {
				if !strings.Contains(v, `label name "__dunder" is reserved`) && !strings.Contains(v, `label name "___triple" is reserved`) {
					t.Errorf("receiver violation: %s", v)
				}
			}
			requireNoWarnings(t, logs)
		})
	}
}

// collectOnce records compatRecord's measurements under res and collects
// them once through a ManualReader.
func collectOnce(t *testing.T, res *resource.Resource) *metricdata.ResourceMetrics {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithView(compatExponential), sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	compatRecord(t, mp)
	var rm metricdata.ResourceMetrics
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return &rm
}

// setFeatureGate sets a Collector feature gate for the test and restores
// it after.
func setFeatureGate(t *testing.T, id string, on bool) {
	t.Helper()
	reg := featuregate.GlobalRegistry()
	var was bool
	found := false
	reg.VisitAll(func(g *featuregate.Gate) {
		if g.ID() == id {
			was, found = g.IsEnabled(), true
		}
	})
	if !found {
		t.Fatalf("no Collector feature gate %q", id)
	}
	if err := reg.Set(id, on); err != nil {
		t.Fatalf("set feature gate %s: %v", id, err)
	}
	t.Cleanup(func() { _ = reg.Set(id, was) })
}

// renderFloatHistogram prints what a native histogram sample carries:
// schema, zero threshold and count, count, sum, and every non-empty bucket
// with its bounds.
func renderFloatHistogram(h *histogram.FloatHistogram) string {
	if h == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "schema=%d zero=%g/%v count=%v sum=%v", h.Schema, h.ZeroThreshold, h.ZeroCount, h.Count, h.Sum)
	var buckets []string
	for it := h.AllBucketIterator(); it.Next(); {
		bk := it.At()
		if bk.Count != 0 {
			buckets = append(buckets, fmt.Sprintf("[%g,%g]=%v", bk.Lower, bk.Upper, bk.Count))
		}
	}
	sort.Strings(buckets)
	b.WriteString(" " + strings.Join(buckets, " "))
	return b.String()
}

// diffLabelPairs lists the name="value" pairs found in the series of only
// one side (- a, + b), each once: the differences in the rules, without
// the series they repeat in.
func diffLabelPairs(t *testing.T, a, b []string) string {
	t.Helper()
	pairs := func(keys []string) []string {
		seen := map[string]bool{}
		var out []string
		for _, k := range keys {
			for n, v := range parseLabelKey(t, k) {
				p := fmt.Sprintf("%s=%q", n, v)
				if n == "__name__" {
					p = v
				}
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}
		return out
	}
	return diffSets(pairs(a), pairs(b))
}

// firstLines returns s cut after n lines.
func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	return strings.Join(lines[:n], "\n") + fmt.Sprintf("\n… %d more lines", len(lines)-n)
}
