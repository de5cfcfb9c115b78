package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// prometheus3Version is the github.com/prometheus/prometheus module version
// whose cmd/prometheus `make e2e-deps` builds; keep it in sync with the
// Makefile's PROMETHEUS3_VERSION.
const prometheus3Version = "v0.316.0"

// victoriaMetricsNewVersion is the VictoriaMetrics release whose
// app/victoria-metrics `make e2e-deps` builds; keep it in sync with the
// Makefile's VICTORIAMETRICS_NEW_VERSION.
const victoriaMetricsNewVersion = "v1.151.0"

// binary is a backend executable the tests need. Its path comes from the
// environment variable env when set, else from defaultPath.
type binary struct {
	name        string
	env         string
	defaultPath func() string
	install     string
}

var (
	prometheus2Bin = binary{
		name:        "Prometheus 2.42",
		env:         "PRWMETRIC_PROMETHEUS2",
		defaultPath: func() string { return "/usr/bin/prometheus" },
		install:     "run `make e2e-deps` (as root it installs the Debian package prometheus; otherwise `sudo apt-get install prometheus`)",
	}
	victoriaMetricsBin = binary{
		name:        "VictoriaMetrics 1.79",
		env:         "PRWMETRIC_VICTORIAMETRICS",
		defaultPath: func() string { return "/usr/bin/victoria-metrics" },
		install:     "run `make e2e-deps` (as root it installs the Debian package victoria-metrics; otherwise `sudo apt-get install victoria-metrics`)",
	}
	prometheus3Bin = binary{
		name:        "Prometheus 3 (module " + prometheus3Version + ")",
		env:         "PRWMETRIC_PROMETHEUS3",
		defaultPath: defaultPrometheus3Path,
		install:     "run `make e2e-deps` (it runs `go install github.com/prometheus/prometheus/cmd/prometheus@" + prometheus3Version + "` into ~/.cache/prwmetric)",
	}
	victoriaMetricsNewBin = binary{
		name:        "VictoriaMetrics " + victoriaMetricsNewVersion,
		env:         "PRWMETRIC_VICTORIAMETRICS_NEW",
		defaultPath: defaultVictoriaMetricsNewPath,
		install:     "run `make e2e-deps` (it runs `go install github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@" + victoriaMetricsNewVersion + "` into ~/.cache/prwmetric)",
	}
)

// defaultPrometheus3Path is where the Makefile's prometheus3 target puts the
// binary.
func defaultPrometheus3Path() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "prwmetric", "prometheus-"+prometheus3Version, "prometheus")
}

// defaultVictoriaMetricsNewPath is where the Makefile's victoriametrics-new
// target puts the binary.
func defaultVictoriaMetricsNewPath() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "prwmetric", "victoria-metrics-"+victoriaMetricsNewVersion, "victoria-metrics")
}

// path returns the executable's path. When it is missing the test fails in CI
// (CI=true: a backend that silently does not run proves nothing) and skips
// elsewhere, saying how to get it.
func (b binary) path(t *testing.T) string {
	t.Helper()
	p := os.Getenv(b.env)
	if p == "" {
		p = b.defaultPath()
	}
	if p != "" {
		if found, err := exec.LookPath(p); err == nil {
			return found
		}
	}
	msg := fmt.Sprintf("%s not found at %q (override with %s=/path/to/binary); to get it, %s", b.name, p, b.env, b.install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// server that gets it may lose a race with another process; startServer
// retries with a new port when that happens.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for a child process's output and a
// reading test at the same time.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serverSpec says how to start one backend process.
type serverSpec struct {
	name string
	bin  string
	// args builds the command line for the given port.
	args func(port int) []string
	// readyURL is the URL that answers 200 once the server accepts writes.
	readyURL func(port int) string
	// client polls readyURL; nil means a plain HTTP client.
	client *http.Client
}

// process is a running backend.
type process struct {
	port   int
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed when the process has exited
}

const (
	readyTimeout  = 90 * time.Second
	readyInterval = 50 * time.Millisecond
	stopTimeout   = 15 * time.Second
	startAttempts = 3
)

// startServer starts spec's process on a free 127.0.0.1 port, waits until its
// ready URL answers 200, and registers a cleanup that stops it. When the
// process exits before it is ready because its port was taken in the
// meantime, it retries on a new port.
func startServer(t *testing.T, spec serverSpec) *process {
	t.Helper()
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		p, err := tryStart(t, spec)
		if err == nil {
			return p
		}
		lastErr = err
		if !strings.Contains(p.out.String(), "address already in use") {
			break
		}
		t.Logf("%s: port %d was taken, retrying on another port", spec.name, p.port)
	}
	t.Fatalf("start %s: %v", spec.name, lastErr)
	return nil
}

func tryStart(t *testing.T, spec serverSpec) (*process, error) {
	t.Helper()
	port := freePort(t)
	p := &process{port: port, out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(spec.bin, spec.args(port)...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// A process group of its own lets the cleanup stop the server and
	// anything it started without touching other processes.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Bound how long Wait waits for the output copy after the process is
	// gone, in case a grandchild kept the pipe open.
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		return p, fmt.Errorf("run %s: %w", spec.bin, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s (port %d) output:\n%s", spec.name, port, tail(p.out.String(), 16<<10))
		}
	})

	client := spec.client
	if client == nil {
		client = &http.Client{}
	}
	if err := waitReady(client, spec.readyURL(port), p.exited); err != nil {
		p.stop(t)
		return p, fmt.Errorf("%w\ncommand: %s %s\noutput:\n%s", err, spec.bin, strings.Join(spec.args(port), " "), tail(p.out.String(), 8<<10))
	}
	return p, nil
}

// waitReady polls url until it answers 200, the process exits, or
// readyTimeout passes.
func waitReady(client *http.Client, url string, exited <-chan struct{}) error {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyInterval)
	defer tick.Stop()
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		lastErr = probe(ctx, client, url)
		cancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before %s answered 200 (last probe: %v)", url, lastErr)
		case <-deadline.C:
			return fmt.Errorf("%s did not answer 200 within %v (last probe: %v)", url, readyTimeout, lastErr)
		case <-tick.C:
		}
	}
}

func probe(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// stop sends SIGTERM to the process group, then SIGKILL if it has not exited
// within stopTimeout. It is idempotent.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Logf("stop process group %d: %v", pgid, err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		t.Logf("process group %d ignored SIGTERM for %v; killing it", pgid, stopTimeout)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
