package sigv4_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/sigv4"
	"github.com/prwmetric/prwmetric/sigv4/internal/sigv4test"
)

const (
	region  = "eu-west-1"
	roleARN = "arn:aws:iam::123456789012:role/prometheus-writer"
	// Long-term keys of the tests.
	accessKey = "AKIATESTKEY000000001"
	secretKey = "sEcReT/kEy+0000000000000000000000000SECRET"
	// Temporary keys given out by the fake STS or set as static ones.
	tempAccessKey    = "ASIATESTKEY000000002"
	tempSecretKey    = "tEmPsEcReT/0000000000000000000000000TEMPSECRET"
	sessionToken     = "SeSsIoNtOkEn//////////0000000000000000000000000000SESSIONTOKEN=="
	webIdentityToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bW9uOndyaXRlciJ9.WEBIDENTITYTOKEN"
)

// secrets are the strings no error or log may contain.
var secrets = []string{secretKey, tempSecretKey, sessionToken, webIdentityToken}

var temporary = sigv4test.Credentials{AccessKey: tempAccessKey, SecretKey: tempSecretKey, SessionToken: sessionToken}

// requiredSigned are the headers of a remote-write request that AMP's
// signature must cover beyond host and x-amz-date: the body's length and
// encoding, the protocol version and, here, a custom header.
var requiredSigned = []string{"content-encoding", "content-length", "content-type", "x-prometheus-remote-write-version", "x-scope-orgid"}

// newReceiver starts a receiver that accepts only signatures of creds for
// the "aps" service in region.
func newReceiver(t *testing.T, creds sigv4test.Credentials, opts ...sigv4test.ReceiverOption) *sigv4test.Receiver {
	t.Helper()
	r := sigv4test.NewReceiver(&sigv4test.Verifier{
		Region:      region,
		Service:     "aps",
		Credentials: []sigv4test.Credentials{creds},
		Require:     requiredSigned,
	}, opts...)
	t.Cleanup(r.Close)
	return r
}

// newSTS starts a fake STS that SDK clients find through AWS_ENDPOINT_URL_STS.
func newSTS(t *testing.T, configure func(*sigv4test.STS)) *sigv4test.STS {
	t.Helper()
	s := sigv4test.NewSTS(temporary)
	if configure != nil {
		configure(s)
	}
	s.Start()
	t.Cleanup(s.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", s.URL())
	return s
}

// pipeline is an exporter with a manual reader and one counter.
type pipeline struct {
	exp    *prwmetric.Exporter
	reader *sdkmetric.ManualReader
	logs   *syncBuffer
}

func newPipeline(t *testing.T, opts ...prwmetric.Option) (*pipeline, error) {
	t.Helper()
	logs := &syncBuffer{}
	base := []prwmetric.Option{
		prwmetric.WithoutEnvironment(),
		prwmetric.WithoutStaleMarkers(),
		prwmetric.WithoutTargetInfo(),
		prwmetric.WithoutScopeInfo(),
		prwmetric.WithHeaders(map[string]string{"X-Scope-OrgID": "team-a"}),
		prwmetric.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
	exp, err := prwmetric.New(append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(resource.Empty()))
	counter, err := provider.Meter("shop").Int64Counter("orders")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 3, metric.WithAttributes(attribute.String("region", "eu")))
	return &pipeline{exp: exp, reader: reader, logs: logs}, nil
}

func mustPipeline(t *testing.T, opts ...prwmetric.Option) *pipeline {
	t.Helper()
	p, err := newPipeline(t, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// export collects and exports once.
func (p *pipeline) export(t *testing.T) error {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := p.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return p.exp.Export(context.Background(), &rm)
}

// values returns the samples the receiver stored, by series.
func values(r *sigv4test.Receiver) map[string][]float64 {
	got := map[string][]float64{}
	for _, s := range r.Store.Series() {
		for _, sample := range s.Samples {
			got[s.Labels.String()] = append(got[s.Labels.String()], sample.Value)
		}
	}
	return got
}

// checkNoSecrets fails t when text holds a secret.
func checkNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the secret %.8s…: %s", what, s, text)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCredentialSources exports through each source of credentials and
// checks, with the independent verifier, that each request was signed by
// the credentials that source yields, and that the receiver got the data.
func TestCredentialSources(t *testing.T) {
	longTerm := sigv4test.Credentials{AccessKey: accessKey, SecretKey: secretKey}
	cases := []struct {
		name string
		// setup prepares the environment and files, and returns the Config.
		setup func(t *testing.T, configFile, credentialsFile string) sigv4.Config
		// sts configures the fake STS.
		sts func(*sigv4test.STS)
		// signer are the credentials the requests must be signed with.
		signer sigv4test.Credentials
		// calls are the STS calls expected over both exports.
		calls []sigv4test.STSCall
	}{
		{
			name: "static keys",
			setup: func(*testing.T, string, string) sigv4.Config {
				return sigv4.Config{Region: region, AccessKey: accessKey, SecretKey: secretKey}
			},
			signer: longTerm,
		},
		{
			name: "static session keys",
			setup: func(*testing.T, string, string) sigv4.Config {
				return sigv4.Config{Region: region, AccessKey: tempAccessKey, SecretKey: tempSecretKey, SessionToken: sessionToken}
			},
			signer: temporary,
		},
		{
			name: "environment variables",
			setup: func(t *testing.T, _, _ string) sigv4.Config {
				t.Setenv("AWS_ACCESS_KEY_ID", tempAccessKey)
				t.Setenv("AWS_SECRET_ACCESS_KEY", tempSecretKey)
				t.Setenv("AWS_SESSION_TOKEN", sessionToken)
				t.Setenv("AWS_REGION", region)
				return sigv4.Config{}
			},
			signer: temporary,
		},
		{
			name: "shared files profile",
			setup: func(t *testing.T, configFile, credentialsFile string) sigv4.Config {
				writeFile(t, configFile, "[profile writer]\nregion = "+region+"\n")
				writeFile(t, credentialsFile, "[writer]\naws_access_key_id = "+accessKey+"\naws_secret_access_key = "+secretKey+"\n")
				return sigv4.Config{Profile: "writer"}
			},
			signer: longTerm,
		},
		{
			name: "web identity token file",
			setup: func(t *testing.T, _, _ string) sigv4.Config {
				path := filepath.Join(t.TempDir(), "token")
				writeFile(t, path, webIdentityToken)
				t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path)
				t.Setenv("AWS_ROLE_ARN", roleARN)
				t.Setenv("AWS_REGION", region)
				return sigv4.Config{}
			},
			signer: temporary,
			calls:  []sigv4test.STSCall{{Action: "AssumeRoleWithWebIdentity", RoleARN: roleARN, WebIdentityToken: webIdentityToken}},
		},
		{
			name: "assume role with external ID",
			setup: func(*testing.T, string, string) sigv4.Config {
				return sigv4.Config{Region: region, AccessKey: accessKey, SecretKey: secretKey, RoleARN: roleARN, ExternalID: "ext-42"}
			},
			// STS checks that the long-term keys signed AssumeRole.
			sts: func(s *sigv4test.STS) {
				s.Caller = &sigv4test.Verifier{Region: region, Service: "sts", Credentials: []sigv4test.Credentials{longTerm}}
			},
			signer: temporary,
			calls:  []sigv4test.STSCall{{Action: "AssumeRole", RoleARN: roleARN, ExternalID: "ext-42"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			configFile, credentialsFile := sigv4test.Isolate(t)
			sts := newSTS(t, tc.sts)
			cfg := tc.setup(t, configFile, credentialsFile)
			recv := newReceiver(t, tc.signer)
			p := mustPipeline(t, prwmetric.WithEndpoint(recv.URL()), sigv4.WithSigV4(cfg))

			for i := range 2 {
				if err := p.export(t); err != nil {
					t.Fatalf("export %d: %v (rejected: %q)", i+1, err, recv.Rejected())
				}
			}

			accepted := recv.Accepted()
			if len(accepted) != 2 {
				t.Fatalf("receiver verified %d requests, want 2; rejected: %q", len(accepted), recv.Rejected())
			}
			for _, a := range accepted {
				if a.AccessKey != tc.signer.AccessKey || a.SessionToken != tc.signer.SessionToken {
					t.Errorf("signed by %s with token %t, want %s with token %t", a.AccessKey, a.SessionToken != "", tc.signer.AccessKey, tc.signer.SessionToken != "")
				}
				if tc.signer.SessionToken != "" && !slices.Contains(a.SignedHeaders, "x-amz-security-token") {
					t.Errorf("SignedHeaders %v lack x-amz-security-token", a.SignedHeaders)
				}
			}
			want := map[string][]float64{`orders_total{region="eu"}`: {3, 3}}
			if got := values(recv); !reflect.DeepEqual(got, want) {
				t.Errorf("receiver stored %v, want %v", got, want)
			}
			if v := recv.Store.Violations(); len(v) > 0 {
				t.Errorf("violations: %v", v)
			}
			// One STS call for both exports: the credentials are cached.
			calls := sts.Calls()
			for i := range calls {
				calls[i].RoleSessionName = ""
			}
			if !reflect.DeepEqual(calls, tc.calls) && (len(calls) > 0 || len(tc.calls) > 0) {
				t.Errorf("STS calls = %+v, want %+v", calls, tc.calls)
			}
			checkNoSecrets(t, "log", p.logs.String())
		})
	}
}

// TestNewErrors checks that configuration mistakes fail New with the fix,
// and without the secrets involved.
func TestNewErrors(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T)
		give  sigv4.Config
		extra []prwmetric.Option
		want  []string
	}{
		{
			name: "role without region",
			give: sigv4.Config{AccessKey: accessKey, SecretKey: secretKey, RoleARN: roleARN},
			want: []string{"no AWS region for STS", "RoleARN is assumed through STS, which needs the region", "Config.Region", sigv4.EnvRegion, "AWS_REGION"},
		},
		{
			name: "web identity without region",
			setup: func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "token")
				writeFile(t, path, webIdentityToken)
				t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path)
				t.Setenv("AWS_ROLE_ARN", roleARN)
			},
			want: []string{"no AWS region for STS", "web identity token", "Config.Region", "AWS_REGION"},
		},
		{name: "access key without secret key", give: sigv4.Config{Region: region, AccessKey: accessKey}, want: []string{"AccessKey is set without SecretKey", "set both"}},
		{name: "secret key without access key", give: sigv4.Config{Region: region, SecretKey: secretKey}, want: []string{"SecretKey is set without AccessKey", "set both"}},
		{name: "session token alone", give: sigv4.Config{Region: region, SessionToken: sessionToken}, want: []string{"SessionToken is set without AccessKey and SecretKey"}},
		{name: "role ARN of a user", give: sigv4.Config{Region: region, RoleARN: "arn:aws:iam::123456789012:user/bob"}, want: []string{"is not an IAM role ARN", "arn:aws:iam::123456789012:role/"}},
		{name: "role name only", give: sigv4.Config{Region: region, RoleARN: "prometheus-writer"}, want: []string{`RoleARN "prometheus-writer" is not an IAM role ARN`}},
		{name: "role ARN of another service", give: sigv4.Config{Region: region, RoleARN: "arn:aws:s3:::role/bucket"}, want: []string{"is not an IAM role ARN"}},
		{name: "external ID without role", give: sigv4.Config{Region: region, ExternalID: "ext-42"}, want: []string{"ExternalID is set without RoleARN"}},
		{name: "static keys and profile", give: sigv4.Config{Region: region, AccessKey: accessKey, SecretKey: secretKey, Profile: "writer"}, want: []string{"AccessKey and Profile \"writer\" are both set"}},
		{name: "profile not found", give: sigv4.Config{Region: region, Profile: "nope"}, want: []string{`AWS profile "nope" not found`, "AWS_CONFIG_FILE"}},
		{
			name:  "AWS_PROFILE not found",
			setup: func(t *testing.T) { t.Setenv("AWS_PROFILE", "missing") },
			give:  sigv4.Config{Region: region},
			want:  []string{`AWS profile "missing" not found`},
		},
		{
			name:  "with basic auth",
			give:  sigv4.Config{Region: region, AccessKey: accessKey, SecretKey: secretKey},
			extra: []prwmetric.Option{prwmetric.WithBasicAuth("writer", secretKey)},
			want:  []string{"sigv4.WithSigV4 and WithBasicAuth both set"},
		},
		{
			name:  "with an Authorization header",
			give:  sigv4.Config{Region: region, AccessKey: accessKey, SecretKey: secretKey},
			extra: []prwmetric.Option{prwmetric.WithHeaders(map[string]string{"Authorization": "Bearer " + sessionToken})},
			want:  []string{"Authorization", "sigv4.WithSigV4"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sigv4test.Isolate(t)
			if tc.setup != nil {
				tc.setup(t)
			}
			opts := append([]prwmetric.Option{prwmetric.WithEndpoint("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"), sigv4.WithSigV4(tc.give)}, tc.extra...)
			_, err := newPipeline(t, opts...)
			if err == nil {
				t.Fatal("New accepted the configuration")
			}
			msg := err.Error()
			for _, w := range append(tc.want, "sigv4.WithSigV4") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			checkNoSecrets(t, "error", msg)
		})
	}
}

// TestWithoutRegion: with no region in Config nor in the AWS chain (as on
// EC2, where the SDK does not ask the instance metadata service for one),
// New succeeds; a request to an AMP endpoint is signed for the region its
// host names, and an export to a host that names none fails with the fix,
// sending nothing.
func TestWithoutRegion(t *testing.T) {
	cfg := sigv4.Config{AccessKey: accessKey, SecretKey: secretKey}
	longTerm := sigv4test.Credentials{AccessKey: accessKey, SecretKey: secretKey}

	t.Run("AMP host", func(t *testing.T) {
		sigv4test.Isolate(t)
		recv := newReceiver(t, longTerm) // verifies for region, which the host names
		// The AMP host name is dialled at the receiver's address, so the
		// request keeps it in its URL, Host header and signature.
		addr := strings.TrimPrefix(recv.Origin(), "http://")
		transport := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
		t.Cleanup(transport.CloseIdleConnections)
		_, port, _ := net.SplitHostPort(addr)
		endpoint := "http://aps-workspaces." + region + ".amazonaws.com:" + port + sigv4test.WritePath
		p := mustPipeline(t, prwmetric.WithEndpoint(endpoint), prwmetric.WithHTTPClient(&http.Client{Transport: transport}), sigv4.WithSigV4(cfg))

		if err := p.export(t); err != nil {
			t.Fatalf("export: %v (rejected: %q)", err, recv.Rejected())
		}
		if n := len(recv.Accepted()); n != 1 {
			t.Errorf("receiver verified %d requests for %s, want 1; rejected: %q", n, region, recv.Rejected())
		}
		if got, want := values(recv), map[string][]float64{`orders_total{region="eu"}`: {3}}; !reflect.DeepEqual(got, want) {
			t.Errorf("receiver stored %v, want %v", got, want)
		}
	})

	t.Run("host names no region", func(t *testing.T) {
		sigv4test.Isolate(t)
		recv := newReceiver(t, longTerm)
		p := mustPipeline(t, prwmetric.WithEndpoint(recv.URL()), sigv4.WithSigV4(cfg))

		err := p.export(t)
		if err == nil {
			t.Fatal("export succeeded without a region to sign for")
		}
		for _, w := range []string{
			"sigv4: no AWS region for host 127.0.0.1: set Config.Region (" + sigv4.EnvRegion + "), AWS_REGION, or region in the profile, to the region of the workspace",
			"1 series dropped",
		} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("export error %q does not contain %q", err, w)
			}
		}
		var we *prwmetric.WriteError
		if !errors.As(err, &we) || we.StatusCode != 0 {
			t.Errorf("export error %v is not a WriteError without a response", err)
		}
		if n := len(recv.Accepted()) + len(recv.Rejected()); n != 0 {
			t.Errorf("the receiver got %d requests, want none", n)
		}
		checkNoSecrets(t, "error", err.Error())
		checkNoSecrets(t, "log", p.logs.String())
	})
}

// TestCredentialFailures checks that failing to get credentials fails the
// export in time, with the reason, without secrets.
func TestCredentialFailures(t *testing.T) {
	cases := []struct {
		name string
		sts  func(*sigv4test.STS)
		// timeout bounds the export.
		timeout time.Duration
		want    []string
		// deadline is whether the error is the export's deadline.
		deadline bool
	}{
		{
			name:    "STS refuses and quotes the token",
			sts:     func(s *sigv4test.STS) { s.FailWith = 403 },
			timeout: 10 * time.Second,
			want:    []string{"sigv4: getting AWS credentials", "AssumeRoleWithWebIdentity", "AccessDenied", "[REDACTED]"},
		},
		{
			name:     "STS does not answer",
			sts:      func(s *sigv4test.STS) { s.Hang = true },
			timeout:  300 * time.Millisecond,
			want:     []string{"sigv4: gave up waiting for AWS credentials"},
			deadline: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sigv4test.Isolate(t)
			newSTS(t, tc.sts)
			path := filepath.Join(t.TempDir(), "token")
			writeFile(t, path, webIdentityToken)
			t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path)
			t.Setenv("AWS_ROLE_ARN", roleARN)
			recv := newReceiver(t, temporary)
			p := mustPipeline(t, prwmetric.WithEndpoint(recv.URL()), prwmetric.WithTimeout(tc.timeout), sigv4.WithSigV4(sigv4.Config{Region: region}))

			start := time.Now()
			err := p.export(t)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("export succeeded without credentials")
			}
			if elapsed > tc.timeout+5*time.Second {
				t.Errorf("export took %v with a %v timeout", elapsed, tc.timeout)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if got := errors.Is(err, context.DeadlineExceeded); got != tc.deadline {
				t.Errorf("errors.Is(err, context.DeadlineExceeded) = %t, want %t", got, tc.deadline)
			}
			if n := len(recv.Accepted()) + len(recv.Rejected()); n != 0 {
				t.Errorf("the receiver got %d requests, want none without credentials", n)
			}
			checkNoSecrets(t, "error", err.Error())
			checkNoSecrets(t, "log", p.logs.String())
		})
	}
}

// TestNoCredentials checks the error when the default chain finds nothing:
// it says so and names what to set, rather than only the instance metadata
// service's failure, the chain's last resort.
func TestNoCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		give sigv4.Config
	}{
		{name: "signing", give: sigv4.Config{Region: region}},
		{name: "assuming a role", give: sigv4.Config{Region: region, RoleARN: roleARN}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigv4test.Isolate(t)
			newSTS(t, nil)
			recv := newReceiver(t, temporary)
			p := mustPipeline(t, prwmetric.WithEndpoint(recv.URL()), prwmetric.WithTimeout(10*time.Second), sigv4.WithSigV4(tc.give))
			err := p.export(t)
			if err == nil {
				t.Fatal("export succeeded without credentials")
			}
			for _, w := range []string{"sigv4: getting AWS credentials", "no AWS credentials found", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "Config.AccessKey", "EC2 IMDS"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("export error %q does not contain %q", err, w)
				}
			}
			if n := len(recv.Accepted()) + len(recv.Rejected()); n != 0 {
				t.Errorf("the receiver got %d requests, want none without credentials", n)
			}
		})
	}
}

// TestCredentialsFoundNoHint checks that the missing-credentials hint is
// not given when credentials were configured but fail.
func TestCredentialsFoundNoHint(t *testing.T) {
	sigv4test.Isolate(t)
	newSTS(t, func(s *sigv4test.STS) { s.FailWith = 403 })
	recv := newReceiver(t, temporary)
	p := mustPipeline(t, prwmetric.WithEndpoint(recv.URL()), prwmetric.WithTimeout(10*time.Second),
		sigv4.WithSigV4(sigv4.Config{Region: region, AccessKey: accessKey, SecretKey: secretKey, RoleARN: roleARN}))
	err := p.export(t)
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("export error = %v, want STS's AccessDenied", err)
	}
	if strings.Contains(err.Error(), "no AWS credentials found") {
		t.Errorf("export error %q says no credentials were found, with static keys configured", err)
	}
}

// TestEchoedSecretsRedacted checks that a receiver quoting the request's
// credentials headers in its 403 gets no secret into the export's error or
// the log.
func TestEchoedSecretsRedacted(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) sigv4.Config
	}{
		{
			name: "static session keys",
			setup: func(*testing.T) sigv4.Config {
				return sigv4.Config{Region: region, AccessKey: tempAccessKey, SecretKey: tempSecretKey, SessionToken: sessionToken}
			},
		},
		{
			name: "web identity",
			setup: func(t *testing.T) sigv4.Config {
				newSTS(t, nil)
				path := filepath.Join(t.TempDir(), "token")
				writeFile(t, path, webIdentityToken)
				t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path)
				t.Setenv("AWS_ROLE_ARN", roleARN)
				return sigv4.Config{Region: region}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sigv4test.Isolate(t)
			cfg := tc.setup(t)
			// The receiver expects another secret, so it rejects and echoes.
			wrong := temporary
			wrong.SecretKey = "another/secret/0000000000000000000000000000"
			recv := newReceiver(t, wrong, sigv4test.EchoCredentials())
			p := mustPipeline(t, prwmetric.WithEndpoint(recv.URL()), sigv4.WithSigV4(cfg))

			err := p.export(t)
			if err == nil {
				t.Fatal("export succeeded with a signature the receiver rejects")
			}
			for _, w := range []string{"403", "SignatureDoesNotMatch", "X-Amz-Security-Token: [REDACTED]"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			checkNoSecrets(t, "error", err.Error())
			if !strings.Contains(p.logs.String(), "[REDACTED]") {
				t.Errorf("log does not show the redacted echo: %s", p.logs)
			}
			checkNoSecrets(t, "log", p.logs.String())
		})
	}
}

// TestWrongSecretRejected checks end to end that a signature made with
// another secret does not pass the verifier.
func TestWrongSecretRejected(t *testing.T) {
	sigv4test.Isolate(t)
	recv := newReceiver(t, sigv4test.Credentials{AccessKey: accessKey, SecretKey: secretKey})
	p := mustPipeline(t, prwmetric.WithEndpoint(recv.URL()),
		sigv4.WithSigV4(sigv4.Config{Region: region, AccessKey: accessKey, SecretKey: "not/the/secret/00000000000000000000000000"}))
	err := p.export(t)
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("export error = %v, want a 403", err)
	}
	if r := recv.Rejected(); len(r) != 1 || r[0] != "signature does not match" {
		t.Errorf("rejections = %q, want one signature mismatch", r)
	}
	if got := values(recv); len(got) != 0 {
		t.Errorf("receiver stored %v from a rejected request", got)
	}
}

// TestRedirects checks that a request resent after a redirect is signed
// anew for its own path, and that a redirect to another origin carries no
// signature and no session token.
func TestRedirects(t *testing.T) {
	sigv4test.Isolate(t)
	cfg := sigv4.Config{Region: region, AccessKey: tempAccessKey, SecretKey: tempSecretKey, SessionToken: sessionToken}

	t.Run("same origin", func(t *testing.T) {
		recv := newReceiver(t, temporary, sigv4test.Redirect("/old/write", sigv4test.WritePath))
		p := mustPipeline(t, prwmetric.WithEndpoint(recv.Origin()+"/old/write"), sigv4.WithSigV4(cfg))
		if err := p.export(t); err != nil {
			t.Fatalf("export: %v (rejected: %q)", err, recv.Rejected())
		}
		var paths []string
		for _, a := range recv.Accepted() {
			paths = append(paths, a.Path)
		}
		if want := []string{"/old/write", sigv4test.WritePath}; !reflect.DeepEqual(paths, want) {
			t.Errorf("verified requests to %v, want %v", paths, want)
		}
		if got, want := values(recv), map[string][]float64{`orders_total{region="eu"}`: {3}}; !reflect.DeepEqual(got, want) {
			t.Errorf("receiver stored %v, want %v", got, want)
		}
	})

	t.Run("other origin", func(t *testing.T) {
		other := newReceiver(t, temporary)
		recv := newReceiver(t, temporary, sigv4test.Redirect("/old/write", other.URL()))
		p := mustPipeline(t, prwmetric.WithEndpoint(recv.Origin()+"/old/write"), sigv4.WithSigV4(cfg))
		err := p.export(t)
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("export error = %v, want the other origin's 403 for an unsigned request", err)
		}
		if r := other.Rejected(); len(r) != 1 || !strings.Contains(r[0], "no AWS4-HMAC-SHA256 Authorization header") {
			t.Errorf("other origin's rejections = %q, want one for a missing signature", r)
		}
		checkNoSecrets(t, "error", err.Error())
	})
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
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

// TestNoRegionForHostIsNotSent: without a region anywhere, a request to
// a host that names none fails in the signing transport before it leaves.
// The transport says so (prwmetric.NotSent): WithRetry does not repeat a
// request that fails the same way every time, and the telemetry counts no
// bytes for it.
func TestNoRegionForHostIsNotSent(t *testing.T) {
	sigv4test.Isolate(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	reader := sdkmetric.NewManualReader()
	self := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = self.Shutdown(context.Background()) })
	exp, err := prwmetric.New(
		prwmetric.WithEndpoint(srv.URL+"/api/v1/write"),
		prwmetric.WithoutEnvironment(),
		prwmetric.WithoutStaleMarkers(),
		prwmetric.WithLogger(slog.New(slog.DiscardHandler)),
		prwmetric.WithMeterProvider(self),
		prwmetric.WithRetry(prwmetric.RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 10 * time.Millisecond, MaxElapsedTime: 300 * time.Millisecond}),
		sigv4.WithSigV4(sigv4.Config{AccessKey: accessKey, SecretKey: secretKey}),
	)
	if err != nil {
		t.Fatalf("New without a region: %v", err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	at := time.UnixMilli(1_700_000_000_000)
	rm := &metricdata.ResourceMetrics{Resource: resource.Empty(), ScopeMetrics: []metricdata.ScopeMetrics{{Metrics: []metricdata.Metrics{
		{Name: "g", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{{Attributes: attribute.NewSet(attribute.String("k", "v")), Time: at, Value: 1}}}},
	}}}}
	err = exp.Export(context.Background(), rm)
	var we *prwmetric.WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export = %v, want a *WriteError", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the receiver got %d requests, want none", hits.Load())
	}
	if we.Attempts != 1 {
		t.Errorf("the request that cannot be signed was tried %d times, want once (it fails the same way every time): %v", we.Attempts, err)
	}
	var got metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &got); err != nil {
		t.Fatal(err)
	}
	var bytes int64
	for _, sm := range got.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "prwmetric.exporter.sent_bytes" {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					bytes += dp.Value
				}
			}
		}
	}
	if bytes != 0 {
		t.Errorf("prwmetric.exporter.sent_bytes = %d for requests that never left, want 0", bytes)
	}
}
