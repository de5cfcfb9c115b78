#!/usr/bin/env bash
# gen-table.sh runs the benchmarks afresh and regenerates RESULTS.md: a
# comparison table per workload shape, the targets of issues 7 and 17 for
# each shape, the heap of the 1 000 000-series export, snappy against zstd,
# the export time far from the receiver (issue 16), versions and machine.
# Numbers are never typed by hand.
#
#   ./gen-table.sh                          # full run, about 20 minutes on 2 cores
#   ROUNDS=1 BENCHTIME=1x ./gen-table.sh    # smoke run: every benchmark once
#   LARGE=0 LATENCY=0 ./gen-table.sh        # the shapes of W's size only
#   SHAPES=0 OUT=x.md ./gen-table.sh        # compression and latency only
#   ./gen-table.sh -in saved.txt            # tabulate saved `go test -bench` output
#
# Environment (flags given after it win):
#   ROUNDS             rounds of the shapes of W's size (default 5); tables show medians and the spread
#   BENCHTIME          their -benchtime (default 1s)
#   SHAPES=0           skip the library comparison (BenchmarkExport..., BenchmarkLargeExport)
#   COMPRESSION=0      skip snappy against zstd (BenchmarkCompression)
#   LARGE=0            skip the 1 000 000-series benchmarks
#   LARGE_ROUNDS       rounds of the 1 000 000-series shape, -benchtime=1x (default: min(3, ROUNDS))
#   LATENCY=0          skip the latency benchmark
#   LATENCY_BENCHTIME  its -benchtime (default: BENCHTIME if it counts iterations, else 3x)
#   OUT                file to write (default RESULTS.md)
#
# Run it on a quiet machine: RESULTS.md records the load average, and other
# work on the CPUs skews every figure.
set -euo pipefail
cd "$(dirname "$0")"
args=()
[[ -n "${ROUNDS:-}" ]] && args+=(-count "$ROUNDS")
[[ -n "${BENCHTIME:-}" ]] && args+=(-benchtime "$BENCHTIME")
[[ "${SHAPES:-1}" == 0 ]] && args+=(-shapes=false)
[[ "${COMPRESSION:-1}" == 0 ]] && args+=(-compression=false)
[[ "${LARGE:-1}" == 0 ]] && args+=(-large=false)
[[ -n "${LARGE_ROUNDS:-}" ]] && args+=(-large-count "$LARGE_ROUNDS")
[[ "${LATENCY:-1}" == 0 ]] && args+=(-latency=false)
[[ -n "${LATENCY_BENCHTIME:-}" ]] && args+=(-latency-benchtime "$LATENCY_BENCHTIME")
[[ -n "${OUT:-}" ]] && args+=(-out "$OUT")
exec go run ./cmd/gentable "${args[@]}" "$@"
