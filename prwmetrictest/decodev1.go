package prwmetrictest

import (
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/prompb"
)

// decodeV1 unmarshals and validates a Remote-Write 1.0 message.
func decodeV1(raw []byte, v *violations) (*prompb.WriteRequest, *decoded, error) {
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, nil, fmt.Errorf("body is not a prometheus.WriteRequest protobuf: %w", err)
	}
	d := &decoded{series: make([]decodedSeries, 0, len(req.Timeseries))}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		s := newDecodedSeries(len(ts.Labels))
		for _, l := range ts.Labels {
			s.raw = append(s.raw, label{l.Name, l.Value})
		}
		s.finish()
		where := "series " + formatRaw(s.raw)
		checkLabels(v, where, s.raw, false)
		for _, smp := range ts.Samples {
			s.samples = append(s.samples, Sample{Timestamp: smp.Timestamp, Value: smp.Value})
		}
		for j := range ts.Histograms {
			h := &ts.Histograms[j]
			nh := NativeHistogram{
				Timestamp: h.Timestamp,
				Float:     h.IsFloatHistogram(),
				Histogram: h.ToFloatHistogram(),
			}
			checkNativeHistogram(v, where, nh, h.ToIntHistogram)
			s.histograms = append(s.histograms, nh)
		}
		for _, e := range ts.Exemplars {
			ls := make([]label, 0, len(e.Labels))
			for _, l := range e.Labels {
				ls = append(ls, label{l.Name, l.Value})
			}
			s.exemplars = append(s.exemplars, newExemplar(v, where, ls, e.Value, e.Timestamp, false))
		}
		checkTimestamps(v, where, s)
		d.add(s)
	}
	for _, m := range req.Metadata {
		d.metadata = append(d.metadata, Metadata{
			MetricFamilyName: m.MetricFamilyName,
			Type:             strings.ToLower(m.Type.String()),
			Help:             m.Help,
			Unit:             m.Unit,
		})
		if m.MetricFamilyName == "" {
			v.add("metadata of type %s has an empty metric_family_name", m.Type)
		}
	}
	return &req, d, nil
}
