package prwmetrictest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// FuzzHandle feeds arbitrary bodies through the whole handler, as 1.0 and
// 2.0 requests: whatever arrives, the receiver must answer and record it
// without panicking, and never store a request it answered with an error.
func FuzzHandle(f *testing.F) {
	v1 := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "x_bucket"}, {Name: "le", Value: "+Inf"}},
			Samples: []prompb.Sample{{Timestamp: 1, Value: 1}},
			Histograms: []prompb.Histogram{{
				Count:          &prompb.Histogram_CountInt{CountInt: 1},
				PositiveSpans:  []prompb.BucketSpan{{Offset: 0, Length: 1}},
				PositiveDeltas: []int64{1},
			}},
			Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "a", Value: "b"}}}},
		}},
		Metadata: []prompb.MetricMetadata{{MetricFamilyName: "x", Type: prompb.MetricMetadata_HISTOGRAM}},
	}
	raw1, err := v1.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	v2 := &writev2.Request{
		Symbols: []string{"", "__name__", "x"},
		Timeseries: []writev2.TimeSeries{{
			LabelsRefs: []uint32{1, 2},
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}},
			Exemplars:  []writev2.Exemplar{{LabelsRefs: []uint32{1, 2}, Timestamp: 1}},
		}},
	}
	raw2, err := v2.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(snappy.Encode(nil, raw1), false)
	f.Add(snappy.Encode(nil, raw2), true)
	f.Add([]byte("junk"), false)
	f.Add([]byte{}, true)

	s := NewUnstartedServer(WithMaxBodySize(1 << 20))
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, body []byte, asV2 bool) {
		req := httptest.NewRequest(http.MethodPost, DefaultPath, bytes.NewReader(body))
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("User-Agent", "fuzz")
		if asV2 {
			req.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
			req.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
		} else {
			req.Header.Set("Content-Type", "application/x-protobuf")
			req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		}
		rec := httptest.NewRecorder()
		s.handle(rec, req)
		reqs := s.Requests()
		got := reqs[len(reqs)-1]
		if got.Status != rec.Code {
			t.Fatalf("recorded status %d, answered %d", got.Status, rec.Code)
		}
		if got.Stored && rec.Code/100 != 2 {
			t.Fatalf("stored a request answered %d", rec.Code)
		}
		if rec.Code/100 != 2 && len(got.Violations) == 0 {
			t.Fatalf("answered %d without recording why", rec.Code)
		}
		_ = s.Series()
	})
}
