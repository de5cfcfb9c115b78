package prwmetric

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prwmetric/prwmetric/internal/testcert"
)

// tlsReceiver is a receiver served over TLS with cfg (for example one that
// requires a client certificate). It records the client certificate's
// common name per request.
type tlsReceiver struct {
	*recorder
	url     string
	clients chan string
}

func newTLSReceiver(t *testing.T, cfg *tls.Config) *tlsReceiver {
	t.Helper()
	r := &tlsReceiver{recorder: &recorder{}, clients: make(chan string, 16)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.record(req)
		cn := ""
		if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
			cn = req.TLS.PeerCertificates[0].Subject.CommonName
		}
		r.clients <- cn
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = cfg
	// Failed handshakes are the point of some tests; keep them out of the
	// output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/api/v1/write"
	return r
}

func TestMutualTLS(t *testing.T) {
	certs := testcert.New(t)
	srv := newTLSReceiver(t, certs.ServerTLSConfig())
	exp := newExporter(t, pinned(
		WithEndpoint(srv.url),
		WithTLS(TLSConfig{CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}),
	)...)

	if err := exp.Export(t.Context(), counterData(9)); err != nil {
		t.Fatalf("Export over mutual TLS: %v", err)
	}
	got := srv.only(t)
	if diff := cmp.Diff([]series{counterSeries(9)}, got.Series); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	if cn := <-srv.clients; cn != "testcert client" {
		t.Errorf("client certificate CN = %q, want %q", cn, "testcert client")
	}
}

func TestMutualTLSFailures(t *testing.T) {
	certs := testcert.New(t)
	other := testcert.New(t) // a second, unrelated CA
	srv := newTLSReceiver(t, certs.ServerTLSConfig())

	for _, tt := range []struct {
		name string
		give TLSConfig
		// check inspects the error; every case must also fail without a
		// request reaching the handler.
		check func(t *testing.T, err error)
	}{
		{
			name: "wrong CA",
			give: TLSConfig{CAFile: other.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile},
			check: func(t *testing.T, err error) {
				var unknown x509.UnknownAuthorityError
				if !errors.As(err, &unknown) {
					t.Errorf("error = %v, want x509.UnknownAuthorityError", err)
				}
				if !strings.Contains(err.Error(), "certificate signed by unknown authority") {
					t.Errorf("error %q does not say the server certificate is not trusted", err)
				}
			},
		},
		{
			name: "no client certificate",
			give: TLSConfig{CAFile: certs.CAFile},
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "certificate required") {
					t.Errorf("error %q does not say the server requires a client certificate", err)
				}
			},
		},
		{
			name: "client certificate from another CA",
			give: TLSConfig{CAFile: certs.CAFile, CertFile: other.ClientCertFile, KeyFile: other.ClientKeyFile},
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "tls:") {
					t.Errorf("error %q is not a TLS error", err)
				}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(srv.url), WithLogger(logger), WithTLS(tt.give))...)
			err := exp.Export(t.Context(), counterData(1))
			if err == nil {
				t.Fatal("Export succeeded, want a TLS failure")
			}
			var we *WriteError
			if !errors.As(err, &we) || we.StatusCode != 0 || we.Series != 1 || we.Endpoint != srv.url {
				t.Errorf("error = %#v, want a *WriteError for %s with no status and 1 series", err, srv.url)
			}
			tt.check(t, err)
			if n := len(logs.all()); n != 1 {
				t.Errorf("logged %d records, want 1", n)
			}
		})
	}
	if n := srv.count(); n != 0 {
		t.Errorf("handler saw %d requests, want none: every handshake should fail", n)
	}
}

// TestTLSServerName verifies the certificate against ServerName when the
// endpoint's host is not in it.
func TestTLSServerName(t *testing.T) {
	certs := testcert.New(t, "prw.test")
	srvCfg := certs.ServerTLSConfig()
	srvCfg.ClientAuth = tls.NoClientCert
	srv := newTLSReceiver(t, srvCfg)

	for _, tt := range []struct {
		name    string
		give    TLSConfig
		wantErr string
	}{
		{name: "without ServerName the host does not match", give: TLSConfig{CAFile: certs.CAFile}, wantErr: "127.0.0.1"},
		{name: "with ServerName", give: TLSConfig{CAFile: certs.CAFile, ServerName: "prw.test"}},
		{name: "InsecureSkipVerify", give: TLSConfig{InsecureSkipVerify: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			exp := newExporter(t, pinned(WithEndpoint(srv.url), WithLogger(discardLogger()), WithTLS(tt.give))...)
			err := exp.Export(t.Context(), counterData(1))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Export: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Export = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// TestWithTLSClientConfigIsCloned: changing the caller's config after New
// changes nothing.
func TestWithTLSClientConfigIsCloned(t *testing.T) {
	certs := testcert.New(t)
	srv := newTLSReceiver(t, certs.ServerTLSConfig())
	cfg := certs.ClientTLSConfig()
	exp := newExporter(t, pinned(WithEndpoint(srv.url), WithTLSClientConfig(cfg))...)
	cfg.RootCAs = x509.NewCertPool()
	cfg.Certificates = nil

	if err := exp.Export(t.Context(), counterData(1)); err != nil {
		t.Fatalf("Export after the caller changed its tls.Config: %v", err)
	}
	if cn := <-srv.clients; cn != "testcert client" {
		t.Errorf("client certificate CN = %q, want %q", cn, "testcert client")
	}
}

// TestTLSConfigBuild checks the mapping of TLSConfig's fields.
func TestTLSConfigBuild(t *testing.T) {
	certs := testcert.New(t)
	for _, tt := range []struct {
		name      string
		give      TLSConfig
		wantRoots bool
		wantCerts int
	}{
		{name: "empty", give: TLSConfig{}},
		{name: "CA", give: TLSConfig{CAFile: certs.CAFile}, wantRoots: true},
		{name: "client certificate", give: TLSConfig{CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}, wantCerts: 1},
		{name: "everything", give: TLSConfig{CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile, ServerName: "prw.test", InsecureSkipVerify: true}, wantRoots: true, wantCerts: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.give.build(tlsOptionNames)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
			}
			if cfg.ServerName != tt.give.ServerName || cfg.InsecureSkipVerify != tt.give.InsecureSkipVerify {
				t.Errorf("ServerName, InsecureSkipVerify = %q, %v; want %q, %v", cfg.ServerName, cfg.InsecureSkipVerify, tt.give.ServerName, tt.give.InsecureSkipVerify)
			}
			if (cfg.RootCAs != nil) != tt.wantRoots {
				t.Errorf("RootCAs set = %v, want %v", cfg.RootCAs != nil, tt.wantRoots)
			}
			if len(cfg.Certificates) != tt.wantCerts {
				t.Errorf("%d certificates, want %d", len(cfg.Certificates), tt.wantCerts)
			}
		})
	}
}

// TestTLSFilesNeverHangNew: TLS files pointing at a FIFO without a writer,
// or at a device without end, fail New at once.
func TestTLSFilesNeverHangNew(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		assertNewFails(t, []Option{WithEndpoint("https://127.0.0.1:9090/api/v1/write"), WithTLS(TLSConfig{CAFile: path})}, []string{"CAFile", "not a regular file"})
	}
}
