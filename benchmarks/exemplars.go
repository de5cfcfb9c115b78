package benchmarks

import (
	"encoding/binary"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// AddExemplars gives the points of rm the exemplars of a traced service
// whose every measurement is sampled, as the SDK's default reservoirs keep
// them: each explicit-bucket histogram point an exemplar in every bucket
// that counted (the aligned reservoir), each monotonic sum point one. It
// returns how many it added. SetTime moves their time with the points'.
func AddExemplars(rm *metricdata.ResourceMetrics) int {
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for m, metric := range sm.Metrics {
			switch d := metric.Data.(type) {
			case metricdata.Sum[int64]:
				n += sumExemplars(d, m)
			case metricdata.Sum[float64]:
				n += sumExemplars(d, m)
			case metricdata.Histogram[float64]:
				for i := range d.DataPoints {
					dp := &d.DataPoints[i]
					for k, count := range dp.BucketCounts {
						if count == 0 {
							continue
						}
						// A value in the bucket: its bound (buckets hold
						// their upper bound), twice the last one for +Inf.
						v := 2 * dp.Bounds[len(dp.Bounds)-1]
						if k < len(dp.Bounds) {
							v = dp.Bounds[k]
						}
						dp.Exemplars = append(dp.Exemplars, exemplar(m, i, k, v))
						n++
					}
				}
			}
		}
	}
	return n
}

func sumExemplars[N int64 | float64](d metricdata.Sum[N], m int) int {
	if !d.IsMonotonic {
		return 0
	}
	for i := range d.DataPoints {
		d.DataPoints[i].Exemplars = append(d.DataPoints[i].Exemplars, exemplar(m, i, 0, N(1)))
	}
	return len(d.DataPoints)
}

// exemplar is the exemplar of measurement v in bucket k of point i of
// metric m, with a trace and span id of its own.
func exemplar[N int64 | float64](m, i, k int, v N) metricdata.Exemplar[N] {
	trace, span := make([]byte, 16), make([]byte, 8)
	binary.BigEndian.PutUint32(trace, uint32(m))
	binary.BigEndian.PutUint32(trace[4:], uint32(i))
	binary.BigEndian.PutUint32(trace[8:], uint32(k))
	binary.BigEndian.PutUint32(trace[12:], 0x9e3779b9*uint32(m+i+k+1))
	binary.BigEndian.PutUint64(span, 0x9e3779b97f4a7c15*uint64(m<<40|i<<20|k+1))
	return metricdata.Exemplar[N]{Value: v, TraceID: trace, SpanID: span}
}
