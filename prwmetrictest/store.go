package prwmetrictest

// What an accepted request leaves behind: the ordering checks against the
// series already stored, and the merge into them.

import (
	"math"
)

// checkOrder flags samples and histograms that are not after the previous
// one of the same series, within the request or against what is already
// stored. s.mu must be held.
func (s *Server) checkOrder(v *violations, d *decoded) {
	type last struct {
		ts    int64
		value float64
		set   bool
	}
	lastSample := map[string]last{}
	lastHist := map[string]last{}
	for _, ser := range d.series {
		ls, ok := lastSample[ser.key]
		lh := lastHist[ser.key]
		if !ok {
			if st := s.series[ser.key]; st != nil {
				if n := len(st.Samples); n > 0 {
					ls = last{st.Samples[n-1].Timestamp, st.Samples[n-1].Value, true}
				}
				if n := len(st.Histograms); n > 0 {
					lh = last{ts: st.Histograms[n-1].Timestamp, set: true}
				}
			}
		}
		for _, smp := range ser.samples {
			switch {
			case !ls.set:
			case smp.Timestamp < ls.ts:
				v.add("series %s: sample at %d is older than the previous sample at %d; samples must be sent in timestamp order", formatRaw(ser.raw), smp.Timestamp, ls.ts)
			case smp.Timestamp == ls.ts && math.Float64bits(smp.Value) != math.Float64bits(ls.value):
				v.add("series %s: two samples at %d with different values (%v, then %v)", formatRaw(ser.raw), smp.Timestamp, ls.value, smp.Value)
			}
			ls = last{smp.Timestamp, smp.Value, true}
		}
		for _, h := range ser.histograms {
			if lh.set && h.Timestamp < lh.ts {
				v.add("series %s: histogram at %d is older than the previous one at %d; histograms must be sent in timestamp order", formatRaw(ser.raw), h.Timestamp, lh.ts)
			}
			lh = last{ts: h.Timestamp, set: true}
		}
		lastSample[ser.key] = ls
		lastHist[ser.key] = lh
	}
}

// store merges an accepted request into the series. s.mu must be held.
func (s *Server) store(d *decoded) {
	for _, ser := range d.series {
		st := s.series[ser.key]
		if st == nil {
			st = &Series{Labels: ser.labels}
			s.series[ser.key] = st
		}
		st.Samples = append(st.Samples, ser.samples...)
		st.Histograms = append(st.Histograms, ser.histograms...)
		st.Exemplars = append(st.Exemplars, ser.exemplars...)
	}
	for _, m := range d.metadata {
		s.metadata[m.MetricFamilyName] = m
	}
}
