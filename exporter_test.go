package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prwmetric/prwmetric/prwmetrictest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// TestConversionPanicDropsTheExport checks that a panic in conversion (here
// in the user's WithResourceAsLabels filter) becomes an error for that
// export, which sends nothing, and that the next export converts anew.
func TestConversionPanicDropsTheExport(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithResourceAsLabels(func(kv attribute.KeyValue) bool {
		if kv.Key == "boom" {
			panic("filter exploded")
		}
		return true
	}))
	at := time.UnixMilli(1_700_000_000_000)
	ctx := context.Background()
	if err := exp.Export(ctx, manyGauges(3, at)); err != nil {
		t.Fatal(err)
	}
	bad := manyGauges(3, at.Add(time.Minute))
	bad.Resource = resource.NewSchemaless(attribute.String("boom", "1"))
	if err := exp.Export(ctx, bad); err == nil || !strings.Contains(err.Error(), "conversion failed") || !strings.Contains(err.Error(), "filter exploded") {
		t.Errorf("Export = %v, want a conversion error naming the panic", err)
	}
	if n := srv.RequestCount(); n != 1 {
		t.Errorf("%d requests, want 1: the failed conversion sends nothing", n)
	}
	if err := exp.Export(ctx, manyGauges(3, at.Add(2*time.Minute))); err != nil {
		t.Fatalf("export after the panic: %v", err)
	}
	samples, err := srv.Samples("load", map[string]string{"i": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || samples[1].Timestamp != at.Add(2*time.Minute).UnixMilli() {
		t.Errorf("samples = %+v, want the first and the third export's", samples)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// TestFailedExportsCatchUp is the README's illustration: a counter at 1..5,
// exports SUCCESS FAIL FAIL SUCCESS SUCCESS, and the receiver sees 1 4 5.
func TestFailedExportsCatchUp(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	exp := newTestExporter(t, srv, WithoutStaleMarkers())

	start := time.UnixMilli(1_700_000_000_000)
	outcome := []int{0, 503, 503, 0, 0}
	for i, status := range outcome {
		srv.RespondWith(1, prwmetrictest.Response{Status: status})
		rm := &metricdata.ResourceMetrics{
			Resource: resource.Empty(),
			ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{{
				Name: "requests",
				Data: metricdata.Sum[int64]{
					Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
					DataPoints: []metricdata.DataPoint[int64]{{StartTime: start, Time: start.Add(time.Duration(i+1) * 15 * time.Second), Value: int64(i + 1)}},
				},
			}}}},
		}
		err := exp.Export(context.Background(), rm)
		if (err != nil) != (status != 0) {
			t.Fatalf("export %d: err = %v, want failure %v", i+1, err, status != 0)
		}
	}
	samples, err := srv.Samples("requests_total", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range samples {
		got = append(got, fmt.Sprintf("%v@%d", s.Value, s.Timestamp))
	}
	want := []string{"1@1700000015000", "4@1700000060000", "5@1700000075000"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("receiver saw %v, want %v", got, want)
	}
	if n := srv.RequestCount(); n != 5 {
		t.Errorf("%d requests, want 5: one per export, no retries", n)
	}
}

func TestExportSendsExactSeries(t *testing.T) {
	rm := &metricdata.ResourceMetrics{
		Resource: testResource(),
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope: instrumentation.Scope{Name: "prwmetric/test"},
			Metrics: []metricdata.Metrics{
				{
					Name: "requests",
					Data: metricdata.Sum[int64]{
						Temporality: metricdata.CumulativeTemporality,
						IsMonotonic: true,
						DataPoints: []metricdata.DataPoint[int64]{
							{Attributes: attribute.NewSet(attribute.String("method", "GET")), StartTime: testStart, Time: testTime, Value: 42},
							{Attributes: attribute.NewSet(attribute.String("method", "POST"), attribute.Int("code", 500)), StartTime: testStart, Time: testTime, Value: 7},
						},
					},
				},
				{
					Name: "queue_length",
					Data: metricdata.Sum[int64]{
						Temporality: metricdata.CumulativeTemporality,
						IsMonotonic: false,
						DataPoints: []metricdata.DataPoint[int64]{
							{StartTime: testStart, Time: testTime, Value: -3},
						},
					},
				},
				{
					Name: "temperature",
					Data: metricdata.Gauge[float64]{
						DataPoints: []metricdata.DataPoint[float64]{
							{Attributes: attribute.NewSet(attribute.String("room", "lab")), Time: testTime, Value: 21.5},
						},
					},
				},
			},
		}},
	}
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, pinned(WithEndpoint(endpoint))...)

	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}

	got := rec.only(t)
	if got.Method != http.MethodPost || got.Path != "/api/v1/write" {
		t.Errorf("request = %s %s, want POST /api/v1/write", got.Method, got.Path)
	}
	want := []series{
		{Labels: []string{"__name__=queue_length", "instance=pod-1", "job=checkout"}, Samples: []sample{{-3, testMillis}}},
		{Labels: []string{"__name__=requests_total", "code=500", "instance=pod-1", "job=checkout", "method=POST"}, Samples: []sample{{7, testMillis}}},
		{Labels: []string{"__name__=requests_total", "instance=pod-1", "job=checkout", "method=GET"}, Samples: []sample{{42, testMillis}}},
		{Labels: []string{"__name__=temperature", "instance=pod-1", "job=checkout", "room=lab"}, Samples: []sample{{21.5, testMillis}}},
	}
	// With scope info, target_info and metadata pinned off, these are the
	// whole request.
	if diff := cmp.Diff(want, named(got.Series, "queue_length", "requests_total", "temperature")); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	if len(got.Series) != len(want) {
		t.Errorf("request holds %d series, want %d: %v", len(got.Series), len(want), got.Series)
	}
}

func TestExportSendsRequiredHeaders(t *testing.T) {
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, pinned(WithEndpoint(endpoint))...)
	if err := exp.Export(context.Background(), counterData(1)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	got := rec.only(t)
	for _, tt := range []struct {
		name string
		want string
	}{
		{name: "Content-Encoding", want: "snappy"},
		{name: "Content-Type", want: "application/x-protobuf"},
		{name: "X-Prometheus-Remote-Write-Version", want: "0.1.0"},
		{name: "User-Agent", want: "prwmetric/" + Version},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if v := got.Header.Values(tt.name); len(v) != 1 || v[0] != tt.want {
				t.Errorf("%s = %q, want exactly [%q]", tt.name, v, tt.want)
			}
		})
	}
	if v := got.Header.Get("Authorization"); v != "" {
		t.Errorf("Authorization = %q without any auth option, want none", v)
	}
}

// TestExportThroughMeterProvider wires the exporter the way users do and
// checks that what an instrument recorded arrives.
func TestExportThroughMeterProvider(t *testing.T) {
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	exp, err := New(pinned(WithEndpoint(endpoint))...)
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(testResource()),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
	)
	ctx := context.Background()
	counter, err := mp.Meter("prwmetric/test").Int64Counter("requests")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixMilli()
	counter.Add(ctx, 5)
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("ForceFlush: %v", err)
	}
	after := time.Now().UnixMilli()
	counter.Add(ctx, 2)
	// Shutdown collects once more, then shuts the exporter down.
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	reqs := rec.all()
	if len(reqs) != 2 {
		t.Fatalf("server received %d requests, want 2 (ForceFlush, Shutdown)", len(reqs))
	}
	wantLabels := []string{"__name__=requests_total", "instance=pod-1", "job=checkout"}
	for i, wantValue := range []float64{5, 7} { // cumulative
		got := named(reqs[i].Series, "requests_total")
		if len(got) != 1 {
			t.Fatalf("request %d: requests_total series = %v, want one", i, got)
		}
		if diff := cmp.Diff(wantLabels, got[0].Labels); diff != "" {
			t.Errorf("request %d labels (-want +got):\n%s", i, diff)
		}
		if len(got[0].Samples) != 1 || got[0].Samples[0].Value != wantValue {
			t.Errorf("request %d samples = %v, want one with value %v", i, got[0].Samples, wantValue)
			continue
		}
		if i == 0 {
			if ts := got[0].Samples[0].Millis; ts < before || ts > after {
				t.Errorf("timestamp %d ms not within the flush [%d, %d]", ts, before, after)
			}
		}
	}
	if err := exp.Export(ctx, counterData(1)); !errors.Is(err, sdkmetric.ErrExporterShutdown) {
		t.Errorf("Export after the provider's Shutdown = %v, want ErrExporterShutdown", err)
	}
}

func TestExportNothingToSend(t *testing.T) {
	for _, tt := range []struct {
		name string
		give *metricdata.ResourceMetrics
	}{
		{name: "nil", give: nil},
		{name: "no scopes", give: &metricdata.ResourceMetrics{Resource: testResource()}},
		{name: "no metrics", give: &metricdata.ResourceMetrics{Resource: testResource(), ScopeMetrics: []metricdata.ScopeMetrics{{Scope: instrumentation.Scope{Name: "s"}}}}},
		{name: "no data points", give: &metricdata.ResourceMetrics{Resource: testResource(), ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope: instrumentation.Scope{Name: "s"},
			Metrics: []metricdata.Metrics{{
				Name: "requests",
				Data: metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true},
			}},
		}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			endpoint, rec := newReceiver(t, http.StatusNoContent, "")
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger))...)
			if err := exp.Export(context.Background(), tt.give); err != nil {
				t.Errorf("Export = %v, want nil", err)
			}
			if n := rec.count(); n != 0 {
				t.Errorf("server received %d requests, want none", n)
			}
			if r := logs.all(); len(r) != 0 {
				t.Errorf("logged %v, want nothing", r)
			}
		})
	}
}

func TestForceFlushReturnsContextError(t *testing.T) {
	exp := newExporter(t, WithEndpoint("http://127.0.0.1:9/api/v1/write"))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	for _, tt := range []struct {
		name string
		give context.Context
		want error
	}{
		{name: "live", give: context.Background(), want: nil},
		{name: "canceled", give: canceled, want: context.Canceled},
		{name: "deadline exceeded", give: expired, want: context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := exp.ForceFlush(tt.give); !errors.Is(err, tt.want) {
				t.Errorf("ForceFlush = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestShutdownIsIdempotent(t *testing.T) {
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, pinned(WithEndpoint(endpoint))...)
	ctx := context.Background()
	for i := range 3 {
		if err := exp.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown #%d = %v, want nil", i+1, err)
		}
	}
	err := exp.Export(ctx, counterData(1))
	if !errors.Is(err, sdkmetric.ErrExporterShutdown) {
		t.Errorf("Export after Shutdown = %v, want an error wrapping sdkmetric.ErrExporterShutdown", err)
	}
	if n := rec.count(); n != 0 {
		t.Errorf("server received %d requests after Shutdown, want none", n)
	}
	if err := exp.ForceFlush(ctx); err != nil {
		t.Errorf("ForceFlush after Shutdown = %v, want nil", err)
	}
}

// connWatcher reports when a test server's connections close.
type connWatcher struct {
	mu     sync.Mutex
	open   map[net.Conn]bool
	closed chan struct{} // receives once per closed connection
}

func watchConns(srv *httptest.Server) *connWatcher {
	w := &connWatcher{open: map[net.Conn]bool{}, closed: make(chan struct{}, 64)}
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch s {
		case http.StateNew:
			w.open[c] = true
		case http.StateClosed, http.StateHijacked:
			if w.open[c] {
				delete(w.open, c)
				w.closed <- struct{}{}
			}
		}
	}
	return w
}

// awaitClosed waits for one connection to close. The bound only turns a
// missing close into a failure instead of a hang.
func (w *connWatcher) awaitClosed(t *testing.T, why string) {
	t.Helper()
	select {
	case <-w.closed:
	case <-time.After(5 * time.Second):
		w.mu.Lock()
		n := len(w.open)
		w.mu.Unlock()
		t.Errorf("%s: the client's connection was not closed (%d open)", why, n)
	}
}

func TestShutdownClosesIdleConnections(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		w.WriteHeader(http.StatusNoContent)
	}))
	conns := watchConns(srv)
	srv.Start()
	defer srv.Close()

	exp, err := New(pinned(WithEndpoint(srv.URL))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(context.Background(), counterData(1)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	conns.awaitClosed(t, "after Export then Shutdown")
}

// TestShutdownDuringExportClosesItsConnection shuts down while an export is
// between its shutdown check and taking a connection (held there by the
// proxy function, which the transport calls just before it). The export
// finishes, but the connection it opened must not stay open once Shutdown
// has returned: Shutdown promises idle connections are closed.
func TestShutdownDuringExportClosesItsConnection(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		w.WriteHeader(http.StatusNoContent)
	}))
	conns := watchConns(srv)
	srv.Start()
	defer srv.Close()

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	exp, err := New(pinned(WithEndpoint(srv.URL), WithProxy(func(*http.Request) (*url.URL, error) {
		once.Do(func() { close(entered); <-release })
		return nil, nil
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- exp.Export(context.Background(), counterData(1)) }()
	<-entered
	// Shutdown waits for the export it interrupts (its samples go before
	// any marker), then closes the connection that export used.
	shut := make(chan error, 1)
	go func() { shut <- exp.Shutdown(context.Background()) }()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Export in flight during Shutdown = %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	conns.awaitClosed(t, "export in flight during Shutdown")
}

// TestExportShutdownConcurrentSafe races Export, ForceFlush, Temporality,
// Aggregation and Shutdown from many goroutines (run it with -race). Stale
// markers stay on: Shutdown then sends, which is where a race would be.
func TestExportShutdownConcurrentSafe(t *testing.T) {
	endpoint, rec := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, WithEndpoint(endpoint), WithLogger(discardLogger()))
	ctx := context.Background()

	const goroutines, exportsEach = 16, 10
	var (
		wg        sync.WaitGroup
		start     = make(chan struct{})
		succeeded atomic.Int64
		errs      = make(chan error, goroutines*(exportsEach+1))
	)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range exportsEach {
				err := exp.Export(ctx, counterData(int64(g*exportsEach+i)))
				switch {
				case err == nil:
					succeeded.Add(1)
				case !errors.Is(err, sdkmetric.ErrExporterShutdown):
					errs <- err
				}
				if err := exp.ForceFlush(ctx); err != nil {
					errs <- fmt.Errorf("ForceFlush: %w", err)
				}
				if got := exp.Temporality(sdkmetric.InstrumentKindCounter); got != metricdata.CumulativeTemporality {
					errs <- fmt.Errorf("Temporality = %v", got)
				}
				_ = exp.Aggregation(sdkmetric.InstrumentKindHistogram)
				if g%4 == 0 && i == exportsEach/2 {
					if err := exp.Shutdown(ctx); err != nil {
						errs <- fmt.Errorf("Shutdown: %w", err)
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}

	// Every export that succeeded made exactly one request; the first
	// Shutdown made at most one more, of staleness markers only.
	var exports, markers int64
	for _, r := range rec.all() {
		if r.DecodeErr != nil {
			t.Fatalf("request does not decode: %v", r.DecodeErr)
		}
		if allStale(r.Body) {
			markers++
		} else {
			exports++
		}
	}
	if want := succeeded.Load(); exports != want {
		t.Errorf("server received %d export requests, want %d (one per successful export)", exports, want)
	}
	if markers > 1 {
		t.Errorf("server received %d requests of staleness markers, want at most 1 (from the first Shutdown)", markers)
	}
	before := rec.count()
	if err := exp.Export(ctx, counterData(1)); !errors.Is(err, sdkmetric.ErrExporterShutdown) {
		t.Errorf("Export after Shutdown = %v, want ErrExporterShutdown", err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown again = %v, want nil", err)
	}
	if rec.count() != before {
		t.Error("Export or Shutdown after Shutdown sent a request")
	}
}

// allStale reports whether every sample in wr is a staleness marker.
func allStale(wr *prompb.WriteRequest) bool {
	for _, ts := range wr.Timeseries {
		for _, s := range ts.Samples {
			if math.Float64bits(s.Value) != 0x7ff0000000000002 {
				return false
			}
		}
	}
	return len(wr.Timeseries) > 0
}

func TestTemporalityIsCumulative(t *testing.T) {
	exp := newExporter(t, WithEndpoint("http://127.0.0.1:9/api/v1/write"))
	for _, kind := range []sdkmetric.InstrumentKind{
		sdkmetric.InstrumentKindCounter,
		sdkmetric.InstrumentKindUpDownCounter,
		sdkmetric.InstrumentKindHistogram,
		sdkmetric.InstrumentKindObservableCounter,
		sdkmetric.InstrumentKindObservableUpDownCounter,
		sdkmetric.InstrumentKindObservableGauge,
		sdkmetric.InstrumentKindGauge,
	} {
		t.Run(kind.String(), func(t *testing.T) {
			if got := exp.Temporality(kind); got != metricdata.CumulativeTemporality {
				t.Errorf("Temporality(%v) = %v, want cumulative", kind, got)
			}
		})
	}
}

func TestAggregationFollowsSelector(t *testing.T) {
	expo := sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}
	custom := func(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
		switch k {
		case sdkmetric.InstrumentKindHistogram:
			return expo
		case sdkmetric.InstrumentKindGauge:
			return sdkmetric.AggregationDrop{}
		}
		return sdkmetric.DefaultAggregationSelector(k)
	}
	for _, tt := range []struct {
		name string
		opts []Option
		want sdkmetric.AggregationSelector
	}{
		{name: "default", want: sdkmetric.DefaultAggregationSelector},
		{name: "WithAggregationSelector", opts: []Option{WithAggregationSelector(custom)}, want: custom},
	} {
		t.Run(tt.name, func(t *testing.T) {
			exp := newExporter(t, append([]Option{WithEndpoint("http://127.0.0.1:9/api/v1/write")}, tt.opts...)...)
			for _, kind := range []sdkmetric.InstrumentKind{
				sdkmetric.InstrumentKindCounter,
				sdkmetric.InstrumentKindUpDownCounter,
				sdkmetric.InstrumentKindHistogram,
				sdkmetric.InstrumentKindObservableCounter,
				sdkmetric.InstrumentKindObservableUpDownCounter,
				sdkmetric.InstrumentKindObservableGauge,
				sdkmetric.InstrumentKindGauge,
			} {
				if diff := cmp.Diff(tt.want(kind), exp.Aggregation(kind)); diff != "" {
					t.Errorf("Aggregation(%v) (-want +got):\n%s", kind, diff)
				}
			}
		})
	}
	// The custom selector really differs from the default, or the case
	// above could not fail.
	if cmp.Equal(custom(sdkmetric.InstrumentKindHistogram), sdkmetric.DefaultAggregationSelector(sdkmetric.InstrumentKindHistogram)) {
		t.Fatal("test selector equals the default")
	}
}

// TestSecretsNeverLeak runs failures of every kind with every way of
// passing a credential and searches each error and log record for it.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		password    = "pw-S3CRET-basic"
		token       = "tok-S3CRET-bearer"
		headerToken = "hdr-S3CRET-custom"
		proxyPass   = "px-S3CRET-proxy"
	)
	secrets := []string{password, token, headerToken, proxyPass}
	dir := t.TempDir()
	passwordFile := writeFile(t, dir, "password", password+"\n")
	tokenFile := writeFile(t, dir, "token", token+"\n")

	auths := []struct {
		name string
		opts []Option
	}{
		{name: "basic", opts: []Option{WithBasicAuth("alice", password)}},
		{name: "basic file", opts: []Option{WithBasicAuthPasswordFile("alice", passwordFile)}},
		{name: "bearer", opts: []Option{WithBearerToken(token)}},
		{name: "bearer file", opts: []Option{WithBearerTokenFile(tokenFile)}},
		{name: "Authorization header", opts: []Option{WithHeaders(map[string]string{"Authorization": "Custom " + headerToken, "X-Scope-OrgID": headerToken})}},
	}

	other := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "who are you?")
	}))
	failures := []struct {
		name    string
		handler http.HandlerFunc // nil: nothing listens
		opts    []Option
	}{
		{name: "401", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "bad credentials")
		}},
		{name: "500", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "internal error")
		}},
		{name: "redirect to another host that refuses", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/api/v1/write", http.StatusTemporaryRedirect)
		}},
		{name: "timeout", handler: func(w http.ResponseWriter, r *http.Request) {
			// The server notices the client hang up only once the body
			// is read.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}, opts: []Option{WithTimeout(100 * time.Millisecond)}},
		{name: "connection refused"},
		{name: "proxy refused", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}, opts: []Option{WithProxyURL("http://proxyuser:" + proxyPass + "@" + strings.TrimPrefix(closedEndpoint(t), "http://"))}},
	}
	for _, auth := range auths {
		for _, f := range failures {
			t.Run(auth.name+"/"+f.name, func(t *testing.T) {
				endpoint := closedEndpoint(t)
				if f.handler != nil {
					endpoint = startServer(t, f.handler).URL + "/api/v1/write"
				}
				logger, logs := newLogCapture()
				opts := append(pinned(WithEndpoint(endpoint), WithLogger(logger)), auth.opts...)
				exp := newExporter(t, append(opts, f.opts...)...)
				err := exp.Export(context.Background(), counterData(1))
				if err == nil {
					t.Fatal("Export succeeded, want a failure")
				}
				texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
				var we *WriteError
				if errors.As(err, &we) {
					texts = append(texts, fmt.Sprintf("%+v", *we))
				}
				for _, r := range logs.all() {
					texts = append(texts, r.String())
				}
				if len(logs.all()) == 0 {
					t.Error("no warning logged")
				}
				for _, text := range texts {
					for _, s := range secrets {
						if strings.Contains(text, s) {
							t.Errorf("secret %q leaked into %q", s, text)
						}
					}
				}
			})
		}
	}
}

// TestUnknownOutcomeCountsAsMaybeStored: a request that gets no answer may
// have been stored all the same (the receiver wrote it, then the client
// gave up), so the next sample of its series must be strictly later, or
// the receiver rejects it as a duplicate sample for the timestamp. A
// refusal (a 500) stored nothing and changes nothing.
func TestUnknownOutcomeCountsAsMaybeStored(t *testing.T) {
	for _, tt := range []struct {
		name string
		// first answers the first request.
		first    func(w http.ResponseWriter, r *http.Request)
		wantNext int64
	}{
		{
			name: "stored, then no answer before the timeout",
			// Holds the answer until the client gives up: the handler
			// has already recorded (stored) the request.
			first:    func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			wantNext: testMillis + 1,
		},
		{
			name:     "refused with 500",
			first:    func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
			wantNext: testMillis,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			var n atomic.Int32
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec.record(r)
				if n.Add(1) == 1 {
					tt.first(w, r)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			exp := newExporter(t, pinned(WithEndpoint(srv.URL+"/api/v1/write"), WithTimeout(300*time.Millisecond), WithLogger(discardLogger()))...)
			if err := exp.Export(t.Context(), counterData(1)); err == nil {
				t.Fatal("first Export succeeded, want a failure")
			}
			// The same collection time again, as when Shutdown's final
			// export follows a cancelled one within a millisecond.
			if err := exp.Export(t.Context(), counterData(2)); err != nil {
				t.Fatalf("second Export: %v", err)
			}
			all := rec.all()
			if len(all) != 2 {
				t.Fatalf("receiver got %d requests, want 2", len(all))
			}
			want := []series{{Labels: counterSeries(2).Labels, Samples: []sample{{Value: 2, Millis: tt.wantNext}}}}
			if diff := cmp.Diff(want, all[1].Series); diff != "" {
				t.Errorf("second request (-want +got):\n%s", diff)
			}
		})
	}
}

// holdingReceiver answers its first request only once release is closed,
// and logs when each request starts and ends.
func holdingReceiver(t *testing.T) (endpoint string, rec *recorder, entered, release chan struct{}, events func() []string) {
	t.Helper()
	rec = &recorder{}
	entered, release = make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var log []string
	var n atomic.Int32
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := n.Add(1)
		add := func(what string) {
			mu.Lock()
			log = append(log, fmt.Sprintf("%s %d", what, k))
			mu.Unlock()
		}
		add("start")
		rec.record(r)
		if k == 1 {
			close(entered)
			<-release
		}
		add("end")
		w.WriteHeader(http.StatusNoContent)
	}))
	events = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(log)
	}
	return srv.URL + "/api/v1/write", rec, entered, release, events
}

// TestShutdownNeverOvertakesARunningExport: while an export's request is
// held, a Shutdown whose context ends first sends nothing (its markers
// would overtake the samples), and says why.
func TestShutdownNeverOvertakesARunningExport(t *testing.T) {
	endpoint, rec, entered, release, _ := holdingReceiver(t)
	exp := newExporter(t, WithEndpoint(endpoint), WithoutMetadata(), WithoutTargetInfo(), WithoutScopeInfo(), WithLogger(discardLogger()))
	done := make(chan error, 1)
	go func() { done <- exp.Export(context.Background(), counterData(1)) }()
	<-entered
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := exp.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("Shutdown = %v, want an error saying an export is still running", err)
	}
	if n := rec.count(); n != 1 {
		t.Errorf("receiver got %d requests while the export was held, want only the export's", n)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Export: %v", err)
	}
}

// TestShutdownMarkersFollowTheRunningExport: Shutdown waits for the export
// it interrupts; its markers end the series that export delivered, after
// its samples, in time and in arrival.
func TestShutdownMarkersFollowTheRunningExport(t *testing.T) {
	endpoint, rec, entered, release, events := holdingReceiver(t)
	exp := newExporter(t, WithEndpoint(endpoint), WithoutMetadata(), WithoutTargetInfo(), WithoutScopeInfo(), WithLogger(discardLogger()))
	done := make(chan error, 1)
	go func() { done <- exp.Export(context.Background(), counterData(1)) }()
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- exp.Shutdown(context.Background()) }()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Export: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if diff := cmp.Diff([]string{"start 1", "end 1", "start 2", "end 2"}, events()); diff != "" {
		t.Errorf("request order (-want +got):\n%s", diff)
	}
	all := rec.all()
	if len(all) != 2 || !allStale(all[1].Body) {
		t.Fatalf("got %d requests, want the export's and then one of staleness markers", len(all))
	}
	if got := all[1].Body.Timeseries[0].Samples[0].Timestamp; got <= testMillis {
		t.Errorf("marker at %d, want after the sample at %d", got, testMillis)
	}
}

// TestTimeoutNotBlamedOnAnotherExport: with no other export running, an
// export whose deadline has passed fails for that reason, never for
// "waiting for the previous export".
func TestTimeoutNotBlamedOnAnotherExport(t *testing.T) {
	endpoint, _ := newReceiver(t, http.StatusNoContent, "")
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithTimeout(time.Nanosecond), WithLogger(discardLogger()))...)
	for range 20 {
		err := exp.Export(t.Context(), counterData(1))
		if err == nil || strings.Contains(err.Error(), "previous export") || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Export = %v, want a deadline error not blaming another export", err)
		}
	}
}

// TestStalledSuccessBodyDoesNotHoldTheExport: a 2xx is a success as soon as
// its headers arrive; a body that stalls after them costs the connection,
// not the export's whole timeout.
func TestStalledSuccessBodyDoesNotHoldTheExport(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "0123456789")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	exp := newExporter(t, pinned(WithEndpoint(srv.URL+"/api/v1/write"), WithTimeout(20*time.Second))...)
	start := time.Now()
	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Export took %v with a stalled success body, want about %v", elapsed, bodyReadTimeout)
	}
}

// TestDefaultReportsEachFailureOnce: without WithLogger, a failed export is
// reported once, by the OpenTelemetry error handler the PeriodicReader hands
// Export's error to, not a second time by the exporter's own warning.
func TestDefaultReportsEachFailureOnce(t *testing.T) {
	endpoint, _ := newReceiver(t, http.StatusInternalServerError, "storage full")
	logger, logs := newLogCapture()
	prevLogger := slog.Default()
	slog.SetDefault(logger)
	handled := make(chan error, 16)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		select {
		case handled <- err:
		default:
		}
	}))
	t.Cleanup(func() {
		slog.SetDefault(prevLogger)
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Print(err) }))
	})

	exp, err := New(pinned(WithEndpoint(endpoint))...)
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(10*time.Millisecond))))
	counter, _ := mp.Meter("test").Int64Counter("orders")
	counter.Add(t.Context(), 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case err := <-handled:
		var we *WriteError
		if !errors.As(err, &we) || we.StatusCode != http.StatusInternalServerError {
			t.Errorf("error handler got %v, want the *WriteError of the 500", err)
		}
	case <-ctx.Done():
		t.Fatal("the error handler never got the failure")
	}
	_ = mp.Shutdown(context.Background())
	for _, r := range logs.all() {
		if strings.Contains(r.Message, "failed") || strings.Contains(r.Message, "dropped") {
			t.Errorf("the exporter also logged the failure: %s", r)
		}
	}
}
