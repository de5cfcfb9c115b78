package benchmarks

import (
	"context"
	"io"
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

// localSnappyFloor: snappy.Encode of prwmetric's own payload into reused
// buffers, nothing else — the cost no remote-write exporter can avoid.
func localSnappyFloor(tb testing.TB, fx *fixture, out io.Writer) (exportFunc, map[string]float64) {
	return localCompress(tb, fx, out, snappy.MaxEncodedLen, snappy.Encode)
}

// localS2: s2.EncodeSnappy, the snappy block encoder prwmetric uses, of its
// own payload alone, as localSnappyFloor.
func localS2(tb testing.TB, fx *fixture, out io.Writer) (exportFunc, map[string]float64) {
	return localCompress(tb, fx, out, s2.MaxEncodedLen, s2.EncodeSnappy)
}

// localCompress compresses each payload of one prwmetric export and writes
// each block to out.
func localCompress(tb testing.TB, fx *fixture, out io.Writer, maxLen func(int) int, encode func(dst, src []byte) []byte) (exportFunc, map[string]float64) {
	raws := prwmetricPayloads(tb, fx)
	dsts := make([][]byte, len(raws))
	rawBytes := 0
	for i, raw := range raws {
		dsts[i] = make([]byte, maxLen(len(raw)))
		rawBytes += len(raw)
	}
	export := func(context.Context) error {
		for i, raw := range raws {
			if _, err := out.Write(encode(dsts[i], raw)); err != nil {
				return err
			}
		}
		return nil
	}
	return export, map[string]float64{"raw-B/op": float64(rawBytes), "requests/op": float64(len(raws))}
}
