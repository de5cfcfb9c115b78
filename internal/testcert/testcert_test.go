package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"testing"
)

// TestHandshake: the generated server and client authenticate each other,
// and a client trusting another CA does not accept the server.
func TestHandshake(t *testing.T) {
	certs := New(t)
	other := New(t)
	for _, tt := range []struct {
		name    string
		client  *tls.Config
		wantErr bool
	}{
		{name: "mutual", client: certs.ClientTLSConfig()},
		{name: "wrong CA", client: other.ClientTLSConfig(), wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cConn, sConn := net.Pipe()
			defer cConn.Close()
			defer sConn.Close()
			cfg := tt.client.Clone()
			cfg.ServerName = "localhost"
			srv := tls.Server(sConn, certs.ServerTLSConfig())
			done := make(chan error, 1)
			go func() {
				err := srv.Handshake()
				_ = sConn.Close() // unblocks the client when the server gives up
				done <- err
			}()
			clientErr := tls.Client(cConn, cfg).Handshake()
			_ = cConn.Close()
			serverErr := <-done
			if tt.wantErr {
				if clientErr == nil {
					t.Error("client accepted a server certificate from another CA")
				}
				return
			}
			if clientErr != nil || serverErr != nil {
				t.Fatalf("handshake: client %v, server %v", clientErr, serverErr)
			}
			if cn := srv.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "testcert client" {
				t.Errorf("client CN = %q", cn)
			}
		})
	}
}

// TestFiles: every file is PEM of the right type, and the server
// certificate covers the requested hosts.
func TestFiles(t *testing.T) {
	certs, err := Generate(t.TempDir(), "prw.test", "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for path, wantType := range map[string]string{
		certs.CAFile:         "CERTIFICATE",
		certs.ServerCertFile: "CERTIFICATE",
		certs.ClientCertFile: "CERTIFICATE",
		certs.ServerKeyFile:  "PRIVATE KEY",
		certs.ClientKeyFile:  "PRIVATE KEY",
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil || block.Type != wantType {
			t.Errorf("%s: want one PEM %s block", path, wantType)
		}
	}
	leaf, err := x509.ParseCertificate(certs.Server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"prw.test", "10.0.0.1"} {
		if err := leaf.VerifyHostname(host); err != nil {
			t.Errorf("server certificate: %v", err)
		}
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err == nil {
		t.Error("server certificate valid for 127.0.0.1, which was not asked for")
	}
}
