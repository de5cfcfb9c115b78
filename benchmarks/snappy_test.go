package benchmarks

import (
	"context"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
)

// prwmetricPayloads captures what prwmetric sends for one steady-state
// export of fx (the second) and returns the uncompressed request payloads.
func prwmetricPayloads(tb testing.TB, fx *fixture) [][]byte {
	tb.Helper()
	srv := NewCaptureServer()
	// Registered first, so it runs after the exporter's Shutdown.
	tb.Cleanup(srv.Close)
	exp := newPrwmetric(tb, srv.URL+"/api/v1/write")
	for range 2 {
		srv.Bodies()
		SetTime(fx.rm, fx.w.Time())
		if err := exp.Export(context.Background(), fx.rm); err != nil {
			tb.Fatal(err)
		}
	}
	bodies := srv.Bodies()
	raws := make([][]byte, len(bodies))
	for i, body := range bodies {
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			tb.Fatalf("request %d: snappy: %v", i, err)
		}
		raws[i] = raw
	}
	return raws
}

// benchSnappyFloor: snappy.Encode of prwmetric's own payload into reused
// buffers, nothing else — the cost no remote-write exporter can avoid.
func benchSnappyFloor(b *testing.B, fx *fixture) {
	benchCompress(b, fx, snappy.MaxEncodedLen, snappy.Encode)
}

// benchS2: s2.EncodeSnappy, the snappy block encoder prwmetric uses, of its
// own payload alone, as benchSnappyFloor.
func benchS2(b *testing.B, fx *fixture) {
	benchCompress(b, fx, s2.MaxEncodedLen, s2.EncodeSnappy)
}

func benchCompress(b *testing.B, fx *fixture, maxLen func(int) int, encode func(dst, src []byte) []byte) {
	raws := prwmetricPayloads(b, fx)
	dsts := make([][]byte, len(raws))
	rawBytes := 0
	for i, raw := range raws {
		dsts[i] = make([]byte, maxLen(len(raw)))
		rawBytes += len(raw)
	}
	b.ReportAllocs()
	wire := 0
	for b.Loop() {
		wire = 0
		for i, raw := range raws {
			wire += len(encode(dsts[i], raw))
		}
	}
	b.ReportMetric(float64(fx.w.Series()), "series/op")
	b.ReportMetric(float64(wire), "wire-B/op")
	b.ReportMetric(float64(rawBytes), "raw-B/op")
	b.ReportMetric(float64(len(raws)), "requests/op")
}
