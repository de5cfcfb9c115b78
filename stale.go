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

// staleTracker remembers the series of the last successful export. Only that
// one export is kept, so memory follows the live series count and is
// released for series that disappear.
type staleTracker struct {
	mu   sync.Mutex
	seed maphash.Seed
	last map[uint64]liveSeries
}

// liveSeries is what a staleness marker needs of a delivered series.
type liveSeries struct {
	labels []prompb.Label
	// newest is its newest timestamp: a marker must come after it, or the
	// receiver sees two samples at one time.
	newest int64
}

func newStaleTracker() *staleTracker {
	return &staleTracker{seed: maphash.MakeSeed()}
}

func (s *staleTracker) key(labels []prompb.Label) uint64 {
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

// current returns the identity set of req's series.
func (s *staleTracker) current(req *prompb.WriteRequest) map[uint64]liveSeries {
	cur := make(map[uint64]liveSeries, len(req.Timeseries))
	for _, ts := range req.Timeseries {
		newest := int64(math.MinInt64)
		for _, sm := range ts.Samples {
			newest = max(newest, sm.Timestamp)
		}
		for _, h := range ts.Histograms {
			newest = max(newest, h.Timestamp)
		}
		cur[s.key(ts.Labels)] = liveSeries{labels: ts.Labels, newest: newest}
	}
	return cur
}

// markers returns stale series, at timestamp ms or just after the series'
// newest sample, for every series of the last successful export that is not
// in cur.
func (s *staleTracker) markers(cur map[uint64]liveSeries, ms int64) []prompb.TimeSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []prompb.TimeSeries
	for k, ls := range s.last {
		if _, ok := cur[k]; !ok {
			at := max(ms, ls.newest+1)
			out = append(out, prompb.TimeSeries{Labels: ls.labels, Samples: []prompb.Sample{{Value: staleNaN, Timestamp: at}}})
		}
	}
	return out
}

// delivered records cur as the series the receiver now holds.
func (s *staleTracker) delivered(cur map[uint64]liveSeries) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = cur
}

// endAll returns stale markers at ms for every remembered series and forgets
// them, for Shutdown.
func (s *staleTracker) endAll(ms int64) []prompb.TimeSeries {
	markers := s.markers(nil, ms)
	s.delivered(nil)
	return markers
}
