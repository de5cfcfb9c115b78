package prwmetric

import (
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// convertExemplars converts OpenTelemetry exemplars, sorted by time. Labels
// are trace_id and span_id in hex plus the filtered attributes, the
// attributes only if all labels together stay within 128 runes (the
// OpenMetrics limit; Prometheus refuses longer ones). An exemplar without a
// time gets the data point's time t.
func convertExemplars[N int64 | float64](c *rules, in []metricdata.Exemplar[N], t int64, p *problems) []prompb.Exemplar {
	if len(in) == 0 {
		return nil
	}
	out := make([]prompb.Exemplar, 0, len(in))
	for _, e := range in {
		ids := map[string]string{}
		if len(e.TraceID) > 0 {
			ids[otlptranslator.ExemplarTraceIDKey] = hex.EncodeToString(e.TraceID)
		}
		if len(e.SpanID) > 0 {
			ids[otlptranslator.ExemplarSpanIDKey] = hex.EncodeToString(e.SpanID)
		}
		labels := sortedLabels(ids)
		if labelRunes(labels) > maxExemplarRunes {
			p.add("exemplar whose trace and span ids exceed %d runes", maxExemplarRunes)
			continue
		}
		if len(e.FilteredAttributes) > 0 {
			attrs := slices.Clone(e.FilteredAttributes)
			slices.SortStableFunc(attrs, func(a, b attribute.KeyValue) int { return strings.Compare(string(a.Key), string(b.Key)) })
			m := map[string]string{}
			c.addAttrs(m, attrs, "", p)
			// The OTLP paths' profiles keep such attribute labels on
			// series; exemplars keep Prometheus' reserved names out.
			for _, k := range slices.Sorted(maps.Keys(m)) {
				if strings.HasPrefix(k, "__") {
					delete(m, k)
					p.add("exemplar attribute label %q dropped: names starting with \"__\" are reserved", k)
				}
			}
			for k, v := range ids {
				m[k] = v
			}
			if all := sortedLabels(m); labelRunes(all) <= maxExemplarRunes {
				labels = all
			}
		}
		ts := t
		if !e.Time.IsZero() {
			ts = e.Time.UnixMilli()
		}
		out = append(out, prompb.Exemplar{Labels: labels, Value: promValue(float64(e.Value)), Timestamp: ts})
	}
	slices.SortStableFunc(out, func(a, b prompb.Exemplar) int { return cmpInt64(a.Timestamp, b.Timestamp) })
	return out
}

// bucketExemplars places each exemplar on the first bucket whose bound is
// at least its value (the +Inf bucket for larger values), as OpenMetrics
// does; the result has one entry per bucket.
func bucketExemplars[N int64 | float64](c *rules, dp metricdata.HistogramDataPoint[N], t int64, p *problems) [][]prompb.Exemplar {
	out := make([][]prompb.Exemplar, len(dp.BucketCounts))
	for _, e := range convertExemplars(c, dp.Exemplars, t, p) {
		i, _ := slices.BinarySearch(dp.Bounds, e.Value)
		out[i] = append(out[i], e)
	}
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func labelRunes(labels []prompb.Label) int {
	n := 0
	for _, l := range labels {
		n += utf8.RuneCountInString(l.Name) + utf8.RuneCountInString(l.Value)
	}
	return n
}
