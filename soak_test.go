package prwmetric

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// The soak: series come and go with every export, as they do in a service
// whose attribute values churn (request paths, pod names, tenants).
const (
	// churnSeries is how many series each export carries.
	churnSeries = 50
	// churnSlide is how many series end, and how many begin, per export.
	churnSlide = 5
	// churnMetric is the gauge whose series churn.
	churnMetric = "soak_churn"
)

var churnStart = time.Unix(1_700_000_000, 0)

// churnData is export i: the gauge soak_churn with series id = 5i … 5i+49,
// each with value i, at second i after churnStart.
func churnData(i int) *metricdata.ResourceMetrics {
	dps := make([]metricdata.DataPoint[float64], churnSeries)
	for j := range dps {
		dps[j] = metricdata.DataPoint[float64]{
			Attributes: attribute.NewSet(attribute.Int("id", i*churnSlide+j), attribute.String("pod", "pod-"+strconv.Itoa((i*churnSlide+j)%7))),
			Time:       churnStart.Add(time.Duration(i) * time.Second),
			Value:      float64(i),
		}
	}
	return &metricdata.ResourceMetrics{
		Resource: resource.NewSchemaless(attribute.String("service.name", "soak"), attribute.String("service.instance.id", "soak-1")),
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope:   instrumentation.Scope{Name: "prwmetric/soak", Version: "1"},
			Metrics: []metricdata.Metrics{{Name: churnMetric, Description: "churning series", Data: metricdata.Gauge[float64]{DataPoints: dps}}},
		}},
	}
}

// churnReceiver decodes every request (snappy block, prompb) and checks
// that it holds export i's series and stale markers for exactly the series
// export i-1 had and i has not; then it forgets the request, so that the
// receiver itself cannot be what grows.
type churnReceiver struct {
	mu       sync.Mutex
	requests int
	problems []string
}

func (c *churnReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err == nil {
		err = c.check(body)
	}
	c.mu.Lock()
	c.requests++
	if err != nil && len(c.problems) < 10 {
		c.problems = append(c.problems, fmt.Sprintf("request %d: %v", c.requests, err))
	}
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (c *churnReceiver) check(body []byte) error {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return fmt.Errorf("snappy: %w", err)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		return fmt.Errorf("prompb: %w", err)
	}
	live, stale := map[int]bool{}, map[int]bool{}
	export := -1
	for _, ts := range wr.Timeseries {
		var name, id string
		for _, l := range ts.Labels {
			switch l.Name {
			case "__name__":
				name = l.Value
			case "id":
				id = l.Value
			}
		}
		if name != churnMetric {
			continue
		}
		n, err := strconv.Atoi(id)
		if err != nil || len(ts.Samples) != 1 {
			return fmt.Errorf("series id=%q with %d samples", id, len(ts.Samples))
		}
		s := ts.Samples[0]
		if math.Float64bits(s.Value) == prwmetrictest.StaleNaN {
			stale[n] = true
			continue
		}
		live[n] = true
		export = int(s.Value)
	}
	if export < 0 {
		return fmt.Errorf("no live %s series", churnMetric)
	}
	first := export * churnSlide
	for j := range churnSeries {
		if !live[first+j] {
			return fmt.Errorf("export %d: series id=%d missing", export, first+j)
		}
	}
	wantStale := 0
	if export > 0 {
		wantStale = churnSlide
		for j := range churnSlide {
			if !stale[first-churnSlide+j] {
				return fmt.Errorf("export %d: no stale marker for id=%d, which ended", export, first-churnSlide+j)
			}
		}
	}
	if len(live) != churnSeries || len(stale) != wantStale {
		return fmt.Errorf("export %d: %d live and %d stale series, want %d and %d", export, len(live), len(stale), churnSeries, wantStale)
	}
	return nil
}

// resources is what the soak watches for growth.
type resources struct {
	heapBytes  uint64
	goroutines int
	fds        int
}

func (r resources) String() string {
	return fmt.Sprintf("live heap %d KiB, %d goroutines, %d open fds", r.heapBytes>>10, r.goroutines, r.fds)
}

func measure(t *testing.T) resources {
	t.Helper()
	// Two collections: the first may leave finalizer-held memory behind.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting open files: %v", err)
	}
	return resources{heapBytes: ms.HeapAlloc, goroutines: runtime.NumGoroutine(), fds: len(fds)}
}

// soakExports and soakWarmup size TestSoak: 2 000 exports in a plain
// go test, and the full 10 000 with -soak, as make test runs it (under
// -race, soak_race_test.go keeps 2 000 either way).
var soakExports, soakWarmup = 2_000, 500

// soakFull asks for the full soak.
// raceEnabled is set under the race detector (soak_race_test.go).
var raceEnabled bool

var soakFull = flag.Bool("soak", false, "run TestSoak's full 10 000 exports")

// TestSoak runs 10 000 exports whose series churn (50 per export, 5 ending
// and 5 beginning each time, staleness markers on, self-observability on)
// against a receiver that checks and discards each request, and checks that
// the live heap, goroutines and open files are no larger at the end than
// after the warm-up.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	exports, warmup := soakExports, soakWarmup
	if *soakFull && !raceEnabled {
		exports, warmup = 10_000, 1_000
	}
	// heapSlack absorbs allocator noise (size-class spans, sync.Pool
	// contents; some 30 KiB here), far below what keeping 100 bytes per
	// export (900 KiB over 9 000 exports) or anything per ended series
	// (45 000 of them) would add.
	const heapSlack = 256 << 10
	recv := &churnReceiver{}
	srv := startServer(t, recv)
	reader := sdkmetric.NewManualReader()
	self := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer self.Shutdown(context.Background())
	logger, logs := newLogCapture()
	exp := newExporter(t, WithEndpoint(srv.URL+"/api/v1/write"), WithoutEnvironment(), WithLogger(logger), WithMeterProvider(self))

	ctx := t.Context()
	var warm resources
	start := time.Now()
	for i := range exports {
		if err := exp.Export(ctx, churnData(i)); err != nil {
			t.Fatalf("export %d: %v", i, err)
		}
		if i+1 == warmup {
			warm = measure(t)
		}
	}
	elapsed := time.Since(start)
	end := measure(t)
	t.Logf("%d exports of %d churning series in %v (%v each)", exports, churnSeries, elapsed.Round(time.Millisecond), (elapsed / time.Duration(exports)).Round(time.Microsecond))
	t.Logf("after %5d exports: %v", warmup, warm)
	t.Logf("after %5d exports: %v", exports, end)

	recv.mu.Lock()
	requests, problems := recv.requests, recv.problems
	recv.mu.Unlock()
	if requests != exports {
		t.Errorf("receiver got %d requests, want %d", requests, exports)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if r := logs.all(); len(r) != 0 {
		t.Errorf("logged %d records, want none: %v", len(r), r[0])
	}

	if end.heapBytes > warm.heapBytes+heapSlack {
		t.Errorf("live heap grew from %d KiB to %d KiB over %d exports", warm.heapBytes>>10, end.heapBytes>>10, exports-warmup)
	}
	if end.goroutines > warm.goroutines {
		t.Errorf("goroutines grew from %d to %d", warm.goroutines, end.goroutines)
	}
	if end.fds > warm.fds {
		t.Errorf("open fds grew from %d to %d", warm.fds, end.fds)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if got := sumOf(t, rm, "prwmetric.exporter.requests"); got != int64(exports) {
		t.Errorf("self-observability counted %d requests, want %d", got, exports)
	}
}

// TestChurnAgainstReceiver sends the soak's traffic to prwmetrictest, the
// strict receiver: every request valid, and every series that ends gets its
// stale marker after its last sample.
func TestChurnAgainstReceiver(t *testing.T) {
	const exports = 100
	const last = exports - 1
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv)
	for i := range exports {
		if err := exp.Export(t.Context(), churnData(i)); err != nil {
			t.Fatalf("export %d: %v", i, err)
		}
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Fatalf("violations: %q", v)
	}
	for _, tt := range []struct {
		id        int
		wantLive  int
		wantStale bool
	}{
		{id: 0, wantLive: 1, wantStale: true},                         // export 0 only
		{id: churnSeries - 1, wantLive: 10, wantStale: true},          // exports 0 … 9
		{id: last * churnSlide, wantLive: 10, wantStale: false},       // exports 90 … 99
		{id: last*churnSlide - 1, wantLive: 10, wantStale: true},      // exports 89 … 98: ended by the last one
		{id: last*churnSlide + churnSeries - 1, wantLive: 1},          // the last export only
		{id: (last - 10) * churnSlide, wantLive: 10, wantStale: true}, // exports 80 … 89
	} {
		t.Run("id="+strconv.Itoa(tt.id), func(t *testing.T) {
			samples, err := srv.Samples(churnMetric, map[string]string{"id": strconv.Itoa(tt.id)})
			if err != nil {
				t.Fatal(err)
			}
			live := 0
			for _, s := range samples {
				if !s.IsStale() {
					live++
				}
			}
			gotStale := len(samples) > 0 && samples[len(samples)-1].IsStale()
			if live != tt.wantLive || gotStale != tt.wantStale || len(samples) != live+boolInt(gotStale) {
				t.Errorf("%d samples, %d live, ends stale %v; want %d live, ends stale %v", len(samples), live, gotStale, tt.wantLive, tt.wantStale)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
