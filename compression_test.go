package prwmetric

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prwmetric/prwmetric/prwmetrictest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestZstdExport sends the same export with zstd to a receiver that takes
// it (VictoriaMetrics, prwmetrictest.WithZstd) and to one that does not
// (Prometheus, which answers 415): both hold exactly what a snappy
// exporter delivers.
func TestZstdExport(t *testing.T) {
	cases := []struct {
		name         string
		opts         []prwmetrictest.Option
		wantEncoding string // of the requests stored
	}{
		{name: "receiver takes zstd", opts: []prwmetrictest.Option{prwmetrictest.WithZstd()}, wantEncoding: "zstd"},
		{name: "receiver refuses zstd", wantEncoding: "snappy"},
	}
	at := time.UnixMilli(1_700_000_000_000)
	rm := manyGauges(250, at)
	ref := prwmetrictest.NewServer()
	t.Cleanup(ref.Close)
	refExp := newTestExporter(t, ref, WithMaxSeriesPerRequest(100))
	if err := refExp.Export(context.Background(), rm); err != nil {
		t.Fatalf("snappy Export: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer(tc.opts...)
			t.Cleanup(srv.Close)
			exp := newTestExporter(t, srv, WithMaxSeriesPerRequest(100), WithCompression(CompressionZstd))
			if err := exp.Export(context.Background(), rm); err != nil {
				t.Fatalf("Export: %v", err)
			}
			if diff := cmp.Diff(ref.Series(), srv.Series()); diff != "" {
				t.Errorf("series (-snappy +zstd exporter):\n%s", diff)
			}
			if diff := cmp.Diff(ref.Metadata(), srv.Metadata()); diff != "" {
				t.Errorf("metadata (-snappy +zstd exporter):\n%s", diff)
			}
			if v := srv.Violations(); len(v) > 0 {
				t.Errorf("violations: %v", v)
			}
			stored := 0
			for _, r := range srv.Requests() {
				if !r.Stored {
					continue
				}
				stored++
				h := r.Header
				if got := h.Get("Content-Encoding"); got != tc.wantEncoding {
					t.Errorf("request %d: Content-Encoding %q, want %q", r.Seq, got, tc.wantEncoding)
				}
				if tc.wantEncoding == "zstd" && (h.Get("X-VictoriaMetrics-Remote-Write-Version") != "1" || h.Get("X-Prometheus-Remote-Write-Version") != "") {
					t.Errorf("request %d: headers %v, want the VictoriaMetrics protocol's", r.Seq, h)
				}
			}
			if stored != 3 {
				t.Errorf("%d requests stored, want 3", stored)
			}
		})
	}
}

// zstdFront is a receiver that answers zstd requests (or all requests)
// with a fixed status, and records and accepts the others.
type zstdFront struct {
	rec *recorder
	mu  sync.Mutex
	// encodings has the Content-Encoding of each request, in order.
	encodings []string
}

func newZstdFront(t *testing.T, zstdStatus, snappyStatus int) (string, *zstdFront) {
	t.Helper()
	f := &zstdFront{rec: &recorder{}}
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc := r.Header.Get("Content-Encoding")
		f.mu.Lock()
		f.encodings = append(f.encodings, enc)
		f.mu.Unlock()
		switch {
		case enc == "zstd":
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(zstdStatus)
			_, _ = io.WriteString(w, "snappy: corrupt input") // what Prometheus 2.x says
		case snappyStatus != http.StatusNoContent:
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(snappyStatus)
		default:
			f.rec.record(r)
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	return srv.URL + "/api/v1/write", f
}

// take returns the encodings of the requests since the last call.
func (f *zstdFront) take() (zstdN, snappyN int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.encodings {
		if e == "zstd" {
			zstdN++
		} else {
			snappyN++
		}
	}
	f.encodings = nil
	return zstdN, snappyN
}

// TestZstdFallback: a receiver that refuses zstd (415 as Prometheus 3, 400
// as Prometheus 2) gets the same export again with snappy, with one
// warning; the exporter stays on snappy, tries zstd again after an hour,
// and does not warn again. A receiver that refuses the snappy requests as
// well refuses the data, not zstd: zstd is tried again on the next export.
func TestZstdFallback(t *testing.T) {
	cases := []struct {
		name         string
		zstdStatus   int
		snappyStatus int
	}{
		{name: "415", zstdStatus: http.StatusUnsupportedMediaType, snappyStatus: http.StatusNoContent},
		{name: "400", zstdStatus: http.StatusBadRequest, snappyStatus: http.StatusNoContent},
		{name: "400 to snappy too", zstdStatus: http.StatusBadRequest, snappyStatus: http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, front := newZstdFront(t, tc.zstdStatus, tc.snappyStatus)
			logger, logs := newLogCapture()
			exp := newExporter(t, WithEndpoint(endpoint), WithoutEnvironment(), WithLogger(logger), WithoutScopeInfo(),
				WithoutTargetInfo(), WithoutStaleMarkers(), WithMaxSeriesPerRequest(100), WithCompression(CompressionZstd))
			now := time.Now()
			exp.negotiation.now = func() time.Time { return now }
			refused := tc.snappyStatus != http.StatusNoContent
			at := time.UnixMilli(1_700_000_000_000)

			steps := []struct {
				after    time.Duration
				wantZstd bool // the export tries zstd first
			}{
				{0, true},
				{time.Minute, refused},
				{time.Minute, refused},
				{refusalRetryAfter, true},
			}
			for i, st := range steps {
				now = now.Add(st.after)
				at = at.Add(15 * time.Second)
				before := front.rec.count()
				err := exp.Export(context.Background(), manyGauges(250, at))
				zstdN, snappyN := front.take()
				// Refused snappy requests stop those not yet started.
				if st.wantZstd != (zstdN > 0) || snappyN != 3 && !(refused && snappyN > 0) {
					t.Errorf("export %d: %d zstd and %d snappy requests, want zstd %v and 3 snappy", i, zstdN, snappyN, st.wantZstd)
				}
				if refused {
					var we *WriteError
					if !errors.As(err, &we) || we.StatusCode != http.StatusBadRequest || we.Series != 250 || we.Delivered != 0 {
						t.Errorf("export %d: %v, want a 400 with 250 series dropped", i, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("export %d: %v", i, err)
				}
				checkGauges(t, front.rec.all()[before:], 250, at)
			}
			var fallbacks int
			for _, r := range logs.all() {
				if strings.Contains(r.Message, "does not take zstd") {
					fallbacks++
					if r.Level != slog.LevelWarn || r.Attrs["status"] != strconv.Itoa(tc.zstdStatus) {
						t.Errorf("fallback warning %v", r)
					}
				}
			}
			if want := map[bool]int{false: 1, true: 0}[refused]; fallbacks != want {
				t.Errorf("%d fallback warnings, want %d: %v", fallbacks, want, logs.lines())
			}
		})
	}
}

// checkGauges checks that reqs hold manyGauges(n, at) exactly: each series
// once, with its value and timestamp.
func checkGauges(t *testing.T, reqs []received, n int, at time.Time) {
	t.Helper()
	seen := map[int]bool{}
	for _, r := range reqs {
		if r.DecodeErr != nil {
			t.Fatalf("request does not decode: %v", r.DecodeErr)
		}
		for _, s := range r.Series {
			i := gaugeIndex(t, s)
			if seen[i] {
				t.Errorf("series %d arrived twice", i)
			}
			seen[i] = true
			if want := (sample{Value: float64(i), Millis: at.UnixMilli()}); len(s.Samples) != 1 || s.Samples[0] != want {
				t.Errorf("series %d: %v, want %v", i, s.Samples, want)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d series arrived, want %d", len(seen), n)
	}
}

// TestZstdRequestDecodes checks the zstd bodies as sent: each a single
// zstd frame holding exactly the bytes of the 1.0 protobuf the matching
// snappy request carries, from a one-block request to requests of many
// 128 KiB blocks, which the encoder matches across.
func TestZstdRequestDecodes(t *testing.T) {
	w, wSeries := benchData(benchW, 100, time.UnixMilli(1_700_000_000_000))
	cases := []struct {
		name     string
		data     *metricdata.ResourceMetrics
		opts     []Option
		requests int
		minRaw   int // the smallest request's size, to be sure of the blocks
	}{
		{name: "one series", data: counterData(7), requests: 1},
		{name: "W, one request of many blocks", data: w, requests: 1, minRaw: 1 << 20},
		{name: "W, requests of a few blocks", data: w, opts: []Option{WithMaxRequestBytes(300 << 10)}, requests: 9, minRaw: 200 << 10},
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bodies [2][][]byte // snappy, zstd
			var mu sync.Mutex
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				i := 0
				if r.Header.Get("Content-Encoding") == "zstd" {
					i = 1
				}
				mu.Lock()
				bodies[i] = append(bodies[i], b)
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			for _, c := range []Compression{CompressionSnappy, CompressionZstd} {
				opts := append(pinned(WithEndpoint(srv.URL), WithoutEnvironment(), WithCompression(c), WithMaxConcurrentRequests(1)), tc.opts...)
				exp := newExporter(t, opts...)
				if err := exp.Export(context.Background(), tc.data); err != nil {
					t.Fatalf("Export %v: %v", c, err)
				}
			}
			if len(bodies[0]) != tc.requests || len(bodies[1]) != len(bodies[0]) {
				t.Fatalf("%d snappy and %d zstd requests, want %d of each", len(bodies[0]), len(bodies[1]), tc.requests)
			}
			for i, zb := range bodies[1] {
				want, err := snappy.Decode(nil, bodies[0][i])
				if err != nil {
					t.Fatal(err)
				}
				var h zstd.Header
				if err := h.Decode(zb); err != nil || h.HasFCS && h.FrameContentSize != uint64(len(want)) {
					t.Errorf("request %d: zstd frame header %+v (%v), want one of content size %d", i, h, err, len(want))
				}
				got, err := dec.DecodeAll(zb, nil)
				if err != nil {
					t.Fatalf("request %d: zstd body does not decode: %v", i, err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("request %d: zstd body decodes to %d bytes that differ from the snappy request's %d", i, len(got), len(want))
				}
				if i < len(bodies[1])-1 && len(want) < tc.minRaw {
					t.Errorf("request %d: %d bytes, want at least %d", i, len(want), tc.minRaw)
				}
			}
			if tc.data == w {
				req, err := decodeBody(bodies[0][0])
				if err != nil {
					t.Fatal(err)
				}
				// pinned leaves target_info out.
				if n := len(req.Timeseries); tc.requests == 1 && n != wSeries-1 {
					t.Errorf("%d series, want %d", n, wSeries-1)
				}
			} else {
				raw, err := dec.DecodeAll(bodies[1][0], nil)
				if err != nil {
					t.Fatal(err)
				}
				var zstdReq prompb.WriteRequest
				if err := zstdReq.Unmarshal(raw); err != nil {
					t.Fatal(err)
				}
				if want := []series{counterSeries(7)}; !cmp.Equal(fromProm(&zstdReq), want) {
					t.Errorf("zstd request %v, want %v", fromProm(&zstdReq), want)
				}
			}
		})
	}
}

func TestTransportOptions(t *testing.T) {
	cases := []struct {
		name            string
		opts            []Option
		env             map[string]string
		wantErr         string
		wantCompression Compression
		wantConcurrent  int
	}{
		{name: "defaults", wantCompression: CompressionSnappy, wantConcurrent: 128},
		{name: "zstd", opts: []Option{WithCompression(CompressionZstd)}, wantCompression: CompressionZstd, wantConcurrent: 128},
		{name: "one request at a time", opts: []Option{WithMaxConcurrentRequests(1)}, wantCompression: CompressionSnappy, wantConcurrent: 1},
		{name: "more requests than idle connections by default", opts: []Option{WithMaxConcurrentRequests(200)}, wantCompression: CompressionSnappy, wantConcurrent: 200},
		{name: "env zstd", env: map[string]string{envCompression: " ZSTD "}, wantCompression: CompressionZstd, wantConcurrent: 128},
		{name: "code wins over env", env: map[string]string{envCompression: "zstd"}, opts: []Option{WithCompression(CompressionSnappy)},
			wantCompression: CompressionSnappy, wantConcurrent: 128},
		{name: "env invalid", env: map[string]string{envCompression: "gzip"},
			wantErr: envCompression + `: "gzip" is not a compression; use snappy or zstd`},
		{name: "unknown compression", opts: []Option{WithCompression(9)},
			wantErr: "WithCompression(9): unknown compression; use CompressionSnappy or CompressionZstd"},
		{name: "zstd with 2.0", opts: []Option{WithCompression(CompressionZstd), WithProtocol(ProtocolV2)},
			wantErr: "WithCompression(CompressionZstd) and WithProtocol(ProtocolV2) both set"},
		{name: "zstd with 2.0 from env", env: map[string]string{envProtocol: "2.0"}, opts: []Option{WithCompression(CompressionZstd)},
			wantErr: "WithCompression(CompressionZstd) and " + envProtocol + "=2.0 both set"},
		{name: "zstd from env with 2.0", env: map[string]string{envCompression: "zstd"}, opts: []Option{WithProtocol(ProtocolV2)},
			wantErr: envCompression + "=zstd and WithProtocol(ProtocolV2) both set"},
		{name: "no concurrency", opts: []Option{WithMaxConcurrentRequests(0)},
			wantErr: "WithMaxConcurrentRequests(0): the limit must be positive"},
		{name: "HTTP/2 with own client", opts: []Option{WithHTTP2(), WithHTTPClient(&http.Client{})},
			wantErr: "WithHTTPClient is combined with WithHTTP2, which would be ignored"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			exp, err := New(append([]Option{WithEndpoint("http://127.0.0.1:1/api/v1/write"), WithLogger(discardLogger())}, tc.opts...)...)
			if tc.wantErr != "" {
				if err == nil || exp != nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New = %v, %v; want a nil exporter and an error containing %q", exp, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
			if exp.cfg.compression != tc.wantCompression || exp.cfg.maxConcurrent != tc.wantConcurrent {
				t.Errorf("compression %v, %d concurrent requests; want %v, %d", exp.cfg.compression, exp.cfg.maxConcurrent, tc.wantCompression, tc.wantConcurrent)
			}
			// A connection per request in flight, kept idle between
			// exports, and one spare (see connections).
			if tr := exp.client.owned; tr.MaxIdleConnsPerHost != tc.wantConcurrent || tr.MaxConnsPerHost != tc.wantConcurrent+1 || tr.MaxIdleConns < tr.MaxConnsPerHost {
				t.Errorf("transport: %d idle connections per host, at most %d per host, %d idle in all; want %d, %d, at least %d",
					tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost, tr.MaxIdleConns, tc.wantConcurrent, tc.wantConcurrent+1, tc.wantConcurrent+1)
			}
		})
	}
}

func TestCompressionString(t *testing.T) {
	for c, want := range map[Compression]string{CompressionSnappy: "snappy", CompressionZstd: "zstd", 7: "Compression(7)"} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(c), got, want)
		}
	}
}
