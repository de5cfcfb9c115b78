// Command gentable runs the benchmarks of this module afresh and writes
// RESULTS.md: a comparison table per workload shape, the targets checked
// against every shape, the heap of the 1 000 000-series export, the export
// time through slow networks, the versions and the machine. Every number in
// the file comes from the run; none is typed.
//
// Run it from the benchmarks directory (gen-table.sh does, and maps
// environment variables to these flags):
//
//	go run ./cmd/gentable                          # the full run (about 15 minutes on 2 cores)
//	go run ./cmd/gentable -count 1 -benchtime 1x   # a smoke run
//	go run ./cmd/gentable -large=false -latency=false
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
	// count rounds of the shapes of W's size, each with benchtime.
	count     int
	benchtime string
	// large runs largeCount rounds of the 1M-series shape (-benchtime=1x)
	// and BenchmarkLargeExport once.
	large      bool
	largeCount int
	// latency runs BenchmarkLatency once with latencyBenchtime.
	latency          bool
	latencyBenchtime string
}

func main() {
	var c config
	flag.IntVar(&c.count, "count", 5, "rounds of the shape benchmarks; tables show the median and the spread")
	flag.StringVar(&c.benchtime, "benchtime", "1s", "-benchtime of the shape benchmarks")
	flag.BoolVar(&c.large, "large", true, "also run the 1 000 000-series benchmarks (BenchmarkExportMillion, BenchmarkLargeExport)")
	flag.IntVar(&c.largeCount, "large-count", 0, "rounds of BenchmarkExportMillion (-benchtime=1x); 0: min(3, -count)")
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

// runBenchmarks builds the test binary once and runs the rounds: in each,
// every shape with every library, one after another, so that a change of
// load on the machine hits every library alike, and in the first
// largeCount rounds the 1M-series shape too. Then BenchmarkLargeExport and
// BenchmarkLatency once.
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
	var took [2]time.Duration
	shapeArgs, millionArgs := args(shapeBenchmarks(), c.benchtime), args("^BenchmarkExportMillion$", "1x")
	for round := range max(c.count, c.largeCount) {
		if round < c.count {
			start := time.Now()
			if err := command(raw, bin, shapeArgs...); err != nil {
				return err
			}
			took[0] += time.Since(start)
		}
		if c.large && round < c.largeCount {
			start := time.Now()
			if err := command(raw, bin, millionArgs...); err != nil {
				return err
			}
			took[1] += time.Since(start)
		}
	}
	env.runs = append(env.runs, fmt.Sprintf("%d rounds of `benchmarks.test %s` (the `go test -c` binary) took %s",
		c.count, strings.Join(shapeArgs, " "), took[0].Round(time.Second)))
	if c.large {
		env.runs = append(env.runs, fmt.Sprintf("%d rounds of `benchmarks.test %s` took %s",
			c.largeCount, strings.Join(millionArgs, " "), took[1].Round(time.Second)))
	}
	once := func(a []string) error {
		start := time.Now()
		if err := command(raw, bin, a...); err != nil {
			return err
		}
		env.runs = append(env.runs, fmt.Sprintf("`benchmarks.test %s` took %s", strings.Join(a, " "), time.Since(start).Round(time.Second)))
		return nil
	}
	if c.large {
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
