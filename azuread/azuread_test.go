package azuread

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// azureVariables are the variables azidentity reads; tests start without
// them, whatever the machine has.
var azureVariables = []string{
	"AZURE_AUTHORITY_HOST", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
	"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_USERNAME",
	"AZURE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TOKEN_CREDENTIALS",
	"AZURE_ADDITIONALLY_ALLOWED_TENANTS", "AZURE_REGIONAL_AUTHORITY_NAME",
	"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT",
	"MSI_ENDPOINT", "MSI_SECRET",
}

func clearAzureEnv(t *testing.T) {
	t.Helper()
	for _, name := range azureVariables {
		t.Setenv(name, "") // restores the variable after the test
		os.Unsetenv(name)
	}
}

// fixture is the fake Azure: a clock, the tokens issued, the authority and
// the receiver.
type fixture struct {
	clock *fakeClock
	book  *tokenBook
	auth  *authority
	recv  *receiver
	logs  *logBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clearAzureEnv(t)
	clock := &fakeClock{}
	book := newTokenBook(clock)
	return &fixture{
		clock: clock,
		book:  book,
		auth:  newAuthority(t, book),
		recv:  newReceiver(t, book),
		logs:  &logBuffer{},
	}
}

// secretConfig is an app registration with a client secret at the fake
// authority.
func (f *fixture) secretConfig(secret string) Config {
	f.auth.setSecret(secret)
	return Config{
		ClientID:      testClientID,
		TenantID:      testTenant,
		ClientSecret:  secret,
		AuthorityHost: f.auth.URL(),
		HTTPClient:    f.auth.client,
	}
}

// pipeline is an exporter under test, fed by a manual reader so that each
// export happens when the test says.
type pipeline struct {
	exp     *prwmetric.Exporter
	reader  *sdkmetric.ManualReader
	counter metric.Int64Counter
}

func (f *fixture) pipeline(t *testing.T, cfg Config, opts ...prwmetric.Option) *pipeline {
	t.Helper()
	opts = append([]prwmetric.Option{
		prwmetric.WithEndpoint(f.recv.URL()),
		prwmetric.WithoutEnvironment(),
		prwmetric.WithLogger(f.logs.logger()),
		prwmetric.WithTimeout(10 * time.Second),
		withAzureAD(cfg, f.clock.now),
	}, opts...)
	exp, err := prwmetric.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "shop"))),
	)
	counter, err := provider.Meter("checkout").Int64Counter("orders")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = provider.Shutdown(context.Background())
		_ = exp.Shutdown(context.Background())
	})
	return &pipeline{exp: exp, reader: reader, counter: counter}
}

// export counts one more order and exports.
func (p *pipeline) export(t *testing.T) error {
	t.Helper()
	ctx := context.Background()
	p.counter.Add(ctx, 1, metric.WithAttributes(attribute.String("region", "eu")))
	var rm metricdata.ResourceMetrics
	if err := p.reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	return p.exp.Export(ctx, &rm)
}

// checkOrders compares the orders_total series the receiver stored with
// want, sample by sample.
func (f *fixture) checkOrders(t *testing.T, want ...float64) {
	t.Helper()
	s, err := f.recv.Find("orders_total", map[string]string{"region": "eu"})
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := prwmetrictest.Labels{"__name__": "orders_total", "job": "shop", "otel_scope_name": "checkout", "region": "eu"}
	if !maps.Equal(s.Labels, wantLabels) {
		t.Errorf("series %v, want %v", s.Labels, wantLabels)
	}
	var got []float64
	for _, sample := range s.Samples {
		got = append(got, sample.Value)
	}
	if !slices.Equal(got, want) {
		t.Errorf("orders_total samples %v, want %v", got, want)
	}
	if v := f.recv.Violations(); len(v) > 0 {
		t.Errorf("receiver violations: %v", v)
	}
}

// checkNoSecrets fails if any secret appears in text.
func checkNoSecrets(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains a secret (%.12s…): %s", where, s, text)
		}
	}
}

// TestCredentials runs every kind of credential end to end: the exporter
// gets a token from the fake authority (or managed identity endpoint), the
// receiver accepts it, and the data arrives; one token serves the three
// exports.
func TestCredentials(t *testing.T) {
	tests := []struct {
		name string
		// setup configures the fakes and returns the Config and how many
		// token requests the fake that issues tokens received.
		setup func(t *testing.T, f *fixture) (Config, func() (int, []string))
	}{
		{
			name: "client secret",
			setup: func(t *testing.T, f *fixture) (Config, func() (int, []string)) {
				return f.secretConfig("s3cret~" + randomHex(16)), f.auth.stats
			},
		},
		{
			name: "client secret file",
			setup: func(t *testing.T, f *fixture) (Config, func() (int, []string)) {
				secret := "file-s3cret~" + randomHex(16)
				cfg := f.secretConfig(secret)
				cfg.ClientSecret, cfg.ClientSecretFile = "", writeFile(t, "secret", secret+"\n")
				return cfg, f.auth.stats
			},
		},
		{
			name: "client certificate",
			setup: func(t *testing.T, f *fixture) (Config, func() (int, []string)) {
				cert := newClientCert(t)
				f.auth.cert = cert.cert
				return Config{
					ClientID:              testClientID,
					TenantID:              testTenant,
					ClientCertificateFile: cert.file,
					AuthorityHost:         f.auth.URL(),
					HTTPClient:            f.auth.client,
				}, f.auth.stats
			},
		},
		{
			name: "workload identity",
			setup: func(t *testing.T, f *fixture) (Config, func() (int, []string)) {
				f.auth.federated = fakeJWT()
				t.Setenv("AZURE_FEDERATED_TOKEN_FILE", writeFile(t, "azure-identity-token", f.auth.federated))
				t.Setenv("AZURE_CLIENT_ID", testClientID)
				t.Setenv("AZURE_TENANT_ID", testTenant)
				t.Setenv("AZURE_AUTHORITY_HOST", f.auth.URL())
				return Config{WorkloadIdentity: true, HTTPClient: f.auth.client}, f.auth.stats
			},
		},
		{
			name: "managed identity, system-assigned",
			setup: func(t *testing.T, f *fixture) (Config, func() (int, []string)) {
				mi := newManagedIdentityEndpoint(t, f.book, "")
				return Config{ManagedIdentity: true, HTTPClient: f.auth.client}, mi.stats
			},
		},
		{
			name: "managed identity, user-assigned",
			setup: func(t *testing.T, f *fixture) (Config, func() (int, []string)) {
				mi := newManagedIdentityEndpoint(t, f.book, testClientID)
				return Config{ManagedIdentity: true, ClientID: testClientID, HTTPClient: f.auth.client}, mi.stats
			},
		},
		{
			name: "default chain, from the environment",
			setup: func(t *testing.T, f *fixture) (Config, func() (int, []string)) {
				secret := "env-s3cret~" + randomHex(16)
				f.auth.setSecret(secret)
				t.Setenv("AZURE_TENANT_ID", testTenant)
				t.Setenv("AZURE_CLIENT_ID", testClientID)
				t.Setenv("AZURE_CLIENT_SECRET", secret)
				t.Setenv("AZURE_AUTHORITY_HOST", f.auth.URL())
				return Config{HTTPClient: f.auth.client}, f.auth.stats
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			cfg, stats := tt.setup(t, f)
			p := f.pipeline(t, cfg)
			for i := range 3 {
				if err := p.export(t); err != nil {
					_, rej := stats()
					t.Fatalf("export %d: %v (%q)", i+1, err, rej)
				}
			}
			requests, rejected := stats()
			if requests != 1 || len(rejected) > 0 {
				t.Errorf("token requests = %d (refused: %v), want 1 accepted for three exports", requests, rejected)
			}
			accepted, refused := f.recv.log()
			issued := f.book.tokens()
			if len(refused) > 0 || len(accepted) != 3 || len(issued) != 1 {
				t.Fatalf("receiver accepted %d, refused %v; %d tokens issued", len(accepted), refused, len(issued))
			}
			for _, tok := range accepted {
				if tok != issued[0] {
					t.Errorf("request carried a token other than the one issued")
				}
			}
			f.checkOrders(t, 1, 2, 3)
			checkNoSecrets(t, "log", f.logs.String(), issued...)
		})
	}
}

// TestRefresh steps the clock through token lifetimes: the token is reused
// until its refresh point, refreshed while it is still valid, kept through a
// failed refresh while it is usable, and never sent expired.
func TestRefresh(t *testing.T) {
	f := newFixture(t)
	p := f.pipeline(t, f.secretConfig("s3cret-"+randomHex(16)))
	// Tokens live 60 s: refresh when less than 30 s remain, send while more
	// than 15 s remain.
	step := func(d time.Duration, wantErr bool, wantRequests int) {
		t.Helper()
		f.clock.advance(d)
		err := p.export(t)
		if (err != nil) != wantErr {
			t.Fatalf("after %v: export error %v, want error: %v", f.clock.offset, err, wantErr)
		}
		if got, _ := f.auth.stats(); got != wantRequests {
			t.Fatalf("after %v: %d token requests, want %d", f.clock.offset, got, wantRequests)
		}
	}
	step(0, false, 1)              // token A, expires at 60 s
	step(29*time.Second, false, 1) // 29 s: A reused
	step(2*time.Second, false, 2)  // 31 s: past A's refresh point: token B
	tokens := f.book.tokens()
	if ok, why := f.book.valid(tokens[0]); !ok {
		t.Errorf("token A was refreshed only after it became invalid: %s", why)
	}
	accepted, _ := f.recv.log()
	if got := accepted[len(accepted)-1]; got != tokens[1] {
		t.Errorf("the export after the refresh did not send the new token")
	}

	// B expires at 91 s. The authority fails from now on.
	f.auth.setOverride(func(w http.ResponseWriter, r *http.Request, form url.Values) {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "temporarily_unavailable"})
	})
	step(31*time.Second, false, 3) // 62 s: refresh fails, B still usable
	step(15*time.Second, true, 4)  // 77 s: refresh fails, B too close to expiry
	accepted, refused := f.recv.log()
	if len(accepted) != 4 || len(refused) > 0 {
		t.Errorf("receiver accepted %d and refused %v, want 4 accepted and none refused (no expired token sent)", len(accepted), refused)
	}

	f.auth.setOverride(nil)
	step(0, false, 5) // the authority is back: token C
	accepted, refused = f.recv.log()
	if len(refused) > 0 || accepted[len(accepted)-1] != f.book.tokens()[2] {
		t.Errorf("after the authority came back: refused %v, or the new token was not sent", refused)
	}
	// The failed export's value arrives with the next one: cumulative.
	f.checkOrders(t, 1, 2, 3, 4, 6)
}

// TestRefreshAgainstSilentAuthority: past a token's refresh point, while
// the token is still usable, an authority that does not answer must not
// fail the export: the request is sent with the token it has, as after a
// refresh that failed fast.
func TestRefreshAgainstSilentAuthority(t *testing.T) {
	f := newFixture(t)
	done := make(chan struct{})
	defer close(done)
	const timeout = 2 * time.Second
	p := f.pipeline(t, f.secretConfig("s3cret-"+randomHex(16)), prwmetric.WithTimeout(timeout))
	if err := p.export(t); err != nil { // token A, expires at 60 s
		t.Fatal(err)
	}
	arrived := make(chan struct{}, 16)
	f.auth.setOverride(func(w http.ResponseWriter, r *http.Request, form url.Values) {
		arrived <- struct{}{}
		stuck(done)(w, r, form)
	})
	f.clock.advance(31 * time.Second) // past A's refresh point, A still usable until 45 s
	start := time.Now()
	err := p.export(t)
	if err != nil {
		t.Fatalf("export with a usable token and a silent authority: %v (after %v)", err, time.Since(start))
	}
	<-arrived // the refresh was attempted
	accepted, refused := f.recv.log()
	if len(accepted) != 2 || len(refused) > 0 || accepted[1] != f.book.tokens()[0] {
		t.Errorf("receiver accepted %d, refused %v: want the still-usable token A sent twice", len(accepted), refused)
	}
}

// TestSecretFileRotation: a rewritten secret file is used at the next token
// request; an unusable rewrite keeps the last good secret.
func TestSecretFileRotation(t *testing.T) {
	f := newFixture(t)
	first, second := "first-"+randomHex(16), "second-"+randomHex(16)
	cfg := f.secretConfig(first)
	path := writeFile(t, "secret", first)
	cfg.ClientSecret, cfg.ClientSecretFile = "", path
	p := f.pipeline(t, cfg)
	if err := p.export(t); err != nil {
		t.Fatal(err)
	}

	f.auth.setSecret(second) // the app registration now takes the new secret only
	if err := os.WriteFile(path, []byte(second+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(31 * time.Second)
	if err := p.export(t); err != nil {
		t.Fatalf("export after rotation: %v", err)
	}

	if err := os.WriteFile(path, nil, 0o600); err != nil { // a rotation half done
		t.Fatal(err)
	}
	f.clock.advance(31 * time.Second)
	if err := p.export(t); err != nil {
		t.Fatalf("export with an empty secret file: %v", err)
	}
	requests, rejected := f.auth.stats()
	if requests != 3 || len(rejected) > 0 {
		t.Errorf("token requests %d, refused %v: want 3 accepted", requests, rejected)
	}
	f.checkOrders(t, 1, 2, 3)
}

// TestFailingAuthority: an authority that fails or does not answer fails
// the export with a clear error within the export's timeout.
func TestFailingAuthority(t *testing.T) {
	const timeout = time.Second
	tests := []struct {
		name     string
		override func(done <-chan struct{}) func(http.ResponseWriter, *http.Request, url.Values)
		closed   bool // the authority is not listening at all
		want     []string
		deadline bool // errors.Is(err, context.DeadlineExceeded)
	}{
		{
			name: "500",
			override: func(<-chan struct{}) func(http.ResponseWriter, *http.Request, url.Values) {
				return func(w http.ResponseWriter, r *http.Request, form url.Values) {
					writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "server_error", "error_codes": []int{90033}})
				}
			},
			want: []string{"500 Internal Server Error", "server_error", "AADSTS90033", "the authority is unavailable"},
		},
		{
			name:     "no answer",
			override: stuck,
			want:     []string{"no answer from the authority within the export's timeout"},
			deadline: true,
		},
		{
			name: "wrong secret",
			override: func(<-chan struct{}) func(http.ResponseWriter, *http.Request, url.Values) {
				return func(w http.ResponseWriter, r *http.Request, form url.Values) {
					writeJSON(w, http.StatusUnauthorized, map[string]any{
						"error":             "invalid_client",
						"error_description": "AADSTS7000215: Invalid client secret provided. Trace ID: x",
						"error_codes":       []int{7000215},
						"trace_id":          "0b1c2d3e-0000-4000-8000-000000000001",
					})
				}
			},
			want: []string{"401 Unauthorized", "invalid_client", "AADSTS7000215 (the client secret is wrong", "trace ID 0b1c2d3e-0000-4000-8000-000000000001", "login.microsoftonline.com/error?code=7000215"},
		},
		{
			name:   "not listening",
			closed: true,
			want:   []string{"client secret, tenant " + testTenant + ", client " + testClientID, "connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			done := make(chan struct{})
			defer close(done)
			secret := "s3cret-" + randomHex(16)
			cfg := f.secretConfig(secret)
			if tt.override != nil {
				f.auth.setOverride(tt.override(done))
			}
			if tt.closed {
				f.auth.srv.Close()
			}
			p := f.pipeline(t, cfg, prwmetric.WithTimeout(timeout))
			start := time.Now()
			err := p.export(t)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("export succeeded without a token")
			}
			if elapsed > timeout+2*time.Second {
				t.Errorf("export took %v with a timeout of %v", elapsed, timeout)
			}
			for _, w := range append(tt.want, "azuread: no Entra ID token") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if got := errors.Is(err, context.DeadlineExceeded); got != tt.deadline {
				t.Errorf("errors.Is(err, context.DeadlineExceeded) = %v, want %v", got, tt.deadline)
			}
			var te *TokenError
			if !errors.As(err, &te) {
				t.Errorf("error %T is no *TokenError", err)
			}
			if accepted, refused := f.recv.log(); len(accepted)+len(refused) > 0 {
				t.Errorf("the receiver was sent %d requests without a token", len(accepted)+len(refused))
			}
			checkNoSecrets(t, "error", err.Error(), secret)
			checkNoSecrets(t, "log", f.logs.String(), secret)
		})
	}
}

// TestSecretsNotInErrorsOrLogs makes the authority echo the request body
// (client secret or assertion) and the receiver echo the Authorization
// header in their error answers: neither reaches the export's error or the
// log.
func TestSecretsNotInErrorsOrLogs(t *testing.T) {
	echoJSON := func(w http.ResponseWriter, r *http.Request, form url.Values) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"error":             "invalid_client",
			"error_description": "AADSTS7000215: Invalid client secret provided for request " + form.Encode() + " " + strings.Join(form["client_secret"], ",") + strings.Join(form["client_assertion"], ","),
			"error_codes":       []int{7000215},
		})
	}
	echoText := func(w http.ResponseWriter, r *http.Request, form url.Values) {
		http.Error(w, "bad request: "+form.Encode()+" secret="+form.Get("client_secret")+" assertion="+form.Get("client_assertion"), http.StatusBadRequest)
	}
	type kindSetup func(t *testing.T, f *fixture) (Config, []string)
	kinds := []struct {
		name  string
		setup kindSetup
	}{
		{"client secret", func(t *testing.T, f *fixture) (Config, []string) {
			secret := "s3cr+t/=" + randomHex(16) // needs URL encoding in the form
			return f.secretConfig(secret), []string{secret}
		}},
		{"client secret file", func(t *testing.T, f *fixture) (Config, []string) {
			secret := "file+s3cr/t=" + randomHex(16)
			cfg := f.secretConfig(secret)
			cfg.ClientSecret, cfg.ClientSecretFile = "", writeFile(t, "secret", secret)
			return cfg, []string{secret}
		}},
		{"client certificate", func(t *testing.T, f *fixture) (Config, []string) {
			cert := newClientCert(t)
			f.auth.cert = cert.cert
			return Config{ClientID: testClientID, TenantID: testTenant, ClientCertificateFile: cert.file, AuthorityHost: f.auth.URL(), HTTPClient: f.auth.client}, nil
		}},
		{"workload identity", func(t *testing.T, f *fixture) (Config, []string) {
			f.auth.federated = fakeJWT()
			t.Setenv("AZURE_FEDERATED_TOKEN_FILE", writeFile(t, "token", f.auth.federated))
			return Config{WorkloadIdentity: true, ClientID: testClientID, TenantID: testTenant, AuthorityHost: f.auth.URL(), HTTPClient: f.auth.client}, []string{f.auth.federated}
		}},
		{"default chain", func(t *testing.T, f *fixture) (Config, []string) {
			secret := "env+s3cr/t=" + randomHex(16)
			f.auth.setSecret(secret)
			t.Setenv("AZURE_TENANT_ID", testTenant)
			t.Setenv("AZURE_CLIENT_ID", testClientID)
			t.Setenv("AZURE_CLIENT_SECRET", secret)
			// The chain stops at the environment credential's failure; this
			// makes sure it never goes on to probe IMDS (169.254.169.254).
			t.Setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
			return Config{AuthorityHost: f.auth.URL(), HTTPClient: f.auth.client}, []string{secret}
		}},
	}
	answers := []struct {
		name string
		echo func(w http.ResponseWriter, r *http.Request, form url.Values)
	}{
		{"authority echoes in JSON", echoJSON},
		{"authority echoes in text", echoText},
		{"receiver echoes the token", nil},
	}
	for _, k := range kinds {
		for _, a := range answers {
			t.Run(k.name+"/"+a.name, func(t *testing.T) {
				f := newFixture(t)
				cfg, secrets := k.setup(t, f)
				if a.echo != nil {
					f.auth.setOverride(a.echo)
				} else {
					f.recv.set(true, "")
				}
				p := f.pipeline(t, cfg)
				err := p.export(t)
				if err == nil {
					t.Fatal("export succeeded")
				}
				if a.echo == nil && !strings.Contains(err.Error(), "Authorization: Bearer "+redacted) {
					// Otherwise the echo test would pass for the wrong reason.
					t.Fatalf("the receiver's echo is not in the error: %v", err)
				}
				secrets = append(secrets, f.auth.seenAssertions()...)
				secrets = append(secrets, f.book.tokens()...)
				for _, s := range slices.Clone(secrets) {
					secrets = append(secrets, url.QueryEscape(s))
				}
				if len(secrets) == 0 {
					t.Fatal("nothing secret to look for")
				}
				checkNoSecrets(t, "error", err.Error(), secrets...)
				checkNoSecrets(t, "log", f.logs.String(), secrets...)
			})
		}
	}
}

// TestRedirectToAnotherHost: the token goes to the endpoint's origin only.
func TestRedirectToAnotherHost(t *testing.T) {
	f := newFixture(t)
	other := prwmetrictest.NewServer()
	defer other.Close()
	f.recv.set(false, other.URL())

	p := f.pipeline(t, f.secretConfig("s3cret-"+randomHex(16)))
	if err := p.export(t); err != nil {
		t.Fatal(err)
	}
	if accepted, refused := f.recv.log(); len(accepted) != 1 || len(refused) > 0 {
		t.Errorf("the endpoint accepted %d and refused %v, want 1 request with a valid token", len(accepted), refused)
	}
	reqs := other.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the redirect target got %d requests, want 1", len(reqs))
	}
	if h := reqs[0].Header.Get("Authorization"); h != "" {
		t.Errorf("the redirect target on another host got Authorization %.20q…", h)
	}
}

// TestNewErrors: configuration mistakes fail New with the field and the fix,
// never a secret.
func TestNewErrors(t *testing.T) {
	const secret = "do-not-print-" + "0123456789abcdef"
	clearAzureEnv(t)
	certs := newClientCert(t)
	secretFile := func(t *testing.T) string { return writeFile(t, "secret", secret) }
	tests := []struct {
		name string
		give func(t *testing.T) Config
		want string
	}{
		{"managed and workload identity", func(*testing.T) Config {
			return Config{ManagedIdentity: true, WorkloadIdentity: true}
		}, "more than one credential chosen (Config.ManagedIdentity, Config.WorkloadIdentity): choose exactly one"},
		{"secret and certificate", func(*testing.T) Config {
			return Config{ClientID: testClientID, TenantID: testTenant, ClientSecret: secret, ClientCertificateFile: certs.file}
		}, "more than one credential chosen (Config.ClientSecret, Config.ClientCertificateFile)"},
		{"managed identity and secret", func(*testing.T) Config {
			return Config{ManagedIdentity: true, ClientID: testClientID, ClientSecret: secret}
		}, "more than one credential chosen (Config.ManagedIdentity, Config.ClientSecret)"},
		{"secret and secret file", func(t *testing.T) Config {
			return Config{ClientID: testClientID, TenantID: testTenant, ClientSecret: secret, ClientSecretFile: secretFile(t)}
		}, "Config.ClientSecret and Config.ClientSecretFile both set: keep one"},
		{"client ID without a credential", func(*testing.T) Config {
			return Config{ClientID: testClientID}
		}, "Config.ClientID or Config.TenantID set without a credential: add ClientSecretFile"},
		{"unknown cloud", func(*testing.T) Config {
			return Config{Cloud: "AzureMars", ManagedIdentity: true}
		}, `Config.Cloud "AzureMars": unknown cloud: use azuread.CloudPublic ("AzurePublic", the default), CloudChina ("AzureChina") or CloudUSGovernment ("AzureGovernment")`},
		{"secret without tenant", func(*testing.T) Config {
			return Config{ClientID: testClientID, ClientSecret: secret}
		}, "Config.ClientSecret needs Config.TenantID"},
		{"certificate without client ID", func(*testing.T) Config {
			return Config{TenantID: testTenant, ClientCertificateFile: certs.file}
		}, "Config.ClientCertificateFile needs Config.ClientID"},
		{"malformed tenant", func(*testing.T) Config {
			return Config{ClientID: testClientID, TenantID: "contoso/evil", ClientSecret: secret}
		}, `Config.TenantID "contoso/evil": not a tenant ID`},
		{"missing secret file", func(t *testing.T) Config {
			return Config{ClientID: testClientID, TenantID: testTenant, ClientSecretFile: t.TempDir() + "/missing"}
		}, "Config.ClientSecretFile: open "},
		{"empty secret file", func(t *testing.T) Config {
			return Config{ClientID: testClientID, TenantID: testTenant, ClientSecretFile: writeFile(t, "secret", "\n")}
		}, "the file is empty: write the client secret into it"},
		{"huge secret file", func(t *testing.T) Config {
			return Config{ClientID: testClientID, TenantID: testTenant, ClientSecretFile: writeFile(t, "secret", secret+strings.Repeat("x", maxSecretFile))}
		}, "is larger than 16384 bytes: is it the right file?"},
		{"certificate file without key", func(t *testing.T) Config {
			pemCert, _, _ := strings.Cut(string(certs.pem), "-----BEGIN PRIVATE KEY-----")
			return Config{ClientID: testClientID, TenantID: testTenant, ClientCertificateFile: writeFile(t, "cert.pem", pemCert)}
		}, "want PEM with the certificate and its unencrypted private key: found no private key"},
		{"certificate with an ECDSA key", func(t *testing.T) Config {
			return Config{ClientID: testClientID, TenantID: testTenant, ClientCertificateFile: ecdsaPEM(t)}
		}, "the private key is an ECDSA key: Entra ID certificate credentials need an RSA key"},
		{"workload identity outside a labelled pod", func(*testing.T) Config {
			return Config{WorkloadIdentity: true, ClientID: testClientID, TenantID: testTenant}
		}, "WorkloadIdentity: AZURE_FEDERATED_TOKEN_FILE is not set"},
		{"managed identity with a tenant", func(*testing.T) Config {
			return Config{ManagedIdentity: true, TenantID: testTenant}
		}, "Config.TenantID is not used with ManagedIdentity"},
		{"scope without /.default", func(*testing.T) Config {
			return Config{ManagedIdentity: true, Scope: "https://monitor.azure.com"}
		}, `Config.Scope "https://monitor.azure.com": want a resource's "/.default" scope, e.g. "https://monitor.azure.com/.default"`},
		{"authority over http", func(*testing.T) Config {
			return Config{ManagedIdentity: true, AuthorityHost: "http://login.example/"}
		}, `Config.AuthorityHost "http://login.example": the authority must be https`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp, err := prwmetric.New(
				prwmetric.WithEndpoint("https://dce.westeurope-1.metrics.ingest.monitor.azure.com/dataCollectionRules/dcr-1/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"),
				prwmetric.WithoutEnvironment(),
				WithAzureAD(tt.give(t)),
			)
			if err == nil {
				_ = exp.Shutdown(context.Background())
				t.Fatal("New accepted the configuration")
			}
			for _, w := range []string{"prwmetric: azuread.WithAzureAD: ", tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			checkNoSecrets(t, "error", err.Error(), secret)
		})
	}
}

// TestConflictsWithOtherAuthorization: the token is the request's one
// Authorization header.
func TestConflictsWithOtherAuthorization(t *testing.T) {
	clearAzureEnv(t)
	azure := WithAzureAD(Config{ManagedIdentity: true})
	tests := []struct {
		name string
		give []prwmetric.Option
		want string
	}{
		{"bearer token after", []prwmetric.Option{azure, prwmetric.WithBearerToken("t0ken")}, "azuread.WithAzureAD and WithBearerToken both set: a request carries one Authorization header, keep one"},
		{"bearer token before", []prwmetric.Option{prwmetric.WithBearerToken("t0ken"), azure}, "azuread.WithAzureAD and WithBearerToken both set"},
		{"basic auth", []prwmetric.Option{azure, prwmetric.WithBasicAuth("u", "p4ss")}, "azuread.WithAzureAD and WithBasicAuth both set"},
		{"Authorization header", []prwmetric.Option{azure, prwmetric.WithHeaders(map[string]string{"Authorization": "Bearer t0ken"})}, "WithHeaders sets Authorization and azuread.WithAzureAD is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]prwmetric.Option{prwmetric.WithEndpoint("https://127.0.0.1:1/api/v1/write"), prwmetric.WithoutEnvironment()}, tt.give...)
			_, err := prwmetric.New(opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestTokenFailureIsNotRetried: a request whose token the authority
// refuses never leaves (prwmetric.NotSent), and each attempt would meet the
// same refusal: WithRetry does not repeat it, so one export asks the
// authority once, not until the retry budget is spent.
func TestTokenFailureIsNotRetried(t *testing.T) {
	f := newFixture(t)
	cfg := f.secretConfig("s3cret-" + randomHex(16))
	f.auth.setOverride(func(w http.ResponseWriter, r *http.Request, form url.Values) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_codes": []int{7000215}})
	})
	p := f.pipeline(t, cfg, prwmetric.WithRetry(prwmetric.RetryConfig{
		Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsedTime: 2 * time.Second,
	}))
	err := p.export(t)
	var we *prwmetric.WriteError
	if !errors.As(err, &we) {
		t.Fatalf("export = %v, want a *WriteError", err)
	}
	if we.Attempts != 1 {
		t.Errorf("the request without a token was tried %d times, want once", we.Attempts)
	}
	if requests, _ := f.auth.stats(); requests != 1 {
		t.Errorf("the authority was asked %d times, want once", requests)
	}
	if accepted, refused := f.recv.log(); len(accepted)+len(refused) > 0 {
		t.Errorf("the receiver was sent %d requests without a token", len(accepted)+len(refused))
	}
}
