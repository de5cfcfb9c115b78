package prwmetric

import (
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression is how request bodies are compressed.
type Compression int

const (
	// CompressionSnappy is the snappy block format that Remote Write
	// mandates: every receiver accepts it.
	CompressionSnappy Compression = 1
	// CompressionZstd is the VictoriaMetrics remote write protocol: the
	// same 1.0 protobuf compressed with zstd, with Content-Encoding: zstd
	// and X-VictoriaMetrics-Remote-Write-Version: 1, as vmagent sends it.
	// VictoriaMetrics and vmagent accept it. On workload W its bodies are
	// 0.19× snappy's bytes (188 kB instead of 984 kB) for about 1.7–2× the
	// export's CPU (benchmarks' BenchmarkCompression), at zstd level 3.
	// Where bytes cost more than CPU (a metered or slow link: at 100 Mbit/s
	// the 1 000 000-series export took 0.59 s instead of 2.4 s), choose it. A receiver that answers a zstd request 415 or 400 (Prometheus
	// 3 and 2.x) gets what was not delivered again with snappy in the same
	// export, with one warning; the exporter stays on snappy and tries zstd
	// again after an hour. A 400 that the snappy request gets too is about
	// the data, and changes nothing.
	CompressionZstd Compression = 2
)

// String returns "snappy" or "zstd", the Content-Encoding of the requests.
func (c Compression) String() string {
	switch c {
	case CompressionSnappy:
		return contentEncodingSnappy
	case CompressionZstd:
		return contentEncodingZstd
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// parseCompression reads a compression as String writes it.
func parseCompression(s string) (Compression, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case contentEncodingSnappy:
		return CompressionSnappy, nil
	case contentEncodingZstd:
		return CompressionZstd, nil
	}
	return 0, fmt.Errorf("%q is not a compression; use snappy or zstd", s)
}

func validateCompression(c *config) []error {
	switch c.compression {
	case CompressionSnappy:
		return nil
	case CompressionZstd:
		if c.protocol == ProtocolV2 {
			return []error{errors.New("prwmetric: WithCompression(CompressionZstd) and WithProtocol(ProtocolV2) both set: zstd is the VictoriaMetrics protocol, which carries Remote Write 1.0 requests; keep one")}
		}
		return nil
	}
	return []error{fmt.Errorf("prwmetric: WithCompression(%d): unknown compression; use CompressionSnappy or CompressionZstd", int(c.compression))}
}

// zstdLevel is the encoder level of zstd requests. On workload W (44 001
// series, 16.6 MB of protobuf in 6 requests) SpeedDefault (zstd level 3)
// measured best: SpeedFastest was no faster on this repetitive data and
// 18% larger (so were smaller windows and frames without checksums);
// SpeedBetterCompression was larger still at 3× the CPU, and
// SpeedBestCompression saved 2% more at 9× the CPU.
const zstdLevel = zstd.SpeedDefault

// zstdWindow is the encoder window for requests of at most maxBytes: each
// request is compressed on its own, so a larger window only costs memory
// (about 6 MiB an encoder for the 4 MiB window of the default 3 MiB
// requests, 10 MiB for 8 MiB). 8 MiB is the most every decoder must
// accept.
func zstdWindow(maxBytes int) int {
	const lo, hi = 64 << 10, 8 << 20
	if maxBytes >= hi {
		return hi
	}
	return max(lo, 1<<bits.Len(uint(maxBytes-1)))
}

// compress returns raw compressed by c, in a new slice of its own: the
// HTTP transport may still read a body after the response has arrived, so
// bodies are never reused. The worker's scratch buffer and zstd encoder
// are reused.
func (w *workerBuffers) compress(c Compression, raw []byte, maxBytes int) ([]byte, error) {
	if c == CompressionZstd {
		if w.zstd == nil {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstdLevel),
				zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(zstdWindow(maxBytes)))
			if err != nil {
				return nil, fmt.Errorf("prwmetric: creating the zstd encoder: %w", err)
			}
			w.zstd = enc
		}
		w.compressed = w.zstd.EncodeAll(raw, w.compressed[:0])
		return append([]byte(nil), w.compressed...), nil
	}
	if n := s2.MaxEncodedLen(len(raw)); cap(w.compressed) < n {
		w.compressed = make([]byte, n)
	}
	// s2 writes a standard snappy block, faster than golang/snappy and 5%
	// smaller on W (it finds better matches).
	out := s2.EncodeSnappy(w.compressed[:cap(w.compressed)], raw)
	return append([]byte(nil), out...), nil
}

// refusesZstd reports whether err is a receiver's answer to a zstd request
// that may mean it does not take zstd: 415, or 400 from receivers that
// decode every body as snappy (Prometheus before 2.54).
func refusesZstd(err error) bool {
	var we *WriteError
	return errors.As(err, &we) && (we.StatusCode == http.StatusUnsupportedMediaType || we.StatusCode == http.StatusBadRequest)
}
