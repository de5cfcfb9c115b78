package prwmetrictest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestDecompressedTooLargeIs413 pins that WithMaxBodySize's limit on the
// decompressed size is answered 413, as documented and as a body too
// large as sent is: a small snappy body that decompresses past the limit
// is too large, not malformed (400). Senders key on 413 to tell the user
// to send smaller requests. TestZstd covers the same for zstd.
func TestDecompressedTooLargeIs413(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithMaxBodySize(1024))
	defer srv.Close()
	body := encodeV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		series(lbls("__name__", "up", "pad", strings.Repeat("a", 4096)), prompb.Sample{Timestamp: t1, Value: 1}),
	}})
	if n, _ := snappy.DecodedLen(body); len(body) > 1024 || n <= 1024 {
		t.Fatalf("body %d bytes, %d decompressed; want it below the limit, decompressed above", len(body), n)
	}
	r := mustPost(t, srv.URL(), v1Headers(), body)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d (%s), want 413", r.status, r.body)
	}
	if v := srv.Violations(); !containsSub(v, "more than the limit of 1024 bytes") {
		t.Errorf("violations %q, want the decompressed size over the limit", v)
	}
	if s := srv.Series(); len(s) != 0 {
		t.Errorf("stored %v, want nothing", s)
	}
}
