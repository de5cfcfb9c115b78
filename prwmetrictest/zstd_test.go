package prwmetrictest_test

import (
	"net/http"
	"testing"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/prompb"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// vmHeaders are the headers of the VictoriaMetrics remote write protocol,
// as vmagent sends them.
func vmHeaders() http.Header {
	return http.Header{
		"Content-Encoding":                       {"zstd"},
		"Content-Type":                           {"application/x-protobuf"},
		"X-Victoriametrics-Remote-Write-Version": {"1"},
		"User-Agent":                             {"prwmetrictest-test/1"},
	}
}

func zstdBody(t testing.TB, raw []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

func marshalV1(t testing.TB, wr *prompb.WriteRequest) []byte {
	t.Helper()
	raw, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestZstd(t *testing.T) {
	raw := marshalV1(t, validV1())
	big := marshalV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "big", "pad", string(make([]byte, 4096))), prompb.Sample{Timestamp: t1, Value: 1}),
	}})
	tests := []struct {
		name          string
		opts          []prwmetrictest.Option
		header        func(h http.Header)
		body          []byte
		wantStatus    int
		wantViolation string // "" for none
		wantStored    bool
	}{
		{name: "refused without WithZstd, like Prometheus", body: zstdBody(t, raw),
			wantStatus: http.StatusUnsupportedMediaType},
		{name: "accepted with WithZstd", opts: []prwmetrictest.Option{prwmetrictest.WithZstd()}, body: zstdBody(t, raw),
			wantStatus: http.StatusNoContent, wantStored: true},
		{name: "2.0 refused even with WithZstd", opts: []prwmetrictest.Option{prwmetrictest.WithZstd()},
			header: func(h http.Header) {
				h.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
			}, body: zstdBody(t, raw), wantStatus: http.StatusUnsupportedMediaType},
		{name: "no VictoriaMetrics version", opts: []prwmetrictest.Option{prwmetrictest.WithZstd()},
			header: func(h http.Header) { h.Del("X-VictoriaMetrics-Remote-Write-Version") }, body: zstdBody(t, raw),
			wantStatus: http.StatusBadRequest, wantViolation: `X-VictoriaMetrics-Remote-Write-Version is "", want "1"`},
		{name: "snappy body labelled zstd", opts: []prwmetrictest.Option{prwmetrictest.WithZstd()}, body: snappy.Encode(nil, raw),
			wantStatus: http.StatusBadRequest, wantViolation: "body is not zstd-compressed"},
		{name: "decompresses beyond the limit", opts: []prwmetrictest.Option{prwmetrictest.WithZstd(), prwmetrictest.WithMaxBodySize(1024)},
			body: zstdBody(t, big), wantStatus: http.StatusRequestEntityTooLarge, wantViolation: "more than the limit of 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer(tt.opts...)
			defer srv.Close()
			h := vmHeaders()
			if tt.header != nil {
				tt.header(h)
			}
			r := mustPost(t, srv.URL(), h, tt.body)
			if r.status != tt.wantStatus {
				t.Errorf("status = %d (%s), want %d", r.status, r.body, tt.wantStatus)
			}
			v := srv.Violations()
			switch {
			case tt.wantViolation == "" && len(v) > 0:
				t.Errorf("violations %q, want none", v)
			case tt.wantViolation != "" && !containsSub(v, tt.wantViolation):
				t.Errorf("violations %q, want %q", v, tt.wantViolation)
			}
			if !tt.wantStored {
				if got := srv.Series(); len(got) != 0 {
					t.Errorf("stored %d series, want none", len(got))
				}
				return
			}
			// Decoded exactly: the same as the snappy request.
			ref := prwmetrictest.NewServer()
			defer ref.Close()
			if r := mustPost(t, ref.URL(), v1Headers(), snappy.Encode(nil, raw)); r.status != http.StatusNoContent {
				t.Fatalf("snappy reference: status %d", r.status)
			}
			if d := cmp.Diff(ref.Series(), srv.Series()); d != "" {
				t.Errorf("series (-snappy +zstd):\n%s", d)
			}
			if d := cmp.Diff(ref.Requests()[0].V1, srv.Requests()[0].V1); d != "" {
				t.Errorf("decoded request (-snappy +zstd):\n%s", d)
			}
		})
	}
}
