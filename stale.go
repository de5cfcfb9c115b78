package prwmetric

import (
	"hash/maphash"
	"math"
	"sync"

	"github.com/prometheus/prometheus/prompb"
)

// staleNaN is Prometheus' staleness marker: the series ended. It is reserved
// for that and never sent for an ordinary NaN.
var staleNaN = math.Float64frombits(0x7ff0000000000002)

// WithoutStaleMarkers stops the exporter from ending series with staleness
// markers. By default, a series that was in the previous successful export
// and is missing from this one, and every series at Shutdown, is sent once
// more with the stale NaN, so Prometheus ends its line at once instead of
// five minutes later.
func WithoutStaleMarkers() Option {
	return optionFunc(func(c config) config { c.withoutStaleMarkers = true; return c })
}

// seriesTracker remembers the series of the last successful export: to end
// the ones that disappear with staleness markers, and to keep every series'
// timestamps strictly increasing. Only that one export is kept, so memory
// follows the live series count and is released for series that disappear.
type seriesTracker struct {
	markStale bool

	mu   sync.Mutex
	seed maphash.Seed
	last map[uint64]liveSeries
}

// liveSeries is what the tracker needs of a delivered series.
type liveSeries struct {
	labels []prompb.Label
	// newest is its newest timestamp: whatever comes next must be later, or
	// the receiver sees two samples at one time and rejects the request.
	newest    int64
	histogram bool
}

func newSeriesTracker(markStale bool) *seriesTracker {
	return &seriesTracker{markStale: markStale, seed: maphash.MakeSeed()}
}

func (s *seriesTracker) key(labels []prompb.Label) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	for _, l := range labels {
		h.WriteString(l.Name)
		h.WriteByte(0xff)
		h.WriteString(l.Value)
		h.WriteByte(0xff)
	}
	return h.Sum64()
}

// observe returns the identity set of req's series. A sample stamped at or
// before the newest one already delivered for its series (two collections
// within one millisecond, such as ForceFlush right before Shutdown) is moved
// to 1 ms after it: the receiver would reject the request otherwise.
func (s *seriesTracker) observe(req *prompb.WriteRequest) map[uint64]liveSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := make(map[uint64]liveSeries, len(req.Timeseries))
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		k := s.key(ts.Labels)
		prev, seen := s.last[k]
		newest := int64(math.MinInt64)
		for j := range ts.Samples {
			if seen && ts.Samples[j].Timestamp <= prev.newest {
				ts.Samples[j].Timestamp = prev.newest + 1
			}
			newest = max(newest, ts.Samples[j].Timestamp)
		}
		for j := range ts.Histograms {
			if seen && ts.Histograms[j].Timestamp <= prev.newest {
				ts.Histograms[j].Timestamp = prev.newest + 1
			}
			newest = max(newest, ts.Histograms[j].Timestamp)
		}
		cur[k] = liveSeries{labels: ts.Labels, newest: newest, histogram: len(ts.Histograms) > 0}
	}
	return cur
}

// markers returns stale markers, at timestamp ms or just after the series'
// newest sample, for every series of the last successful export that is not
// in cur; none when staleness markers are off.
func (s *seriesTracker) markers(cur map[uint64]liveSeries, ms int64) []prompb.TimeSeries {
	if !s.markStale {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []prompb.TimeSeries
	for k, ls := range s.last {
		if _, ok := cur[k]; ok {
			continue
		}
		at := max(ms, ls.newest+1)
		marker := prompb.TimeSeries{Labels: ls.labels}
		if ls.histogram {
			// A native histogram series ends with a histogram whose sum is
			// the stale NaN, as Prometheus itself writes it.
			marker.Histograms = []prompb.Histogram{{Sum: staleNaN, Timestamp: at}}
		} else {
			marker.Samples = []prompb.Sample{{Value: staleNaN, Timestamp: at}}
		}
		out = append(out, marker)
	}
	return out
}

// delivered records cur as the series the receiver now holds.
func (s *seriesTracker) delivered(cur map[uint64]liveSeries) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = cur
}

// endAll returns stale markers at ms for every remembered series and forgets
// them, for Shutdown.
func (s *seriesTracker) endAll(ms int64) []prompb.TimeSeries {
	markers := s.markers(nil, ms)
	s.delivered(nil)
	return markers
}
