package prwmetrictest_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestClassicHistogramSplitAcrossRequests pins that a classic histogram's
// series may arrive in several requests. Remote Write does not require a
// histogram's _bucket series to travel together, so a request holding some
// buckets but not the +Inf one nor the _count must be accepted (a strict
// receiver answering 400 would fail a valid sender), while its buckets are
// still checked for cumulative counts, and a missing +Inf bucket is still
// flagged when the request holds the _count.
func TestClassicHistogramSplitAcrossRequests(t *testing.T) {
	bucket := func(le string, v float64) prompb.TimeSeries {
		return series(lbls("__name__", "lat_bucket", "job", "app", "le", le), prompb.Sample{Timestamp: t1, Value: v})
	}
	other := func(suffix string, v float64) prompb.TimeSeries {
		return series(lbls("__name__", "lat"+suffix, "job", "app"), prompb.Sample{Timestamp: t1, Value: v})
	}
	body := func(ts ...prompb.TimeSeries) []byte {
		return encodeV1(t, &prompb.WriteRequest{Timeseries: ts})
	}

	t.Run("accepted", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		defer srv.Close()
		if r := mustPost(t, srv.URL(), v1Headers(), body(bucket("0.1", 1), bucket("1", 3))); r.status != http.StatusNoContent {
			t.Errorf("first part: status %d (%s), want 204", r.status, r.body)
		}
		if r := mustPost(t, srv.URL(), v1Headers(), body(bucket("+Inf", 4), other("_sum", 2.5), other("_count", 4))); r.status != http.StatusNoContent {
			t.Errorf("second part: status %d (%s), want 204", r.status, r.body)
		}
		if v := srv.Violations(); len(v) > 0 {
			t.Errorf("violations %q, want none", v)
		}
		h, err := srv.ClassicHistogram("lat", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Buckets) != 3 || h.Buckets[2].CumulativeCount != 4 || h.Count != 4 || h.Sum != 2.5 {
			t.Errorf("ClassicHistogram = %+v, want 3 buckets, count 4, sum 2.5", h)
		}
	})
	tests := []struct {
		name          string
		body          []byte
		wantViolation string
	}{
		{"partial buckets not cumulative", body(bucket("0.1", 3), bucket("1", 2)), "bucket counts must be cumulative"},
		{"no +Inf beside the _count", body(bucket("0.1", 1), bucket("1", 3), other("_count", 4)), `no le="+Inf" bucket`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			defer srv.Close()
			if r := mustPost(t, srv.URL(), v1Headers(), tt.body); r.status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", r.status)
			}
			if v := srv.Violations(); !containsSub(v, tt.wantViolation) {
				t.Errorf("violations %q, want one containing %q", v, tt.wantViolation)
			}
		})
	}
}

// TestClassicHistogramSplitByPrwmetric pins the same with the real sender:
// prwmetric cuts an export at WithMaxSeriesPerRequest wherever the limit
// falls, here inside a histogram's buckets, and the receiver must take
// every part without a violation and rebuild the histogram.
func TestClassicHistogramSplitByPrwmetric(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp, err := prwmetric.New(prwmetric.WithoutEnvironment(), prwmetric.WithEndpoint(srv.URL()),
		prwmetric.WithMaxSeriesPerRequest(2), prwmetric.WithoutStaleMarkers())
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	ctx := context.Background()
	h, err := mp.Meter("t").Float64Histogram("latency", metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(0.1, 1, 10))
	if err != nil {
		t.Fatal(err)
	}
	h.Record(ctx, 0.5)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(ctx, &rm); err != nil {
		t.Errorf("Export: %v", err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := srv.RequestCount(); n < 2 {
		t.Errorf("%d requests, want the export split in several", n)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("a valid sender's split export was flagged:\n%q", v)
	}
	got, err := srv.ClassicHistogram("latency_seconds", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 1 || len(got.Buckets) != 4 || got.Buckets[1].CumulativeCount != 1 {
		t.Errorf("ClassicHistogram = %+v, want count 1 in the le=1 bucket", got)
	}
}
