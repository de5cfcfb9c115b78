package prwmetric

import "slices"

// positions are cache entries by their place among the metrics of a scope,
// or the points of a metric, in the last export: the SDK hands the same
// metrics and points in the same order export after export, so an entry
// is found there by one comparison, before any map lookup. An entry that
// is dropped from the cache empties its positions (a position never leads
// to an entry no longer in the cache); a position that leads to another
// metric or point is a miss and is overwritten.
type positions[E comparable] struct {
	entries []E
}

func (p *positions[E]) at(i int) E {
	if i < len(p.entries) {
		return p.entries[i]
	}
	var zero E
	return zero
}

func (p *positions[E]) set(i int, e E) {
	if i >= len(p.entries) {
		if i >= cap(p.entries) {
			p.entries = slices.Grow(p.entries, i+1-len(p.entries))
		}
		p.entries = p.entries[:i+1]
	}
	p.entries[i] = e
}

func (p *positions[E]) reset() {
	clear(p.entries)
	p.entries = p.entries[:0]
}
