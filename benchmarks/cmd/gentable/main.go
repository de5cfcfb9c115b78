// Command gentable runs the benchmarks of this module afresh and writes
// RESULTS.md: a comparison table per workload shape, the targets checked
// against every shape, the heap of the 1 000 000-series export, snappy
// against zstd, the export time far from the receiver, the versions and
// the machine. Every number in the file comes from the run; none is typed.
//
// Run it from the benchmarks directory (gen-table.sh does, and maps
// environment variables to these flags):
//
//	go run ./cmd/gentable                          # the full run (about 20 minutes on 2 cores)
//	go run ./cmd/gentable -count 1 -benchtime 1x   # a smoke run
//	go run ./cmd/gentable -large=false -latency=false
//	go run ./cmd/gentable -shapes=false -out x.md  # compression and latency only
//	go run ./cmd/gentable -in saved.txt            # tabulate saved `go test -bench` output
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// config is what to run.
type config struct {
	// shapes runs the library comparison (BenchmarkExport...) and
	// compression BenchmarkCompression: count rounds of the shapes of W's
	// size, each with benchtime.
	shapes, compression bool
	count               int
	benchtime           string
	// large runs largeCount rounds of the 1M-series shape (-benchtime=1x)
	// of the benchmarks above, and with shapes BenchmarkLargeExport once.
	large      bool
	largeCount int
	// latency runs BenchmarkLatency once with latencyBenchtime.
	latency          bool
	latencyBenchtime string
}

func main() {
	var c config
	flag.BoolVar(&c.shapes, "shapes", true, "run the library comparison on every shape (BenchmarkExport..., BenchmarkLargeExport), BenchmarkChurn and BenchmarkExemplars")
	flag.BoolVar(&c.compression, "compression", true, "run snappy against zstd on every shape (BenchmarkCompression)")
	flag.IntVar(&c.count, "count", 5, "rounds of the shape and compression benchmarks; tables show the median and the spread")
	flag.StringVar(&c.benchtime, "benchtime", "1s", "-benchtime of the shape and compression benchmarks")
	flag.BoolVar(&c.large, "large", true, "also run the 1 000 000-series shape (BenchmarkExportMillion, BenchmarkLargeExport, BenchmarkCompression/1M)")
	flag.IntVar(&c.largeCount, "large-count", 0, "rounds of the 1 000 000-series shape (-benchtime=1x); 0: min(3, -count)")
	flag.BoolVar(&c.latency, "latency", true, "also run BenchmarkLatency once")
	flag.StringVar(&c.latencyBenchtime, "latency-benchtime", "", "-benchtime of BenchmarkLatency; empty: -benchtime if it counts iterations (such as 1x), else 3x")
	in := flag.String("in", "", "tabulate this saved `go test -bench` output instead of running the benchmarks")
	out := flag.String("out", "RESULTS.md", "file to write")
	flag.Parse()
	if err := run(c, *in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gentable:", err)
		os.Exit(1)
	}
}

// withDefaults fills in the derived settings.
func (c config) withDefaults() (config, error) {
	if !c.shapes && !c.compression && !c.latency {
		return c, fmt.Errorf("-shapes, -compression and -latency all false: nothing to run")
	}
	if c.count < 1 {
		return c, fmt.Errorf("-count %d: need at least one round", c.count)
	}
	if c.largeCount < 0 {
		return c, fmt.Errorf("-large-count %d: need 0 (the default) or more rounds", c.largeCount)
	}
	if c.largeCount == 0 {
		c.largeCount = min(3, c.count)
	}
	if c.latencyBenchtime == "" {
		c.latencyBenchtime = "3x"
		if strings.HasSuffix(c.benchtime, "x") {
			c.latencyBenchtime = c.benchtime
		}
	}
	return c, nil
}

func run(c config, in, out string) error {
	env := describeEnvironment()
	var raw bytes.Buffer
	if in != "" {
		b, err := os.ReadFile(in)
		if err != nil {
			return err
		}
		raw.Write(b)
		env.source = "tabulated from " + in
	} else {
		var err error
		if c, err = c.withDefaults(); err != nil {
			return err
		}
		if err := runBenchmarks(&raw, &env, c); err != nil {
			return err
		}
		env.loadAfter = loadAverage()
	}
	text := raw.String()
	res, err := parse(strings.NewReader(text))
	if err != nil {
		return err
	}
	var doc bytes.Buffer
	writeResults(&doc, res, env, text)
	return os.WriteFile(out, doc.Bytes(), 0o644)
}

// shapeBenchmarks matches the benchmarks of the shapes of W's size.
func shapeBenchmarks() string {
	var names []string
	for _, s := range shapes {
		if !s.large {
			names = append(names, s.bench)
		}
	}
	return "^(" + strings.Join(names, "|") + ")$"
}

// compressionBenchmarks matches BenchmarkCompression on the shapes of W's
// size, or on the large one.
func compressionBenchmarks(large bool) string {
	var keys []string
	for _, s := range shapes {
		if s.large == large {
			keys = append(keys, s.benchKey)
		}
	}
	return "^" + benchCompression + "$/^(" + strings.Join(keys, "|") + ")$"
}

// runBenchmarks builds the test binary once and runs the rounds: in each,
// every shape with every library, one after another, so that a change of
// load on the machine hits every library alike, then every shape with
// snappy and zstd, and in the first largeCount rounds the 1M-series shape
// too. Then BenchmarkLargeExport and BenchmarkLatency once.
func runBenchmarks(raw *bytes.Buffer, env *environment, c config) error {
	dir, err := os.MkdirTemp("", "gentable")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "benchmarks.test")
	if err := command(io.Discard, "go", "test", "-c", "-o", bin, "."); err != nil {
		return err
	}
	args := func(bench, benchtime string) []string {
		return []string{"-test.run=^$", "-test.bench=" + bench, "-test.benchmem", "-test.count=1", "-test.benchtime=" + benchtime, "-test.timeout=0"}
	}
	// The parts of a round, in order; a part runs in the rounds before
	// its count.
	type part struct {
		on     bool
		rounds int
		args   []string
		took   time.Duration
	}
	parts := []*part{
		{on: c.shapes, rounds: c.count, args: args(shapeBenchmarks(), c.benchtime)},
		{on: c.shapes, rounds: c.count, args: args("^(BenchmarkChurn|BenchmarkExemplars)$", c.benchtime)},
		{on: c.compression, rounds: c.count, args: args(compressionBenchmarks(false), c.benchtime)},
		{on: c.shapes && c.large, rounds: c.largeCount, args: args("^BenchmarkExportMillion$", "1x")},
		{on: c.compression && c.large, rounds: c.largeCount, args: args(compressionBenchmarks(true), "1x")},
	}
	for round := range max(c.count, c.largeCount) {
		for _, pt := range parts {
			if !pt.on || round >= pt.rounds {
				continue
			}
			start := time.Now()
			if err := command(raw, bin, pt.args...); err != nil {
				return err
			}
			pt.took += time.Since(start)
		}
	}
	for _, pt := range parts {
		if !pt.on {
			continue
		}
		note := ""
		if len(env.runs) == 0 {
			note = " (the `go test -c` binary)"
		}
		env.runs = append(env.runs, fmt.Sprintf("%d rounds of `benchmarks.test %s`%s took %s",
			pt.rounds, strings.Join(pt.args, " "), note, pt.took.Round(time.Second)))
	}
	once := func(a []string) error {
		start := time.Now()
		if err := command(raw, bin, a...); err != nil {
			return err
		}
		env.runs = append(env.runs, fmt.Sprintf("`benchmarks.test %s` took %s", strings.Join(a, " "), time.Since(start).Round(time.Second)))
		return nil
	}
	if c.shapes && c.large {
		if err := once(args("^BenchmarkLargeExport$", "1x")); err != nil {
			return err
		}
	}
	if c.latency {
		if err := once(args("^BenchmarkLatency$", c.latencyBenchtime)); err != nil {
			return err
		}
	}
	return nil
}

// command runs name with args, copying its output to w and to stderr, so
// the caller sees progress.
func command(w io.Writer, name string, args ...string) error {
	fmt.Fprintln(os.Stderr, "gentable:", name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout = io.MultiWriter(w, os.Stderr)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
