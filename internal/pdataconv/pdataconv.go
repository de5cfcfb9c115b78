// Package pdataconv converts the OpenTelemetry Go SDK's metric data to the
// Collector's pdata, for the tests and benchmarks that run the Collector's
// translator on the same data as prwmetric. It is a module of its own so
// that the Collector's packages never reach prwmetric's users.
package pdataconv

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// ToPdata converts rm to the Collector's pdata, as the Collector's OTLP
// receiver would hand the same data to its exporters: resource and scope
// (name, version, schema URL, attributes), sums, gauges, explicit-bucket
// and exponential histograms of both number types, summaries.
func ToPdata(rm *metricdata.ResourceMetrics) pmetric.Metrics {
	md := pmetric.NewMetrics()
	prm := md.ResourceMetrics().AppendEmpty()
	prm.SetSchemaUrl(rm.Resource.SchemaURL())
	putAttrs(prm.Resource().Attributes(), rm.Resource.Iter())
	for _, sm := range rm.ScopeMetrics {
		psm := prm.ScopeMetrics().AppendEmpty()
		psm.Scope().SetName(sm.Scope.Name)
		psm.Scope().SetVersion(sm.Scope.Version)
		psm.SetSchemaUrl(sm.Scope.SchemaURL)
		putAttrs(psm.Scope().Attributes(), sm.Scope.Attributes.Iter())
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
			case metricdata.Histogram[int64]:
				histogramToPdata(pm, d)
			case metricdata.Histogram[float64]:
				histogramToPdata(pm, d)
			case metricdata.ExponentialHistogram[int64]:
				exponentialToPdata(pm, d)
			case metricdata.ExponentialHistogram[float64]:
				exponentialToPdata(pm, d)
			case metricdata.Summary:
				summaryToPdata(pm, d)
			default:
				panic("pdataconv.ToPdata: unhandled data type")
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

func pdataTime(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

func temporality(t metricdata.Temporality) pmetric.AggregationTemporality {
	if t == metricdata.DeltaTemporality {
		return pmetric.AggregationTemporalityDelta
	}
	return pmetric.AggregationTemporalityCumulative
}

func sumToPdata[N int64 | float64](pm pmetric.Metric, d metricdata.Sum[N]) {
	s := pm.SetEmptySum()
	s.SetIsMonotonic(d.IsMonotonic)
	s.SetAggregationTemporality(temporality(d.Temporality))
	pointsToPdata(s.DataPoints(), d.DataPoints)
}

func pointsToPdata[N int64 | float64](dst pmetric.NumberDataPointSlice, dps []metricdata.DataPoint[N]) {
	dst.EnsureCapacity(len(dps))
	for _, dp := range dps {
		p := dst.AppendEmpty()
		putAttrs(p.Attributes(), dp.Attributes.Iter())
		p.SetStartTimestamp(pdataTime(dp.StartTime))
		p.SetTimestamp(pdataTime(dp.Time))
		switch v := any(dp.Value).(type) {
		case int64:
			p.SetIntValue(v)
		case float64:
			p.SetDoubleValue(v)
		}
	}
}

func histogramToPdata[N int64 | float64](pm pmetric.Metric, d metricdata.Histogram[N]) {
	h := pm.SetEmptyHistogram()
	h.SetAggregationTemporality(temporality(d.Temporality))
	dst := h.DataPoints()
	dst.EnsureCapacity(len(d.DataPoints))
	for _, dp := range d.DataPoints {
		p := dst.AppendEmpty()
		putAttrs(p.Attributes(), dp.Attributes.Iter())
		p.SetStartTimestamp(pdataTime(dp.StartTime))
		p.SetTimestamp(pdataTime(dp.Time))
		p.SetCount(dp.Count)
		p.SetSum(float64(dp.Sum))
		if v, ok := dp.Min.Value(); ok {
			p.SetMin(float64(v))
		}
		if v, ok := dp.Max.Value(); ok {
			p.SetMax(float64(v))
		}
		p.ExplicitBounds().FromRaw(dp.Bounds)
		p.BucketCounts().FromRaw(dp.BucketCounts)
	}
}

func exponentialToPdata[N int64 | float64](pm pmetric.Metric, d metricdata.ExponentialHistogram[N]) {
	h := pm.SetEmptyExponentialHistogram()
	h.SetAggregationTemporality(temporality(d.Temporality))
	dst := h.DataPoints()
	dst.EnsureCapacity(len(d.DataPoints))
	for _, dp := range d.DataPoints {
		p := dst.AppendEmpty()
		putAttrs(p.Attributes(), dp.Attributes.Iter())
		p.SetStartTimestamp(pdataTime(dp.StartTime))
		p.SetTimestamp(pdataTime(dp.Time))
		p.SetCount(dp.Count)
		p.SetSum(float64(dp.Sum))
		if v, ok := dp.Min.Value(); ok {
			p.SetMin(float64(v))
		}
		if v, ok := dp.Max.Value(); ok {
			p.SetMax(float64(v))
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

func summaryToPdata(pm pmetric.Metric, d metricdata.Summary) {
	dst := pm.SetEmptySummary().DataPoints()
	dst.EnsureCapacity(len(d.DataPoints))
	for _, dp := range d.DataPoints {
		p := dst.AppendEmpty()
		putAttrs(p.Attributes(), dp.Attributes.Iter())
		p.SetStartTimestamp(pdataTime(dp.StartTime))
		p.SetTimestamp(pdataTime(dp.Time))
		p.SetCount(dp.Count)
		p.SetSum(dp.Sum)
		for _, q := range dp.QuantileValues {
			pq := p.QuantileValues().AppendEmpty()
			pq.SetQuantile(q.Quantile)
			pq.SetValue(q.Value)
		}
	}
}

// SetPdataTime sets the end time of every data point of md to at, in place.
func SetPdataTime(md pmetric.Metrics, at time.Time) {
	t := pdataTime(at)
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
				case pmetric.MetricTypeSummary:
					dps := m.Summary().DataPoints()
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
