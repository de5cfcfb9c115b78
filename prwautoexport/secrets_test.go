package prwautoexport

import (
	"context"
	"strings"
	"testing"
)

// TestEndpointPasswordNeverInError: NewMetricReader's error, which a
// program logs, never quotes the password of the endpoint in the
// environment, also one holding '/' (as base64 tokens do).
func TestEndpointPasswordNeverInError(t *testing.T) {
	const password = "glc_S3cr/etTok+en="
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT", "https://123456:"+password+"@prometheus.example/api/prom/push")
	r, err := NewMetricReader(context.Background())
	if err == nil {
		_ = r.Shutdown(context.Background())
		t.Fatal("NewMetricReader succeeded, want an error")
	}
	if strings.Contains(err.Error(), "etTok+en=") {
		t.Errorf("error quotes the endpoint's password: %v", err)
	}
}
