package prwmetrictest

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// maxListed bounds how many names or series an error message lists.
const maxListed = 20

// Series returns every series stored so far, sorted by their printed
// label set. The result is a copy.
func (s *Server) Series() []Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Series, 0, len(s.series))
	for _, st := range s.series {
		out = append(out, copySeries(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Labels.String() < out[j].Labels.String() })
	return out
}

func copySeries(st *Series) Series {
	c := Series{
		Labels:     st.Labels.clone(),
		Samples:    append([]Sample(nil), st.Samples...),
		Histograms: append([]NativeHistogram(nil), st.Histograms...),
		Exemplars:  make([]Exemplar, len(st.Exemplars)),
	}
	for i, e := range st.Exemplars {
		e.Labels = e.Labels.clone()
		c.Exemplars[i] = e
	}
	return c
}

// Metadata returns the latest metadata received for each metric family,
// sorted by family name.
func (s *Server) Metadata() []Metadata {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Metadata, 0, len(s.metadata))
	for _, m := range s.metadata {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MetricFamilyName < out[j].MetricFamilyName })
	return out
}

// Find returns the one stored series named name whose labels include
// match. A match value of "" requires the label to be absent; labels not
// in match may have any value. It fails, listing what was received, when
// no series or more than one series matches; when none does and requests
// were refused (not stored), the error also says how many and gives the
// first one's status and violation.
func (s *Server) Find(name string, match map[string]string) (Series, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.find(name, match)
	if err != nil {
		return Series{}, err
	}
	return copySeries(st), nil
}

// find implements Find; s.mu must be held.
func (s *Server) find(name string, match map[string]string) (*Series, error) {
	var named, matched []*Series
	for _, st := range s.series {
		if st.Labels[nameLabel] != name {
			continue
		}
		named = append(named, st)
		if matches(st.Labels, match) {
			matched = append(matched, st)
		}
	}
	want := Labels(match).clone()
	want[nameLabel] = name
	switch {
	case len(matched) == 1:
		return matched[0], nil
	case len(named) == 0:
		return nil, fmt.Errorf("prwmetrictest: no series named %q received; names received: %s%s", name, s.names(), s.refused())
	case len(matched) == 0:
		return nil, fmt.Errorf("prwmetrictest: no series matches %s; series named %q: %s%s", want, name, listSeries(named), s.refused())
	default:
		return nil, fmt.Errorf("prwmetrictest: %d series match %s, add labels to pick one: %s", len(matched), want, listSeries(matched))
	}
}

func matches(l Labels, match map[string]string) bool {
	for k, want := range match {
		if k == nameLabel {
			continue
		}
		if got, ok := l[k]; want == "" && ok || want != "" && got != want {
			return false
		}
	}
	return true
}

// names lists the distinct metric names stored; s.mu must be held.
func (s *Server) names() string {
	set := map[string]bool{}
	for _, st := range s.series {
		set[st.Labels[nameLabel]] = true
	}
	if len(set) == 0 {
		return "none"
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return truncList(names)
}

// refused explains, for an error saying a series was not found, that
// requests were refused and so not stored: how many, and the first one's
// status and first violation. It returns "" when every request was stored.
// s.mu must be held.
func (s *Server) refused() string {
	n := 0
	var first *Request
	for i := range s.requests {
		if r := &s.requests[i]; !r.Stored {
			if n++; first == nil {
				first = r
			}
		}
	}
	if n == 0 {
		return ""
	}
	msg := fmt.Sprintf("; %d of %d requests received were refused and not stored, the first (request %d) answered %d", n, len(s.requests), first.Seq, first.Status)
	if len(first.Violations) > 0 {
		msg += ": " + first.Violations[0]
	}
	return msg
}

func listSeries(ss []*Series) string {
	out := make([]string, len(ss))
	for i, st := range ss {
		out[i] = st.Labels.String()
	}
	sort.Strings(out)
	return truncList(out)
}

func truncList(items []string) string {
	if len(items) > maxListed {
		return strings.Join(items[:maxListed], ", ") + fmt.Sprintf(", … (%d more)", len(items)-maxListed)
	}
	return strings.Join(items, ", ")
}

// Samples returns all float samples of the series selected like Find, in
// arrival order.
func (s *Server) Samples(name string, match map[string]string) ([]Sample, error) {
	st, err := s.Find(name, match)
	if err != nil {
		return nil, err
	}
	return st.Samples, nil
}

// Latest returns the sample with the greatest timestamp (the later one
// on a tie) of the series selected like Find, skipping staleness markers
// ([Sample.IsStale]): after a MeterProvider's Shutdown, which ends each
// series with one, it returns the last value recorded. It fails when the
// series holds only staleness markers. [Server.Samples] returns every
// sample, markers included.
func (s *Server) Latest(name string, match map[string]string) (Sample, error) {
	st, err := s.Find(name, match)
	if err != nil {
		return Sample{}, err
	}
	if len(st.Samples) == 0 {
		return Sample{}, fmt.Errorf("prwmetrictest: series %s has no float samples (%d native histograms)", st.Labels, len(st.Histograms))
	}
	var best Sample
	found := false
	for _, smp := range st.Samples {
		if !smp.IsStale() && (!found || smp.Timestamp >= best.Timestamp) {
			best, found = smp, true
		}
	}
	if !found {
		return Sample{}, fmt.Errorf("prwmetrictest: series %s has only staleness markers (%d)", st.Labels, len(st.Samples))
	}
	return best, nil
}

// NativeHistograms returns all native histogram samples of the series
// selected like Find, in arrival order.
func (s *Server) NativeHistograms(name string, match map[string]string) ([]NativeHistogram, error) {
	st, err := s.Find(name, match)
	if err != nil {
		return nil, err
	}
	return st.Histograms, nil
}

// Exemplars returns all exemplars of the series selected like Find, in
// arrival order.
func (s *Server) Exemplars(name string, match map[string]string) ([]Exemplar, error) {
	st, err := s.Find(name, match)
	if err != nil {
		return nil, err
	}
	return st.Exemplars, nil
}

// ClassicHistogram rebuilds the classic histogram name (without the
// _bucket suffix) from its name_bucket series whose labels include match,
// and name_sum / name_count with the same labels, at the latest timestamp
// of its buckets, skipping staleness markers as [Server.Latest] does: after
// a MeterProvider's Shutdown it returns the last histogram recorded. It
// fails when the buckets belong to more than one label set (add labels to
// match to pick one) or hold only staleness markers.
func (s *Server) ClassicHistogram(name string, match map[string]string) (ClassicHistogram, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	groups := map[string][]*Series{}
	for _, st := range s.series {
		if st.Labels[nameLabel] != name+"_bucket" || !matches(st.Labels, match) {
			continue
		}
		if _, ok := st.Labels["le"]; !ok {
			continue
		}
		key := seriesKey(baseLabels(st.Labels, name))
		groups[key] = append(groups[key], st)
	}
	want := Labels(match).clone()
	want[nameLabel] = name + "_bucket"
	if len(groups) != 1 {
		var all []*Series
		for _, g := range groups {
			all = append(all, g...)
		}
		if len(all) == 0 {
			return ClassicHistogram{}, fmt.Errorf("prwmetrictest: no bucket series matches %s; names received: %s%s", want, s.names(), s.refused())
		}
		return ClassicHistogram{}, fmt.Errorf("prwmetrictest: buckets of %d histograms match %s, add labels to pick one: %s", len(groups), want, listSeries(all))
	}
	var buckets []*Series
	for _, g := range groups {
		buckets = g
	}
	h := ClassicHistogram{Labels: baseLabels(buckets[0].Labels, name), Timestamp: math.MinInt64}
	found := false
	for _, b := range buckets {
		for _, smp := range b.Samples {
			if !smp.IsStale() {
				h.Timestamp, found = max(h.Timestamp, smp.Timestamp), true
			}
		}
	}
	if !found {
		return ClassicHistogram{}, fmt.Errorf("prwmetrictest: the buckets of %s hold only staleness markers", h.Labels)
	}
	for _, b := range buckets {
		bound, err := parseLe(b.Labels["le"])
		if err != nil {
			return ClassicHistogram{}, fmt.Errorf("prwmetrictest: series %s: le is not a number", b.Labels)
		}
		val, ok := liveValueAt(b.Samples, h.Timestamp)
		if !ok {
			return ClassicHistogram{}, fmt.Errorf("prwmetrictest: series %s has no sample at %d, the latest timestamp of its histogram", b.Labels, h.Timestamp)
		}
		h.Buckets = append(h.Buckets, Bucket{UpperBound: bound, CumulativeCount: val})
	}
	sort.Slice(h.Buckets, func(i, j int) bool { return h.Buckets[i].UpperBound < h.Buckets[j].UpperBound })
	h.Sum, h.Count = math.NaN(), math.NaN()
	for suffix, dst := range map[string]*float64{"_sum": &h.Sum, "_count": &h.Count} {
		l := h.Labels.clone()
		l[nameLabel] = name + suffix
		if st := s.series[seriesKey(l)]; st != nil {
			if val, ok := liveValueAt(st.Samples, h.Timestamp); ok {
				*dst = val
			}
		}
	}
	return h, nil
}

// baseLabels returns l without "le" and with __name__ set to name.
func baseLabels(l Labels, name string) Labels {
	c := l.clone()
	delete(c, "le")
	c[nameLabel] = name
	return c
}

// liveValueAt returns the value of the last sample at timestamp ts that is
// not a staleness marker.
func liveValueAt(samples []Sample, ts int64) (float64, bool) {
	for i := len(samples) - 1; i >= 0; i-- {
		if samples[i].Timestamp == ts && !samples[i].IsStale() {
			return samples[i].Value, true
		}
	}
	return 0, false
}
