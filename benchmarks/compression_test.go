package benchmarks

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/prompb"
)

// zstdFrame compresses raw as one frame, as prwmetric does: with the
// content size in the frame header.
func zstdFrame(t *testing.T, raw []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

// zstdStream compresses raw as a stream of unknown size: when raw spans
// several blocks, the frame header goes out before the size is known, and
// has none.
func zstdStream(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	enc, err := zstd.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestReceiverZstd checks the receiver's handler on zstd requests: the
// VictoriaMetrics protocol is accepted and counted with its uncompressed
// size, from the frame header or by decompressing a frame without it; zstd
// without the protocol's header is refused 415 and a body that is not zstd
// 400, uncounted, as a receiver that does not take zstd answers; snappy is
// counted as before.
func TestReceiverZstd(t *testing.T) {
	raw := bytes.Repeat([]byte("victoriametrics remote write "), 40_000) // 1.2 MB, many zstd blocks
	frame, stream := zstdFrame(t, raw), zstdStream(t, raw)
	if h := (zstd.Header{}); h.Decode(stream) != nil || h.HasFCS {
		t.Fatalf("the stream's header has a content size (%+v); the test needs one without", h)
	}
	vm := map[string]string{"Content-Encoding": "zstd", headerVMVersion: "1"}
	for _, tc := range []struct {
		name    string
		body    []byte
		header  map[string]string
		want    int
		wantRcv Stats
	}{
		{name: "vmagent's request", body: frame, header: vm, want: http.StatusNoContent,
			wantRcv: Stats{Requests: 1, ZstdRequests: 1, WireBytes: int64(len(frame)), RawBytes: int64(len(raw))}},
		{name: "a frame without content size", body: stream, header: vm, want: http.StatusNoContent,
			wantRcv: Stats{Requests: 1, ZstdRequests: 1, WireBytes: int64(len(stream)), RawBytes: int64(len(raw))}},
		{name: "zstd without the VictoriaMetrics header", body: frame, header: map[string]string{"Content-Encoding": "zstd"}, want: http.StatusUnsupportedMediaType},
		{name: "zstd with another protocol version", body: frame, header: map[string]string{"Content-Encoding": "zstd", headerVMVersion: "2"}, want: http.StatusUnsupportedMediaType},
		{name: "snappy labelled zstd", body: snappy.Encode(nil, raw), header: vm, want: http.StatusBadRequest},
		{name: "an empty body", header: vm, want: http.StatusBadRequest},
		{name: "a corrupt frame without content size", body: stream[:len(stream)/2], header: vm, want: http.StatusBadRequest},
		{name: "snappy", body: snappy.Encode(nil, raw), header: map[string]string{"Content-Encoding": "snappy"}, want: http.StatusNoContent,
			wantRcv: Stats{Requests: 1, WireBytes: int64(len(snappy.Encode(nil, raw))), RawBytes: int64(len(raw))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &counter{}
			srv := httptest.NewServer(c)
			t.Cleanup(srv.Close)
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/write", bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-protobuf")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if got := c.stats(); got != tc.wantRcv {
				t.Errorf("counted %+v, want %+v", got, tc.wantRcv)
			}
		})
	}
}

// TestVariantsThroughReceiverProcess runs every configuration of
// BenchmarkLatency (through a DelayProxy without delay, as the benchmark
// does) and of BenchmarkCompression on a small W against the receiver
// process, and checks what the benchmarks rely on: the exporter does not
// warn, and the receiver sees zstd bodies from the zstd configurations,
// all of them (no fallback to snappy), and none from the others.
func TestVariantsThroughReceiverProcess(t *testing.T) {
	rcv := receiver(t)
	proxied, err := rcv.Delayed(Link{})
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		name, base string
		p          peer
	}
	var runs []run
	for _, v := range latencyVariants {
		runs = append(runs, run{"BenchmarkLatency/" + v.name, proxied, v.peer()})
	}
	for _, p := range compressionPeers {
		runs = append(runs, run{"BenchmarkCompression/" + p.name, rcv.URL, p})
	}
	zstdRuns := 0
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			fx := newFixture(ShapeW.New(testSets[ShapeW]), 0)
			export := r.p.push(t, fx, r.base+r.p.path())
			before, err := rcv.Stats()
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the first export, and a steady one
				if err := export(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			after, err := rcv.Stats()
			if err != nil {
				t.Fatal(err)
			}
			d := after.Sub(before)
			if err := checkZstd(d, r.p.out == outRemoteWriteZstd); err != nil {
				t.Fatal(err)
			}
			if d.Requests < 2 || d.RawBytes <= d.WireBytes {
				t.Errorf("receiver counts %+v: want requests, compressed", d)
			}
		})
		if r.p.out == outRemoteWriteZstd {
			zstdRuns++
		}
	}
	if zstdRuns < 2 {
		t.Errorf("%d zstd configurations, want one in each benchmark", zstdRuns)
	}
}

// TestZstdFallbackFailsTheBenchmark checks that the checks above can fail:
// behind a receiver that refuses zstd (the VictoriaMetrics header is
// stripped, so the counter answers 415, as Prometheus does), prwmetric
// falls back to snappy, and both the zstd export (which warned) and
// checkZstd say so.
func TestZstdFallbackFailsTheBenchmark(t *testing.T) {
	c := &counter{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(headerVMVersion)
		c.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	fx := newFixture(ShapeW.New(testSets[ShapeW]), 0)
	err := pushZstd(t, fx, srv.URL+"/api/v1/write")(context.Background())
	if err == nil || !strings.Contains(err.Error(), "zstd") {
		t.Errorf("export error %v, want the fallback warning", err)
	}
	if err := checkZstd(c.stats(), true); err == nil {
		t.Errorf("checkZstd accepted %+v", c.stats())
	}
}

// TestCheckZstd checks that checkZstd fails on what it is meant to catch.
func TestCheckZstd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		give    Stats
		zstd    bool
		wantErr bool
	}{
		{name: "all zstd", give: Stats{Requests: 3, ZstdRequests: 3}, zstd: true},
		{name: "a fallback to snappy", give: Stats{Requests: 3, ZstdRequests: 2}, zstd: true, wantErr: true},
		{name: "no request", give: Stats{}, zstd: true, wantErr: true},
		{name: "snappy", give: Stats{Requests: 3}},
		{name: "zstd from a snappy peer", give: Stats{Requests: 3, ZstdRequests: 1}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkZstd(tc.give, tc.zstd); (err != nil) != tc.wantErr {
				t.Errorf("checkZstd = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// TestCompressionPeers checks that BenchmarkCompression compares the same
// export, on every shape: the zstd peer's requests are the VictoriaMetrics
// protocol, and decode to the same series and values as the snappy peer's,
// which are the workload's, in fewer bytes.
func TestCompressionPeers(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	ctx := context.Background()
	for _, s := range Shapes {
		t.Run(s.Name, func(t *testing.T) {
			fx := newFixture(s.New(testSets[s]), s.Warmups)
			got := map[string]map[string]string{}
			wire := map[string]int{}
			for _, p := range compressionPeers {
				srv := NewCaptureServer()
				t.Cleanup(srv.Close)
				export := p.push(t, fx, srv.URL+p.path())
				for i := range 2 { // the second, steady export is checked
					srv.Requests()
					if err := export(ctx); err != nil {
						t.Fatalf("%s: export %d: %v", p.name, i, err)
					}
				}
				reqs := srv.Requests()
				if len(reqs) == 0 {
					t.Fatalf("%s: no request", p.name)
				}
				var tss []prompb.TimeSeries
				for i, r := range reqs {
					enc, vm, prom := r.Header.Get("Content-Encoding"), r.Header.Get(headerVMVersion), r.Header.Get("X-Prometheus-Remote-Write-Version")
					var raw []byte
					var err error
					if p.out == outRemoteWriteZstd {
						if enc != "zstd" || vm != "1" || prom != "" {
							t.Fatalf("%s: request %d: Content-Encoding %q, %s %q, Prometheus version %q; want zstd, 1, none", p.name, i, enc, headerVMVersion, vm, prom)
						}
						raw, err = dec.DecodeAll(r.Body, nil)
					} else {
						if enc != "snappy" || vm != "" {
							t.Fatalf("%s: request %d: Content-Encoding %q, %s %q; want snappy, none", p.name, i, enc, headerVMVersion, vm)
						}
						raw, err = snappy.Decode(nil, r.Body)
					}
					if err != nil {
						t.Fatalf("%s: request %d: %v", p.name, i, err)
					}
					var req prompb.WriteRequest
					if err := req.Unmarshal(raw); err != nil {
						t.Fatalf("%s: request %d: protobuf: %v", p.name, i, err)
					}
					tss = append(tss, req.Timeseries...)
					wire[p.name] += len(r.Body)
				}
				got[p.name] = seriesValues(t, tss)
				checkCounts(t, got[p.name], fx.w, false)
			}
			if diff := cmp.Diff(got["snappy"], got["zstd"]); diff != "" {
				t.Errorf("the zstd series differ from snappy's (-snappy +zstd):\n%s", diff)
			}
			if wire["zstd"] >= wire["snappy"] {
				t.Errorf("zstd sent %d bytes, snappy %d; want fewer", wire["zstd"], wire["snappy"])
			}
		})
	}
}
