package prwmetrictest

// The histogram rules: native histograms' structure and classic
// histograms' buckets. Reading a classic histogram back is
// Server.ClassicHistogram, in query.go.

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
)

// checkNativeHistogram validates the structure of a native histogram with
// Prometheus' own rules; a stale marker has only its sum set and is skipped.
func checkNativeHistogram(v *violations, where string, nh NativeHistogram, toInt func() *histogram.Histogram) {
	if nh.IsStale() {
		return
	}
	fh := nh.Histogram
	if math.Float64bits(fh.Count) == StaleNaN || math.Float64bits(fh.ZeroCount) == StaleNaN {
		v.add("%s: histogram at %d uses the stale NaN as a count; it is reserved for the sum of a stale marker", where, nh.Timestamp)
		return
	}
	var err error
	if nh.Float {
		err = fh.Validate()
	} else {
		err = toInt().Validate()
	}
	if err != nil {
		v.add("%s: invalid native histogram at %d: %v", where, nh.Timestamp, err)
	}
}

// checkClassicHistograms verifies that the buckets of each classic
// histogram in a request have cumulative (non-decreasing) counts and,
// when its _count series is in the same request, that it has a +Inf
// bucket equal to _count. A request holding only some of a histogram's
// buckets and not its _count is fine: Remote Write does not require a
// histogram's series to travel together.
func checkClassicHistograms(v *violations, series []decodedSeries) {
	type bucketSeries struct {
		le      string
		bound   float64
		samples []Sample
	}
	type group struct {
		labels  Labels
		buckets []bucketSeries
	}
	groups := map[string]*group{}
	var order []string
	counts := map[string][]Sample{}
	for _, s := range series {
		name := s.labels[nameLabel]
		if base, ok := strings.CutSuffix(name, "_count"); ok {
			l := s.labels.clone()
			l[nameLabel] = base
			counts[seriesKey(l)] = append(counts[seriesKey(l)], s.samples...)
			continue
		}
		base, ok := strings.CutSuffix(name, "_bucket")
		le, hasLe := s.labels["le"]
		if !ok || !hasLe {
			continue
		}
		l := s.labels.clone()
		delete(l, "le")
		l[nameLabel] = base
		key := seriesKey(l)
		g := groups[key]
		if g == nil {
			g = &group{labels: l}
			groups[key] = g
			order = append(order, key)
		}
		bound, err := parseLe(le)
		if err != nil {
			v.add("histogram %s: bucket le=%q is not a number", l, le)
			continue
		}
		g.buckets = append(g.buckets, bucketSeries{le: le, bound: bound, samples: s.samples})
	}
	for _, key := range order {
		g := groups[key]
		sort.SliceStable(g.buckets, func(i, j int) bool { return g.buckets[i].bound < g.buckets[j].bound })
		if len(g.buckets) == 0 {
			continue
		}
		last := g.buckets[len(g.buckets)-1]
		hasInf := math.IsInf(last.bound, 1)
		if !hasInf && len(counts[key]) > 0 {
			// Only with the _count at hand: a sender may split a
			// histogram's series across requests, so without it the
			// +Inf bucket may be in another request.
			v.add("histogram %s: no le=\"+Inf\" bucket", g.labels)
			continue
		}
		for i := 1; i < len(g.buckets); i++ {
			if g.buckets[i].bound == g.buckets[i-1].bound {
				v.add("histogram %s: buckets le=%q and le=%q have the same bound", g.labels, g.buckets[i-1].le, g.buckets[i].le)
			}
		}
		// The highest bucket present (+Inf when there) gives the
		// timestamps to check the buckets at.
		for _, top := range last.samples {
			prev, prevLe := math.Inf(-1), ""
			for _, b := range g.buckets {
				val, ok := valueAt(b.samples, top.Timestamp)
				if !ok || math.IsNaN(val) {
					continue
				}
				if val < prev {
					v.add("histogram %s at %d: bucket le=%q has count %v, less than le=%q with %v; bucket counts must be cumulative", g.labels, top.Timestamp, b.le, val, prevLe, prev)
					break
				}
				prev, prevLe = val, b.le
			}
			if c, ok := valueAt(counts[key], top.Timestamp); hasInf && ok && !math.IsNaN(c) && !math.IsNaN(top.Value) && c != top.Value {
				v.add("histogram %s at %d: le=\"+Inf\" bucket is %v but _count is %v; they must be equal", g.labels, top.Timestamp, top.Value, c)
			}
		}
	}
}

func parseLe(le string) (float64, error) {
	return strconv.ParseFloat(le, 64)
}

// valueAt returns the value of the last sample at timestamp ts.
func valueAt(samples []Sample, ts int64) (float64, bool) {
	for i := len(samples) - 1; i >= 0; i-- {
		if samples[i].Timestamp == ts {
			return samples[i].Value, true
		}
	}
	return 0, false
}
