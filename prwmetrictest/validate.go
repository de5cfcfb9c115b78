package prwmetrictest

// The per-series rules both protocols share: labels, timestamps and
// exemplars. Histogram rules are in histograms.go, header rules in
// headers.go.

import (
	"math"
	"strings"
	"unicode/utf8"
)

const (
	// maxExemplarLabelRunes is the OpenMetrics limit on an exemplar's
	// label names and values together.
	maxExemplarLabelRunes = 128
	// maxPlausibleMillis is about the year 5138 in milliseconds; anything
	// larger was almost surely sent in micro- or nanoseconds.
	maxPlausibleMillis = 1e14
)

// checkLabels applies the label rules of SPEC §1 to one series. With
// utf8Names (Remote-Write 2.0), names may be any valid UTF-8, as Prometheus 3
// accepts them.
func checkLabels(v *violations, where string, ls []label, utf8Names bool) {
	seen := make(map[string]bool, len(ls))
	hasName := false
	for i, l := range ls {
		switch {
		case l.name == "":
			v.add("%s: label #%d has an empty name", where, i)
		case l.name == nameLabel:
			hasName = true
			if !validMetricName(l.value) && !(utf8Names && utf8.ValidString(l.value)) {
				v.add("%s: metric name %q does not match [a-zA-Z_:][a-zA-Z0-9_:]*", where, l.value)
			}
		case !validLabelName(l.name) && !(utf8Names && utf8.ValidString(l.name)):
			v.add("%s: label name %q does not match [a-zA-Z_][a-zA-Z0-9_]*", where, l.name)
		case l.name == "__type__" || l.name == "__unit__":
			// Prometheus' type-and-unit-labels carry metadata in these.
		case strings.HasPrefix(l.name, "__"):
			v.add("%s: label name %q is reserved (names starting with __ belong to Prometheus)", where, l.name)
		}
		if l.value == "" {
			v.add("%s: label %q has an empty value; drop the label instead", where, l.name)
		} else if !utf8.ValidString(l.value) {
			v.add("%s: label %q has a value that is not valid UTF-8", where, l.name)
		}
		if seen[l.name] {
			v.add("%s: label %q appears more than once", where, l.name)
		} else if i > 0 && l.name < ls[i-1].name {
			v.add("%s: labels not sorted by name: %q comes after %q", where, l.name, ls[i-1].name)
		}
		seen[l.name] = true
	}
	if !hasName {
		v.add("%s: no %s label (metric name)", where, nameLabel)
	}
}

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || isLetter(c) || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || isLetter(c) || (i > 0 && isDigit(c))) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// checkTimestamps flags timestamps that cannot be milliseconds. Ordering is
// checked later, against what the receiver already stored.
func checkTimestamps(v *violations, where string, s decodedSeries) {
	for _, smp := range s.samples {
		if smp.Timestamp > maxPlausibleMillis {
			v.add("%s: timestamp %d is not in milliseconds (it looks like micro- or nanoseconds)", where, smp.Timestamp)
			return
		}
	}
	for _, h := range s.histograms {
		if h.Timestamp > maxPlausibleMillis {
			v.add("%s: histogram timestamp %d is not in milliseconds (it looks like micro- or nanoseconds)", where, h.Timestamp)
			return
		}
	}
}

// newExemplar checks an exemplar's labels and value and converts it.
func newExemplar(v *violations, where string, ls []label, value float64, ts int64, utf8Names bool) Exemplar {
	e := Exemplar{Labels: make(Labels, len(ls)), Value: value, Timestamp: ts}
	runes := 0
	for _, l := range ls {
		if !validLabelName(l.name) && !(utf8Names && utf8.ValidString(l.name)) {
			v.add("%s: exemplar label name %q does not match [a-zA-Z_][a-zA-Z0-9_]*", where, l.name)
		}
		if _, dup := e.Labels[l.name]; dup {
			v.add("%s: exemplar label %q appears more than once", where, l.name)
		}
		runes += utf8.RuneCountInString(l.name) + utf8.RuneCountInString(l.value)
		e.Labels[l.name] = l.value
	}
	if runes > maxExemplarLabelRunes {
		v.add("%s: exemplar labels have %d runes, more than the limit of %d", where, runes, maxExemplarLabelRunes)
	}
	if math.Float64bits(value) == StaleNaN {
		v.add("%s: exemplar value is the stale NaN, which is reserved for staleness markers of samples", where)
	}
	return e
}
