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
	// 0.21× snappy's bytes (206 kB instead of 984 kB) for 1.5–1.6× the
	// export's CPU (benchmarks' BenchmarkCompression): zstd level 3 without
	// the frame checksum and without Huffman-coded literals, which cost 15%
	// of zstd's time to save 10% of its bytes (see zstdOptions).
	// Where bytes cost more than CPU (a metered or slow link: at 100 Mbit/s
	// the 1 000 000-series export took 0.59 s instead of 2.4 s), choose it.
	// A receiver that answers a zstd request 415 or 400 (Prometheus 3 and
	// 2.x) gets what was not delivered again with snappy in the same
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

// zstdOptions are the encoder settings of zstd requests, chosen by
// measurement: the thread CPU time of compressing every request of one
// export, and the bytes, against snappy's, on each of the benchmarks'
// shapes. Off, as in VictoriaMetrics' own encoder, two things that cost CPU
// and buy little here:
//   - the frame checksum (an xxhash of every byte): TCP and TLS already
//     check the bytes, and the receiver decodes them into a protobuf it
//     validates;
//   - Huffman coding of literals (what no match covers: mostly timestamps
//     and values, which hardly compress).
//
// On W that took zstd from 7.8 to 6.6 ms per export (snappy: 1.8 ms of
// compression in an export of about 9.5 ms of CPU) for 0.21× of snappy's
// bytes instead of 0.19× (counters: 0.37× instead of 0.35×); the whole
// export's CPU, zstd ÷ snappy, went from 1.8× to 1.6× in paired runs.
// Level 3 (SpeedDefault) stays: SpeedFastest saved another 0.7 ms on W but
// made the counters shape 0.47× of snappy's bytes; SpeedBetterCompression
// cost 3× the CPU for a few percent. Smaller windows and
// WithLowerEncoderMem changed nothing measurable; the latter is kept, for
// the memory. Steady exports allocate nothing in the encoder.
func zstdOptions(maxBytes int) []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderConcurrency(1), // a worker compresses one request at a time
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderCRC(false),
		zstd.WithNoEntropyCompression(true),
		zstd.WithLowerEncoderMem(true),
		zstd.WithWindowSize(zstdWindow(maxBytes)),
	}
}

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
			enc, err := zstd.NewWriter(nil, zstdOptions(maxBytes)...)
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
