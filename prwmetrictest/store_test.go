package prwmetrictest_test

import (
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

func TestOrderAcrossRequests(t *testing.T) {
	up := func(ts int64, v float64) []byte {
		return encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{series(lbls("__name__", "up"), prompb.Sample{Timestamp: ts, Value: v})}})
	}
	tests := []struct {
		name          string
		second        []byte
		wantStatus    int
		wantViolation string // "" for none
	}{
		{"newer sample", up(t2, 2), 204, ""},
		{"same sample resent", up(t1, 1), 204, ""},
		{"older sample", up(t1-1, 1), 400, "is older than the previous sample"},
		{"same timestamp other value", up(t1, 5), 400, "two samples at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			defer srv.Close()
			if r := mustPost(t, srv.URL(), v1Headers(), up(t1, 1)); r.status != 204 {
				t.Fatalf("first request: %d %s", r.status, r.body)
			}
			r := mustPost(t, srv.URL(), v1Headers(), tt.second)
			if r.status != tt.wantStatus {
				t.Errorf("status = %d, want %d (%s)", r.status, tt.wantStatus, r.body)
			}
			v := srv.Violations()
			if tt.wantViolation == "" && len(v) != 0 || tt.wantViolation != "" && !containsSub(v, "request 2: ", tt.wantViolation) {
				t.Errorf("Violations() = %q, want %q", v, tt.wantViolation)
			}
		})
	}
}
