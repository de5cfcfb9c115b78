package benchmarks

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// TestWorkloadMatchesSDK checks that the hand-built metric data is what the
// SDK itself produces when the workload is recorded into a MeterProvider,
// so the push libraries and the pull exporter see the same data.
func TestWorkloadMatchesSDK(t *testing.T) {
	for _, tc := range []struct {
		name string
		give *Workload
	}{
		{name: "W", give: NewWorkloadW()},
		{name: "large", give: NewLargeWorkload(300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(tc.give.Resource))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			if err := tc.give.Record(context.Background(), mp); err != nil {
				t.Fatal(err)
			}
			var got metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &got); err != nil {
				t.Fatal(err)
			}
			sortPoints(tc.give, &got)
			want := tc.give.ResourceMetrics(tc.give.Time())
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

// seriesValues maps each series (its labels, sorted) to its one sample value.
func seriesValues(t *testing.T, tss []prompb.TimeSeries) map[string]float64 {
	t.Helper()
	out := make(map[string]float64, len(tss))
	for _, ts := range tss {
		labels := make([]string, len(ts.Labels))
		for i, l := range ts.Labels {
			labels[i] = l.Name + "=" + l.Value
		}
		slices.Sort(labels)
		key := strings.Join(labels, ",")
		if len(ts.Samples) != 1 {
			t.Fatalf("series %s: %d samples, want 1", key, len(ts.Samples))
		}
		if _, dup := out[key]; dup {
			t.Fatalf("series %s sent twice", key)
		}
		out[key] = ts.Samples[0].Value
	}
	return out
}

// TestWorkloadShape checks that every competitor does the work the table
// says: W yields 44 000 series (+ target_info) through prwmetric, the
// Collector path and the pull exporter, with the same labels and values on
// both remote-write paths, and 10 000 data points through OTLP.
func TestWorkloadShape(t *testing.T) {
	fx := newFixture(NewWorkloadW())
	if got, want := fx.w.Series(), 44_001; got != want {
		t.Fatalf("W has %d series, want %d", got, want)
	}
	ctx := context.Background()

	srv := NewCaptureServer()
	t.Cleanup(srv.Close)
	exp := newPrwmetric(t, srv.URL)
	if err := exp.Export(ctx, fx.rm); err != nil {
		t.Fatal(err)
	}
	ours := seriesValues(t, decodePRW(t, srv.Bodies()))
	if len(ours) != fx.w.Series() {
		t.Errorf("prwmetric sent %d series, want %d", len(ours), fx.w.Series())
	}

	c := newCollectorPRW(srv.URL)
	t.Cleanup(c.client.CloseIdleConnections)
	if err := c.export(ctx, fx.md); err != nil {
		t.Fatal(err)
	}
	theirs := seriesValues(t, decodePRW(t, srv.Bodies()))
	if diff := cmp.Diff(ours, theirs); diff != "" {
		t.Errorf("prwmetric and the Collector path send different series (-prwmetric +collector):\n%s", diff)
	}

	var text bytes.Buffer
	if err := newPull(t, fx.w).scrape(&text); err != nil {
		t.Fatal(err)
	}
	samples := 0
	for sc := bufio.NewScanner(&text); sc.Scan(); {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			samples++
		}
	}
	if samples != fx.w.Series() {
		t.Errorf("the pull exporter exposes %d series, want %d", samples, fx.w.Series())
	}

	for _, compression := range []otlpmetrichttp.Compression{otlpmetrichttp.NoCompression, otlpmetrichttp.GzipCompression} {
		if err := newOTLP(t, srv.URL+"/v1/metrics", compression).Export(ctx, fx.rm); err != nil {
			t.Fatal(err)
		}
	}
	for i, body := range srv.Bodies() {
		if i == 1 {
			var err error
			if body, err = gunzip(body); err != nil {
				t.Fatal(err)
			}
		}
		var req colmetricpb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Fatalf("OTLP request %d: %v", i, err)
		}
		points := 0
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					points += len(m.GetSum().GetDataPoints()) + len(m.GetGauge().GetDataPoints()) + len(m.GetHistogram().GetDataPoints())
				}
			}
		}
		if points != fx.w.DataPoints() {
			t.Errorf("OTLP request %d carries %d data points, want %d", i, points, fx.w.DataPoints())
		}
	}
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
