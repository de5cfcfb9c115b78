package prwmetric

import (
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
	// 0.24× snappy's bytes (236 kB instead of 984 kB) for about 1.5× the
	// export's CPU (benchmarks' BenchmarkCompression; 1.48× the median of
	// paired runs): zstd's fastest level, without the frame checksum and
	// without Huffman-coded literals, which cost 15% of zstd's time to save
	// 10% of its bytes (see zstdOptions).
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
			return []error{fmt.Errorf("prwmetric: %s and %s both set: zstd is the VictoriaMetrics protocol, which carries Remote Write 1.0 requests; keep one",
				setBy(c.compressionFrom, "WithCompression(CompressionZstd)", "zstd"), setBy(c.protocolFrom, "WithProtocol(ProtocolV2)", "2.0"))}
		}
		return nil
	}
	return []error{fmt.Errorf("prwmetric: WithCompression(%d): unknown compression; use CompressionSnappy or CompressionZstd", int(c.compression))}
}

// setBy names a setting for New's errors as the user gave it: the option
// call, or the variable from with its value.
func setBy(from, option, value string) string {
	if strings.HasPrefix(from, envPrefix) {
		return from + "=" + value
	}
	return option
}

// zstdOptions are the encoder settings of zstd requests, chosen by
// measurement: the thread CPU time of compressing every request of one
// export, the whole export's CPU, and the bytes, against snappy's, on each
// of the benchmarks' shapes. Off, as in VictoriaMetrics' own encoder, two
// things that cost CPU and buy little here:
//   - the frame checksum (an xxhash of every byte): TCP and TLS already
//     check the bytes, and the receiver decodes them into a protobuf it
//     validates;
//   - Huffman coding of literals (what no match covers: mostly timestamps
//     and values, which hardly compress).
//
// The level is SpeedFastest (one hash table of 256 KiB where SpeedDefault,
// level 3, has two of 1.25 MiB), with zstd's largest blocks, 128 KiB: the
// window is set first, which keeps SpeedFastest's own 64 KiB blocks out
// (they took 9% more CPU and made W's bodies 3% larger). In interleaved
// paired runs (median of 14 on W, of 6 on the others) it compressed W's
// export in 5.8 ms of thread CPU instead of SpeedDefault's 6.3 (snappy:
// 2.0), and its smaller tables leave more of the cache to the rest of the
// export: the whole export took 12.9 ms of CPU instead of 13.8 (snappy:
// 8.7), zstd ÷ snappy 1.48× instead of 1.55×; counter-heavy 1.50× instead of
// 1.55×, histograms 1.46× instead of 1.56×, many metrics 1.38× instead of
// 1.76× (6.2 ms of compression instead of 9.4), counters 2.0× either way.
// The price is bytes, of snappy's: W 0.24× instead of 0.21×, counter-heavy
// 0.24× instead of 0.21×, histograms 0.26× instead of 0.24×, many metrics
// 0.22× instead of 0.21×, and counters, whose long runs of labels
// SpeedDefault's second table finds, 0.47× instead of 0.37×.
// SpeedBetterCompression cost 3× the CPU for a few percent. Window sizes (4
// or 8 MiB) and WithLowerEncoderMem changed nothing measurable (the latter
// is kept, for the memory), nor did compressing 128 KiB pieces of a request
// with the streaming encoder as they are encoded (it copies every byte once
// more). What remains is the library's: match finding and sequence coding
// (about 2 sequences, 5 bytes on the wire, per W series), and 10% copying
// each request into its history. Steady exports allocate nothing in the
// encoder.
func zstdOptions(maxBytes int) []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderConcurrency(1), // a worker compresses one request at a time
		// Before the level: a window set first keeps 128 KiB blocks.
		zstd.WithWindowSize(zstdWindow(maxBytes)),
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderCRC(false),
		zstd.WithNoEntropyCompression(true),
		zstd.WithLowerEncoderMem(true),
	}
}

// zstdWindow is the encoder window for requests of at most maxBytes: each
// request is compressed on its own, so a larger window only costs memory
// (about 4.4 MiB an encoder for the 4 MiB window of the default 3 MiB
// requests, 8.4 MiB for 8 MiB). 8 MiB is the most every decoder must
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
	we := errorOf[*WriteError](err)
	return we != nil && (we.StatusCode == http.StatusUnsupportedMediaType || we.StatusCode == http.StatusBadRequest)
}
