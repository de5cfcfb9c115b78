package prwmetric_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// Build the exporter, hand it to a PeriodicReader and install the
// MeterProvider; every interval, what the instruments recorded is pushed
// to the Remote-Write endpoint.
func Example() {
	// The resource names the target: service.name becomes the job label,
	// service.instance.id the instance. resource.New also reads
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
	res, err := resource.New(context.Background(),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(semconv.ServiceName("checkout"), semconv.ServiceInstanceID("pod-7")),
	)
	if err != nil {
		log.Fatal(err)
	}
	exp, err := prwmetric.New(
		prwmetric.WithEndpoint("http://localhost:9090/api/v1/write"),
		prwmetric.WithHeaders(map[string]string{"X-Scope-OrgID": "team-a"}),
	)
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(15*time.Second))),
		sdkmetric.WithResource(res),
	)
	// Shutdown makes a last export, so nothing recorded is lost on exit.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := provider.Shutdown(ctx); err != nil {
			log.Print(err)
		}
	}()

	requests, err := provider.Meter("example/checkout").Int64Counter("http.server.requests",
		metric.WithDescription("Requests served."), metric.WithUnit("{request}"))
	if err != nil {
		log.Fatal(err)
	}
	requests.Add(context.Background(), 1, metric.WithAttributes(attribute.String("path", "/cart")))
}

// Test your own instrumentation against the in-process receiver of package
// prwmetrictest: export synchronously with ForceFlush, then look at what
// arrived, as a Prometheus backend would store it.
func Example_prwmetrictest() {
	srv := prwmetrictest.NewServer()
	defer srv.Close()

	exp, err := prwmetric.New(prwmetric.WithEndpoint(srv.URL()), prwmetric.WithoutEnvironment())
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))),
	)
	ctx := context.Background()
	defer provider.Shutdown(ctx)

	requests, err := provider.Meter("example/checkout").Int64Counter("http.server.requests",
		metric.WithUnit("{request}"))
	if err != nil {
		log.Fatal(err)
	}
	requests.Add(ctx, 2, metric.WithAttributes(attribute.String("path", "/cart")))
	requests.Add(ctx, 1, metric.WithAttributes(attribute.String("path", "/cart")))

	// ForceFlush exports synchronously: when it returns, the receiver has
	// the data.
	if err := provider.ForceFlush(ctx); err != nil {
		log.Fatal(err)
	}
	got, err := srv.Latest("http_server_requests_total", map[string]string{"path": "/cart"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("value:", got.Value)
	for _, s := range srv.Series() {
		fmt.Println(s.Labels)
	}
	fmt.Println("rule violations:", len(srv.Violations()))
	// Output:
	// value: 3
	// http_server_requests_total{job="checkout", otel_scope_name="example/checkout", path="/cart"}
	// rule violations: 0
}

// Remote Write 2.0: the receiver here speaks only 1.0, so the first export
// is sent again as 1.0 (with one warning, silenced here) and nothing is
// lost.
func ExampleWithProtocol() {
	srv := prwmetrictest.NewServer(prwmetrictest.WithRemoteWrite1Only())
	defer srv.Close()

	exp, err := prwmetric.New(
		prwmetric.WithEndpoint(srv.URL()),
		prwmetric.WithProtocol(prwmetric.ProtocolV2),
		prwmetric.WithLogger(slog.New(slog.DiscardHandler)),
		prwmetric.WithoutEnvironment(),
	)
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	ctx := context.Background()
	defer provider.Shutdown(ctx)

	jobs, err := provider.Meter("example/worker").Int64Counter("jobs")
	if err != nil {
		log.Fatal(err)
	}
	jobs.Add(ctx, 7)
	if err := provider.ForceFlush(ctx); err != nil {
		log.Fatal(err)
	}
	for _, r := range srv.Requests() {
		fmt.Println(r.Protocol, r.Status)
	}
	got, err := srv.Latest("jobs_total", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("jobs_total:", got.Value)
	// Output:
	// 2.0 415
	// 1.0 204
	// jobs_total: 7
}

// Authenticate with access tokens from an OAuth2 token endpoint (the client
// credentials grant). A stand-in token endpoint runs here; in production
// TokenURL is your identity provider's or gateway's, and ClientSecretFile
// names the secret your secret store mounts.
func ExampleWithOAuth2() {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		if id != "exporter" || secret != "s3cret" || r.FormValue("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"token-from-idp","token_type":"Bearer","expires_in":3600}`)
	}))
	defer idp.Close()
	srv := prwmetrictest.NewServer()
	defer srv.Close()

	exp, err := prwmetric.New(
		prwmetric.WithEndpoint(srv.URL()),
		prwmetric.WithOAuth2(prwmetric.OAuth2Config{
			ClientID:     "exporter",
			ClientSecret: "s3cret", // or ClientSecretFile: "/var/run/secrets/prw/client-secret"
			TokenURL:     idp.URL + "/oauth2/token",
			Scopes:       []string{"metrics.write"},
		}),
		prwmetric.WithoutEnvironment(),
	)
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	ctx := context.Background()
	defer provider.Shutdown(ctx)

	jobs, err := provider.Meter("example/worker").Int64Counter("jobs")
	if err != nil {
		log.Fatal(err)
	}
	jobs.Add(ctx, 1)
	// Two exports, one token: it is reused until shortly before it expires.
	for range 2 {
		if err := provider.ForceFlush(ctx); err != nil {
			log.Fatal(err)
		}
	}
	for _, r := range srv.Requests() {
		fmt.Println(r.Status, r.Header.Get("Authorization"))
	}
	// Output:
	// 204 Bearer token-from-idp
	// 204 Bearer token-from-idp
}

// Choose the tenant of a multi-tenant Mimir or Cortex per request, from
// whatever decides it at run time.
func ExampleWithHeaderFunc() {
	var tenant atomic.Value
	tenant.Store("team-a")
	exp, err := prwmetric.New(
		prwmetric.WithEndpoint("https://mimir.example/api/v1/push"),
		prwmetric.WithHeaderFunc(func(context.Context) (map[string]string, error) {
			return map[string]string{"X-Scope-OrgID": tenant.Load().(string)}, nil
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	tenant.Store("team-b") // later requests go to team-b
}

// Wrap the exporter's transport, here to count requests; the wrapper sees
// each request with its final headers and credentials, and the exporter
// keeps its own TLS, proxy and timeout settings underneath.
func ExampleWithRoundTripper() {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	var requests atomic.Int64
	exp, err := prwmetric.New(
		prwmetric.WithEndpoint(srv.URL()),
		prwmetric.WithRoundTripper(func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				requests.Add(1)
				return next.RoundTrip(r)
			})
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	orders, _ := provider.Meter("shop").Int64Counter("orders")
	orders.Add(context.Background(), 1)
	if err := provider.ForceFlush(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("requests:", requests.Load())
	_ = provider.Shutdown(context.Background())
	// Output: requests: 1
}

// Plug in an authentication scheme of your own, as the sigv4 and azuread
// modules do: the transport signs each request, and returns
// prwmetric.NotSent when it cannot, so that the exporter knows nothing
// left (WithRetry does not repeat it).
func ExampleWithAuthenticator() {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	var key atomic.Value // the signing key, rotated by some other part of the program
	sign := func(next http.RoundTripper) (http.RoundTripper, error) {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			k, _ := key.Load().(string)
			if k == "" {
				_ = r.Body.Close() // RoundTrip must close the body, even on error
				return nil, prwmetric.NotSent(errors.New("example: no signing key yet"))
			}
			r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
			r.Header.Set("Authorization", "Example "+k)
			return next.RoundTrip(r)
		}), nil
	}
	exp, err := prwmetric.New(prwmetric.WithEndpoint(srv.URL()), prwmetric.WithAuthenticator("example.WithSigning", sign))
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	orders, _ := provider.Meter("shop").Int64Counter("orders")
	orders.Add(context.Background(), 1)
	fmt.Println("without a key:", provider.ForceFlush(context.Background()) != nil, "requests:", srv.RequestCount())
	key.Store("k1")
	fmt.Println("with a key:", provider.ForceFlush(context.Background()) == nil, "requests:", srv.RequestCount())
	_ = provider.Shutdown(context.Background())
	// Output:
	// without a key: true requests: 0
	// with a key: true requests: 1
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// ExampleWithCompression configures an exporter for a VictoriaMetrics
// receiver far away: zstd bodies, requests side by side, HTTP/2 with a
// health check. Here the receiver is a stock one, which refuses zstd: the
// exporter sends the same data with snappy.
func ExampleWithCompression() {
	srv := prwmetrictest.NewServer() // prwmetrictest.WithZstd() would take zstd
	defer srv.Close()

	exp, err := prwmetric.New(
		prwmetric.WithEndpoint(srv.URL()),
		prwmetric.WithCompression(prwmetric.CompressionZstd),
		prwmetric.WithHTTP2(), // for https receivers; this one is plain http
		prwmetric.WithLogger(slog.New(slog.DiscardHandler)),
		prwmetric.WithoutEnvironment(),
	)
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	ctx := context.Background()
	defer provider.Shutdown(ctx)

	jobs, err := provider.Meter("example/worker").Int64Counter("jobs")
	if err != nil {
		log.Fatal(err)
	}
	jobs.Add(ctx, 7)
	if err := provider.ForceFlush(ctx); err != nil {
		log.Fatal(err)
	}
	for _, r := range srv.Requests() {
		fmt.Println(r.Header.Get("Content-Encoding"), r.Status)
	}
	// Output:
	// zstd 415
	// snappy 204
}
