// Package benchmarks measures prwmetric against the other ways of getting
// OpenTelemetry Go metrics into Prometheus, on several workload shapes, every
// library in the same run.
//
// It is a separate module so that users of prwmetric never download the
// competitors. Each competitor has its own file with its setup
// (prwmetric_test.go, otlpmetrichttp_test.go, collector_test.go,
// prometheus_test.go, snappy_test.go); the list of them is peers
// (main_test.go).
//
// # Shapes
//
// Each Shape (shapes.go) is one benchmark whose b.Run sub-benchmarks, one
// per library, export the same data once per iteration, after warm-up
// exports, so that the steady state is what is measured:
//
//   - BenchmarkExport: workload W, 20 instruments (counters, up-down
//     counters, gauges, histograms with 15 bounds) × 500 attribute sets,
//     44 001 Prometheus series.
//   - BenchmarkExportCounterHeavy: W with 4 of its gauges made counters.
//   - BenchmarkExportCounters: 20 counters × 2 200 sets of 10 attributes
//     with 40-60 character values.
//   - BenchmarkExportHistograms: 6 explicit-bucket histograms with 30
//     bounds and 4 exponential histograms × 200 sets; here prwmetric also
//     runs in 2.0 with custom-bucket native histograms (prwmetric_v2_nhcb,
//     which runs on every shape with explicit-bucket histograms).
//   - BenchmarkExportManyMetrics: 2 000 instruments × 20 sets.
//   - BenchmarkExportMillion: 1 000 000 series, every library; run it
//     with -benchtime=1x.
//
// The data is deterministic (fixed values, pinned timestamps) and is what
// the SDK produces: TestWorkloadMatchesSDK compares it with a MeterProvider
// that recorded the same values, and the exponential histograms are
// aggregated by the SDK itself when a workload is made. TestShapes checks
// each shape's instruments, labels, bounds and series; TestPeers runs every
// library's benchmark body on every shape (smaller) and decodes what it
// sent.
//
// BenchmarkLargeExport is prwmetric alone on the million series, reporting
// its peak heap and heap growth against the raw payload.
//
// BenchmarkChurn is prwmetric alone on W while its attribute sets come and
// go (Churn, churn.go): 0%, 1% and 10% of them replaced by new ones before
// each export, out of the timer, which makes new series and ends others
// with staleness markers.
//
// BenchmarkExemplars is prwmetric alone on W without exemplars and with a
// traced service's (AddExemplars, exemplars.go): an exemplar on every
// histogram bucket that counted and on every counter point, each export
// anew.
//
// # Receiver
//
// Push exporters send to a receiver in a child process (see Receiver), so
// that the receiver's own allocations and CPU are not booked to the library
// under test; it reads and discards each 1.0 body and counts its bytes. A
// zstd body is accepted as the VictoriaMetrics remote write protocol
// (Content-Encoding: zstd and X-VictoriaMetrics-Remote-Write-Version: 1)
// and counted as zstd (Stats.ZstdRequests), so that a benchmark of zstd
// fails if the exporter fell back to snappy; zstd without that header is
// answered 415, as by Prometheus.
//
// A Remote Write 2.0 sender needs the written counts in the answer, so the
// receiver decodes each 2.0 body (snappy, then every series) to count its
// samples and histograms, which the benchmark also checks against the
// workload. The sender waits for that decoding, which a 1.0 request does
// not cost. The receiver times it (Stats.DecodeNanos: the wall time during
// which it decodes one body or more) and the benchmark reports it per
// export as rcv-decode-ns/op, over the measured exports only; gen-table.sh
// takes ns/op less rcv-decode-ns/op, round by round, as the 2.0 exporter's
// own time in the tables. With several requests in flight the exporter
// also works while the receiver decodes, so that is a lower bound; the
// target of 2.0 ÷ 1.0 is set on what is the exporter's alone: its process's
// CPU time per export (cpu-ns/op), the receiver being another process.
//
// # Compression
//
// BenchmarkCompression/<shape>/<snappy|zstd> is prwmetric's whole export
// of every shape with snappy bodies (the default) and with zstd
// (WithCompression(CompressionZstd)). Besides wire-B/op it reports
// cpu-ns/op, as every push benchmark does: the CPU time of the benchmark's
// process per export (getrusage), which is the exporter's side alone since
// the receiver has its own process, and which can exceed ns/op when
// several requests are in flight.
//
// # Latency
//
// BenchmarkLatency exports W and the million series with prwmetric
// through a DelayProxy (latency.go) in the receiver process, which adds a
// round-trip time (10 ms, 50 ms) and optionally limits the bandwidth
// (100 Mbit/s). Its configurations are latencyVariants, one line each:
// 1, 2, 4, 8 (the default) and 16 requests in flight
// (WithMaxConcurrentRequests), and zstd.
//
// # Tables
//
// gen-table.sh (cmd/gentable) runs the benchmarks afresh and regenerates
// RESULTS.md; the numbers in it are never typed by hand. ROUNDS=1
// BENCHTIME=1x ./gen-table.sh is a smoke run; SHAPES=0 OUT=x.md
// ./gen-table.sh runs compression and latency alone. To look into one library,
// profile its sub-benchmark, e.g.
//
//	go test -run='^$' -bench='BenchmarkExportCounters/prwmetric$' -cpuprofile=cpu.prof
//
// Plain `go test ./...` runs only the tests, in seconds.
package benchmarks
