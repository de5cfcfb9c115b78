// Command basic demonstrates prwmetric end to end: five kinds of
// OpenTelemetry instruments under a random load, exported through a
// PeriodicReader to a Prometheus Remote-Write endpoint.
//
// With no flags it starts an in-process receiver (package prwmetrictest)
// and prints, after every export, a table of the series that arrived:
//
//	go run ./examples/basic
//	go run ./examples/basic -duration 10s -interval 1s
//
// Point it at a real backend with -endpoint (and -header, -basic-auth,
// -bearer-token, -tls-* as needed):
//
//	go run ./examples/basic -endpoint http://localhost:9090/api/v1/write
//
// The OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_* environment variables apply
// too; flags win over them. It stops after -duration, or on Ctrl-C, makes
// a final export, prints what it recorded in total (to compare with what
// the backend shows) and exits with status 1 if any export failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "basic:", err)
		os.Exit(1)
	}
}

// options are the parsed command-line flags.
type options struct {
	endpoint    string
	headers     headerFlag
	basicAuth   string
	bearerToken string
	tls         prwmetric.TLSConfig
	interval    time.Duration
	duration    time.Duration
}

// headerFlag collects repeated -header K=V flags.
type headerFlag map[string]string

func (h headerFlag) String() string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (h headerFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if k = strings.TrimSpace(k); !ok || k == "" {
		return fmt.Errorf("want K=V, e.g. X-Scope-OrgID=tenant1")
	}
	h[k] = strings.TrimSpace(v)
	return nil
}

func parseFlags(args []string, out io.Writer) (options, error) {
	o := options{headers: headerFlag{}}
	fs := flag.NewFlagSet("basic", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.endpoint, "endpoint", "", "remote-write URL of a real backend, e.g. http://localhost:9090/api/v1/write (default: an in-process receiver)")
	fs.Var(o.headers, "header", "extra request header K=V, e.g. X-Scope-OrgID=demo (repeatable)")
	fs.StringVar(&o.basicAuth, "basic-auth", "", "basic auth credentials user:password")
	fs.StringVar(&o.bearerToken, "bearer-token", "", "bearer token for the Authorization header")
	fs.StringVar(&o.tls.CAFile, "tls-ca", "", "PEM file of the CA that signed the backend's certificate")
	fs.StringVar(&o.tls.CertFile, "tls-cert", "", "PEM client certificate for mutual TLS (with -tls-key)")
	fs.StringVar(&o.tls.KeyFile, "tls-key", "", "PEM key of the client certificate (with -tls-cert)")
	fs.BoolVar(&o.tls.InsecureSkipVerify, "insecure-skip-verify", false, "do not verify the backend's certificate (tests only)")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "export interval of the PeriodicReader")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (default: run until Ctrl-C)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q; every setting is a flag", fs.Args()))
	}
	if o.interval <= 0 {
		errs = append(errs, fmt.Errorf("-interval must be positive, got %v", o.interval))
	}
	if o.duration < 0 {
		errs = append(errs, fmt.Errorf("-duration must not be negative, got %v", o.duration))
	}
	if o.basicAuth != "" && !strings.Contains(o.basicAuth, ":") {
		errs = append(errs, errors.New("-basic-auth wants user:password"))
	}
	if o.endpoint == "" && o.tls != (prwmetric.TLSConfig{}) {
		errs = append(errs, errors.New("-tls-* and -insecure-skip-verify need -endpoint with an https URL"))
	}
	return o, errors.Join(errs...)
}

// run is the whole program, separate from main so tests can drive it.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	out := &syncWriter{w: stdout}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}

	var srv *prwmetrictest.Server
	endpoint := o.endpoint
	if endpoint == "" {
		srv = prwmetrictest.NewServer()
		defer srv.Close()
		endpoint = srv.URL()
		fmt.Fprintf(out, "Sending to the in-process receiver at %s every %v. Use -endpoint to send to your backend.\n", endpoint, o.interval)
	} else {
		fmt.Fprintf(out, "Sending to %s every %v.\n", endpoint, o.interval)
	}

	opts := []prwmetric.Option{
		prwmetric.WithEndpoint(endpoint),
		prwmetric.WithLogger(slog.New(slog.NewTextHandler(out, nil))),
	}
	if len(o.headers) > 0 {
		opts = append(opts, prwmetric.WithHeaders(o.headers))
	}
	if user, pass, ok := strings.Cut(o.basicAuth, ":"); ok {
		opts = append(opts, prwmetric.WithBasicAuth(user, pass))
	}
	if o.bearerToken != "" {
		opts = append(opts, prwmetric.WithBearerToken(o.bearerToken))
	}
	if o.tls != (prwmetric.TLSConfig{}) {
		opts = append(opts, prwmetric.WithTLS(o.tls))
	}
	exp, err := prwmetric.New(opts...)
	if err != nil {
		return err
	}
	results := make(chan exportResult, 16)
	tally := &exportTally{}
	reader := sdkmetric.NewPeriodicReader(reportingExporter{Exporter: exp, results: results, tally: tally}, sdkmetric.WithInterval(o.interval))
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "prwmetric-demo"),
			attribute.String("service.instance.id", hostname()),
		)),
		// The payload histogram is exponential: it arrives as a Prometheus
		// native histogram; the duration histogram stays classic.
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "demo.payload.size"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}},
		)),
	)

	load, err := newLoad(provider.Meter("github.com/prwmetric/prwmetric/examples/basic"))
	if err != nil {
		return errors.Join(err, provider.Shutdown(context.Background()))
	}
	var wg sync.WaitGroup
	loadCtx, stopLoad := context.WithCancel(ctx)
	wg.Go(func() { load.generate(loadCtx) })

	exports, flagged := 0, 0
	shuttingDown := false
	report := func(r exportResult) {
		exports++
		if shuttingDown && errors.Is(r.err, context.Canceled) {
			// Shutdown cancels a periodic export still in flight and then
			// makes the final one, which carries the same cumulative data.
			fmt.Fprintf(out, "export %d at %s: interrupted by shutdown; the final export resends its data\n", exports, r.at.Format(time.TimeOnly))
			return
		}
		if srv != nil {
			flagged = printTable(out, exports, r, srv, flagged)
		} else {
			printResult(out, exports, r)
		}
	}
loop:
	for {
		select {
		case r := <-results:
			report(r)
		case <-ctx.Done():
			break loop
		}
	}
	stopLoad()
	wg.Wait()

	// Shutdown makes the last export, so what was recorded since the last
	// interval still arrives.
	shuttingDown = true
	tally.shuttingDown.Store(true)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = provider.Shutdown(shutdownCtx)
	for len(results) > 0 {
		report(<-results)
	}
	fmt.Fprintf(out, "Stopped after %d exports.\n", exports)
	load.total.print(out)
	if err != nil {
		return fmt.Errorf("final export: %w", err)
	}
	if n := tally.failed.Load(); n > 0 {
		return fmt.Errorf("%d of %d exports failed; see the warnings above", n, tally.exports.Load())
	}
	return nil
}

// exportTally counts exports for the exit status; the printed reports may
// skip some.
type exportTally struct {
	exports, failed atomic.Int64
	// shuttingDown is set before Shutdown, which cancels a periodic export
	// in flight: that one has not failed, the final export resends its data.
	shuttingDown atomic.Bool
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}

// exportResult is what one Export call did.
type exportResult struct {
	at     time.Time
	points int
	err    error
}

// reportingExporter passes every export on to prwmetric and tells the main
// loop about it, so the table is printed right after data arrived.
type reportingExporter struct {
	sdkmetric.Exporter
	results chan<- exportResult
	tally   *exportTally
}

func (e reportingExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	err := e.Exporter.Export(ctx, rm)
	e.tally.exports.Add(1)
	if err != nil && !(e.tally.shuttingDown.Load() && errors.Is(err, context.Canceled)) {
		e.tally.failed.Add(1)
	}
	select {
	case e.results <- exportResult{at: time.Now(), points: countPoints(rm), err: err}:
	default: // the printer is behind; skip a report rather than block the SDK
	}
	return err
}

func countPoints(rm *metricdata.ResourceMetrics) int {
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				n += len(d.DataPoints)
			case metricdata.Sum[float64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[int64]:
				n += len(d.DataPoints)
			case metricdata.Gauge[float64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[int64]:
				n += len(d.DataPoints)
			case metricdata.Histogram[float64]:
				n += len(d.DataPoints)
			case metricdata.ExponentialHistogram[int64]:
				n += len(d.DataPoints)
			case metricdata.ExponentialHistogram[float64]:
				n += len(d.DataPoints)
			}
		}
	}
	return n
}

// printResult reports an export to a real backend, which we cannot read
// back.
func printResult(w io.Writer, n int, r exportResult) {
	if r.err != nil {
		fmt.Fprintf(w, "export %d at %s: %d data points, FAILED: %v\n", n, r.at.Format(time.TimeOnly), r.points, r.err)
		return
	}
	fmt.Fprintf(w, "export %d at %s: %d data points sent\n", n, r.at.Format(time.TimeOnly), r.points)
}

// hiddenLabels are on every series; the table leaves them out to stay
// narrow.
var hiddenLabels = map[string]bool{
	"__name__": true, "job": true, "instance": true,
	"otel_scope_name": true, "otel_scope_version": true, "otel_scope_schema_url": true,
}

// maxFlaggedShown bounds the receiver's complaints printed per table.
const maxFlaggedShown = 5

// printTable prints what the in-process receiver holds: one row per
// series, classic histograms folded into one row, latest values; then the
// rule violations the receiver flagged since the last table (the first
// seen of them). It returns how many violations have been reported.
func printTable(w io.Writer, n int, r exportResult, srv *prwmetrictest.Server, seen int) int {
	series := srv.Series()
	status := "ok"
	if r.err != nil {
		status = "FAILED: " + r.err.Error()
	}
	fmt.Fprintf(w, "\n── export %d at %s: %d data points, %s; receiver holds %d series ──\n",
		n, r.at.Format(time.TimeOnly), r.points, status, len(series))

	classic := map[string]bool{} // base names of classic histograms
	for _, s := range series {
		if base, ok := strings.CutSuffix(s.Name(), "_bucket"); ok && s.Labels["le"] != "" {
			classic[base] = true
		}
	}
	// Values of _sum series, to fold them into their histogram's row.
	sums := map[string]float64{}
	for _, s := range series {
		if base, ok := strings.CutSuffix(s.Name(), "_sum"); ok && classic[base] {
			sums[base+shortLabels(s.Labels)], _ = latest(s.Samples)
		}
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIES\tKIND\tLATEST")
	for _, s := range series {
		name, labels := s.Name(), shortLabels(s.Labels)
		switch {
		case strings.HasSuffix(name, "_bucket") && classic[strings.TrimSuffix(name, "_bucket")],
			strings.HasSuffix(name, "_sum") && classic[strings.TrimSuffix(name, "_sum")]:
			continue // shown on the _count row
		case strings.HasSuffix(name, "_count") && classic[strings.TrimSuffix(name, "_count")]:
			base := strings.TrimSuffix(name, "_count")
			count, stale := latest(s.Samples)
			fmt.Fprintf(tw, "%s%s\thistogram\tcount=%s sum=%s%s\n", base, labels, num(count), num(sums[base+labels]), staleNote(stale))
		case len(s.Histograms) > 0:
			fmt.Fprintf(tw, "%s%s\tnative histogram\t%s\n", name, labels, latestNative(s.Histograms))
		default:
			v, stale := latest(s.Samples)
			fmt.Fprintf(tw, "%s%s\t%s\t%s%s\n", name, labels, kindOf(name), num(v), staleNote(stale))
		}
	}
	_ = tw.Flush()
	violations := srv.Violations()
	for i, v := range violations[seen:] {
		if i == maxFlaggedShown {
			fmt.Fprintf(w, "receiver flagged %d more violations\n", len(violations)-seen-i)
			break
		}
		fmt.Fprintln(w, "receiver flagged:", v)
	}
	return len(violations)
}

func kindOf(name string) string {
	switch {
	case strings.HasSuffix(name, "_total"):
		return "counter"
	case name == "target_info":
		return "info"
	default:
		return "gauge"
	}
}

// latest returns the newest real value of a series and whether a stale
// marker followed it: at Shutdown the exporter marks every series stale,
// and the table then shows the last real value.
func latest(samples []prwmetrictest.Sample) (float64, bool) {
	for i := len(samples) - 1; i >= 0; i-- {
		if !samples[i].IsStale() {
			return samples[i].Value, i < len(samples)-1
		}
	}
	return math.NaN(), len(samples) > 0
}

func latestNative(hs []prwmetrictest.NativeHistogram) string {
	for i := len(hs) - 1; i >= 0; i-- {
		if h := hs[i]; !h.IsStale() {
			return fmt.Sprintf("count=%s sum=%s schema=%d%s", num(h.Histogram.Count), num(h.Histogram.Sum), h.Histogram.Schema, staleNote(i < len(hs)-1))
		}
	}
	return "stale"
}

func staleNote(stale bool) string {
	if stale {
		return " (then marked stale)"
	}
	return ""
}

func num(v float64) string {
	return fmt.Sprintf("%.6g", v)
}

// shortLabels prints the labels that tell the series of one metric apart.
func shortLabels(l prwmetrictest.Labels) string {
	var names []string
	for k := range l {
		if !hiddenLabels[k] && k != "le" {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%q", k, l[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// load is the demo's instrumentation: one instrument of each kind.
type load struct {
	requests metric.Int64Counter       // counter → demo_requests_total
	queue    metric.Int64UpDownCounter // up-down counter → gauge demo_queue_length
	cpu      metric.Float64Gauge       // gauge, unit 1 → demo_cpu_utilization_ratio
	duration metric.Float64Histogram   // classic histogram → demo_request_duration_seconds_*
	payload  metric.Int64Histogram     // exponential histogram → native demo_payload_size_bytes
	total    totals                    // what generate recorded; read it after generate returned
}

// totals is what the load recorded over the whole run, summed over
// attributes: the last export carries it, so the backend must show the same.
type totals struct {
	requests     int64   // demo_requests_total, all series
	queue        int64   // demo_queue_length at the end
	cpu          float64 // demo_cpu_utilization_ratio, last value
	durations    int64   // demo_request_duration_seconds_count, all series
	durationSum  float64 // demo_request_duration_seconds_sum, all series
	payloads     int64   // demo_payload_size_bytes count
	payloadBytes int64   // demo_payload_size_bytes sum
}

// print writes the totals in a fixed format with exact values (shortest
// representation that parses back to the same float64), one line.
func (t totals) print(w io.Writer) {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	fmt.Fprintf(w, "Recorded: requests=%d queue=%d cpu=%s durations=%d duration_sum=%s payloads=%d payload_bytes=%d\n",
		t.requests, t.queue, f(t.cpu), t.durations, f(t.durationSum), t.payloads, t.payloadBytes)
}

func newLoad(m metric.Meter) (*load, error) {
	var l load
	var errs [5]error
	l.requests, errs[0] = m.Int64Counter("demo.requests",
		metric.WithDescription("Requests handled."), metric.WithUnit("{request}"))
	l.queue, errs[1] = m.Int64UpDownCounter("demo.queue.length",
		metric.WithDescription("Jobs waiting in the queue."), metric.WithUnit("{job}"))
	l.cpu, errs[2] = m.Float64Gauge("demo.cpu.utilization",
		metric.WithDescription("CPU busy fraction."), metric.WithUnit("1"))
	l.duration, errs[3] = m.Float64Histogram("demo.request.duration",
		metric.WithDescription("Time to handle a request."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	l.payload, errs[4] = m.Int64Histogram("demo.payload.size",
		metric.WithDescription("Size of request payloads."), metric.WithUnit("By"))
	return &l, errors.Join(errs[:]...)
}

var (
	methods  = []string{"GET", "GET", "GET", "POST", "DELETE"}
	statuses = []string{"200", "200", "200", "200", "404", "500"}
)

// generate records random traffic until ctx is done.
func (l *load) generate(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	queue := int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		method := methods[rand.IntN(len(methods))]
		attrs := metric.WithAttributes(
			attribute.String("method", method),
			attribute.String("status", statuses[rand.IntN(len(statuses))]),
		)
		l.requests.Add(ctx, 1, attrs)
		d := math.Exp(rand.NormFloat64() - 3.5)
		l.duration.Record(ctx, d, metric.WithAttributes(attribute.String("method", method)))
		size := int64(rand.ExpFloat64() * 4096)
		l.payload.Record(ctx, size)

		delta := int64(rand.IntN(3)) - 1 // random walk, never below zero
		if queue+delta >= 0 {
			queue += delta
			l.queue.Add(ctx, delta, metric.WithAttributes(attribute.String("queue", "jobs")))
		}
		cpu := 0.3 + 0.4*rand.Float64()
		l.cpu.Record(ctx, cpu, metric.WithAttributes(attribute.String("cpu", "0")))

		l.total.requests++
		l.total.durations++
		l.total.durationSum += d
		l.total.payloads++
		l.total.payloadBytes += size
		l.total.queue = queue
		l.total.cpu = cpu
	}
}

// syncWriter serialises writes from the logger and the table printer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
