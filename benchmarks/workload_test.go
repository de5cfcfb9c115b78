package benchmarks

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
)

// TestWorkloadMatchesSDK checks that the hand-built metric data is what the
// SDK itself produces when the workload is recorded into a MeterProvider,
// so the push libraries and the pull exporter see the same data.
func TestWorkloadMatchesSDK(t *testing.T) {
	cases := map[string]*Workload{
		// The SDK folds attribute sets beyond its default limit of 2 000
		// per instrument into one overflow series, unless told not to.
		"beyond the default cardinality limit": NewWorkload(wInstruments[:1], 2500),
	}
	for _, s := range Shapes {
		cases[s.Name] = s.New(testSets[s])
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(append(w.ProviderOptions(), sdkmetric.WithReader(reader))...)
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			if err := w.Record(context.Background(), mp); err != nil {
				t.Fatal(err)
			}
			var got metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &got); err != nil {
				t.Fatal(err)
			}
			sortPoints(w, &got)
			want := w.ResourceMetrics(w.Time())
			metricdatatest.AssertEqual(t, *want, got, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
		})
	}
}

// sortPoints puts the data points of rm in the order of w.Sets: the SDK
// returns them in map order.
func sortPoints(w *Workload, rm *metricdata.ResourceMetrics) {
	index := make(map[attribute.Distinct]int, len(w.Sets))
	for i, set := range w.Sets {
		index[set.Equivalent()] = i
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				sortByIndex(d.DataPoints, index, func(p metricdata.DataPoint[int64]) attribute.Set { return p.Attributes })
			case metricdata.Sum[float64]:
				sortByIndex(d.DataPoints, index, func(p metricdata.DataPoint[float64]) attribute.Set { return p.Attributes })
			case metricdata.Gauge[int64]:
				sortByIndex(d.DataPoints, index, func(p metricdata.DataPoint[int64]) attribute.Set { return p.Attributes })
			case metricdata.Gauge[float64]:
				sortByIndex(d.DataPoints, index, func(p metricdata.DataPoint[float64]) attribute.Set { return p.Attributes })
			case metricdata.Histogram[float64]:
				sortByIndex(d.DataPoints, index, func(p metricdata.HistogramDataPoint[float64]) attribute.Set { return p.Attributes })
			case metricdata.ExponentialHistogram[float64]:
				sortByIndex(d.DataPoints, index, func(p metricdata.ExponentialHistogramDataPoint[float64]) attribute.Set { return p.Attributes })
			}
		}
	}
}

func sortByIndex[P any](dps []P, index map[attribute.Distinct]int, attrs func(P) attribute.Set) {
	slices.SortFunc(dps, func(a, b P) int {
		sa, sb := attrs(a), attrs(b)
		return index[sa.Equivalent()] - index[sb.Equivalent()]
	})
}

// decodePRW decodes remote-write bodies as a receiver does.
func decodePRW(t *testing.T, bodies [][]byte) []prompb.TimeSeries {
	t.Helper()
	var out []prompb.TimeSeries
	for i, body := range bodies {
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			t.Fatalf("request %d: snappy: %v", i, err)
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			t.Fatalf("request %d: protobuf: %v", i, err)
		}
		out = append(out, req.Timeseries...)
	}
	return out
}

// TestReceiverCounts checks the receiver process's byte counts against a
// body whose sizes are known.
func TestReceiverCounts(t *testing.T) {
	rcv := receiver(t)
	before, err := rcv.Stats()
	if err != nil {
		t.Fatal(err)
	}
	raw := bytes.Repeat([]byte("prometheus remote write "), 1000)
	body := snappy.Encode(nil, raw)
	for range 3 {
		req, err := http.NewRequest(http.MethodPost, rcv.URL+"/api/v1/write", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Encoding", "snappy")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d, want 204", resp.StatusCode)
		}
	}
	after, err := rcv.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Requests: 3, WireBytes: 3 * int64(len(body)), RawBytes: 3 * int64(len(raw))}
	if got := after.Sub(before); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
