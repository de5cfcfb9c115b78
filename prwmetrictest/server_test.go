package prwmetrictest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

func TestWaitForRequests(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	body := encodeV1(t, validV1())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := srv.WaitForRequests(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForRequests with no request: err = %v, want deadline exceeded", err)
	}

	const n = 3
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errc <- srv.WaitForRequests(ctx, n)
	}()
	for range n {
		mustPost(t, srv.URL(), v1Headers(), body)
	}
	if err := <-errc; err != nil {
		t.Fatalf("WaitForRequests: %v", err)
	}
	if got := srv.RequestCount(); got != n {
		t.Errorf("RequestCount = %d, want %d", got, n)
	}

	srv.Close()
	if err := srv.WaitForRequests(context.Background(), n+1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("WaitForRequests after Close: err = %v, want server closed", err)
	}
}

func TestStartTLS(t *testing.T) {
	srv := prwmetrictest.NewUnstartedServer()
	srv.StartTLS()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") || srv.Certificate() == nil {
		t.Fatalf("URL = %q, certificate %v", srv.URL(), srv.Certificate())
	}
	r, err := post(t, context.Background(), srv.Client(), http.MethodPost, srv.URL(), v1Headers(), encodeV1(t, validV1()))
	if err != nil || r.status != 204 {
		t.Fatalf("post over TLS: %v, %+v", err, r)
	}
}

// TestServerConcurrentSafe sends and reads from many goroutines; run with
// -race.
func TestServerConcurrentSafe(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	const senders, perSender = 8, 10
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range senders {
		wg.Go(func() {
			for j := range perSender {
				body := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
					series(lbls("__name__", "up", "sender", string(rune('a'+i))), prompb.Sample{Timestamp: t1 + int64(j), Value: float64(j)}),
				}})
				r, err := post(t, context.Background(), http.DefaultClient, http.MethodPost, srv.URL(), v1Headers(), body)
				if err != nil || r.status != 204 {
					t.Errorf("post: %v %+v", err, r)
				}
			}
		})
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, s := range srv.Series() {
					_ = s.Labels.String()
				}
				_, _ = srv.Latest("up", map[string]string{"sender": "a"})
				_ = srv.Requests()
				_ = srv.Violations()
				srv.RespondWith(0, prwmetrictest.Response{})
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	if got := srv.RequestCount(); got != senders*perSender {
		t.Errorf("RequestCount = %d, want %d", got, senders*perSender)
	}
	for i := range senders {
		samples, err := srv.Samples("up", map[string]string{"sender": string(rune('a' + i))})
		if err != nil || len(samples) != perSender {
			t.Errorf("sender %d: %d samples, %v", i, len(samples), err)
		}
	}
	if v := srv.Violations(); len(v) != 0 {
		t.Errorf("violations: %q", v)
	}
}
