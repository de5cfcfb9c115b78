package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/prwmetric/prwmetric/benchmarks
cpu: Test CPU @ 1GHz
BenchmarkExport/prwmetric-2         	      10	  3000000 ns/op	        10.00 requests/op	     1000 series/op	   600 wire-B/op	 4000 B/op	    30 allocs/op
BenchmarkExport/prwmetric-2         	      10	  1000000 ns/op	        10.00 requests/op	     1000 series/op	   600 wire-B/op	 2000 B/op	    10 allocs/op
BenchmarkExport/prwmetric-2         	      10	  2000000 ns/op	        10.00 requests/op	     1000 series/op	   600 wire-B/op	 3000 B/op	    20 allocs/op
BenchmarkExport/collector_prw-2     	       1	 40000000 ns/op	     1000 series/op	  1000 wire-B/op	 9000 B/op	 9000 allocs/op
--- FAIL: BenchmarkExport/otlpmetrichttp
    otlpmetrichttp_test.go:1: some failure: with colons
BenchmarkExport/snappy_floor-2      	     100	   500000 ns/op	     1000 series/op	   600 wire-B/op	       0 B/op	       0 allocs/op
BenchmarkExport/s2_snappy-2         	     100	   400000 ns/op	     1000 series/op	   550 wire-B/op	       0 B/op	       0 allocs/op
BenchmarkLargeExport/first-2        	       1	2000000000 ns/op	     100 raw-payload-MiB/op	     250 heap-growth-MiB	  2.5 growth/raw	1000001 series/op
PASS
`

func TestParse(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, bench, unit string
		want              float64
	}{
		{name: "median of three", bench: "BenchmarkExport/prwmetric", unit: "ns/op", want: 2_000_000},
		{name: "custom unit", bench: "BenchmarkExport/prwmetric", unit: "wire-B/op", want: 600},
		{name: "single run", bench: "BenchmarkExport/collector_prw", unit: "allocs/op", want: 9000},
		{name: "large", bench: "BenchmarkLargeExport/first", unit: "growth/raw", want: 2.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := res.median(tc.bench, tc.unit)
			if !ok || got != tc.want {
				t.Errorf("median(%s, %s) = %v, %v; want %v", tc.bench, tc.unit, got, ok, tc.want)
			}
		})
	}
	if got, ok := res.perSeries("BenchmarkExport/prwmetric", "allocs/op"); !ok || got != 0.02 {
		t.Errorf("allocs/series = %v, %v; want 0.02", got, ok)
	}
	if _, ok := res.values["BenchmarkExport/otlpmetrichttp"]; ok {
		t.Error("a failed benchmark has results")
	}
	if res.procs != "2" || res.header["cpu"] != "Test CPU @ 1GHz" {
		t.Errorf("procs %q, cpu %q", res.procs, res.header["cpu"])
	}
}

func TestParseNothing(t *testing.T) {
	if _, err := parse(strings.NewReader("PASS\nok  \tx\t1.0s\n")); err == nil {
		t.Error("no error for output without benchmarks")
	}
}

func TestWriteResults(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeResults(&out, res, environment{goVersion: "go version test"}, sample)
	doc := out.String()
	for _, want := range []string{
		// prwmetric: 2 ms, 2000 ns/series, 0.02 allocs/series, 3 B/series,
		// 600 B on the wire; 0.05× the Collector's 40 ms, 4× the 0.5 ms
		// floor, 0.6× the Collector's 1000 wire bytes.
		"| **prwmetric** `Export` → remote write | 2.00 | 2,000 | 0.0200 | 3.00 | 600 (snappy, s2 encoder) | 0.050× | 4.0× | 0.60× |",
		"| `s2.EncodeSnappy` (the encoder prwmetric uses) of prwmetric's payload alone | 0.400 | 400 | 0 | 0 | 550 (snappy, s2 encoder) | 0.010× | 0.80× | 0.55× |",
		"| time ÷ snappy floor of our own payload | ≤ 2.50 | 4.00 | **no** |",
		"| allocations per series, steady state | ≤ 0.0100 | 0.0200 | **no** |",
		"| bytes on the wire ÷ Collector path | ≤ 0.650 | 0.600 | yes |",
		"| 1 000 000 series, first export: heap growth ÷ raw payload | < 2.00 | 2.50 | **no** |",
		"| first | 2.00 | — | 100 | — | — | — | 250 | 2.50 |",
		"go version test",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("RESULTS.md lacks %q; got:\n%s", want, doc)
		}
	}
}

func TestSig(t *testing.T) {
	for _, tc := range []struct {
		give float64
		n    int
		want string
	}{
		{give: 1234567, n: 3, want: "1,234,567"},
		{give: 0.0034567, n: 3, want: "0.00346"},
		{give: 12.345, n: 3, want: "12.3"},
		{give: 0, n: 3, want: "0"},
	} {
		if got := sig(tc.give, tc.n); got != tc.want {
			t.Errorf("sig(%v, %d) = %q, want %q", tc.give, tc.n, got, tc.want)
		}
	}
}

// TestRunFromSavedOutput checks the whole file written from saved output:
// the table and the raw output for benchstat.
func TestRunFromSavedOutput(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "bench.txt"), filepath.Join(dir, "RESULTS.md")
	if err := os.WriteFile(in, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(1, "1s", false, in, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| **prwmetric** `Export` → remote write | 2.00 |",
		"tabulated from " + in,
		"BenchmarkExport/snappy_floor-2      \t     100\t   500000 ns/op",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("RESULTS.md lacks %q; got:\n%s", want, b)
		}
	}
}
