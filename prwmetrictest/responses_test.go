package prwmetrictest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

func TestRespondWith(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	srv.RespondWith(2, prwmetrictest.Response{Status: 503, RetryAfter: "3", Body: "overloaded"})
	srv.RespondWith(1, prwmetrictest.Response{Status: 429, Header: http.Header{"X-Test": {"yes"}}})

	body := func(ts int64) []byte {
		return encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(lbls("__name__", "up"), prompb.Sample{Timestamp: ts, Value: 1})}})
	}
	want := []struct {
		status     int
		retryAfter string
		xTest      string
		body       string
		stored     bool
	}{
		{503, "3", "", "overloaded", false},
		{503, "3", "", "overloaded", false},
		{429, "", "yes", "", false},
		{204, "", "", "", true},
	}
	for i, w := range want {
		r := mustPost(t, srv.URL(), v1Headers(), body(t1+int64(i)))
		if r.status != w.status || r.header.Get("Retry-After") != w.retryAfter || r.header.Get("X-Test") != w.xTest || r.body != w.body {
			t.Errorf("request %d: got %d Retry-After=%q X-Test=%q body=%q, want %+v", i+1, r.status, r.header.Get("Retry-After"), r.header.Get("X-Test"), r.body, w)
		}
	}
	for i, r := range srv.Requests() {
		if r.Stored != want[i].stored {
			t.Errorf("request %d stored = %v, want %v", i+1, r.Stored, want[i].stored)
		}
	}
	samples, err := srv.Samples("up", nil)
	if err != nil || len(samples) != 1 || samples[0].Timestamp != t1+3 {
		t.Errorf("Samples = %v, %v; want only the accepted request's sample", samples, err)
	}

	t.Run("Always and ClearResponses", func(t *testing.T) {
		srv.RespondWith(prwmetrictest.Always, prwmetrictest.Response{Status: 500})
		for i := range 3 {
			if r := mustPost(t, srv.URL(), v1Headers(), body(t2+int64(i))); r.status != 500 {
				t.Errorf("status = %d, want 500", r.status)
			}
		}
		srv.ClearResponses()
		if r := mustPost(t, srv.URL(), v1Headers(), body(t2+10)); r.status != 204 {
			t.Errorf("after ClearResponses status = %d, want 204", r.status)
		}
	})
}

func TestDelay(t *testing.T) {
	body := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(lbls("__name__", "up"), prompb.Sample{Timestamp: t1, Value: 1})}})

	t.Run("holds the answer back", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		defer srv.Close()
		const delay = 100 * time.Millisecond
		srv.RespondWith(1, prwmetrictest.Response{Delay: delay})
		start := time.Now()
		r := mustPost(t, srv.URL(), v1Headers(), body)
		if elapsed := time.Since(start); elapsed < delay {
			t.Errorf("answered after %v, want at least %v", elapsed, delay)
		}
		if r.status != 204 {
			t.Errorf("status = %d, want 204 (Status 0 keeps the normal answer)", r.status)
		}
	})

	t.Run("client timeout ends it", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		defer srv.Close()
		srv.RespondWith(1, prwmetrictest.Response{Delay: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := post(t, ctx, http.DefaultClient, http.MethodPost, srv.URL(), v1Headers(), body)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the client's deadline", err)
		}
		// The backend wrote the data before it stalled, like a real slow one.
		if _, err := srv.Latest("up", nil); err != nil {
			t.Errorf("data of the delayed request not stored: %v", err)
		}
	})

	t.Run("Close ends it", func(t *testing.T) {
		srv := prwmetrictest.NewServer()
		srv.RespondWith(1, prwmetrictest.Response{Delay: time.Hour})
		done := make(chan error, 1)
		go func() {
			_, err := post(t, context.Background(), http.DefaultClient, http.MethodPost, srv.URL(), v1Headers(), body)
			done <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.WaitForRequests(ctx, 1); err != nil {
			t.Fatal(err)
		}
		srv.Close() // must not wait an hour
		if err := <-done; err != nil {
			t.Logf("client saw %v (fine: the server closed)", err)
		}
	})
}
