package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The demo's series (examples/basic) and what it labels them with.
const (
	demoJob       = "prwmetric-demo"
	demoScope     = "github.com/prwmetric/prwmetric/examples/basic"
	demoRequests  = "demo_requests_total"
	demoQueue     = "demo_queue_length"
	demoCPU       = "demo_cpu_utilization_ratio"
	demoDuration  = "demo_request_duration_seconds"
	demoPayload   = "demo_payload_size_bytes"
	demoRunFor    = "1300ms" // not a multiple of the interval: the final export
	demoInterval  = "300ms"  // never meets a periodic one in the same millisecond
	demoBuildTime = 5 * time.Minute
	demoRunTime   = time.Minute
)

// demoDurationBounds are the explicit bucket bounds of demo.request.duration.
var demoDurationBounds = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf"}

// TestDemo builds the demo command (examples/basic) once and runs the real
// binary against Prometheus servers started with the Remote Write receiver
// and no feature flag: 2.42, which refuses native histograms, so the demo's
// exponential histogram must arrive as a classic one after one warning; and
// 3, which stores native histograms without a flag. The demo must exit 0,
// and every series it records must read back with the totals it prints.
func TestDemo(t *testing.T) {
	demo := sync.OnceValues(func() (string, error) { return buildDemo(t.TempDir()) })
	backends := []struct {
		name   string
		start  func(*testing.T) *promServer
		native bool // the payload histogram arrives as a native histogram
	}{
		{name: "Prometheus 2.42 without native histograms", start: startPrometheus2WithoutNativeHistograms},
		{name: "Prometheus 3 stock", start: startPrometheus3Stock, native: true},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.start(t)
			bin, err := demo()
			if err != nil {
				t.Fatal(err)
			}
			out := runDemo(t, bin, s.writeURL())
			checkDemoLog(t, out, !b.native)
			rec := parseDemoTotals(t, out)
			if rec["requests"] == 0 {
				t.Fatalf("the demo recorded nothing:\n%s", out)
			}
			host, err := os.Hostname()
			if err != nil {
				t.Fatal(err)
			}
			c := demoChecker{t: t, s: s, at: time.Now(), host: host}

			// Counter and gauges: the last real sample of each series (Shutdown
			// marked them stale afterwards) is what the demo recorded last.
			if got := c.lastSum(demoRequests, func(ls map[string]string) error {
				return expectLabels(ls, "method", "status")
			}); got != rec["requests"] {
				t.Errorf("%s: last values add up to %v, the demo recorded %v requests", demoRequests, got, rec["requests"])
			}
			if got := c.lastSum(demoQueue, func(ls map[string]string) error {
				return expectLabels(ls, "queue")
			}); got != rec["queue"] {
				t.Errorf("%s = %v, the demo's queue ended at %v", demoQueue, got, rec["queue"])
			}
			if got := c.lastSum(demoCPU, func(ls map[string]string) error {
				return expectLabels(ls, "cpu")
			}); got != rec["cpu"] {
				t.Errorf("%s = %v, the demo recorded %v last", demoCPU, got, rec["cpu"])
			}

			// The explicit-bucket histogram: per method, every export's
			// buckets at the declared bounds, cumulative, +Inf = _count.
			if got := c.lastSum(demoDuration+"_count", func(ls map[string]string) error {
				return expectLabels(ls, "method")
			}); got != rec["durations"] {
				t.Errorf("%s_count adds up to %v, the demo recorded %v durations", demoDuration, got, rec["durations"])
			}
			// The SDK adds each method's durations apart; only the order of
			// the float additions differs.
			if got, want := c.lastSum(demoDuration+"_sum", nil), rec["duration_sum"]; math.Abs(got-want) > 1e-9*want {
				t.Errorf("%s_sum adds up to %v, the demo recorded %v", demoDuration, got, want)
			}
			c.classicBuckets(demoDuration, func(ls []string) error {
				if !slices.Equal(ls, demoDurationBounds) {
					return fmt.Errorf("le values %q, want %q", ls, demoDurationBounds)
				}
				return nil
			})

			// The exponential histogram.
			payload := s.readRange(t, demoPayload, c.at, time.Hour)
			classic := s.readRange(t, `{__name__=~"`+demoPayload+`_(bucket|sum|count)"}`, c.at, time.Hour)
			if b.native {
				if len(classic.Floats) != 0 {
					t.Errorf("%s: classic series stored beside the native histogram: %v", demoPayload, keysOf(classic.Floats))
				}
				c.nativeTotals(payload, rec["payloads"], rec["payload_bytes"])
				return
			}
			if len(payload.Histograms) != 0 {
				t.Errorf("%s: %s stored native histograms it refuses: %v", demoPayload, s.name, keysOf(payload.Histograms))
			}
			if got := c.lastSum(demoPayload+"_count", nil); got != rec["payloads"] {
				t.Errorf("%s_count = %v, the demo recorded %v payloads", demoPayload, got, rec["payloads"])
			}
			if got := c.lastSum(demoPayload+"_sum", nil); got != rec["payload_bytes"] {
				t.Errorf("%s_sum = %v, the demo recorded %v bytes", demoPayload, got, rec["payload_bytes"])
			}
			c.classicBuckets(demoPayload, exponentialBounds)
		})
	}
}

// buildDemo builds examples/basic of the root module into dir.
func buildDemo(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build the demo: no go command in PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), demoBuildTime)
	defer cancel()
	bin := filepath.Join(dir, "basic")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./examples/basic")
	cmd.Dir = ".." // the root module, which the demo belongs to
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./examples/basic: %v\n%s", err, out)
	}
	return bin, nil
}

// runDemo runs the demo binary against endpoint and returns its output. It
// fails the test unless the demo exits 0.
func runDemo(t *testing.T, bin, endpoint string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), demoRunTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-endpoint", endpoint, "-duration", demoRunFor, "-interval", demoInterval)
	// The environment must not point the demo elsewhere.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the demo did not exit 0: %v\n%s", err, out)
	}
	return string(out)
}

// checkDemoLog accepts warnings only for the refusal of native histograms
// (exactly one when refused is set) and for a periodic export that Shutdown
// interrupted, which the demo announces.
func checkDemoLog(t *testing.T, out string, refused bool) {
	t.Helper()
	interrupted := strings.Contains(out, "interrupted by shutdown")
	refusals := 0
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, "FAILED"), strings.Contains(line, "level=ERROR"):
			t.Errorf("the demo reported a failure: %s", line)
		case strings.Contains(line, "level=WARN") && strings.Contains(line, "refuses native histograms"):
			refusals++
		case strings.Contains(line, "level=WARN") && !(interrupted && strings.Contains(line, "context canceled")):
			t.Errorf("unexpected warning: %s", line)
		}
	}
	want := 0
	if refused {
		want = 1
	}
	if refusals != want {
		t.Errorf("%d warnings about refused native histograms, want %d:\n%s", refusals, want, out)
	}
}

// parseDemoTotals reads the demo's "Recorded: k=v …" line.
func parseDemoTotals(t *testing.T, out string) map[string]float64 {
	t.Helper()
	_, line, ok := strings.Cut(out, "\nRecorded: ")
	if !ok {
		t.Fatalf("the demo printed no Recorded: line:\n%s", out)
	}
	line, _, _ = strings.Cut(line, "\n")
	rec := map[string]float64{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("Recorded: line %q: %s: %v", line, f, err)
		}
		rec[k] = x
	}
	for _, k := range []string{"requests", "queue", "cpu", "durations", "duration_sum", "payloads", "payload_bytes"} {
		if _, ok := rec[k]; !ok {
			t.Fatalf("Recorded: line %q lacks %s", line, k)
		}
	}
	return rec
}

// expectLabels checks that a demo series carries exactly the demo's
// job/instance/scope labels and the given attribute labels.
func expectLabels(ls map[string]string, attrs ...string) error {
	want := append([]string{"__name__", "instance", "job", "otel_scope_name"}, attrs...)
	var got []string
	for k := range ls {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("label names %q, want %q", got, want)
	}
	if ls["job"] != demoJob || ls["otel_scope_name"] != demoScope {
		return fmt.Errorf("job %q scope %q, want %q and %q", ls["job"], ls["otel_scope_name"], demoJob, demoScope)
	}
	return nil
}

// demoChecker reads back what the demo sent to one server.
type demoChecker struct {
	t    *testing.T
	s    *promServer
	at   time.Time // after the demo exited
	host string    // the demo's instance label
}

// lastSum adds up the last sample of every series named name, checking
// each series' labels with check (nil: only the common ones) and that its
// values never decrease when it is cumulative.
func (c demoChecker) lastSum(name string, check func(map[string]string) error) float64 {
	c.t.Helper()
	data := c.s.get(c.t, "/api/v1/series", url.Values{"match[]": {name}})
	var series []map[string]string
	if err := json.Unmarshal(data, &series); err != nil {
		c.t.Fatalf("%s: decode series: %v\n%s", c.s.name, err, data)
	}
	got := c.s.readRange(c.t, name, c.at, time.Hour)
	if len(series) == 0 || len(got.Floats) != len(series) {
		c.t.Errorf("%s: %d series with samples of %d known", name, len(got.Floats), len(series))
		return math.NaN()
	}
	if check == nil {
		check = func(ls map[string]string) error { return expectLabels(ls, labelsExcept(ls)...) }
	}
	for _, ls := range series {
		if ls["instance"] != c.host {
			c.t.Errorf("%s: instance %q, want the host name %q", labelKey(ls), ls["instance"], c.host)
		}
		if err := check(ls); err != nil {
			c.t.Errorf("%s: %v", labelKey(ls), err)
		}
	}
	cumulative := !strings.HasSuffix(name, "_ratio") && !strings.HasSuffix(name, "_length")
	sum := 0.0
	for k, ss := range got.Floats {
		for i := 1; cumulative && i < len(ss); i++ {
			if ss[i].V < ss[i-1].V {
				c.t.Errorf("%s decreases: %v", k, ss)
				break
			}
		}
		sum += ss[len(ss)-1].V
	}
	return sum
}

// labelsExcept returns ls' attribute labels: the names other than the ones
// every demo series has.
func labelsExcept(ls map[string]string) []string {
	var out []string
	for k := range ls {
		switch k {
		case "__name__", "instance", "job", "otel_scope_name":
		default:
			out = append(out, k)
		}
	}
	return out
}

// classicBuckets checks a classic histogram export by export: at every
// timestamp of a _count sample, the _bucket samples of the same labels
// have le values that bounds accepts, counts that never decrease with le,
// and +Inf equal to _count.
func (c demoChecker) classicBuckets(name string, bounds func(les []string) error) {
	c.t.Helper()
	counts := c.s.readRange(c.t, name+"_count", c.at, time.Hour)
	buckets := c.s.readRange(c.t, name+"_bucket", c.at, time.Hour)
	// By the labels without le, then timestamp, then le.
	byExport := map[string]map[int64]map[string]float64{}
	for k, ss := range buckets.Floats {
		le, base := splitLe(c.t, k)
		for _, smp := range ss {
			if byExport[base] == nil {
				byExport[base] = map[int64]map[string]float64{}
			}
			if byExport[base][smp.T] == nil {
				byExport[base][smp.T] = map[string]float64{}
			}
			byExport[base][smp.T][le] = smp.V
		}
	}
	if len(counts.Floats) == 0 {
		c.t.Errorf("%s_count: no series", name)
	}
	checked := 0
	for k, ss := range counts.Floats {
		base := strings.Replace(k, name+"_count{", name+"_bucket{", 1)
		for _, smp := range ss {
			got := byExport[base][smp.T]
			les := make([]string, 0, len(got))
			for le := range got {
				les = append(les, le)
			}
			sort.Slice(les, func(i, j int) bool { return parseLe(c.t, les[i]) < parseLe(c.t, les[j]) })
			if err := bounds(les); err != nil {
				c.t.Errorf("%s at %d: %v", base, smp.T, err)
				continue
			}
			for i := 1; i < len(les); i++ {
				if got[les[i]] < got[les[i-1]] {
					c.t.Errorf("%s at %d: bucket le=%s holds %v, less than le=%s's %v", base, smp.T, les[i], got[les[i]], les[i-1], got[les[i-1]])
				}
			}
			if inf, ok := got["+Inf"]; !ok || inf != smp.V {
				c.t.Errorf("%s at %d: le=\"+Inf\" bucket %v (present: %v), _count %v", base, smp.T, inf, ok, smp.V)
			}
			checked++
		}
	}
	c.t.Logf("%s: %d exports of %d classic histograms checked", name, checked, len(counts.Floats))
}

// exponentialBounds accepts the le values of an exponential histogram sent
// as a classic one: the zero bucket's threshold 0, then consecutive bucket
// boundaries 2^(k·2^-scale) of one scale, then +Inf.
func exponentialBounds(les []string) error {
	if len(les) < 3 || les[0] != "0" || les[len(les)-1] != "+Inf" {
		return fmt.Errorf("le values %q: want 0, the bucket boundaries, +Inf", les)
	}
	var vs []float64
	for _, le := range les[1 : len(les)-1] {
		v, err := strconv.ParseFloat(le, 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("le %q is no positive bound", le)
		}
		vs = append(vs, v)
	}
	for scale := 0; scale <= 20; scale++ {
		step := math.Exp2(-float64(scale))
		k0 := math.Round(math.Log2(vs[0]) / step)
		ok := true
		for i, v := range vs {
			if !nearlyEqual(v, math.Exp2((k0+float64(i))*step)) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("le values %q are not consecutive boundaries 2^(k·2^-scale) of one scale 0…20", les)
}

// nativeTotals checks the demo's native histogram: one series, its last
// sample holding what the demo recorded, bucket counts adding up to it.
func (c demoChecker) nativeTotals(got stored, count, sum float64) {
	c.t.Helper()
	if len(got.Floats) != 0 || len(got.Histograms) != 1 {
		c.t.Fatalf("%s: %d float and %d histogram series, want one native histogram", demoPayload, len(got.Floats), len(got.Histograms))
	}
	for k, hs := range got.Histograms {
		for _, h := range hs {
			n := 0.0
			for _, b := range h.Buckets {
				n += b.Count
			}
			if n != h.Count {
				c.t.Errorf("%s at %d: buckets hold %v observations, count %v", k, h.T, n, h.Count)
			}
		}
		last := hs[len(hs)-1]
		if last.Count != count || last.Sum != sum {
			c.t.Errorf("%s ends with count %v sum %v, the demo recorded %v payloads of %v bytes", k, last.Count, last.Sum, count, sum)
		}
	}
}

// splitLe returns a bucket series key's le value and the key without it.
func splitLe(t *testing.T, key string) (string, string) {
	t.Helper()
	i := strings.Index(key, `le="`)
	if i < 0 {
		t.Fatalf("bucket series %s has no le label", key)
	}
	j := strings.Index(key[i+4:], `"`)
	le := key[i+4 : i+4+j]
	rest := key[:i] + key[i+4+j+1:]
	rest = strings.Replace(rest, "{,", "{", 1)
	rest = strings.Replace(rest, ",,", ",", 1)
	rest = strings.Replace(rest, ",}", "}", 1)
	return le, rest
}

func parseLe(t *testing.T, le string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(le, 64)
	if err != nil {
		t.Fatalf("le %q: %v", le, err)
	}
	return v
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestExponentialBounds makes sure the bounds check of TestDemo can fail.
func TestExponentialBounds(t *testing.T) {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	tests := []struct {
		name string
		les  []string
		ok   bool
	}{
		{name: "scale 0", les: []string{"0", "1", "2", "4", "8", "+Inf"}, ok: true},
		{name: "scale 3", les: []string{"0", f(math.Exp2(5.0 / 8)), f(math.Exp2(6.0 / 8)), f(math.Exp2(7.0 / 8)), "2", "+Inf"}, ok: true},
		{name: "gap", les: []string{"0", "1", "4", "8", "+Inf"}},
		{name: "mixed scales", les: []string{"0", "1", f(math.Sqrt2), "4", "+Inf"}},
		{name: "not a boundary", les: []string{"0", "1", "3", "+Inf"}},
		{name: "no zero bucket", les: []string{"1", "2", "+Inf"}},
		{name: "no +Inf", les: []string{"0", "1", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := exponentialBounds(tt.les); (err == nil) != tt.ok {
				t.Errorf("exponentialBounds(%q) = %v, want ok=%v", tt.les, err, tt.ok)
			}
		})
	}
}
