package prwmetric

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// TLSConfig configures TLS from files, with the meaning of Prometheus'
// tls_config. All fields are optional.
type TLSConfig struct {
	// CAFile is a PEM file of the certificate authorities to trust instead of
	// the system roots.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and its key for
	// mutual TLS. Set both or neither.
	CertFile string
	KeyFile  string
	// ServerName is the name to verify the server's certificate against, when
	// it differs from the endpoint's host.
	ServerName string
	// InsecureSkipVerify disables verification of the server's certificate.
	// Only for tests: it makes the connection open to interception.
	InsecureSkipVerify bool
}

// tlsNames are the names New's errors give a TLSConfig's source and files:
// the option's fields, or the environment variables.
type tlsNames struct{ source, caFile, certFile, keyFile string }

var (
	tlsOptionNames      = tlsNames{"WithTLS", "CAFile", "CertFile", "KeyFile"}
	tlsEnvironmentNames = tlsNames{"environment", envCertificate, envClientCertificate, envClientKey}
)

// build reads the files and returns the client TLS configuration; errors
// name the files as n does.
func (t TLSConfig) build(n tlsNames) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user's explicit choice, documented as test-only
	}
	if t.CAFile != "" {
		pemText, err := readRegularFileMax(t.CAFile, maxTLSFileBytes)
		if err != nil {
			return nil, fmt.Errorf("prwmetric: %s: reading %s %q: %w", n.source, n.caFile, t.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(pemText)) {
			return nil, fmt.Errorf("prwmetric: %s: %s %q holds no PEM certificate", n.source, n.caFile, t.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return nil, fmt.Errorf("prwmetric: %s: %s is set without %s: mutual TLS needs both", n.source, n.certFile, n.keyFile)
	case t.CertFile == "" && t.KeyFile != "":
		return nil, fmt.Errorf("prwmetric: %s: %s is set without %s: mutual TLS needs both", n.source, n.keyFile, n.certFile)
	case t.CertFile != "":
		var pems [2][]byte
		for i, f := range []struct{ field, path string }{{n.certFile, t.CertFile}, {n.keyFile, t.KeyFile}} {
			data, err := readPEMFile(f.path)
			if err != nil {
				return nil, fmt.Errorf("prwmetric: %s: %s: %w", n.source, f.field, err)
			}
			pems[i] = data
		}
		cert, err := tls.X509KeyPair(pems[0], pems[1])
		if err != nil {
			// The crypto/tls error names no key material, only what is wrong.
			return nil, fmt.Errorf("prwmetric: %s: loading the client certificate %q and key %q: %w", n.source, t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// readPEMFile reads a PEM file, bounded, with a clearer error than
// crypto/tls for the common mistakes: a wrong path, a FIFO or device, a DER
// or empty file.
func readPEMFile(path string) ([]byte, error) {
	data, err := readRegularFileMax(path, maxTLSFileBytes)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", path, err)
	}
	if block, _ := pem.Decode([]byte(data)); block == nil {
		return nil, fmt.Errorf("%q is not a PEM file", path)
	}
	return []byte(data), nil
}
