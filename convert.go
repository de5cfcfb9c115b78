package prwmetric

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// converter turns one ResourceMetrics into a WriteRequest (SPEC §3).
// PROVISIONAL: the minimal version; the conversion issue completes it.
type converter struct {
	cfg         config
	metricNamer otlptranslator.MetricNamer
	labelNamer  otlptranslator.LabelNamer
}

func newConverter(cfg config) (*converter, error) {
	return &converter{
		cfg:         cfg,
		metricNamer: otlptranslator.NewMetricNamer(cfg.namespace, cfg.translationStrategy),
		labelNamer:  otlptranslator.LabelNamer{},
	}, nil
}

func (c *converter) convert(rm *metricdata.ResourceMetrics) (*prompb.WriteRequest, error) {
	req := &prompb.WriteRequest{}
	var errs []error
	base := map[string]string{}
	if v, ok := rm.Resource.Set().Value(semconv.ServiceNameKey); ok {
		base["job"] = v.Emit()
	}
	if v, ok := rm.Resource.Set().Value(semconv.ServiceInstanceIDKey); ok {
		base["instance"] = v.Emit()
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if err := c.metric(req, m, base); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return req, errors.Join(errs...)
}

func (c *converter) metric(req *prompb.WriteRequest, m metricdata.Metrics, base map[string]string) error {
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		return sumPoints(c, req, m, d.IsMonotonic, d.DataPoints, base)
	case metricdata.Sum[float64]:
		return sumPoints(c, req, m, d.IsMonotonic, d.DataPoints, base)
	case metricdata.Gauge[int64]:
		return gaugePoints(c, req, m, d.DataPoints, base)
	case metricdata.Gauge[float64]:
		return gaugePoints(c, req, m, d.DataPoints, base)
	case metricdata.Histogram[int64]:
		return histogramPoints(c, req, m, d.DataPoints, base)
	case metricdata.Histogram[float64]:
		return histogramPoints(c, req, m, d.DataPoints, base)
	}
	return fmt.Errorf("prwmetric: metric %q: unsupported data type %T, dropped", m.Name, m.Data)
}

func (c *converter) name(m metricdata.Metrics, t otlptranslator.MetricType) (string, error) {
	return c.metricNamer.Build(otlptranslator.Metric{Name: m.Name, Unit: m.Unit, Type: t})
}

func sumPoints[N int64 | float64](c *converter, req *prompb.WriteRequest, m metricdata.Metrics, monotonic bool, dps []metricdata.DataPoint[N], base map[string]string) error {
	t := otlptranslator.MetricType(otlptranslator.MetricTypeNonMonotonicCounter)
	if monotonic {
		t = otlptranslator.MetricTypeMonotonicCounter
	}
	name, err := c.name(m, t)
	if err != nil {
		return err
	}
	for _, dp := range dps {
		req.Timeseries = append(req.Timeseries, series(c, name, dp.Attributes, base, nil, float64(dp.Value), dp.Time.UnixMilli()))
	}
	return nil
}

func gaugePoints[N int64 | float64](c *converter, req *prompb.WriteRequest, m metricdata.Metrics, dps []metricdata.DataPoint[N], base map[string]string) error {
	name, err := c.name(m, otlptranslator.MetricTypeGauge)
	if err != nil {
		return err
	}
	for _, dp := range dps {
		req.Timeseries = append(req.Timeseries, series(c, name, dp.Attributes, base, nil, float64(dp.Value), dp.Time.UnixMilli()))
	}
	return nil
}

func histogramPoints[N int64 | float64](c *converter, req *prompb.WriteRequest, m metricdata.Metrics, dps []metricdata.HistogramDataPoint[N], base map[string]string) error {
	name, err := c.name(m, otlptranslator.MetricTypeHistogram)
	if err != nil {
		return err
	}
	for _, dp := range dps {
		ts := dp.Time.UnixMilli()
		var cum uint64
		for i, b := range dp.Bounds {
			cum += dp.BucketCounts[i]
			req.Timeseries = append(req.Timeseries, series(c, name+"_bucket", dp.Attributes, base, map[string]string{"le": strconv.FormatFloat(b, 'f', -1, 64)}, float64(cum), ts))
		}
		req.Timeseries = append(req.Timeseries,
			series(c, name+"_bucket", dp.Attributes, base, map[string]string{"le": "+Inf"}, float64(dp.Count), ts),
			series(c, name+"_sum", dp.Attributes, base, nil, float64(dp.Sum), ts),
			series(c, name+"_count", dp.Attributes, base, nil, float64(dp.Count), ts))
	}
	return nil
}

func series(c *converter, name string, attrs attribute.Set, base, extra map[string]string, v float64, ts int64) prompb.TimeSeries {
	labels := map[string]string{}
	for k, v := range base {
		labels[k] = v
	}
	for _, kv := range attrs.ToSlice() {
		if n, err := c.labelNamer.Build(string(kv.Key)); err == nil {
			labels[n] = kv.Value.Emit()
		}
	}
	for k, v := range extra {
		labels[k] = v
	}
	labels["__name__"] = name
	out := make([]prompb.Label, 0, len(labels))
	for k, v := range labels {
		if v != "" {
			out = append(out, prompb.Label{Name: k, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	_ = math.NaN
	return prompb.TimeSeries{Labels: out, Samples: []prompb.Sample{{Value: v, Timestamp: ts}}}
}
