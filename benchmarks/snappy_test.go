package benchmarks

import (
	"context"
	"testing"

	"github.com/golang/snappy"
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
	raws := prwmetricPayloads(b, fx)
	dsts := make([][]byte, len(raws))
	rawBytes := 0
	for i, raw := range raws {
		dsts[i] = make([]byte, snappy.MaxEncodedLen(len(raw)))
		rawBytes += len(raw)
	}
	b.ReportAllocs()
	wire := 0
	for b.Loop() {
		wire = 0
		for i, raw := range raws {
			wire += len(snappy.Encode(dsts[i], raw))
		}
	}
	b.ReportMetric(float64(fx.w.Series()), "series/op")
	b.ReportMetric(float64(wire), "wire-B/op")
	b.ReportMetric(float64(rawBytes), "raw-B/op")
	b.ReportMetric(float64(len(raws)), "requests/op")
}
