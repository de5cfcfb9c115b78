package e2e

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/crypto/bcrypt"

	"github.com/prwmetric/prwmetric"
)

// pki is a throw-away certificate authority with a server certificate for
// 127.0.0.1 and a client certificate, all written as PEM files.
type pki struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	pool                                                 *x509.CertPool
	server, client                                       tls.Certificate
}

func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, name+"-ca.crt", "CERTIFICATE", caDER)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, file string) (string, string, tls.Certificate) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile := writePEM(t, dir, file+".crt", "CERTIFICATE", der)
		keyFile := writePEM(t, dir, file+".key", "EC PRIVATE KEY", keyDER)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return certFile, keyFile, pair
	}
	p.serverCert, p.serverKey, p.server = issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, name+"-server")
	p.clientCert, p.clientKey, p.client = issue(3, "prwmetric e2e client", x509.ExtKeyUsageClientAuth, name+"-client")
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientTLS is what a client that trusts p and presents p's client
// certificate uses.
func (p *pki) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}, MinVersion: tls.VersionTLS12}
}

const (
	authUser      = "alice"
	authPassword  = "c0rrect-Horse-battery-staple"
	wrongPassword = "Tr0ub4dor&3-wrong"
)

// TestPrometheus2Security runs Prometheus behind its own TLS with required
// client certificates and bcrypt basic auth (--web.config.file).
func TestPrometheus2Security(t *testing.T) {
	dir := t.TempDir()
	ca := newPKI(t, dir, "trusted")
	rogue := newPKI(t, dir, "rogue")
	hash, err := bcrypt.GenerateFromPassword([]byte(authPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: %s
basic_auth_users:
  %s: %s
`, ca.serverCert, ca.serverKey, ca.caFile, authUser, hash)
	s := startPrometheus2(t, promConfig{
		webConfig: webConfig,
		scheme:    "https",
		client:    &http.Client{Transport: &http.Transport{TLSClientConfig: ca.clientTLS()}},
		user:      authUser,
		pass:      authPassword,
	})
	// A TLS-terminating proxy with the same server certificate and client
	// certificate requirement counts the requests that reach Prometheus.
	proxy := newTLSCountingProxy(t, s.baseURL, ca)

	c := newClock()
	secrets := []string{
		authPassword, wrongPassword,
		base64.StdEncoding.EncodeToString([]byte(authUser + ":" + authPassword)),
		base64.StdEncoding.EncodeToString([]byte(authUser + ":" + wrongPassword)),
	}
	withCA := func(p *pki) prwmetric.Option {
		return prwmetric.WithTLS(prwmetric.TLSConfig{CAFile: p.caFile, CertFile: ca.clientCert, KeyFile: ca.clientKey})
	}

	t.Run("right credentials store the data", func(t *testing.T) {
		exp, logs := newExporter(t, s.writeURL(), withCA(ca), prwmetric.WithBasicAuth(authUser, authPassword))
		ts := c.next()
		export(t, exp, securityGauge("ok", ts, 42))
		got := s.readRange(t, `e2e_security_value{attempt="ok"}`, ts, time.Hour)
		compareFloats(t, s.name, got.Floats, map[string][]sample{
			labelKey(seriesLabels("e2e_security_value", "attempt", "ok")): {{T: ts.UnixMilli(), V: 42}},
		})
		if w := logs.lines(slog.LevelWarn); len(w) != 0 {
			t.Errorf("warnings after a successful export:\n%s", joinLines(w))
		}
	})

	failures := []struct {
		name string
		// proxied sends through the counting proxy.
		proxied    bool
		opts       []prwmetric.Option
		wantStatus int
		// One of wantErr must appear in the error, and wantLog in the
		// warning (the error text itself when wantLog is empty).
		wantErr []string
		wantLog string
		// shutdownMayFail: the exporter cannot tell that the request was
		// never stored, so Shutdown sends staleness markers, refused in
		// the same way (one of wantErr).
		shutdownMayFail bool
	}{
		{
			name:       "wrong password is refused with 401",
			opts:       []prwmetric.Option{withCA(ca), prwmetric.WithBasicAuth(authUser, wrongPassword)},
			wantStatus: http.StatusUnauthorized,
			wantErr:    []string{"401 Unauthorized"},
			wantLog:    "status=401",
		},
		{
			name:       "wrong password is sent exactly once",
			proxied:    true,
			opts:       []prwmetric.Option{withCA(ca), prwmetric.WithBasicAuth(authUser, wrongPassword)},
			wantStatus: http.StatusUnauthorized,
			wantErr:    []string{"401 Unauthorized"},
			wantLog:    "status=401",
		},
		{
			name:    "untrusted server CA fails the handshake",
			opts:    []prwmetric.Option{withCA(rogue), prwmetric.WithBasicAuth(authUser, authPassword)},
			wantErr: []string{"x509: certificate signed by unknown authority"},
		},
		{
			name: "no client certificate is refused",
			opts: []prwmetric.Option{
				prwmetric.WithTLS(prwmetric.TLSConfig{CAFile: ca.caFile}), prwmetric.WithBasicAuth(authUser, authPassword),
			},
			// TLS 1.3 refuses a missing client certificate after the
			// client's side of the handshake has finished, so depending on
			// timing the client sees the server's alert, the connection it
			// closed, or (HTTP/2) the failed connection setup.
			wantErr:         []string{"tls: bad certificate", "tls: certificate required", "broken pipe", "connection reset by peer", "http2: client conn could not be established"},
			shutdownMayFail: true,
		},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := s.writeURL()
			if tc.proxied {
				endpoint = proxy.URL + "/api/v1/write"
			}
			exp, logs := newExporter(t, endpoint, tc.opts...)
			attempt := strings.ReplaceAll(tc.name, " ", "_")
			ts := c.next()
			before := proxy.requests.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := exp.Export(ctx, securityGauge(attempt, ts, 1))
			if err == nil {
				t.Fatal("Export succeeded, want an error")
			}
			var we *prwmetric.WriteError
			if !errors.As(err, &we) {
				t.Fatalf("Export error %q (%T) does not wrap a *prwmetric.WriteError", err, err)
			}
			if we.StatusCode != tc.wantStatus {
				t.Errorf("WriteError.StatusCode = %d, want %d (error: %v)", we.StatusCode, tc.wantStatus, err)
			}
			if tc.proxied {
				if n := proxy.requests.Load() - before; n != 1 {
					t.Errorf("%d requests reached the server, want exactly 1", n)
				}
			}
			warns := logs.lines(slog.LevelWarn)
			if len(warns) != 1 {
				t.Errorf("got %d warnings, want exactly 1:\n%s", len(warns), logs.String())
			}
			i := slices.IndexFunc(tc.wantErr, func(w string) bool { return strings.Contains(err.Error(), w) })
			if i < 0 {
				t.Errorf("error %q should say one of %q", err, tc.wantErr)
			} else if wantLog := cmp.Or(tc.wantLog, tc.wantErr[i]); !strings.Contains(logs.String(), wantLog) {
				t.Errorf("warning %q should say %q", logs.String(), wantLog)
			}
			if !strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("error %q does not name the endpoint", err)
			}
			for _, secret := range secrets {
				if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("a credential (%.4s…) leaked into the error or the log:\nerror: %v\nlog: %s", secret, err, logs.String())
				}
			}
			if err := exp.Shutdown(ctx); err != nil {
				if !tc.shutdownMayFail || !slices.ContainsFunc(tc.wantErr, func(w string) bool { return strings.Contains(err.Error(), w) }) {
					t.Errorf("Shutdown: %v", err)
				}
				for _, secret := range secrets {
					if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
						t.Errorf("a credential (%.4s…) leaked into Shutdown's error or the log:\nerror: %v\nlog: %s", secret, err, logs.String())
					}
				}
			}
			got := s.readRange(t, fmt.Sprintf(`e2e_security_value{attempt=%q}`, attempt), ts, time.Hour)
			if len(got.Floats) != 0 {
				t.Errorf("a refused export was stored: %v", got.Floats)
			}
		})
	}
}

func securityGauge(attempt string, ts time.Time, v int64) *metricdata.ResourceMetrics {
	return resourceMetrics(metricdata.Metrics{Name: "e2e.security.value", Data: metricdata.Gauge[int64]{
		DataPoints: []metricdata.DataPoint[int64]{{Attributes: attrs("attempt", attempt), Time: ts, Value: v}},
	}})
}

// newTLSCountingProxy serves HTTPS with p's server certificate, requires p's
// client certificates like Prometheus does, counts requests, and forwards
// them (Authorization included) to target over mTLS.
func newTLSCountingProxy(t *testing.T, target string, p *pki) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	cp := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{TLSClientConfig: p.clientTLS()}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cp.requests.Add(1)
		rp.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
		MinVersion:   tls.VersionTLS12,
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cp.URL = srv.URL
	return cp
}
