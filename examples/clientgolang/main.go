// Command clientgolang pushes an existing client_golang registry through
// prwmetric instead of having it scraped: the registry's metrics reach the
// OpenTelemetry SDK through go.opentelemetry.io/contrib/bridges/prometheus,
// a producer on the PeriodicReader, and prwmetric sends them with the
// options that keep names and labels as a scrape of the registry shows
// them (pushOptions).
//
// With no flags it pushes to an in-process receiver (package
// prwmetrictest) and prints the series that arrived:
//
//	go run . -duration 5s
//
// Point it at a real backend with -endpoint:
//
//	go run . -endpoint http://localhost:9090/api/v1/write -job shop-api -instance host-1:8080
//
// job and instance are what the scrape job and target were called: they
// become the resource's service.name and service.instance.id, which
// prwmetric turns into the job and instance labels.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/otlptranslator"
	prombridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
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
		fmt.Fprintln(os.Stderr, "clientgolang:", err)
		os.Exit(1)
	}
}

// pushOptions make the pushed series equal to a scrape of the registry:
//   - the Collector profile's label rules keep label names as the
//     registry has them (a leading '_', runs of '_'), which the default
//     rules (those of the Go pull exporter) would change;
//   - no otel_scope_* labels: every bridged metric is in the bridge's
//     scope, which a scrape does not show;
//   - no unit or _total suffixes: the bridge's metrics carry no unit, and
//     a counter registered without _total keeps its name as scraped;
//   - le and quantile values as Prometheus 3 stores scraped ones ("1.0",
//     not "1").
//
// With a resource of service.name and service.instance.id only, there is
// no target_info either.
func pushOptions() []prwmetric.Option {
	return []prwmetric.Option{
		prwmetric.WithCompatibility(prwmetric.CompatibilityCollector),
		prwmetric.WithoutScopeInfo(),
		prwmetric.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithoutSuffixes),
		prwmetric.WithOpenMetricsFloatLabels(),
	}
}

// demo is the application's own client_golang instrumentation.
type demo struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	inFlight prometheus.Gauge
	latency  *prometheus.HistogramVec
	rpc      *prometheus.SummaryVec
}

func newDemo() *demo {
	d := &demo{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "demo_http_requests_total", Help: "HTTP requests served.",
		}, []string{"method", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "demo_http_in_flight_requests", Help: "HTTP requests being served.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "demo_http_request_duration_seconds", Help: "HTTP request latency.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
		rpc: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: "demo_rpc_duration_seconds", Help: "RPC latency.",
			Objectives: map[float64]float64{0.5: 0.05, 0.99: 0.001},
		}, []string{"service"}),
	}
	d.reg.MustRegister(d.requests, d.inFlight, d.latency, d.rpc)
	return d
}

// work simulates one request.
func (d *demo) work(r *rand.Rand) {
	method := []string{"GET", "POST"}[r.IntN(2)]
	code := []string{"200", "200", "200", "500"}[r.IntN(4)]
	d.requests.WithLabelValues(method, code).Inc()
	d.inFlight.Set(float64(r.IntN(10)))
	d.latency.WithLabelValues(method).Observe(r.ExpFloat64() / 10)
	d.rpc.WithLabelValues("billing").Observe(r.ExpFloat64() / 100)
}

type options struct {
	endpoint, job, instance string
	interval, duration      time.Duration
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("clientgolang", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.endpoint, "endpoint", "", "remote-write URL, e.g. http://localhost:9090/api/v1/write (default: an in-process receiver)")
	fs.StringVar(&o.job, "job", "demo", "job label (the resource's service.name)")
	fs.StringVar(&o.instance, "instance", "localhost:8080", "instance label (the resource's service.instance.id)")
	fs.DurationVar(&o.interval, "interval", time.Second, "export interval of the PeriodicReader")
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
	if o.job == "" {
		errs = append(errs, errors.New("-job must not be empty"))
	}
	return o, errors.Join(errs...)
}

// run is the whole program, separate from main so tests can drive it.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	return push(ctx, o, newDemo(), stdout)
}

// push bridges d's registry into a MeterProvider whose PeriodicReader
// exports through prwmetric, simulates work until ctx ends or o.duration
// passes, and shuts down (a final export).
func push(ctx context.Context, o options, d *demo, stdout io.Writer) error {
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	endpoint := o.endpoint
	var recv *prwmetrictest.Server
	if endpoint == "" {
		recv = prwmetrictest.NewServer()
		defer recv.Close()
		endpoint = recv.URL()
	}
	exp, err := prwmetric.New(append([]prwmetric.Option{prwmetric.WithEndpoint(endpoint)}, pushOptions()...)...)
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(resource.NewSchemaless(
			attribute.String("service.name", o.job),
			attribute.String("service.instance.id", o.instance),
		)),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp,
			sdkmetric.WithInterval(o.interval),
			// The bridge gathers the registry at every collection.
			sdkmetric.WithProducer(prombridge.NewMetricProducer(prombridge.WithGatherer(d.reg))),
		)),
	)

	r := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			d.work(r)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := mp.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if recv != nil {
		for _, s := range recv.Series() {
			if n := len(s.Samples); n > 0 && !s.Samples[n-1].IsStale() {
				fmt.Fprintf(stdout, "%s %v\n", s.Labels, s.Samples[n-1].Value)
			} else if n > 1 {
				fmt.Fprintf(stdout, "%s %v\n", s.Labels, s.Samples[n-2].Value)
			}
		}
	}
	return nil
}
