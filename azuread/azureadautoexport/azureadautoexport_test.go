package azureadautoexport

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric/internal/testcert"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

const (
	tenant   = "00000000-aaaa-bbbb-cccc-000000000001"
	clientID = "11111111-aaaa-bbbb-cccc-000000000002"
	scope    = "https://monitor.azure.com/.default"
)

// fakeAuthority is a minimal Entra ID authority on 127.0.0.1 over HTTPS:
// the OpenID configuration and a token endpoint that wants the client ID,
// the Azure Monitor scope and one client secret or client assertion.
type fakeAuthority struct {
	srv       *httptest.Server
	client    *http.Client
	secret    string // client_secret to require, or
	assertion string // client_assertion to require

	mu     sync.Mutex
	issued []string
	bad    []string
}

func newFakeAuthority(t *testing.T) *fakeAuthority {
	t.Helper()
	certs := testcert.New(t)
	a := &fakeAuthority{}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.handle))
	a.srv.TLS = &tls.Config{Certificates: []tls.Certificate{certs.Server}, MinVersion: tls.VersionTLS12}
	a.srv.StartTLS()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.CAPool, MinVersion: tls.VersionTLS12}}
	a.client = &http.Client{Transport: tr}
	t.Cleanup(func() {
		a.srv.Close()
		tr.CloseIdleConnections()
	})
	return a
}

func (a *fakeAuthority) handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/" + tenant + "/v2.0/.well-known/openid-configuration":
		base := a.srv.URL + "/{tenant}"
		_ = json.NewEncoder(w).Encode(map[string]string{
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"issuer":                 base + "/v2.0",
		})
		return
	case "/" + tenant + "/oauth2/v2.0/token":
	default:
		http.NotFound(w, r)
		return
	}
	_ = r.ParseForm()
	f := r.PostForm
	ok := f.Get("grant_type") == "client_credentials" && f.Get("client_id") == clientID &&
		strings.HasPrefix(f.Get("scope"), scope+" ") &&
		(a.secret != "" && f.Get("client_secret") == a.secret ||
			a.assertion != "" && f.Get("client_assertion") == a.assertion)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !ok {
		a.bad = append(a.bad, f.Get("client_id")+" "+f.Get("scope"))
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_codes":[7000215]}`))
		return
	}
	token := "at-" + randomHex()
	a.issued = append(a.issued, token)
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "access_token": token, "expires_in": 3600})
}

// receiver accepts only a token the authority issued, then stores the
// data in a prwmetrictest server.
func newReceiver(t *testing.T, a *fakeAuthority) (*prwmetrictest.Server, string) {
	t.Helper()
	srv := prwmetrictest.NewServer()
	target, _ := url.Parse(srv.URL())
	target.Path = ""
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		valid := len(a.issued) > 0 && r.Header.Get("Authorization") == "Bearer "+a.issued[len(a.issued)-1]
		a.mu.Unlock()
		if !valid {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		front.Close()
		srv.Close()
	})
	return srv, front.URL + prwmetrictest.DefaultPath
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAutoexport configures everything from the environment, as an operator
// would: the token comes from the fake authority and the data arrives.
func TestAutoexport(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, a *fakeAuthority)
	}{
		{"client secret file", func(t *testing.T, a *fakeAuthority) {
			a.secret = "s3cret-" + randomHex()
			t.Setenv(EnvClientID, clientID)
			t.Setenv(EnvTenantID, tenant)
			t.Setenv(EnvClientSecretFile, writeFile(t, a.secret+"\n"))
		}},
		{"workload identity", func(t *testing.T, a *fakeAuthority) {
			a.assertion = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ." + randomHex()
			t.Setenv(EnvWorkloadIdentity, "true")
			t.Setenv("AZURE_FEDERATED_TOKEN_FILE", writeFile(t, a.assertion))
			t.Setenv("AZURE_CLIENT_ID", clientID)
			t.Setenv("AZURE_TENANT_ID", tenant)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeAuthority(t)
			srv, endpoint := newReceiver(t, a)
			tt.setup(t, a)
			httpClient = a.client
			t.Cleanup(func() { httpClient = nil })
			t.Setenv("AZURE_AUTHORITY_HOST", a.srv.URL+"/")
			t.Setenv("OTEL_METRICS_EXPORTER", Name)
			t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", endpoint)
			t.Setenv(EnvCloud, "AzurePublic")
			t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000") // only Shutdown's final export runs
			t.Setenv("OTEL_SERVICE_NAME", "checkout")

			ctx := context.Background()
			reader, err := autoexport.NewMetricReader(ctx)
			if err != nil {
				t.Fatalf("NewMetricReader: %v", err)
			}
			provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			counter, err := provider.Meter("shop").Int64Counter("orders")
			if err != nil {
				t.Fatal(err)
			}
			counter.Add(ctx, 3, metric.WithAttributes(attribute.String("region", "eu")))
			if err := provider.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}

			a.mu.Lock()
			issued, bad := len(a.issued), a.bad
			a.mu.Unlock()
			if issued != 1 || len(bad) > 0 {
				t.Errorf("authority issued %d tokens and refused %v, want 1 and none", issued, bad)
			}
			samples, err := srv.Samples("orders_total", map[string]string{"region": "eu", "job": "checkout"})
			if err != nil {
				t.Fatal(err)
			}
			if len(samples) != 2 || samples[0].Value != 3 || !samples[1].IsStale() {
				t.Errorf("orders_total samples = %+v, want 3 then a staleness marker", samples)
			}
			if v := srv.Violations(); len(v) > 0 {
				t.Errorf("violations: %v", v)
			}
		})
	}
}

func TestAutoexportBadEnvironment(t *testing.T) {
	const secret = "never-print-this-secret"
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"malformed flag", map[string]string{EnvManagedIdentity: "yes please"}, EnvManagedIdentity + `="yes please": want true or false`},
		{"secret in a variable", map[string]string{envClientSecret: secret, EnvClientID: clientID, EnvTenantID: tenant}, envClientSecret + " is not read: a secret does not belong in a variable; write it into a file and set " + EnvClientSecretFile},
		{"unknown cloud", map[string]string{EnvCloud: "AzureMars", EnvManagedIdentity: "true"}, `Config.Cloud "AzureMars": unknown cloud`},
		{"two credentials", map[string]string{EnvManagedIdentity: "true", EnvWorkloadIdentity: "1"}, "more than one credential chosen (Config.ManagedIdentity, Config.WorkloadIdentity)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OTEL_METRICS_EXPORTER", Name)
			t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", "https://127.0.0.1:1/api/v1/write")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := autoexport.NewMetricReader(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewMetricReader error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestAutoexportMetricsProducers: with OTEL_METRICS_PRODUCERS=prometheus
// the client_golang default registry is pushed too, with the token.
func TestAutoexportMetricsProducers(t *testing.T) {
	const registryCounter = "azureadautoexport_test_bridge_jobs_total"
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: registryCounter, Help: "Jobs done."})
	if err := prometheus.Register(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prometheus.Unregister(c) })
	c.Add(4.25)

	a := newFakeAuthority(t)
	srv, endpoint := newReceiver(t, a)
	a.secret = "s3cret-" + randomHex()
	httpClient = a.client
	t.Cleanup(func() { httpClient = nil })
	t.Setenv(EnvClientID, clientID)
	t.Setenv(EnvTenantID, tenant)
	t.Setenv(EnvClientSecretFile, writeFile(t, a.secret))
	t.Setenv("AZURE_AUTHORITY_HOST", a.srv.URL+"/")
	t.Setenv("OTEL_METRICS_EXPORTER", Name)
	t.Setenv("OTEL_METRICS_PRODUCERS", "prometheus")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", endpoint)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000") // only Shutdown's final export runs

	ctx := context.Background()
	reader, err := autoexport.NewMetricReader(ctx)
	if err != nil {
		t.Fatalf("NewMetricReader: %v", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	if err := provider.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}

	// The final export carries the registry's value; the exporter's
	// Shutdown then ends the series with a staleness marker.
	samples, err := srv.Samples(registryCounter, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || samples[0].Value != 4.25 || !samples[1].IsStale() {
		t.Errorf("%s samples = %+v, want 4.25 then a staleness marker", registryCounter, samples)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// TestAutoexportUnknownMetricsProducer: a producer autoexport does not know
// fails NewMetricReader with an error naming the variable.
func TestAutoexportUnknownMetricsProducer(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXPORTER", Name)
	t.Setenv("OTEL_METRICS_PRODUCERS", "prometheus,otlp")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", "https://127.0.0.1:1/api/v1/write")
	t.Setenv(EnvClientID, clientID)
	t.Setenv(EnvTenantID, tenant)
	t.Setenv(EnvClientSecretFile, writeFile(t, "s3cret"))
	ctx := context.Background()
	r, err := autoexport.NewMetricReader(ctx)
	if err == nil {
		_ = r.Shutdown(ctx)
		t.Fatal("NewMetricReader accepted OTEL_METRICS_PRODUCERS=prometheus,otlp")
	}
	if want := `OTEL_METRICS_PRODUCERS="prometheus,otlp": unknown metrics producer "otlp"`; !strings.Contains(err.Error(), want) {
		t.Errorf("NewMetricReader error %q does not contain %q", err, want)
	}
}
