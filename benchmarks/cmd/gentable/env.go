package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

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
