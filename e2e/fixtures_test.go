package e2e

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric"
)

// The resource and scope every hand-built export carries, and the labels
// they become (SPEC §3: job = service.namespace/service.name, instance =
// service.instance.id, the other resource attributes on target_info only).
var (
	testResource = resource.NewSchemaless(
		attribute.String("service.namespace", "shop"),
		attribute.String("service.name", "checkout"),
		attribute.String("service.instance.id", "checkout-1"),
		attribute.String("host.name", "e2e-host"),
		attribute.String("cloud.region", "eu-west-1"),
	)
	testScope = instrumentation.Scope{Name: "github.com/prwmetric/prwmetric/e2e", Version: "v1.2.3"}
)

const (
	wantJob      = "shop/checkout"
	wantInstance = "checkout-1"
)

// seriesLabels returns the full label set of a series of testScope in
// testResource: name, job, instance, scope labels, then the given
// name/value pairs.
func seriesLabels(name string, kv ...string) map[string]string {
	ls := map[string]string{
		"__name__":           name,
		"job":                wantJob,
		"instance":           wantInstance,
		"otel_scope_name":    testScope.Name,
		"otel_scope_version": testScope.Version,
	}
	if len(kv)%2 != 0 {
		panic("seriesLabels: odd number of name/value strings")
	}
	for i := 0; i < len(kv); i += 2 {
		ls[kv[i]] = kv[i+1]
	}
	return ls
}

// targetInfoLabels is the label set of testResource's target_info series.
func targetInfoLabels() map[string]string {
	return map[string]string{
		"__name__":     "target_info",
		"job":          wantJob,
		"instance":     wantInstance,
		"host_name":    "e2e-host",
		"cloud_region": "eu-west-1",
	}
}

// resourceMetrics wraps metrics into one export of testScope in testResource.
func resourceMetrics(ms ...metricdata.Metrics) *metricdata.ResourceMetrics {
	return &metricdata.ResourceMetrics{
		Resource:     testResource,
		ScopeMetrics: []metricdata.ScopeMetrics{{Scope: testScope, Metrics: ms}},
	}
}

// clock hands out strictly increasing export times, whole milliseconds
// (never whole seconds, so a seconds/milliseconds mix-up shows), starting
// 30 minutes in the past: well inside Prometheus' head block, and in order
// across every export to one server, so target_info never goes out of order.
type clock struct {
	mu   sync.Mutex
	last time.Time
}

func newClock() *clock {
	return &clock{last: time.Now().Add(-30 * time.Minute).Truncate(time.Second).Add(123 * time.Millisecond)}
}

// next returns a time one second and one millisecond after the previous one.
func (c *clock) next() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = c.last.Add(time.Second + time.Millisecond)
	return c.last
}

// now returns the latest time handed out.
func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// logRecorder collects what the exporter logs, one text line per record.
type logRecorder struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the logged records whose level is level.
func (l *logRecorder) lines(level slog.Level) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "level="+level.String()+" ") {
			out = append(out, sc.Text())
		}
	}
	return out
}

// newExporter builds an exporter for endpoint that logs into the returned
// recorder, ignores the environment and is shut down with the test.
func newExporter(t *testing.T, endpoint string, opts ...prwmetric.Option) (*prwmetric.Exporter, *logRecorder) {
	t.Helper()
	logs := &logRecorder{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	all := append([]prwmetric.Option{
		prwmetric.WithoutEnvironment(),
		prwmetric.WithEndpoint(endpoint),
		prwmetric.WithLogger(logger),
		prwmetric.WithTimeout(30 * time.Second),
	}, opts...)
	exp, err := prwmetric.New(all...)
	if err != nil {
		t.Fatalf("prwmetric.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := exp.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return exp, logs
}

// export sends rm and fails the test when the exporter reports an error.
func export(t *testing.T, exp *prwmetric.Exporter, rm *metricdata.ResourceMetrics) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := exp.Export(ctx, rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
}

// countingProxy is a reverse proxy on 127.0.0.1 in front of a backend that
// counts the requests it forwards, for scenarios that must see exactly one.
type countingProxy struct {
	URL      string
	requests atomic.Int64
}

// newCountingProxy starts a plain-HTTP counting proxy to target.
func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// compareFloats reports every difference between what a backend stored and
// what the test sent, at most maxDiffs lines so that a 10 000-series
// mismatch stays readable.
func compareFloats(t *testing.T, backend string, got, want map[string][]sample) {
	t.Helper()
	const maxDiffs = 20
	var diffs []string
	keys := make([]string, 0, len(want)+len(got))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, inWant := want[k]
		g, inGot := got[k]
		switch {
		case !inGot:
			diffs = append(diffs, fmt.Sprintf("missing series %s (want samples %v)", k, w))
		case !inWant:
			diffs = append(diffs, fmt.Sprintf("unexpected series %s (samples %v)", k, g))
		case !samplesEqual(g, w):
			diffs = append(diffs, fmt.Sprintf("series %s:\n\tgot  %v\n\twant %v", k, g, w))
		}
	}
	if len(diffs) == 0 {
		return
	}
	more := ""
	if len(diffs) > maxDiffs {
		more = fmt.Sprintf("\n… and %d more", len(diffs)-maxDiffs)
		diffs = diffs[:maxDiffs]
	}
	t.Errorf("%s stored something else than was sent (%d series stored, %d sent):\n%s%s",
		backend, len(got), len(want), strings.Join(diffs, "\n"), more)
}

func samplesEqual(a, b []sample) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].T != b[i].T {
			return false
		}
		if a[i].V != b[i].V && !(math.IsNaN(a[i].V) && math.IsNaN(b[i].V)) {
			return false
		}
	}
	return true
}
