package prwmetric

import (
	"slices"
	"strings"

	"github.com/prometheus/prometheus/prompb"
)

// pointOrder keeps the histogram order of a histogram's points, which is
// the order of its classic series: its data points are sorted by their labels (by the encoded labels of their _count
// series, a fixed order if not quite an alphabetical one; ties stay in data
// point order), and their series go bucket by bucket across the points:
// every point's first bucket, then every point's second, …, +Inf, then
// every point's _sum, _count, _min and _max. Neighbouring series then
// differ in a label value and their sample, where point by point they
// differ in le, and between points in whatever the SDK's order puts there:
// W's payload compresses 6% smaller for it (8% with golang/snappy),
// whatever the order of the data points, which no longer changes the
// request either. Custom-bucket histograms go first, in data point order.
//
// Sorting the points is most of the cost of a histogram's conversion, and needless: the
// SDK reports a metric's points in the same order export after export
// (until points come or go), so the order is only sorted anew when the
// points differ from the last export's (and updated, not sorted, when only a
// few came or went: update); their labels are then laid out anew in memory
// too (layOut), when enough of them are new (layoutDue).
type pointOrder struct {
	// from are the points of the last export, in the order they came.
	from []*pointMore
	// perm are their indices, in the histogram order; spare is the
	// buffer of the next perm.
	perm, spare []int
	// ties: two points of the last sort had the same labels (attribute
	// sets that collide), so their order follows their data point order,
	// which the next export may change: it sorts all of its points.
	ties bool
}

// sorted returns the indices of points in the histogram order, and whether it
// sorted them anew.
func (o *pointOrder) sorted(points []histPoint, labels *labelTable) (order []int, sorted bool) {
	same := len(points) == len(o.from)
	for k := 0; same && k < len(points); k++ {
		same = points[k].ps == o.from[k]
	}
	if same {
		return o.perm, false
	}
	cmp := func(a, b int) int {
		// The _count series, last, has the point's sort key as its
		// labels; ties stay in data point order.
		sa, sb := points[a].ps.series, points[b].ps.series
		if c := labels.compare(sa[len(sa)-1].key, sb[len(sb)-1].key); c != 0 {
			return c
		}
		if a != b {
			o.ties = true
		}
		return a - b
	}
	perm, ok := o.update(points, cmp)
	if !ok {
		perm = perm[:0]
		for k := range points {
			perm = append(perm, k)
		}
		o.ties = false
		slices.SortFunc(perm, cmp)
	}
	o.from = o.from[:0]
	for k := range points {
		o.from = append(o.from, points[k].ps)
	}
	clear(o.from[len(o.from):cap(o.from)]) // keep no dropped points alive
	o.perm, o.spare = perm, o.perm[:0]
	return o.perm, true
}

// update returns the histogram order of points from the last one, when few
// points came or went since: the points kept stay in their order, and each
// new one goes where a search among them puts it. A few points that come
// and go (churn) then cost a few comparisons, not a sort of every point
// (for W with 1% of its attribute sets replaced each export, 1.2 ms of its
// 6.6). It returns false when the points must be sorted: many are new, the
// last sort had ties, or a point came twice.
func (o *pointOrder) update(points []histPoint, cmp func(a, b int) int) ([]int, bool) {
	perm := o.spare[:0]
	if o.ties || len(o.perm) == 0 {
		return perm, false
	}
	// Each point is marked with its index for the time of the update.
	for k := range points {
		points[k].ps.at = k + 1
	}
	for _, j := range o.perm {
		if ps := o.from[j]; ps.at != 0 {
			perm = append(perm, ps.at-1)
			ps.at = 0
		}
	}
	kept := len(perm)
	for k := range points {
		if ps := points[k].ps; ps.at != 0 {
			perm = append(perm, k)
			ps.at = 0
		}
	}
	if len(perm) != len(points) || (len(perm)-kept)*4 > len(points) {
		return perm, false
	}
	// perm[:kept] is in order; the new points after it go in one by one.
	for ; kept < len(perm); kept++ {
		k := perm[kept]
		at, _ := slices.BinarySearchFunc(perm[:kept], k, cmp)
		if o.ties {
			return perm, false // its place would depend on data point order
		}
		copy(perm[at+1:kept+1], perm[at:kept])
		perm[at] = k
	}
	return perm, true
}

// histPoint is a valid data point of the histogram being converted, in
// seriesCache.histPoints.
type histPoint struct {
	ps *pointMore
	// pe is the point's entry; fresh says this export had not used it
	// before (see conversion.emitting).
	pe    *pointEntry
	fresh bool
	// i is the point's index in the data points.
	i int
	// t and start are its time and start time in ms.
	t, start int64
	// n is the cumulative count of the point's buckets sent so far.
	n         uint64
	exemplars [][]prompb.Exemplar
}

// layOut copies the keys of the series of records into blocks of memory,
// one after the other: the histogram order sends a histogram's series in an
// order other than the one they were built in, and encoding them reads the
// keys faster in sequence than scattered over the heap.
func (sc *seriesCache) layOut(records []record) {
	for start := 0; start < len(records); {
		n, end := 0, start
		for ; end < len(records) && (end == start || n+len(records[end].s.key) <= layoutBlock); end++ {
			n += len(records[end].s.key)
		}
		var b strings.Builder
		b.Grow(n)
		for i := start; i < end; i++ {
			b.WriteString(records[i].s.key)
		}
		block := b.String()
		for i := start; i < end; i++ {
			s := records[i].s
			n := len(s.key)
			// The table keeps the key it was given (the same bytes): a
			// few bytes a series, where replacing it cost two updates of
			// the table per series each time points come and go.
			s.key, block = block[:n], block[n:]
		}
		start = end
	}
}

// packStates copies the states of the series interned since sc.last[fresh]
// that slots point to into blocks of memory, in the order of slots, and
// points every reference to them there: the slots, sc.last and the series
// table. The histogram order reads a histogram's series bucket by bucket
// across its points, while they were built point by point, scattered over
// the heap: each state read (to emit the series, then to mark it delivered)
// was a cache miss, a fifth of the CPU of an export of histograms. Only
// series built since fresh, by this histogram's points, move: nothing else
// refers to them yet, and the other references a state may have (records,
// moved samples, 2.0's) begin when it is first sent. Blocks are small
// (stateBlock), so that a series that outlives the others of its block
// keeps little memory alive.
func (sc *seriesCache) packStates(fresh int, slots []**seriesState) {
	defer func() {
		clear(slots)
		sc.slots = slots[:0]
	}()
	built := sc.last[fresh:]
	// A state built since fresh says so, and where it is in built, in v2,
	// which is 0 until the series is first sent as 2.0.
	for i, s := range built {
		s.v2 = uint32(i)
		s.set(flagPacking, true)
	}
	var block []seriesState
	left := len(built)
	for _, slot := range slots {
		old := *slot
		if !old.is(flagPacking) {
			continue // built before fresh
		}
		i := old.v2
		if built[i] != old {
			*slot = built[i] // a second slot of the series (attribute sets that collide)
			continue
		}
		if len(block) == 0 {
			block = make([]seriesState, min(left, stateBlock))
		}
		s := &block[0]
		block = block[1:]
		left--
		*s = *old
		s.v2 = 0
		s.set(flagPacking, false)
		built[i], *slot = s, s
		sc.byLabels[s.key] = s
	}
	for _, s := range built { // those no slot reaches
		s.v2 = 0
		s.set(flagPacking, false)
	}
}

// stateBlock is the number of series states packStates puts in one block:
// 2 KiB, which a block keeps in memory as long as one of its series lives.
const stateBlock = 64

// layoutDue reports whether the series of points, sorted anew, are to be
// laid out anew (layOut): when a quarter of the points or more have
// series not laid out since they were built, as on a first export. A few
// points that come and go in a large histogram (churn) are not worth
// copying the labels of every series of the histogram again: the few keys
// of the new points cost little to read where they are.
func layoutDue(points []histPoint) bool {
	fresh := 0
	for i := range points {
		if !points[i].ps.laidOut {
			fresh++
		}
	}
	if fresh*4 < len(points) {
		return false
	}
	for i := range points {
		points[i].ps.laidOut = true
	}
	return true
}

// layoutBlock is the size of layOut's blocks: a block stays in memory as
// long as one of its series does.
const layoutBlock = 256 << 10
