// Package testcert generates a throw-away certificate authority with a server
// and a client certificate, written as PEM files, for tests of TLS and mutual
// TLS. Nothing here is fit for production: keys are short-lived ECDSA P-256
// keys with no protection.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs is one generated certificate authority and the server and client
// certificates it signed, both as PEM files in a directory and in memory.
type Certs struct {
	// CAFile holds the CA certificate (PEM), to trust on either side.
	CAFile string
	// ServerCertFile and ServerKeyFile hold the server certificate, valid for
	// the hosts given to Generate, and its PKCS #8 key.
	ServerCertFile, ServerKeyFile string
	// ClientCertFile and ClientKeyFile hold a client certificate (extended
	// key usage client auth) and its PKCS #8 key, for mutual TLS.
	ClientCertFile, ClientKeyFile string

	// CAPool trusts the CA only.
	CAPool *x509.CertPool
	// Server and Client are the key pairs of the files above.
	Server, Client tls.Certificate
}

// DefaultHosts are the names the server certificate is valid for when
// Generate is given none: every way a test addresses a local listener.
var DefaultHosts = []string{"127.0.0.1", "::1", "localhost"}

// Generate creates a CA, a server certificate for hosts (IP addresses or DNS
// names; DefaultHosts when empty) and a client certificate, and writes them
// to dir as ca.pem, server.pem, server-key.pem, client.pem and client-key.pem.
func Generate(dir string, hosts ...string) (*Certs, error) {
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcert: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "testcert CA " + now.Format(time.RFC3339Nano)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("testcert: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("testcert: CA certificate: %w", err)
	}

	leaf := func(cn string, usage x509.ExtKeyUsage, hosts []string) (certDER []byte, key *ecdsa.PrivateKey, err error) {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("testcert: %s key: %w", cn, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		certDER, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, fmt.Errorf("testcert: %s certificate: %w", cn, err)
		}
		return certDER, key, nil
	}
	serverDER, serverKey, err := leaf("testcert server", x509.ExtKeyUsageServerAuth, hosts)
	if err != nil {
		return nil, err
	}
	clientDER, clientKey, err := leaf("testcert client", x509.ExtKeyUsageClientAuth, nil)
	if err != nil {
		return nil, err
	}

	c := &Certs{
		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerCertFile: filepath.Join(dir, "server.pem"),
		ServerKeyFile:  filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
		CAPool:         x509.NewCertPool(),
	}
	c.CAPool.AddCert(ca)
	if err := writeCert(c.CAFile, caDER); err != nil {
		return nil, err
	}
	if c.Server, err = writePair(c.ServerCertFile, c.ServerKeyFile, serverDER, serverKey); err != nil {
		return nil, err
	}
	if c.Client, err = writePair(c.ClientCertFile, c.ClientKeyFile, clientDER, clientKey); err != nil {
		return nil, err
	}
	return c, nil
}

// New is Generate into t.TempDir(), failing the test on error.
func New(t testing.TB, hosts ...string) *Certs {
	t.Helper()
	c, err := Generate(t.TempDir(), hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ServerTLSConfig returns a server configuration presenting the server
// certificate and requiring a client certificate signed by the CA.
func (c *Certs) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c.Server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.CAPool,
	}
}

// ClientTLSConfig returns a client configuration trusting the CA and
// presenting the client certificate.
func (c *Certs) ClientTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      c.CAPool,
		Certificates: []tls.Certificate{c.Client},
	}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return n
}

func writeCert(path string, der []byte) error {
	return writePEM(path, &pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) (tls.Certificate, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testcert: %s: %w", keyPath, err)
	}
	if err := writeCert(certPath, der); err != nil {
		return tls.Certificate{}, err
	}
	if err := writePEM(keyPath, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}); err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testcert: %w", err)
	}
	return pair, nil
}

func writePEM(path string, b *pem.Block) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(b), 0o600); err != nil {
		return fmt.Errorf("testcert: %w", err)
	}
	return nil
}
