package prwmetric

import "slices"

// positions are cache entries by their place among the metrics of a scope,
// or the points of a metric, in the last export: the SDK hands the same
// metrics and points in the same order export after export, so an entry
// is found there by one comparison, before any map lookup. An entry that
// is dropped from the cache empties its positions (a position never leads
// to an entry no longer in the cache, see drop); a position that leads to
// another metric or point is a miss and is overwritten.
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

// drop empties the positions of the entries dropped from the cache; the
// rest stay, so that a few points coming and going (churn) leave the
// others found at their place.
func (p *positions[E]) drop(dropped func(E) bool) {
	var zero E
	for i, e := range p.entries {
		if e != zero && dropped(e) {
			p.entries[i] = zero
		}
	}
}
