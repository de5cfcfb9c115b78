package prwmetric

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

func TestSplitBySeriesCount(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithMaxSeriesPerRequest(2000), WithoutStaleMarkers())

	at := time.UnixMilli(1_700_000_000_000)
	if err := exp.Export(context.Background(), manyGauges(5000, at)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	// The requests go out side by side: put them in the export's order
	// by their first series (series i has value i).
	sort.Slice(reqs, func(i, j int) bool {
		return reqs[i].V1.Timeseries[0].Samples[0].Value < reqs[j].V1.Timeseries[0].Samples[0].Value
	})
	next := 0 // series must be in order within and across requests
	for i, want := range []int{2000, 2000, 1000} {
		r := reqs[i].V1
		if len(r.Timeseries) != want {
			t.Errorf("request %d: %d series, want %d", i, len(r.Timeseries), want)
		}
		if (len(r.Metadata) > 0) != (i == 2) {
			t.Errorf("request %d: %d metadata entries; want them in the last request only", i, len(r.Metadata))
		}
		for _, ts := range r.Timeseries {
			if got := ts.Samples[0].Value; got != float64(next) {
				t.Fatalf("request %d: series with value %v, want %d: order broken", i, got, next)
			}
			next++
		}
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

func TestSplitByBytes(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	const limit = 4096
	exp := newTestExporter(t, srv, WithMaxRequestBytes(limit), WithoutStaleMarkers(), WithoutMetadata())

	if err := exp.Export(context.Background(), manyGauges(500, time.UnixMilli(1_700_000_000_000))); err != nil {
		t.Fatalf("Export: %v", err)
	}
	total := 0
	for i, r := range srv.Requests() {
		raw, err := snappy.Decode(nil, r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > limit {
			t.Errorf("request %d: %d bytes uncompressed, limit %d", i, len(raw), limit)
		}
		if len(r.V1.Timeseries) == 0 {
			t.Errorf("request %d is empty", i)
		}
		total += len(r.V1.Timeseries)
	}
	if total != 500 || srv.RequestCount() < 2 {
		t.Errorf("%d series in %d requests, want 500 split over several", total, srv.RequestCount())
	}
}

func TestSplitOversizedSeriesGoesAlone(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithMaxRequestBytes(10), WithoutStaleMarkers(), WithoutMetadata())

	if err := exp.Export(context.Background(), manyGauges(3, time.UnixMilli(1_700_000_000_000))); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if n := srv.RequestCount(); n != 3 {
		t.Fatalf("%d requests, want one per oversized series", n)
	}
	for i, r := range srv.Requests() {
		if len(r.V1.Timeseries) != 1 {
			t.Errorf("request %d: %d series, want 1", i, len(r.V1.Timeseries))
		}
	}
}

func TestSplitFirstFailureStopsTheRest(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	// One request at a time: the requests after the failure are not sent
	// (see concurrency_test.go for requests side by side).
	exp := newTestExporter(t, srv, WithMaxSeriesPerRequest(100), WithoutStaleMarkers(), WithMaxConcurrentRequests(1))
	srv.RespondWith(1, prwmetrictest.Response{})                               // first request accepted
	srv.RespondWith(1, prwmetrictest.Response{Status: 500, Body: "disk full"}) // second fails

	err := exp.Export(context.Background(), manyGauges(450, time.UnixMilli(1_700_000_000_000)))
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("err = %v, want a *WriteError", err)
	}
	if we.Delivered != 100 || we.Series != 350 || we.StatusCode != 500 || we.Body != "disk full" {
		t.Errorf("WriteError = %+v, want 100 delivered, 350 dropped, 500 \"disk full\"", we)
	}
	if n := srv.RequestCount(); n != 2 {
		t.Errorf("%d requests, want 2: nothing after the failure", n)
	}
}

// TestSplitDataRefusalDoesNotStopTheRest: a 400 or 422 refuses the data of
// its request (an out-of-order sample, a label over the receiver's
// limits), and says nothing of the other requests: they are sent, and
// the error counts only that request's series dropped. A receiver that
// keeps refusing one series would otherwise lose most of every export.
func TestSplitDataRefusalDoesNotStopTheRest(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnprocessableEntity} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			defer srv.Close()
			exp := newTestExporter(t, srv, WithMaxSeriesPerRequest(100), WithoutStaleMarkers(), WithMaxConcurrentRequests(1))
			srv.RespondWith(1, prwmetrictest.Response{})
			srv.RespondWith(1, prwmetrictest.Response{Status: status, Body: "out of order sample"})
			err := exp.Export(context.Background(), manyGauges(450, time.UnixMilli(1_700_000_000_000)))
			var we *WriteError
			if !errors.As(err, &we) {
				t.Fatalf("err = %v, want a *WriteError", err)
			}
			if we.Delivered != 350 || we.Series != 100 || we.StatusCode != status {
				t.Errorf("WriteError = %+v, want 350 delivered, 100 dropped, %d", we, status)
			}
			if n := srv.RequestCount(); n != 5 {
				t.Errorf("%d requests, want all 5", n)
			}
			if n := len(srv.Series()); n != 350 {
				t.Errorf("the receiver holds %d series, want 350", n)
			}
		})
	}
}

// TestSplitFailureAfterADataRefusalIsReported: a 400 lets the rest go on;
// the 503 after it stops them. The error is the 503's, which dropped the
// requests not started, and counts them with the 400's.
func TestSplitFailureAfterADataRefusalIsReported(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithMaxSeriesPerRequest(100), WithoutStaleMarkers(), WithMaxConcurrentRequests(1))
	srv.RespondWith(1, prwmetrictest.Response{})
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusBadRequest, Body: "out of order sample"})
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusServiceUnavailable, Body: "down"})
	err := exp.Export(context.Background(), manyGauges(450, time.UnixMilli(1_700_000_000_000)))
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("err = %v, want a *WriteError", err)
	}
	if we.StatusCode != http.StatusServiceUnavailable || we.Delivered != 100 || we.Series != 350 {
		t.Errorf("WriteError = %+v, want 503, 100 delivered, 350 dropped", we)
	}
	if n := srv.RequestCount(); n != 3 {
		t.Errorf("%d requests, want 3: none after the 503", n)
	}
}

func TestSplitLimitsValidated(t *testing.T) {
	for _, opt := range []Option{WithMaxSeriesPerRequest(0), WithMaxRequestBytes(-1)} {
		exp, err := New(WithEndpoint("http://127.0.0.1:1/"), WithoutEnvironment(), opt)
		if err == nil || exp != nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("New = %v, %v; want a nil exporter and a \"must be positive\" error", exp, err)
		}
	}
}
