package prwmetric

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric/internal/testcert"
)

// TestTLSAlertIsNotRetried: a receiver that requires a client certificate
// refuses every handshake the same way, so it is tried once and nothing is
// counted as maybe stored. Over TCP, crypto/tls reports the peer's alert as
// a net.OpError "remote error" (tls.AlertError is QUIC's), which was
// retried until MaxElapsedTime, a handshake every 10 ms.
func TestTLSAlertIsNotRetried(t *testing.T) {
	certs := testcert.New(t)
	var handshakes atomic.Int32
	cfg := certs.ServerTLSConfig() // requires a client certificate
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		handshakes.Add(1)
		return nil, nil
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = cfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	exp := newExporter(t, pinned(WithEndpoint(srv.URL+"/api/v1/write"), WithLogger(discardLogger()),
		WithTLS(TLSConfig{CAFile: certs.CAFile}), // no client certificate
		WithRetry(RetryConfig{Enabled: true, InitialInterval: minRetryInterval, MaxInterval: minRetryInterval, MaxElapsedTime: 300 * time.Millisecond}))...)
	err := exp.Export(t.Context(), counterData(1))
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export = %v, want a *WriteError", err)
	}
	if we.Attempts != 1 || handshakes.Load() != 1 {
		t.Errorf("a refused client certificate (%v, %T) was tried %d times (%d handshakes), want once: it fails the same way every time",
			we.Err, errors.Unwrap(we.Err), we.Attempts, handshakes.Load())
	}
	if mayHaveArrived(we) {
		t.Errorf("mayHaveArrived(%v) = true: a request whose TLS handshake the receiver refused stored nothing", we.Err)
	}
}
