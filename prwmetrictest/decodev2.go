package prwmetrictest

import (
	"fmt"
	"strings"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// decodeV2 unmarshals and validates a Remote-Write 2.0 message.
func decodeV2(raw []byte, v *violations) (*writev2.Request, *decoded, error) {
	var req writev2.Request
	if err := req.Unmarshal(raw); err != nil {
		return nil, nil, fmt.Errorf("body is not an io.prometheus.write.v2.Request protobuf: %w", err)
	}
	syms := req.Symbols
	if len(syms) == 0 || syms[0] != "" {
		v.add("symbols table must start with the empty string (symbols[0] == \"\")")
	}
	sym := func(ref uint32) (string, bool) {
		if int(ref) >= len(syms) {
			return "", false
		}
		return syms[ref], true
	}
	d := &decoded{series: make([]decodedSeries, 0, len(req.Timeseries))}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		where := fmt.Sprintf("series #%d", i)
		if len(ts.LabelsRefs)%2 != 0 {
			v.add("%s: labels_refs has odd length %d; it must hold name/value pairs", where, len(ts.LabelsRefs))
			continue
		}
		s := newDecodedSeries(len(ts.LabelsRefs) / 2)
		ok := true
		for j := 0; j < len(ts.LabelsRefs); j += 2 {
			n, ok1 := sym(ts.LabelsRefs[j])
			val, ok2 := sym(ts.LabelsRefs[j+1])
			if !ok1 || !ok2 {
				v.add("%s: labels_refs %d/%d outside the symbols table (size %d)", where, ts.LabelsRefs[j], ts.LabelsRefs[j+1], len(syms))
				ok = false
				break
			}
			s.raw = append(s.raw, label{n, val})
		}
		if !ok {
			continue
		}
		s.finish()
		where = "series " + formatRaw(s.raw)
		checkLabels(v, where, s.raw, true)
		if len(ts.Samples) > 0 && len(ts.Histograms) > 0 {
			v.add("%s: carries both samples and histograms; Remote-Write 2.0 allows only one kind per series", where)
		}
		for _, smp := range ts.Samples {
			if smp.StartTimestamp > smp.Timestamp {
				v.add("%s: sample start_timestamp %d is after its timestamp %d", where, smp.StartTimestamp, smp.Timestamp)
			}
			s.samples = append(s.samples, Sample{Timestamp: smp.Timestamp, Value: smp.Value, StartTimestamp: smp.StartTimestamp})
		}
		for j := range ts.Histograms {
			h := &ts.Histograms[j]
			if h.StartTimestamp > h.Timestamp {
				v.add("%s: histogram start_timestamp %d is after its timestamp %d", where, h.StartTimestamp, h.Timestamp)
			}
			nh := NativeHistogram{
				Timestamp:      h.Timestamp,
				StartTimestamp: h.StartTimestamp,
				Float:          h.IsFloatHistogram(),
				Histogram:      h.ToFloatHistogram(),
			}
			checkNativeHistogram(v, where, nh, h.ToIntHistogram)
			s.histograms = append(s.histograms, nh)
		}
		for _, e := range ts.Exemplars {
			if len(e.LabelsRefs)%2 != 0 {
				v.add("%s: exemplar labels_refs has odd length %d", where, len(e.LabelsRefs))
				continue
			}
			ls := make([]label, 0, len(e.LabelsRefs)/2)
			for j := 0; j < len(e.LabelsRefs); j += 2 {
				n, ok1 := sym(e.LabelsRefs[j])
				val, ok2 := sym(e.LabelsRefs[j+1])
				if !ok1 || !ok2 {
					v.add("%s: exemplar labels_refs %d/%d outside the symbols table (size %d)", where, e.LabelsRefs[j], e.LabelsRefs[j+1], len(syms))
					continue
				}
				ls = append(ls, label{n, val})
			}
			if e.Timestamp == 0 {
				v.add("%s: exemplar without timestamp; Remote-Write 2.0 requires one", where)
			}
			s.exemplars = append(s.exemplars, newExemplar(v, where, ls, e.Value, e.Timestamp, true))
		}
		checkTimestamps(v, where, s)
		md := ts.Metadata
		help, ok1 := sym(md.HelpRef)
		unit, ok2 := sym(md.UnitRef)
		if !ok1 || !ok2 {
			v.add("%s: metadata help_ref %d / unit_ref %d outside the symbols table (size %d)", where, md.HelpRef, md.UnitRef, len(syms))
		} else if md.Type != writev2.Metadata_METRIC_TYPE_UNSPECIFIED || help != "" || unit != "" {
			d.metadata = append(d.metadata, Metadata{
				MetricFamilyName: s.labels[nameLabel],
				Type:             v2TypeName(md.Type),
				Help:             help,
				Unit:             unit,
			})
		}
		d.add(s)
	}
	return &req, d, nil
}

func v2TypeName(t writev2.Metadata_MetricType) string {
	name := strings.TrimPrefix(t.String(), "METRIC_TYPE_")
	if name == "UNSPECIFIED" {
		return "unknown"
	}
	return strings.ToLower(name)
}
