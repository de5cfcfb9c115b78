package benchmarks

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

// TestChurn: every set starts with churn.generation 0; each Step gives
// PerExport sets, the next ones round the sets, a new attribute set in
// every metric alike; the rest stay.
func TestChurn(t *testing.T) {
	w := ShapeW.New(10)
	rm := w.ResourceMetrics(w.Time())
	c := NewChurn(w, rm, 3)
	sets := func() [][]attribute.Set { // per metric, its points' sets
		var all [][]attribute.Set
		for _, m := range rm.ScopeMetrics[0].Metrics {
			var s []attribute.Set
			for k := range w.Sets {
				s = append(s, *pointAttributes(m.Data, k))
			}
			all = append(all, s)
		}
		return all
	}
	before := sets()
	for m := range before {
		for k, set := range before[m] {
			if v, ok := set.Value("churn.generation"); !ok || v.AsInt64() != 0 {
				t.Fatalf("metric %d point %d: churn.generation %v, %v before any step; want 0", m, k, v.AsInt64(), ok)
			}
		}
	}
	for step, want := range [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9, 0, 1}} {
		c.Step()
		after := sets()
		for m := range after {
			var changed []int
			for k := range after[m] {
				if !after[m][k].Equals(&before[m][k]) {
					changed = append(changed, k)
				}
				if !after[m][k].Equals(&after[0][k]) {
					t.Errorf("step %d: metric %d point %d has another set than metric 0's", step, m, k)
				}
			}
			if len(changed) != len(want) {
				t.Fatalf("step %d: metric %d changed points %v, want %v", step, m, changed, want)
			}
			for _, k := range want {
				if after[m][k].Equals(&before[m][k]) {
					t.Errorf("step %d: metric %d point %d kept its set", step, m, k)
				}
			}
		}
		before = after
	}
}
