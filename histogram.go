package prwmetric

import (
	"fmt"
	"math"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Native histograms (SPEC §3): an OpenTelemetry base-2 exponential histogram
// of scale s is a Prometheus native histogram of schema s, with bucket index
// i+1 for OpenTelemetry's index i (OpenTelemetry indexes a bucket by its
// lower bound, Prometheus by its upper bound).
const (
	// Prometheus knows schemas -4 (coarsest) to 8 (finest).
	minNativeSchema = -4
	maxNativeSchema = 8
	// defaultZeroThreshold is used when the data point has none: the
	// OpenTelemetry SDK counts only exact zeros in the zero bucket, and
	// Prometheus' own OTLP receiver uses the same width.
	defaultZeroThreshold = 1e-128
	// maxSpanGap is the most empty buckets kept inside one span; a longer
	// run of empty buckets starts a new span, as client_golang encodes.
	maxSpanGap = 2
)

// nativeParts is an integer native histogram: the fields of a
// prompb.Histogram that the conversion sets (the reset hint is always
// UNKNOWN). The encoder writes it without building the prompb message.
type nativeParts struct {
	count, zeroCount     uint64
	sum, zeroThreshold   float64
	schema               int32
	negSpans, posSpans   []bucketSpan
	negDeltas, posDeltas []int64
	timestamp            int64
	// customValues are the bucket bounds of a custom-bucket histogram.
	customValues []float64
}

// identity stands for the histogram where restamp compares values: its
// count and sum, which, cumulative, change whenever a bucket does. The
// record of a native histogram carries it as its value, which no request
// encodes.
func (h *nativeParts) identity() float64 {
	return math.Float64frombits(math.Float64bits(h.sum) ^ h.count*0x9e3779b97f4a7c15)
}

// nativeScratch holds the buffers buildNative works in, so that converting
// native histograms export after export allocates nothing once they have
// grown. The slices of a nativeParts point into it until the next build.
type nativeScratch struct {
	posCounts, negCounts []uint64
	negSpans, posSpans   []bucketSpan
	negDeltas, posDeltas []int64
}

// bucketSpan is a prompb.BucketSpan without the message's bookkeeping
// fields: 8 bytes instead of 40, and a sparse histogram has a span every
// few buckets.
type bucketSpan struct {
	offset int32
	length uint32
}

// buildNative converts dp into s's buffers, or returns why Prometheus would
// refuse it.
func buildNative[N int64 | float64](dp *metricdata.ExponentialHistogramDataPoint[N], s *nativeScratch) (nativeParts, string) {
	scale := dp.Scale
	if scale < minNativeSchema {
		return nativeParts{}, fmt.Sprintf("data point with scale %d: Prometheus native histograms have scales %d to %d", scale, minNativeSchema, maxNativeSchema)
	}
	pos := expBuckets{offset: int64(dp.PositiveBucket.Offset), counts: dp.PositiveBucket.Counts}
	neg := expBuckets{offset: int64(dp.NegativeBucket.Offset), counts: dp.NegativeBucket.Counts}
	if scale > maxNativeSchema {
		var ok1, ok2 bool
		pos, ok1 = pos.downscale(uint32(scale-maxNativeSchema), &s.posCounts)
		neg, ok2 = neg.downscale(uint32(scale-maxNativeSchema), &s.negCounts)
		if !ok1 || !ok2 {
			return nativeParts{}, "data point whose merged bucket counts overflow uint64"
		}
		scale = maxNativeSchema
	}
	zeroThreshold := dp.ZeroThreshold
	switch {
	case math.IsNaN(zeroThreshold) || math.IsInf(zeroThreshold, 0) || zeroThreshold < 0:
		return nativeParts{}, fmt.Sprintf("data point with zero threshold %v: want a finite number >= 0", zeroThreshold)
	case zeroThreshold == 0:
		zeroThreshold = defaultZeroThreshold
	}

	posSpans, posDeltas, posTotal, msg := pos.spans(s.posSpans[:0], s.posDeltas[:0])
	if msg != "" {
		return nativeParts{}, msg
	}
	s.posSpans, s.posDeltas = posSpans, posDeltas
	negSpans, negDeltas, negTotal, msg := neg.spans(s.negSpans[:0], s.negDeltas[:0])
	if msg != "" {
		return nativeParts{}, msg
	}
	s.negSpans, s.negDeltas = negSpans, negDeltas
	total, ok := addUint64(posTotal, negTotal)
	if ok {
		total, ok = addUint64(total, dp.ZeroCount)
	}
	if !ok {
		return nativeParts{}, "data point whose bucket counts overflow uint64"
	}
	sum := float64(dp.Sum)
	if msg := checkCount(total, dp.Count, sum); msg != "" {
		return nativeParts{}, msg
	}
	return nativeParts{
		count:         dp.Count,
		sum:           promValue(sum),
		schema:        scale,
		zeroThreshold: zeroThreshold,
		zeroCount:     dp.ZeroCount,
		negSpans:      negSpans,
		negDeltas:     negDeltas,
		posSpans:      posSpans,
		posDeltas:     posDeltas,
		timestamp:     dp.Time.UnixMilli(),
	}, ""
}

// customBucketsSchema is the schema of native histograms with custom bucket
// bounds (NHCB): bucket i counts the observations up to customValues[i],
// the last one (past the bounds) up to +Inf.
const customBucketsSchema = -53

// buildCustomBuckets converts an explicit-bucket data point that passed
// checkBuckets into a native histogram with custom buckets, in s's
// buffers, or returns why Prometheus would refuse it.
func buildCustomBuckets[N int64 | float64](dp *metricdata.HistogramDataPoint[N], s *nativeScratch) (nativeParts, string) {
	// spans numbers bucket i as offset+i+1: -1 makes the first bucket 0.
	b := expBuckets{offset: -1, counts: dp.BucketCounts}
	spans, deltas, _, msg := b.spans(s.posSpans[:0], s.posDeltas[:0])
	if msg != "" {
		return nativeParts{}, msg
	}
	s.posSpans, s.posDeltas = spans, deltas
	return nativeParts{
		count:        dp.Count,
		sum:          promValue(float64(dp.Sum)),
		schema:       customBucketsSchema,
		posSpans:     spans,
		posDeltas:    deltas,
		timestamp:    dp.Time.UnixMilli(),
		customValues: dp.Bounds,
	}, ""
}

// expBuckets is one side of an exponential histogram, with the offset
// widened so that index arithmetic cannot wrap.
type expBuckets struct {
	offset int64
	counts []uint64
}

// downscale merges each 2^delta neighbouring buckets into one, i.e. lowers
// the scale by delta, in *buf. It reports false if a merged count overflows.
func (b expBuckets) downscale(delta uint32, buf *[]uint64) (expBuckets, bool) {
	if len(b.counts) == 0 {
		return expBuckets{offset: b.offset >> delta}, true
	}
	// >> rounds towards minus infinity, which is how indexes map to the
	// coarser scale for negative indexes too.
	first := b.offset >> delta
	last := (b.offset + int64(len(b.counts)) - 1) >> delta
	*buf = append((*buf)[:0], make([]uint64, last-first+1)...)
	out := expBuckets{offset: first, counts: *buf}
	for i, n := range b.counts {
		j := (b.offset+int64(i))>>delta - first
		var ok bool
		if out.counts[j], ok = addUint64(out.counts[j], n); !ok {
			return expBuckets{}, false
		}
	}
	return out, true
}

// spans encodes the buckets as Prometheus spans and deltas of the absolute
// counts, like client_golang: empty buckets are left out, except that gaps of
// up to maxSpanGap empty buckets stay inside a span. Spans and deltas are
// appended to the given slices. It also returns the total count, or why the
// buckets cannot be encoded.
func (b expBuckets) spans(spans []bucketSpan, deltas []int64) (_ []bucketSpan, _ []int64, total uint64, msg string) {
	var prev, next int64 // previous count; index after the last bucket
	for i, n := range b.counts {
		if n == 0 {
			continue
		}
		if n > math.MaxInt64 {
			return nil, nil, 0, fmt.Sprintf("data point with bucket count %d: native histogram counts must fit in int64", n)
		}
		var ok bool
		if total, ok = addUint64(total, n); !ok {
			return nil, nil, 0, "data point whose bucket counts overflow uint64"
		}
		idx := b.offset + int64(i) + 1
		if idx <= math.MinInt32 || idx > math.MaxInt32 {
			return nil, nil, 0, fmt.Sprintf("data point with bucket index %d: native histogram indexes must fit in int32", idx-1)
		}
		gap := idx - next
		if len(spans) == 0 || gap > maxSpanGap {
			if len(spans) == 0 {
				gap = idx // the first span's offset is the absolute index
			}
			if gap < math.MinInt32 || gap > math.MaxInt32 {
				return nil, nil, 0, fmt.Sprintf("data point with a gap of %d empty buckets: native histogram span offsets must fit in int32", gap)
			}
			spans = append(spans, bucketSpan{offset: int32(gap)})
		} else {
			for ; gap > 0; gap-- {
				spans[len(spans)-1].length++
				deltas = append(deltas, -prev)
				prev = 0
			}
		}
		spans[len(spans)-1].length++
		deltas = append(deltas, int64(n)-prev)
		prev = int64(n)
		next = idx + 1
	}
	return spans, deltas, total, ""
}

func addUint64(a, b uint64) (uint64, bool) {
	s := a + b
	return s, s >= a
}

// classicFromExponential turns an exponential histogram into an explicit
// one with the same buckets, for receivers that refuse native histograms
// (WithoutNativeHistograms): a bound per populated bucket range, from the
// most negative bucket through the zero bucket to the largest positive
// one, then +Inf (empty). The OpenTelemetry specification allows converting
// exponential buckets to fixed ones; here none are merged, so nothing is
// lost but the bucket layout of later points, which may add bounds.
func classicFromExponential[N int64 | float64](d metricdata.ExponentialHistogram[N]) metricdata.Histogram[N] {
	out := metricdata.Histogram[N]{Temporality: d.Temporality, DataPoints: make([]metricdata.HistogramDataPoint[N], len(d.DataPoints))}
	for i := range d.DataPoints {
		dp := &d.DataPoints[i]
		neg, pos := dp.NegativeBucket, dp.PositiveBucket
		n := len(neg.Counts) + 1 + len(pos.Counts)
		bounds, counts := make([]float64, 0, n), make([]uint64, 0, n+1)
		// Bucket k spans (base^k, base^(k+1)], base = 2^(2^-scale); negative
		// bucket k mirrors it below zero.
		step := math.Exp2(-float64(dp.Scale))
		// int64: an offset near the int32 limits plus an index must not wrap.
		bound := func(k int64) float64 { return math.Exp2(float64(k) * step) }
		for j := len(neg.Counts) - 1; j >= 0; j-- {
			bounds = append(bounds, -bound(int64(neg.Offset)+int64(j)))
			counts = append(counts, neg.Counts[j])
		}
		bounds = append(bounds, dp.ZeroThreshold)
		counts = append(counts, dp.ZeroCount)
		for j, c := range pos.Counts {
			bounds = append(bounds, bound(int64(pos.Offset)+int64(j)+1))
			counts = append(counts, c)
		}
		// Bounds beyond float64 are +Inf: their counts join the +Inf bucket.
		inf := uint64(0)
		for len(bounds) > 0 && math.IsInf(bounds[len(bounds)-1], 1) {
			bounds = bounds[:len(bounds)-1]
			inf += counts[len(counts)-1]
			counts = counts[:len(counts)-1]
		}
		out.DataPoints[i] = metricdata.HistogramDataPoint[N]{
			Attributes:   dp.Attributes,
			StartTime:    dp.StartTime,
			Time:         dp.Time,
			Count:        dp.Count,
			Bounds:       bounds,
			BucketCounts: append(counts, inf),
			Min:          dp.Min,
			Max:          dp.Max,
			Sum:          dp.Sum,
			Exemplars:    dp.Exemplars,
		}
	}
	return out
}
