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
BenchmarkExport/prwmetric-2         	      10	  3000000 ns/op	  4000000 cpu-ns/op	        10.00 requests/op	     1000 series/op	   600 wire-B/op	 4000 B/op	    30 allocs/op
BenchmarkExport/prwmetric_v2-2      	      10	  5000000 ns/op	  6000000 cpu-ns/op	  1000000 rcv-decode-ns/op	     1000 series/op	   300 wire-B/op	 1000 B/op	    10 allocs/op
BenchmarkExport/otlpmetrichttp-2    	      10	  8000000 ns/op	     1000 series/op	  2000 wire-B/op	 9000 B/op	  3000 allocs/op
BenchmarkExport/collector_prw-2     	       1	 40000000 ns/op	     1000 series/op	  1000 wire-B/op	 9000 B/op	 9000 allocs/op
--- FAIL: BenchmarkExport/otlpmetrichttp_gzip
    otlpmetrichttp_test.go:1: some failure: with colons
BenchmarkExport/snappy_floor-2      	     100	   500000 ns/op	     1000 series/op	   600 wire-B/op	       0 B/op	       0 allocs/op
BenchmarkExport/s2_snappy-2         	     100	   400000 ns/op	     1000 series/op	   550 wire-B/op	       0 B/op	       0 allocs/op
BenchmarkExportHistograms/prwmetric-2         	      10	  6000000 ns/op	     2000 series/op	   800 wire-B/op	 2000 B/op	    10 allocs/op
BenchmarkExportHistograms/prwmetric_v2_nhcb-2 	      10	  5000000 ns/op	  2000000 rcv-decode-ns/op	     2000 series/op	   100 wire-B/op	 2000 B/op	    10 allocs/op
BenchmarkExportHistograms/otlpmetrichttp-2    	      10	  8000000 ns/op	     2000 series/op	  3000 wire-B/op	 9000 B/op	  3000 allocs/op
BenchmarkExport/prwmetric-2         	      10	  1000000 ns/op	  2000000 cpu-ns/op	        10.00 requests/op	     1000 series/op	   600 wire-B/op	 2000 B/op	    10 allocs/op
BenchmarkExport/prwmetric-2         	      10	  2000000 ns/op	  3000000 cpu-ns/op	        10.00 requests/op	     1000 series/op	   600 wire-B/op	 3000 B/op	    20 allocs/op
BenchmarkExportMillion/prwmetric-2  	       1	500000000 ns/op	  1000001 series/op	  1000 wire-B/op	 9000 B/op	 9000 allocs/op
BenchmarkLargeExport/first-2        	       1	2000000000 ns/op	      50 base-heap-MiB	     100 raw-payload-MiB/op	     250 heap-growth-MiB	  2.5 growth/raw	1000001 series/op
BenchmarkLargeExport/steady-2       	       1	 500000000 ns/op	     120 base-heap-MiB	     100 raw-payload-MiB/op	      10 heap-growth-MiB	  0.1 growth/raw	1000001 series/op
BenchmarkLatency/W/default/rtt=0ms-2          	       3	  10000000 ns/op	         6.000 requests/op	     44001 series/op
BenchmarkLatency/W/default/rtt=10ms-2         	       3	  70000000 ns/op	         6.000 requests/op	     44001 series/op
BenchmarkLatency/W/default/rtt=50ms-2         	       3	 310000000 ns/op	         6.000 requests/op	     44001 series/op
BenchmarkLatency/W/default/rtt=10ms,bw=100Mbit-2 	       3	 150000000 ns/op	         6.000 requests/op	     44001 series/op
BenchmarkLatency/1M/concurrency=1/rtt=0ms-2          	       3	 1000000000 ns/op	       100.0 requests/op	   1000001 series/op
BenchmarkLatency/1M/concurrency=1/rtt=50ms-2         	       3	 6000000000 ns/op	       100.0 requests/op	   1000001 series/op
BenchmarkLatency/1M/default/rtt=0ms-2          	       3	 1000000000 ns/op	       100.0 requests/op	   1000001 series/op
BenchmarkLatency/1M/default/rtt=50ms-2         	       3	 1400000000 ns/op	       100.0 requests/op	   1000001 series/op
BenchmarkLatency/1M/compression=zstd/rtt=0ms-2          	       3	 1200000000 ns/op	       100.0 requests/op	   1000001 series/op
BenchmarkLatency/1M/compression=zstd/rtt=50ms-2         	       3	 2000000000 ns/op	       100.0 requests/op	   1000001 series/op
BenchmarkCompression/W/snappy-2         	      10	  3000000 ns/op	  4000000 cpu-ns/op	  10000 raw-B/op	        6.000 requests/op	     1000 series/op	   1000 wire-B/op	 1000 B/op	    10 allocs/op
BenchmarkCompression/W/zstd-2           	      10	  5000000 ns/op	  5000000 cpu-ns/op	  10000 raw-B/op	        6.000 requests/op	     1000 series/op	    300 wire-B/op	 1000 B/op	    10 allocs/op
BenchmarkCompression/W/snappy-2         	      10	  3000000 ns/op	  4000000 cpu-ns/op	  10000 raw-B/op	        6.000 requests/op	     1000 series/op	   1000 wire-B/op	 1000 B/op	    10 allocs/op
BenchmarkCompression/W/zstd-2           	      10	  5000000 ns/op	  5000000 cpu-ns/op	  10000 raw-B/op	        6.000 requests/op	     1000 series/op	    300 wire-B/op	 1000 B/op	    10 allocs/op
BenchmarkCompression/counters/snappy-2         	      10	  3000000 ns/op	  2000000 cpu-ns/op	  20000 raw-B/op	        6.000 requests/op	     1000 series/op	   2000 wire-B/op	 1000 B/op	    10 allocs/op
BenchmarkCompression/counters/zstd-2           	      10	  5000000 ns/op	  4000000 cpu-ns/op	  20000 raw-B/op	        6.000 requests/op	     1000 series/op	    800 wire-B/op	 1000 B/op	    10 allocs/op
BenchmarkChurn/0%-2         	     300	   5000000 ns/op	   8000000 cpu-ns/op	         0 new-series/op	         6.000 requests/op	     44001 series/op	    984299 wire-B/op	 1242300 B/op	     278 allocs/op
BenchmarkChurn/1%-2         	     300	   6000000 ns/op	  11000000 cpu-ns/op	       440.0 new-series/op	         6.000 requests/op	     44001 series/op	   1195317 wire-B/op	 1688507 B/op	    2160 allocs/op
BenchmarkChurn/0%-2         	     300	   7000000 ns/op	   8000000 cpu-ns/op	         0 new-series/op	         6.000 requests/op	     44001 series/op	    984299 wire-B/op	 1242300 B/op	     278 allocs/op
BenchmarkChurn/1%-2         	     300	   7500000 ns/op	  11000000 cpu-ns/op	       440.0 new-series/op	         6.000 requests/op	     44001 series/op	   1195317 wire-B/op	 1688507 B/op	    2160 allocs/op
BenchmarkExemplars/none-2         	     300	   5000000 ns/op	   7000000 cpu-ns/op	         0 exemplars/op	         6.000 requests/op	     44001 series/op	    984303 wire-B/op	 1251632 B/op	     278 allocs/op
BenchmarkExemplars/every_bucket-2 	     300	  10000000 ns/op	  16000000 cpu-ns/op	     18351 exemplars/op	         6.000 requests/op	     44001 series/op	   1524290 wire-B/op	 4424332 B/op	     368 allocs/op
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
		{name: "link with a comma", bench: "BenchmarkLatency/W/default/rtt=10ms,bw=100Mbit", unit: "ns/op", want: 150_000_000},
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
	if got := res.own("BenchmarkExport/prwmetric_v2"); len(got) != 1 || got[0] != 4_000_000 {
		t.Errorf("own time of 2.0 = %v, want [4e6]: ns/op less rcv-decode-ns/op", got)
	}
	if _, ok := res.values["BenchmarkExport/otlpmetrichttp_gzip"]; ok {
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
		"## Workload W\n",
		"1,000 Prometheus series per export; medians of 3 rounds.",
		// prwmetric: median 2 ms of 1, 2, 3; 0.02 allocs and 3 B per
		// series; 600 B on the wire; 4× the 0.5 ms floor, 0.05× the
		// Collector's 40 ms, 0.25× OTLP's 8 ms, 0.6× the Collector's
		// 1000 wire bytes.
		"| **prwmetric** `Export` → remote write 1.0 | 2.00 | 1.00–3.00 | — | 0.0200 | 3.00 | 600 (snappy, s2 encoder) | 4.0× | 0.050× | 0.25× | 0.60× | — |",
		// 2.0: 5 ms, 1 ms of which the receiver decoding: 4 ms own, twice
		// 1.0's 2 ms.
		"| **prwmetric** `Export` → remote write 2.0 | 5.00 | 5.00–5.00 | 1.00 | 0.0100 | 1.00 | 300 (snappy, s2 encoder) | 8.0× | 0.10× | 0.50× | 0.30× | 2.0× |",
		"| `s2.EncodeSnappy` (the encoder prwmetric uses) of prwmetric's 1.0 payload alone | 0.400 | 0.400–0.400 | — | 0 | 0 | 550 (snappy, s2 encoder) | 0.80× | 0.010× | 0.050× | 0.55× | — |",
		"## Histograms\n",
		// Churn: medians 6 ms without, 6.75 ms with 1% (÷ 6 = 1.125, rounded to even).
		"prwmetric's export of W, whose 500 attribute sets carry one more attribute",
		"| 0% | 0 | 6.00 | 5.00–7.00 | 1.00× | 8.00 | 0.00632 | 28.2 | 984,299 | 6.00 |",
		"| 1% | 440 | 6.75 | 6.00–7.50 | 1.12× | 11.0 | 0.0491 | 38.4 | 1,195,317 | 6.00 |",
		"| Exemplars | exemplars per export | ms/export | fastest–slowest round | ÷ without exemplars | CPU ms |",
		"| every_bucket | 18,351 | 10.0 | 10.0–10.0 | 2.00× | 16.0 | 0.00836 | 101 | 1,524,290 | 6.00 |",
		"| Target | Limit | W | histograms | 1M series |",
		"| prwmetric time ÷ snappy floor of its own payload | ≤ 2.5 | 4.00 ✗ | — | — |",
		"| prwmetric time ÷ Collector path | ≤ 0.05 | 0.0500 ✓ | — | — |",
		// 0.75 meets the histogram limit of 1.0, not the 0.5 of others.
		"| prwmetric time ÷ `otlpmetrichttp` uncompressed | ≤ 0.5 (histograms: ≤ 1.0) | 0.250 ✓ | 0.750 ✓ | — |",
		"| prwmetric 2.0 NHCB time ÷ `otlpmetrichttp` uncompressed | ≤ 0.5 | — | 0.375 ✓ | — |",
		"| prwmetric allocations per series | ≤ 0.01 | 0.0200 ✗ | 0.00500 ✓ | 0.00900 ✓ |",
		"| prwmetric bytes on the wire ÷ Collector path | ≤ 0.65 | 0.600 ✓ | — | — |",
		// CPU: 6 ms ÷ the median of 4, 2 and 3 ms.
		"| prwmetric 2.0 exporter CPU per export ÷ 1.0 (the receiver's decoding is another process) | ≤ 1.0 | 2.00 ✗ | — | — |",
		"| 1 000 000 series, first export: seconds | ≤ 2.5 | — | — | 2.00 ✓ |",
		"| 1 000 000 series, first export: peak heap growth ÷ raw payload | ≤ 1.5 (issue 7: < 2) | — | — | 2.50 ✗ |",
		"| 1 000 000 series, steady export: seconds | ≤ 0.4 | — | — | 0.500 ✗ |",
		"| 1 000 000 series, steady export: heap growth ÷ raw payload | < 2 | — | — | 0.100 ✓ |",
		// (120 - 50) ÷ 100: what the first export left on the heap.
		"| 1 000 000 series: heap the exporter keeps between exports ÷ raw payload | ≤ 1.0 | — | — | 0.700 ✓ |",
		"| first | 2.00 | — | 100 | — | 50.0 | — | 250 | 2.50 |",
		"## Far from the receiver\n",
		"| Workload | Concurrent requests | Compression | requests/export | rtt=0ms | rtt=10ms | rtt=50ms | rtt=10ms,bw=100Mbit | 50 ms ÷ no delay |",
		// 60 ms more at 10 ms RTT, 300 ms more at 50: six round trips;
		// no target on W.
		"| W | 128 (default) | snappy | 6.00 | 10.0 | 70.0 (+6.0 RTT) | 310 (+6.0 RTT) | 150 | 31× |",
		// Links the run lacks are dashes; no target off the default.
		"| 1M | 1 | snappy | 100 | 1,000 | — | 6,000 (+100 RTT) | — | 6.0× |",
		// The target: 1.4 ≤ 1.5 at the default concurrency on 1M.
		"| 1M | 128 (default) | snappy | 100 | 1,000 | — | 1,400 (+8.0 RTT) | — | 1.4× ✓ |",
		"| 1M | 128 (default) | zstd | 100 | 1,200 | — | 2,000 (+16 RTT) | — | 1.7× |",
		"## Compression: snappy or zstd\n",
		"medians of 2 rounds.",
		// 0.3 ≤ 0.35 in bytes, 1.25 ≤ 1.5 in CPU; counters: 0.4 and 2.0,
		// both over.
		"| W | 10,000 | 1,000 | 300 | 0.30× ✓ | 4.00 | 5.00 | 1.2× ✓ | 3.00 | 5.00 |",
		"| counters | 20,000 | 2,000 | 800 | 0.40× ✗ | 2.00 | 4.00 | 2.0× ✗ | 3.00 | 5.00 |",
		"go version test",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("RESULTS.md lacks %q; got:\n%s", want, doc)
		}
	}
	for _, absent := range []string{"## Many metrics", "## W, counter-heavy"} {
		if strings.Contains(doc, absent) {
			t.Errorf("RESULTS.md has %q, a shape the run lacks", absent)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		give    config
		want    config
		wantErr bool
	}{
		{name: "full run", give: config{shapes: true, count: 5, benchtime: "1s"}, want: config{shapes: true, count: 5, benchtime: "1s", largeCount: 3, latencyBenchtime: "3x"}},
		{name: "smoke run", give: config{shapes: true, count: 1, benchtime: "1x"}, want: config{shapes: true, count: 1, benchtime: "1x", largeCount: 1, latencyBenchtime: "1x"}},
		{name: "explicit", give: config{shapes: true, count: 2, benchtime: "2s", largeCount: 4, latencyBenchtime: "5x"},
			want: config{shapes: true, count: 2, benchtime: "2s", largeCount: 4, latencyBenchtime: "5x"}},
		{name: "compression and latency only", give: config{compression: true, latency: true, count: 3, benchtime: "1s"},
			want: config{compression: true, latency: true, count: 3, benchtime: "1s", largeCount: 3, latencyBenchtime: "3x"}},
		{name: "nothing to run", give: config{count: 1}, wantErr: true},
		{name: "no round", give: config{shapes: true, count: 0}, wantErr: true},
		{name: "negative large rounds", give: config{shapes: true, count: 1, largeCount: -1}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.give.withDefaults()
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestShapeBenchmarks(t *testing.T) {
	want := "^(BenchmarkExport|BenchmarkExportCounterHeavy|BenchmarkExportCounters|BenchmarkExportHistograms|BenchmarkExportManyMetrics)$"
	if got := shapeBenchmarks(); got != want {
		t.Errorf("shapeBenchmarks() = %q, want %q", got, want)
	}
}

func TestCompressionBenchmarks(t *testing.T) {
	for _, tc := range []struct {
		large bool
		want  string
	}{
		{large: false, want: "^BenchmarkCompression$/^(W|counter_heavy|counters|histograms|many_metrics)$"},
		{large: true, want: "^BenchmarkCompression$/^(1M)$"},
	} {
		if got := compressionBenchmarks(tc.large); got != tc.want {
			t.Errorf("compressionBenchmarks(%v) = %q, want %q", tc.large, got, tc.want)
		}
	}
}

func TestVariantColumns(t *testing.T) {
	for _, tc := range []struct {
		give                             string
		wantConcurrency, wantCompression string
	}{
		{give: "default", wantConcurrency: "128 (default)", wantCompression: "snappy"},
		{give: "concurrency=16", wantConcurrency: "16", wantCompression: "snappy"},
		{give: "concurrency=8", wantConcurrency: "8", wantCompression: "snappy"},
		{give: "concurrency=64", wantConcurrency: "64", wantCompression: "snappy"},
		{give: "compression=zstd", wantConcurrency: "128 (default)", wantCompression: "zstd"},
		{give: "concurrency=2,compression=zstd,http2=on", wantConcurrency: "2", wantCompression: "zstd, http2=on"},
	} {
		c, z := variantColumns(tc.give)
		if c != tc.wantConcurrency || z != tc.wantCompression {
			t.Errorf("variantColumns(%q) = %q, %q; want %q, %q", tc.give, c, z, tc.wantConcurrency, tc.wantCompression)
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
// the tables and the raw output for benchstat.
func TestRunFromSavedOutput(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "bench.txt"), filepath.Join(dir, "RESULTS.md")
	if err := os.WriteFile(in, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(config{}, in, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| **prwmetric** `Export` → remote write 1.0 | 2.00 |",
		"tabulated from " + in,
		"BenchmarkExport/snappy_floor-2      \t     100\t   500000 ns/op",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("RESULTS.md lacks %q; got:\n%s", want, b)
		}
	}
}
