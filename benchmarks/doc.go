// Package benchmarks measures prwmetric against the other ways of getting
// OpenTelemetry Go metrics into Prometheus, on one workload and in one run.
//
// It is a separate module so that users of prwmetric never download the
// competitors. Each competitor has its own file with its setup
// (prwmetric_test.go, otlpmetrichttp_test.go, collector_test.go,
// prometheus_test.go, snappy_test.go); each scenario is one benchmark whose
// b.Run sub-benchmarks, one per library, do the same work on the same data:
//
//   - BenchmarkExport: workload W (NewWorkloadW, about 44 000 Prometheus
//     series) exported once per iteration, after warm-up exports, so that
//     the steady state — the second and later exports — is what is measured.
//   - BenchmarkLargeExport: prwmetric alone on 1 000 000 series, reporting
//     time, peak heap and the raw payload size; run it with -benchtime=1x.
//
// Push exporters send to a receiver in a child process (see Receiver), so
// that the receiver's own allocations and CPU are not booked to the library
// under test; it reads and discards each 1.0 body and counts its bytes, and
// decodes each 2.0 body to answer the written counts 2.0 senders expect
// (that time is reported as rcv-decode-ns/op).
//
// gen-table.sh (cmd/gentable) runs the benchmarks afresh and regenerates
// RESULTS.md; the numbers in it are never typed by hand. To look into one
// library, profile its sub-benchmark, e.g.
//
//	go test -run='^$' -bench='BenchmarkExport/prwmetric$' -cpuprofile=cpu.prof
//
// Plain `go test ./...` runs only the sanity tests (workload_test.go,
// v2_test.go): that every competitor does the work the table says it does,
// and that the 2.0 export really goes as 2.0.
package benchmarks
