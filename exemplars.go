package prwmetric

import (
	"cmp"
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

// convertExemplars converts OpenTelemetry exemplars, sorted by time and
// value (cmpExemplars). Labels
// are trace_id and span_id in hex plus the filtered attributes, the
// attributes only if all labels together stay within 128 runes (the
// OpenMetrics limit; Prometheus refuses longer ones). An exemplar without a
// time gets the data point's time t. The result is x's, good until the
// metric's conversion ends (exemplarScratch).
func convertExemplars[N int64 | float64](c *rules, in []metricdata.Exemplar[N], t int64, p *problems, x *exemplarScratch) []prompb.Exemplar {
	if len(in) == 0 {
		return nil
	}
	x.used = true
	size := 0
	for i := range in {
		size += hex.EncodedLen(len(in[i].TraceID)) + hex.EncodedLen(len(in[i].SpanID))
	}
	x.ids.Grow(size)
	from := x.ids.Len()
	var scratch [64]byte
	for i := range in {
		x.ids.Write(hex.AppendEncode(scratch[:0], in[i].TraceID))
		x.ids.Write(hex.AppendEncode(scratch[:0], in[i].SpanID))
	}
	// Earlier strings stay good: the builder only appends.
	ids := x.ids.String()[from:]
	first := len(x.out)
	for i := range in {
		e := &in[i]
		trace := ids[:hex.EncodedLen(len(e.TraceID))]
		span := ids[len(trace) : len(trace)+hex.EncodedLen(len(e.SpanID))]
		ids = ids[len(trace)+len(span):]
		// Sorted by name: span_id, trace_id.
		at := len(x.labels)
		runes := 0
		if span != "" {
			x.labels = append(x.labels, prompb.Label{Name: otlptranslator.ExemplarSpanIDKey, Value: span})
			runes += len(otlptranslator.ExemplarSpanIDKey) + len(span)
		}
		if trace != "" {
			x.labels = append(x.labels, prompb.Label{Name: otlptranslator.ExemplarTraceIDKey, Value: trace})
			runes += len(otlptranslator.ExemplarTraceIDKey) + len(trace)
		}
		labels := x.labels[at:len(x.labels):len(x.labels)]
		if runes > maxExemplarRunes {
			p.add("exemplar whose trace and span ids exceed %d runes", maxExemplarRunes)
			continue
		}
		if len(e.FilteredAttributes) > 0 {
			labels = withFilteredAttributes(c, labels, e.FilteredAttributes, p)
		}
		ts := t
		if !e.Time.IsZero() {
			ts = e.Time.UnixMilli()
		}
		x.out = append(x.out, prompb.Exemplar{Labels: labels, Value: promValue(float64(e.Value)), Timestamp: ts})
	}
	out := x.out[first:len(x.out):len(x.out)]
	// Mostly in order already; the check copies no exemplar.
	for i := 1; i < len(out); i++ {
		if cmpExemplars(out[i-1], out[i]) > 0 {
			slices.SortStableFunc(out, cmpExemplars)
			break
		}
	}
	return out
}

// cmpExemplars orders exemplars as Prometheus accepts them in one series:
// by time, then value. A native histogram's exemplars may share a
// millisecond (several buckets hit at once); in ascending value Prometheus
// takes them all, and refuses the request for one out of that order.
func cmpExemplars(a, b prompb.Exemplar) int {
	if c := cmpInt64(a.Timestamp, b.Timestamp); c != 0 {
		return c
	}
	return cmp.Compare(a.Value, b.Value)
}

// exemplarScratch holds the exemplars of the metric being converted:
// their hex ids, labels and per-bucket slices. A traced service can have
// an exemplar on every bucket of every histogram point, each export anew;
// a map, two strings and two slices per exemplar made them cost five
// series each. The arrays are reused from metric to metric (reset), the
// ids' string is one per metric: the exemplars are encoded into the batch
// before the metric's conversion ends, and nothing keeps them after.
type exemplarScratch struct {
	ids     strings.Builder
	labels  []prompb.Label
	out     []prompb.Exemplar
	buckets [][]prompb.Exemplar
	used    bool
}

// reset empties x for the next metric, keeping none of the last one's
// exemplars alive.
func (x *exemplarScratch) reset() {
	if !x.used {
		return
	}
	x.ids = strings.Builder{}
	clear(x.labels)
	clear(x.out)
	clear(x.buckets)
	x.labels, x.out, x.buckets, x.used = x.labels[:0], x.out[:0], x.buckets[:0], false
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
// does; the result has one entry per bucket, each a part of one array, all
// x's (see convertExemplars).
func bucketExemplars[N int64 | float64](c *rules, dp metricdata.HistogramDataPoint[N], t int64, p *problems, x *exemplarScratch) [][]prompb.Exemplar {
	ex := convertExemplars(c, dp.Exemplars, t, p, x)
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
	n := len(dp.BucketCounts)
	at := len(x.buckets)
	x.buckets = slices.Grow(x.buckets, n)[:at+n]
	out := x.buckets[at : at+n : at+n]
	for i := 0; i < len(ex); {
		end := i + 1
		for end < len(ex) && buckets[end] == buckets[i] {
			end++
		}
		if k := buckets[i]; k < len(out) {
			out[k] = ex[i:end:end]
		}
		i = end
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
