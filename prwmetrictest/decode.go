package prwmetrictest

// The protocol-independent form both decoders (decodev1.go, decodev2.go)
// produce, which storage, the ordering checks and the queries share.

import (
	"sort"
	"strconv"
	"strings"
)

// label is one label pair in the order it was received.
type label struct{ name, value string }

// decodedSeries is one series of a request in a protocol-independent form.
type decodedSeries struct {
	raw        []label // as received, to check order
	labels     Labels
	key        string
	samples    []Sample
	histograms []NativeHistogram
	exemplars  []Exemplar
}

// decoded is the protocol-independent content of one request.
type decoded struct {
	series                         []decodedSeries
	metadata                       []Metadata
	samples, histograms, exemplars int
}

func newDecodedSeries(n int) decodedSeries {
	return decodedSeries{raw: make([]label, 0, n)}
}

// finish builds the label map and the identity key from the raw labels.
func (s *decodedSeries) finish() {
	s.labels = make(Labels, len(s.raw))
	for _, l := range s.raw {
		s.labels[l.name] = l.value
	}
	s.key = seriesKey(s.labels)
}

func (d *decoded) add(s decodedSeries) {
	d.samples += len(s.samples)
	d.histograms += len(s.histograms)
	d.exemplars += len(s.exemplars)
	d.series = append(d.series, s)
}

// seriesKey identifies a label set independently of label order.
func seriesKey(l Labels) string {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0xff)
		b.WriteString(l[n])
		b.WriteByte(0xfe)
	}
	return b.String()
}

// formatRaw prints labels in the order received, so an ordering problem is
// visible in the message.
func formatRaw(ls []label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.value))
	}
	b.WriteByte('}')
	return b.String()
}
