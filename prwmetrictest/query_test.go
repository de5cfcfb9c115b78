package prwmetrictest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

func TestFindErrors(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	mustPost(t, srv.URL(), v1Headers(), encodeV1(t, validV1()))

	tests := []struct {
		name    string
		metric  string
		match   map[string]string
		wantErr string
	}{
		{"unknown name", "nope_total", nil, `no series named "nope_total" received; names received: latency_seconds_bucket, `},
		{"no label match", "requests_total", map[string]string{"path": "/y"}, `no series matches requests_total{path="/y"}`},
		{"ambiguous", "requests_total", nil, `2 series match requests_total{}, add labels to pick one`},
		{"absent label must be absent", "requests_total", map[string]string{"path": ""}, `no series matches`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := srv.Latest(tt.metric, tt.match)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	t.Run("empty value matches absent label", func(t *testing.T) {
		if _, err := srv.Latest("latency_seconds_sum", map[string]string{"path": ""}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNotFoundExplainsRefusedRequests pins that when a series is not found
// and requests were refused (so nothing of them stored), the error says
// how many and gives the first one's status and violation: otherwise a
// user whose sender broke a rule only reads "names received: none" and
// does not learn why. With every request stored the errors do not mention
// refusals.
func TestNotFoundExplainsRefusedRequests(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	ok := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "other", "job", "x"), prompb.Sample{Timestamp: t1, Value: 1}),
	}})
	if r := mustPost(t, srv.URL(), v1Headers(), ok); r.status != http.StatusNoContent {
		t.Fatalf("valid request: status %d (%s)", r.status, r.body)
	}
	if _, err := srv.Find("up", nil); err == nil || strings.Contains(err.Error(), "refused") {
		t.Errorf("with every request stored: err = %v, want a not-found error without refusals", err)
	}
	unsorted := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "up", "zone", "eu", "job", "x"), prompb.Sample{Timestamp: t1, Value: 1}),
	}})
	for range 2 {
		if r := mustPost(t, srv.URL(), v1Headers(), unsorted); r.status != http.StatusBadRequest {
			t.Fatalf("unsorted labels: status %d, want 400", r.status)
		}
	}
	want := []string{"2 of 3 requests", "refused", "request 2", "400", "labels not sorted by name"}
	for name, query := range map[string]func() error{
		"Find":             func() error { _, err := srv.Find("up", nil); return err },
		"Latest":           func() error { _, err := srv.Latest("up", nil); return err },
		"labels not found": func() error { _, err := srv.Find("other", map[string]string{"job": "y"}); return err },
		"ClassicHistogram": func() error { _, err := srv.ClassicHistogram("up", nil); return err },
	} {
		err := query()
		if err == nil {
			t.Errorf("%s: found a series of a refused request", name)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: err = %v, want it to contain %q", name, err, w)
			}
		}
	}
}
