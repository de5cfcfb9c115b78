package benchmarks

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// ToPdata converts rm to the Collector's pdata, as the Collector's OTLP
// receiver would hand the same data to its exporters. It handles what
// workloads contain: sums, gauges, explicit-bucket and exponential
// histograms.
func ToPdata(rm *metricdata.ResourceMetrics) pmetric.Metrics {
	md := pmetric.NewMetrics()
	prm := md.ResourceMetrics().AppendEmpty()
	putAttrs(prm.Resource().Attributes(), rm.Resource.Iter())
	for _, sm := range rm.ScopeMetrics {
		psm := prm.ScopeMetrics().AppendEmpty()
		psm.Scope().SetName(sm.Scope.Name)
		psm.Scope().SetVersion(sm.Scope.Version)
		for _, m := range sm.Metrics {
			pm := psm.Metrics().AppendEmpty()
			pm.SetName(m.Name)
			pm.SetDescription(m.Description)
			pm.SetUnit(m.Unit)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				sumToPdata(pm, d)
			case metricdata.Sum[float64]:
				sumToPdata(pm, d)
			case metricdata.Gauge[int64]:
				pointsToPdata(pm.SetEmptyGauge().DataPoints(), d.DataPoints)
			case metricdata.Gauge[float64]:
				pointsToPdata(pm.SetEmptyGauge().DataPoints(), d.DataPoints)
			case metricdata.Histogram[float64]:
				histogramToPdata(pm, d)
			case metricdata.ExponentialHistogram[float64]:
				exponentialToPdata(pm, d)
			}
		}
	}
	return md
}

func putAttrs(dst pcommon.Map, it attribute.Iterator) {
	dst.EnsureCapacity(it.Len())
	for it.Next() {
		kv := it.Attribute()
		switch kv.Value.Type() {
		case attribute.INT64:
			dst.PutInt(string(kv.Key), kv.Value.AsInt64())
		case attribute.FLOAT64:
			dst.PutDouble(string(kv.Key), kv.Value.AsFloat64())
		case attribute.BOOL:
			dst.PutBool(string(kv.Key), kv.Value.AsBool())
		default:
			dst.PutStr(string(kv.Key), kv.Value.Emit())
		}
	}
}

func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

func sumToPdata[N int64 | float64](pm pmetric.Metric, d metricdata.Sum[N]) {
	s := pm.SetEmptySum()
	s.SetIsMonotonic(d.IsMonotonic)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	pointsToPdata(s.DataPoints(), d.DataPoints)
}

func pointsToPdata[N int64 | float64](dst pmetric.NumberDataPointSlice, dps []metricdata.DataPoint[N]) {
	dst.EnsureCapacity(len(dps))
	for _, dp := range dps {
		p := dst.AppendEmpty()
		putAttrs(p.Attributes(), dp.Attributes.Iter())
		p.SetStartTimestamp(ts(dp.StartTime))
		p.SetTimestamp(ts(dp.Time))
		switch v := any(dp.Value).(type) {
		case int64:
			p.SetIntValue(v)
		case float64:
			p.SetDoubleValue(v)
		}
	}
}

func histogramToPdata(pm pmetric.Metric, d metricdata.Histogram[float64]) {
	h := pm.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dst := h.DataPoints()
	dst.EnsureCapacity(len(d.DataPoints))
	for _, dp := range d.DataPoints {
		p := dst.AppendEmpty()
		putAttrs(p.Attributes(), dp.Attributes.Iter())
		p.SetStartTimestamp(ts(dp.StartTime))
		p.SetTimestamp(ts(dp.Time))
		p.SetCount(dp.Count)
		p.SetSum(dp.Sum)
		if v, ok := dp.Min.Value(); ok {
			p.SetMin(v)
		}
		if v, ok := dp.Max.Value(); ok {
			p.SetMax(v)
		}
		p.ExplicitBounds().FromRaw(dp.Bounds)
		p.BucketCounts().FromRaw(dp.BucketCounts)
	}
}

func exponentialToPdata(pm pmetric.Metric, d metricdata.ExponentialHistogram[float64]) {
	h := pm.SetEmptyExponentialHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dst := h.DataPoints()
	dst.EnsureCapacity(len(d.DataPoints))
	for _, dp := range d.DataPoints {
		p := dst.AppendEmpty()
		putAttrs(p.Attributes(), dp.Attributes.Iter())
		p.SetStartTimestamp(ts(dp.StartTime))
		p.SetTimestamp(ts(dp.Time))
		p.SetCount(dp.Count)
		p.SetSum(dp.Sum)
		if v, ok := dp.Min.Value(); ok {
			p.SetMin(v)
		}
		if v, ok := dp.Max.Value(); ok {
			p.SetMax(v)
		}
		p.SetScale(dp.Scale)
		p.SetZeroCount(dp.ZeroCount)
		p.SetZeroThreshold(dp.ZeroThreshold)
		p.Positive().SetOffset(dp.PositiveBucket.Offset)
		p.Positive().BucketCounts().FromRaw(dp.PositiveBucket.Counts)
		p.Negative().SetOffset(dp.NegativeBucket.Offset)
		p.Negative().BucketCounts().FromRaw(dp.NegativeBucket.Counts)
	}
}

// SetPdataTime sets the end time of every data point of md to at, in place.
func SetPdataTime(md pmetric.Metrics, at time.Time) {
	t := ts(at)
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeSum:
					setNumberTime(m.Sum().DataPoints(), t)
				case pmetric.MetricTypeGauge:
					setNumberTime(m.Gauge().DataPoints(), t)
				case pmetric.MetricTypeHistogram:
					dps := m.Histogram().DataPoints()
					for l := range dps.Len() {
						dps.At(l).SetTimestamp(t)
					}
				case pmetric.MetricTypeExponentialHistogram:
					dps := m.ExponentialHistogram().DataPoints()
					for l := range dps.Len() {
						dps.At(l).SetTimestamp(t)
					}
				}
			}
		}
	}
}

func setNumberTime(dps pmetric.NumberDataPointSlice, t pcommon.Timestamp) {
	for l := range dps.Len() {
		dps.At(l).SetTimestamp(t)
	}
}
