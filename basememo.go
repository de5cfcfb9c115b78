package prwmetric

import (
	"slices"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
)

// baseLabels returns exportState.pointLabels of attrs under the current
// scope, and its problems. A scope's metrics mostly report the same
// attribute sets, whose labels a first export would otherwise build again
// for each metric: the labels of the scope's sets are kept (up to
// baseMemoSize of them) until the next scope or the end of the
// conversion.
func (cc *conversion) baseLabels(mc *metricCtx, attrs attribute.Set, reserved string) ([]prompb.Label, []savedProblem) {
	m := &cc.sc.baseMemo
	m.last = nil
	if cc.sc.rules.typeAndUnitLabels {
		// Each metric's own labels (__type__, __unit__) are in its
		// base: the scope's sets are not shared between metrics.
		var p problems
		labels := cc.pointLabels(attrs, mc.high, &p, reserved)
		return labels, p.saved()
	}
	key := attrs.Equivalent()
	head := m.bases[key]
	for b := head; b != nil; b = b.next {
		if b.reserved == reserved && b.attrs.Equals(&attrs) {
			m.last = b
			return b.labels, b.problems
		}
	}
	var p problems
	labels := cc.pointLabels(attrs, mc.high, &p, reserved)
	saved := p.saved()
	if m.n < baseMemoSize {
		if m.bases == nil {
			m.bases = map[attribute.Distinct]*baseEntry{}
		}
		labels = slices.Clone(labels)
		m.last = &baseEntry{attrs: attrs, reserved: reserved, labels: labels, problems: saved, next: head}
		m.bases[key] = m.last
		m.n++
	}
	return labels, saved
}

// baseMemo holds the base labels of the attribute sets of the scope being
// converted (see conversion.baseLabels).
type baseMemo struct {
	scope *scopeEntry
	// bases are chained by the hash of their set: one set may have
	// several reserved label names (a histogram's and a counter's), two
	// sets may collide.
	bases map[attribute.Distinct]*baseEntry
	n     int
	// last is the entry baseLabels returned last, which internWith
	// recognises; nil when it was not memoised.
	last *baseEntry
}

type baseEntry struct {
	attrs    attribute.Set
	reserved string
	labels   []prompb.Label
	problems []savedProblem
	next     *baseEntry
	// run is the number of the labels as one piece of the label table and
	// runSize their encoded size, once internWith has used them; split
	// says they are not one piece (see seriesCache.internBase).
	run      uint32
	runSize  int
	runKnown bool
	split    bool
}

// baseMemoSize bounds the attribute sets baseMemo holds: about 32 MiB
// with 8 labels each, during a first export.
const baseMemoSize = 1 << 16

// use starts remembering the sets of scope se.
func (m *baseMemo) use(se *scopeEntry) {
	if m.scope != se {
		*m = baseMemo{scope: se}
	}
}
