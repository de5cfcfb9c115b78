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
//
// A traced service can have an exemplar on every bucket of every
// histogram point, each export anew: one string holds the hex ids of all
// the point's exemplars and one array their labels, where a map, two
// strings and a slice per exemplar made exemplars cost five series each.
func convertExemplars[N int64 | float64](c *rules, in []metricdata.Exemplar[N], t int64, p *problems) []prompb.Exemplar {
	if len(in) == 0 {
		return nil
	}
	size := 0
	for i := range in {
		size += hex.EncodedLen(len(in[i].TraceID)) + hex.EncodedLen(len(in[i].SpanID))
	}
	var b strings.Builder
	b.Grow(size)
	var scratch [64]byte
	for i := range in {
		b.Write(hex.AppendEncode(scratch[:0], in[i].TraceID))
		b.Write(hex.AppendEncode(scratch[:0], in[i].SpanID))
	}
	ids := b.String()
	labels := make([]prompb.Label, 0, 2*len(in))
	out := make([]prompb.Exemplar, 0, len(in))
	for i := range in {
		e := &in[i]
		trace := ids[:hex.EncodedLen(len(e.TraceID))]
		span := ids[len(trace) : len(trace)+hex.EncodedLen(len(e.SpanID))]
		ids = ids[len(trace)+len(span):]
		// Sorted by name: span_id, trace_id.
		from := len(labels)
		runes := 0
		if span != "" {
			labels = append(labels, prompb.Label{Name: otlptranslator.ExemplarSpanIDKey, Value: span})
			runes += len(otlptranslator.ExemplarSpanIDKey) + len(span)
		}
		if trace != "" {
			labels = append(labels, prompb.Label{Name: otlptranslator.ExemplarTraceIDKey, Value: trace})
			runes += len(otlptranslator.ExemplarTraceIDKey) + len(trace)
		}
		ls := labels[from:len(labels):len(labels)]
		if runes > maxExemplarRunes {
			p.add("exemplar whose trace and span ids exceed %d runes", maxExemplarRunes)
			continue
		}
		if len(e.FilteredAttributes) > 0 {
			ls = withFilteredAttributes(c, ls, e.FilteredAttributes, p)
		}
		ts := t
		if !e.Time.IsZero() {
			ts = e.Time.UnixMilli()
		}
		out = append(out, prompb.Exemplar{Labels: ls, Value: promValue(float64(e.Value)), Timestamp: ts})
	}
	// Mostly in order already; the check copies no exemplar.
	for i := 1; i < len(out); i++ {
		if out[i].Timestamp < out[i-1].Timestamp {
			slices.SortStableFunc(out, func(a, b prompb.Exemplar) int { return cmpInt64(a.Timestamp, b.Timestamp) })
			break
		}
	}
	return out
}

// withFilteredAttributes returns ids, an exemplar's id labels, with its
// filtered attributes as labels too, when all fit in 128 runes.
func withFilteredAttributes(c *rules, ids []prompb.Label, filtered []attribute.KeyValue, p *problems) []prompb.Label {
	attrs := slices.Clone(filtered)
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
	for _, l := range ids {
		m[l.Name] = l.Value
	}
	if all := sortedLabels(m); labelRunes(all) <= maxExemplarRunes {
		return all
	}
	return ids
}

// bucketExemplars places each exemplar on the first bucket whose bound is
// at least its value (the +Inf bucket for larger values), as OpenMetrics
// does; the result has one entry per bucket, each a part of one array.
func bucketExemplars[N int64 | float64](c *rules, dp metricdata.HistogramDataPoint[N], t int64, p *problems) [][]prompb.Exemplar {
	ex := convertExemplars(c, dp.Exemplars, t, p)
	var scratch [16]int
	buckets := scratch[:0]
	for i := range ex {
		k, _ := slices.BinarySearch(dp.Bounds, ex[i].Value)
		buckets = append(buckets, k)
	}
	// An insertion sort by bucket, stable (a bucket's exemplars stay in
	// time order) and quick on the few exemplars of a point, mostly in
	// bucket order already when their values grow with time.
	for i := 1; i < len(ex); i++ {
		for j := i; j > 0 && buckets[j] < buckets[j-1]; j-- {
			buckets[j], buckets[j-1] = buckets[j-1], buckets[j]
			ex[j], ex[j-1] = ex[j-1], ex[j]
		}
	}
	out := make([][]prompb.Exemplar, len(dp.BucketCounts))
	for i := 0; i < len(ex); {
		n := i + 1
		for n < len(ex) && buckets[n] == buckets[i] {
			n++
		}
		if k := buckets[i]; k < len(out) {
			out[k] = ex[i:n:n]
		}
		i = n
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
