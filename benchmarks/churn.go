package benchmarks

import (
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Churn makes a workload's attribute sets come and go, as they do when
// pods restart or a label takes new values: before each export, Step gives
// PerExport of the sets a new value of one more attribute, churn.generation,
// in every metric (the SDK reports a set's points of every instrument
// alike), round the sets in turn. Each export then has PerExport new sets,
// and the same number gone since the last: their series end with a
// staleness marker.
type Churn struct {
	rm        *metricdata.ResourceMetrics
	sets      []attribute.Set
	PerExport int
	next, gen int
}

// NewChurn returns the churn of w's metric data rm, made by
// w.ResourceMetrics: perExport sets replaced before each export. Every set
// of rm gets churn.generation 0 at once, so that without churn (perExport
// 0) the series have as many labels.
func NewChurn(w *Workload, rm *metricdata.ResourceMetrics, perExport int) *Churn {
	c := &Churn{rm: rm, sets: w.Sets, PerExport: min(perExport, len(w.Sets))}
	for k := range c.sets {
		c.replace(k)
	}
	c.gen++
	return c
}

// Step replaces the next PerExport sets of every metric with new ones.
func (c *Churn) Step() {
	for range c.PerExport {
		c.replace(c.next)
		c.next = (c.next + 1) % len(c.sets)
	}
	c.gen++
}

// replace gives set k of every metric the generation c.gen.
func (c *Churn) replace(k int) {
	set := attribute.NewSet(append(c.sets[k].ToSlice(), attribute.Int("churn.generation", c.gen))...)
	for _, sm := range c.rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			*pointAttributes(m.Data, k) = set
		}
	}
}

// pointAttributes returns the attributes of point k of data, a workload's
// aggregation of its set k.
func pointAttributes(data metricdata.Aggregation, k int) *attribute.Set {
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		return &d.DataPoints[k].Attributes
	case metricdata.Sum[float64]:
		return &d.DataPoints[k].Attributes
	case metricdata.Gauge[int64]:
		return &d.DataPoints[k].Attributes
	case metricdata.Gauge[float64]:
		return &d.DataPoints[k].Attributes
	case metricdata.Histogram[float64]:
		return &d.DataPoints[k].Attributes
	case metricdata.Histogram[int64]:
		return &d.DataPoints[k].Attributes
	case metricdata.ExponentialHistogram[float64]:
		return &d.DataPoints[k].Attributes
	}
	panic(fmt.Sprintf("benchmarks: a workload has no %T", data)) // the workloads are fixed: a bug here
}
