#!/usr/bin/env bash
# gen-table.sh runs the benchmarks afresh and regenerates RESULTS.md: the
# comparison table for the README, the issue 7 targets, the 1 000 000-series
# export, versions and machine. Numbers are never typed by hand.
#
#   ./gen-table.sh                     # 5 rounds of BenchmarkExport, BenchmarkLargeExport once (minutes)
#   ./gen-table.sh -count 3 -large=false
#   ./gen-table.sh -in saved.txt       # tabulate saved `go test -bench` output
#
# Run it on a quiet machine: RESULTS.md records the load average, and other
# work on the CPUs skews every figure.
set -euo pipefail
cd "$(dirname "$0")"
exec go run ./cmd/gentable "$@"
