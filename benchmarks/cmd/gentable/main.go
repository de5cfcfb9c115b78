// Command gentable runs the benchmarks of this module afresh and writes
// RESULTS.md: the comparison table for the README, the targets of issue 7
// computed from the same run, the large-export figures, the versions and
// the machine. Every number in the file comes from the run; none is typed.
//
// Run it from the benchmarks directory (gen-table.sh does):
//
//	go run ./cmd/gentable                 # 5 rounds of BenchmarkExport, BenchmarkLargeExport once
//	go run ./cmd/gentable -count 3 -large=false
//	go run ./cmd/gentable -in saved.txt   # tabulate saved `go test -bench` output
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	var (
		count     = flag.Int("count", 5, "rounds of BenchmarkExport; the table shows the median")
		benchtime = flag.String("benchtime", "1s", "-benchtime for BenchmarkExport")
		large     = flag.Bool("large", true, "also run BenchmarkLargeExport once (1 000 000 series; takes minutes)")
		in        = flag.String("in", "", "tabulate this saved `go test -bench` output instead of running the benchmarks")
		out       = flag.String("out", "RESULTS.md", "file to write")
	)
	flag.Parse()
	if err := run(*count, *benchtime, *large, *in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gentable:", err)
		os.Exit(1)
	}
}

func run(count int, benchtime string, large bool, in, out string) error {
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
		if count < 1 {
			return fmt.Errorf("-count %d: need at least one run", count)
		}
		if err := runBenchmarks(&raw, &env, count, benchtime, large); err != nil {
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

// runBenchmarks builds the test binary once and runs BenchmarkExport count
// times, one round of every library after another, so that a change of
// load on the machine hits every library alike; then BenchmarkLargeExport
// once.
func runBenchmarks(raw *bytes.Buffer, env *environment, count int, benchtime string, large bool) error {
	dir, err := os.MkdirTemp("", "gentable")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "benchmarks.test")
	if err := command(io.Discard, "go", "test", "-c", "-o", bin, "."); err != nil {
		return err
	}
	exportArgs := []string{"-test.run=^$", "-test.bench=^BenchmarkExport$", "-test.benchmem",
		"-test.count=1", "-test.benchtime=" + benchtime, "-test.timeout=0"}
	start := time.Now()
	for range count {
		if err := command(raw, bin, exportArgs...); err != nil {
			return err
		}
	}
	env.runs = append(env.runs, fmt.Sprintf("%d rounds of `benchmarks.test %s` (the `go test -c` binary) took %s",
		count, strings.Join(exportArgs, " "), time.Since(start).Round(time.Second)))
	if large {
		largeArgs := []string{"-test.run=^$", "-test.bench=^BenchmarkLargeExport$", "-test.benchmem",
			"-test.count=1", "-test.benchtime=1x", "-test.timeout=0"}
		start = time.Now()
		if err := command(raw, bin, largeArgs...); err != nil {
			return err
		}
		env.runs = append(env.runs, fmt.Sprintf("`benchmarks.test %s` took %s",
			strings.Join(largeArgs, " "), time.Since(start).Round(time.Second)))
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

// results are the parsed benchmark lines: for each benchmark (its name
// without the GOMAXPROCS suffix) and unit, every value seen, in order.
type results struct {
	header map[string]string // goos, goarch, pkg, cpu
	values map[string]map[string][]float64
	procs  string
}

// parse reads `go test -bench` output.
func parse(r io.Reader) (*results, error) {
	res := &results{header: map[string]string{}, values: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.Contains(k, " ") && !strings.HasPrefix(k, "Benchmark") {
			res.header[k] = strings.TrimSpace(v)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a name alone on its line, or a failure message
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				res.procs = name[i+1:]
				name = name[:i]
			}
		}
		m := res.values[name]
		if m == nil {
			m = map[string][]float64{}
			res.values[name] = m
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: value %q: %w", line, f[i], err)
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(res.values) == 0 {
		return nil, errors.New("no benchmark results in the output")
	}
	return res, nil
}

// median returns the median of the values of unit for benchmark name, and
// whether there were any.
func (r *results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r.values[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}

func (r *results) runs(name string) int { return len(r.values[name]["ns/op"]) }

// perSeries returns the median of unit divided by the benchmark's
// series/op: the same workload, hence the same divisor, for every library.
func (r *results) perSeries(name, unit string) (float64, bool) {
	v, ok := r.median(name, unit)
	s, ok2 := r.median(name, "series/op")
	if !ok || !ok2 || s == 0 {
		return 0, false
	}
	return v / s, true
}

// environment is what the file states about where and with what it ran.
type environment struct {
	goVersion, date, cpuModel, memTotal, loadBefore, loadAfter, prwmetricRev, source string
	nproc                                                                            int
	modules                                                                          []string
	runs                                                                             []string
}

// competitorModules are the modules whose versions the table depends on.
var competitorModules = []string{
	"go.opentelemetry.io/otel/sdk/metric",
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp",
	"go.opentelemetry.io/otel/exporters/prometheus",
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite",
	"go.opentelemetry.io/collector/pdata",
	"github.com/prometheus/prometheus",
	"github.com/prometheus/client_golang",
	"github.com/prometheus/common",
	"github.com/gogo/protobuf",
	"github.com/golang/snappy",
	"github.com/klauspost/compress",
	"google.golang.org/protobuf",
}

func describeEnvironment() environment {
	env := environment{
		goVersion:  strings.TrimSpace(output("go", "version")),
		date:       time.Now().UTC().Format("2006-01-02 15:04 MST"),
		nproc:      runtime.NumCPU(),
		loadBefore: loadAverage(),
		source:     "fresh run",
	}
	if n, err := strconv.Atoi(strings.TrimSpace(output("nproc"))); err == nil {
		env.nproc = n
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				env.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64); err == nil {
					env.memTotal = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	args := append([]string{"list", "-m", "-f", "{{.Path}} {{.Version}}"}, competitorModules...)
	for line := range strings.Lines(output("go", args...)) {
		if line = strings.TrimSpace(line); line != "" {
			env.modules = append(env.modules, line)
		}
	}
	rev := strings.TrimSpace(output("git", "-C", "..", "rev-parse", "--short", "HEAD"))
	// Changes to the benchmarks themselves do not change what is measured.
	if rev != "" && strings.TrimSpace(output("git", "-C", "..", "status", "--porcelain", "--", ".", ":(exclude)benchmarks")) != "" {
		rev += " with uncommitted changes"
	}
	env.prwmetricRev = rev
	return env
}

// output runs a command and returns its stdout, or "" if it fails: a
// missing fact is left out of the file, never guessed.
func output(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return string(b)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// row is one library of BenchmarkExport, in table order.
type row struct{ name, label, wireNote string }

var exportRows = []row{
	{"prwmetric", "**prwmetric** `Export` → remote write", "snappy, s2 encoder"},
	{"prwmetric_v2", "**prwmetric** `Export` → remote write 2.0 (receiver decodes to answer the written counts)", "snappy, s2 encoder"},
	{"otlpmetrichttp", "`otlpmetrichttp` `Export`, uncompressed", "protobuf"},
	{"otlpmetrichttp_gzip", "`otlpmetrichttp` `Export`, gzip", "gzip"},
	{"collector_prw", "Collector translator `FromMetrics` + gogo marshal + snappy + POST", "snappy"},
	{"otelprom_scrape", "OTel Prometheus exporter: one scrape (`Gather` + text format)", "text, uncompressed"},
	{"snappy_floor", "floor: `snappy.Encode` of prwmetric's payload alone", "snappy"},
	{"s2_snappy", "`s2.EncodeSnappy` (the encoder prwmetric uses) of prwmetric's payload alone", "snappy, s2 encoder"},
}

const (
	benchExport = "BenchmarkExport/"
	benchLarge  = "BenchmarkLargeExport/"
)

func writeResults(w io.Writer, r *results, env environment, raw string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# prwmetric benchmarks\n\n")
	p("Generated by `benchmarks/gen-table.sh` (%s, %s); do not edit by hand.\n\n", env.source, env.date)

	series, _ := r.median(benchExport+"prwmetric", "series/op")
	p("## Workload W: one export\n\n")
	p("A resource with 6 attributes and 20 instruments (6 counters, 4 up-down counters, 6 gauges, 4 histograms with ")
	p("15 explicit bounds) × 500 attribute sets: %s Prometheus series per export, `target_info` included. ", thousands(series))
	p("Push exporters send to a receiver in a separate process on 127.0.0.1 that reads and discards the body; ")
	p("times are per export in the steady state (after two warm-up exports), %s. ", runsText(r.runs(benchExport+"prwmetric")))
	p("Per-series figures divide by the same %s series for every library. ", thousands(series))
	p("The floor is `snappy.Encode` (golang/snappy) of prwmetric's own payload; prwmetric compresses with ")
	p("`s2.EncodeSnappy` (klauspost/compress), which writes the same snappy block format, and the last row ")
	p("measures that encoder alone on the same payload.\n\n")

	collector, _ := r.median(benchExport+"collector_prw", "ns/op")
	floor, _ := r.median(benchExport+"snappy_floor", "ns/op")
	collectorWire, _ := r.median(benchExport+"collector_prw", "wire-B/op")
	p("| Library | ms/export | ns/series | allocs/series | B/series | bytes on the wire | time ÷ Collector | time ÷ snappy floor | wire ÷ Collector |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range exportRows {
		name := benchExport + row.name
		ns, ok := r.median(name, "ns/op")
		if !ok {
			continue
		}
		nsS, _ := r.perSeries(name, "ns/op")
		allocS, _ := r.perSeries(name, "allocs/op")
		bS, _ := r.perSeries(name, "B/op")
		wire, _ := r.median(name, "wire-B/op")
		p("| %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s |\n", row.label,
			sig(ns/1e6, 3), sig(nsS, 3), sig(allocS, 3), sig(bS, 3),
			thousands(wire), row.wireNote,
			ratio(ns, collector), ratio(ns, floor), ratio(wire, collectorWire))
	}
	p("\n")

	writeTargets(w, r)
	writeLarge(w, r)

	p("## Versions and machine\n\n")
	p("- %s; GOMAXPROCS %s\n", env.goVersion, orUnknown(r.procs))
	p("- prwmetric: this repository at %s\n", orUnknown(env.prwmetricRev))
	for _, m := range env.modules {
		p("- %s\n", m)
	}
	cpu := orUnknown(env.cpuModel)
	if r.header["cpu"] != "" && r.header["cpu"] != env.cpuModel {
		cpu += fmt.Sprintf(" (`go test` reports %q)", r.header["cpu"])
	}
	p("- CPU: %s; %d logical CPUs (`nproc`); memory %s\n", cpu, env.nproc, orUnknown(env.memTotal))
	p("- %s/%s\n", r.header["goos"], r.header["goarch"])
	if env.loadBefore != "" {
		p("- load average (1, 5, 15 min) before the run: %s", env.loadBefore)
		if env.loadAfter != "" {
			p("; after: %s", env.loadAfter)
		}
		p(" (a load before the run is other work sharing the CPUs, which skews every figure)\n")
	}
	for _, run := range env.runs {
		p("- %s\n", run)
	}
	p("\n<details><summary>Raw <code>go test -bench</code> output (input for benchstat)</summary>\n\n```\n%s```\n\n</details>\n", raw)
}

// writeTargets checks the targets of issue 7 against this run.
func writeTargets(w io.Writer, r *results) {
	type target struct {
		what       string
		got, limit float64
		inclusive  bool // ≤ rather than <
	}
	var ts []target
	ratioTarget := func(what, unitA, nameB, unitB string, limit float64) {
		a, okA := r.median(benchExport+"prwmetric", unitA)
		b, okB := r.median(benchExport+nameB, unitB)
		if okA && okB && b > 0 {
			ts = append(ts, target{what, a / b, limit, true})
		}
	}
	ratioTarget("time ÷ Collector path", "ns/op", "collector_prw", "ns/op", 0.05)
	ratioTarget("time ÷ `otlpmetrichttp` uncompressed", "ns/op", "otlpmetrichttp", "ns/op", 0.5)
	ratioTarget("time ÷ snappy floor of our own payload", "ns/op", "snappy_floor", "ns/op", 2.5)
	if a, ok := r.perSeries(benchExport+"prwmetric", "allocs/op"); ok {
		ts = append(ts, target{"allocations per series, steady state", a, 0.01, true})
	}
	ratioTarget("bytes on the wire ÷ Collector path", "wire-B/op", "collector_prw", "wire-B/op", 0.65)
	for _, phase := range []string{"first", "steady"} {
		if g, ok := r.median(benchLarge+phase, "growth/raw"); ok {
			ts = append(ts, target{"1 000 000 series, " + phase + " export: heap growth ÷ raw payload", g, 2, false})
		}
	}
	if len(ts) == 0 {
		return
	}
	fmt.Fprintf(w, "## Targets (issue 7), prwmetric in this run\n\n")
	fmt.Fprintf(w, "| Target | Limit | Measured | Met |\n| --- | ---: | ---: | :---: |\n")
	for _, t := range ts {
		met := "yes"
		cmp := "≤"
		if t.got > t.limit || (!t.inclusive && t.got >= t.limit) {
			met = "**no**"
		}
		if !t.inclusive {
			cmp = "<"
		}
		fmt.Fprintf(w, "| %s | %s %s | %s | %s |\n", t.what, cmp, sig(t.limit, 3), sig(t.got, 3), met)
	}
	fmt.Fprintf(w, "\n")
}

func writeLarge(w io.Writer, r *results) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	header := false
	for _, phase := range []string{"first", "steady"} {
		name := benchLarge + phase
		ns, ok := r.median(name, "ns/op")
		if !ok {
			continue
		}
		if !header {
			series, _ := r.median(name, "series/op")
			p("## Large export: prwmetric alone\n\n")
			p("10 counters and 10 gauges × 50 000 attribute sets: %s series in one export (`-benchtime=1x`). ", thousands(series))
			p("Heap is `/memory/classes/heap/objects:bytes` from `runtime/metrics`, sampled every millisecond during the export; ")
			p("growth is the peak over the heap after a full GC just before the export (which holds the metric data and the exporter's state). ")
			p("\"first\" is a new exporter's first export, \"steady\" a later one.\n\n")
			p("| Export | seconds | requests | raw payload MiB | wire MiB | heap before MiB | peak heap MiB | heap growth MiB | growth ÷ raw | allocs/series | B/series |\n")
			p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
			header = true
		}
		get := func(unit string) string {
			v, ok := r.median(name, unit)
			if !ok {
				return "—"
			}
			return sig(v, 3)
		}
		allocS, _ := r.perSeries(name, "allocs/op")
		bS, _ := r.perSeries(name, "B/op")
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", phase, sig(ns/1e9, 3), get("requests/op"),
			get("raw-payload-MiB/op"), get("wire-MiB/op"), get("base-heap-MiB"), get("peak-heap-MiB"), get("heap-growth-MiB"),
			get("growth/raw"), sig(allocS, 3), sig(bS, 3))
	}
	if header {
		p("\n")
	}
}

func runsText(n int) string {
	if n == 1 {
		return "one run"
	}
	return fmt.Sprintf("medians of %d runs", n)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// ratio formats a/b, or "—" without a b.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "—"
	}
	return sig(a/b, 2) + "×"
}

// sig formats v with n significant digits, without exponent notation for
// the magnitudes of this table.
func sig(v float64, n int) string {
	if v == 0 {
		return "0"
	}
	digits := n - 1 - int(math.Floor(math.Log10(math.Abs(v))))
	if digits < 0 {
		digits = 0
	}
	return thousandsStr(strconv.FormatFloat(v, 'f', digits, 64))
}

// thousands formats v rounded to an integer with thousands separators.
func thousands(v float64) string {
	return thousandsStr(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
}

func thousandsStr(s string) string {
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}
