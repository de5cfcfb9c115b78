package prwmetric

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestWriteErrorHints: a refusal that points at the configuration says
// which setting to check, in the error and in the warning, as New's
// errors do.
func TestWriteErrorHints(t *testing.T) {
	for _, tt := range []struct {
		status int
		want   string // "" means no hint
	}{
		{status: http.StatusUnauthorized, want: "check the credentials: WithBasicAuth"},
		{status: http.StatusForbidden, want: "check the credentials"},
		{status: http.StatusNotFound, want: "/api/v1/push for Mimir and Cortex"},
		{status: http.StatusMethodNotAllowed, want: "check the endpoint's path"},
		{status: http.StatusRequestEntityTooLarge, want: "lower WithMaxRequestBytes"},
		{status: http.StatusUnsupportedMediaType, want: "check WithProtocol"},
		{status: http.StatusBadRequest},
		{status: http.StatusInternalServerError},
	} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			endpoint, _ := newReceiver(t, tt.status, "refused")
			logger, logs := newLogCapture()
			exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger))...)
			err := exp.Export(t.Context(), counterData(1))
			var we *WriteError
			if !errors.As(err, &we) || we.StatusCode != tt.status {
				t.Fatalf("Export = %v, want a *WriteError with status %d", err, tt.status)
			}
			records := logs.all()
			if len(records) != 1 {
				t.Fatalf("%d log records, want 1 warning", len(records))
			}
			hint := records[0].Attrs["hint"]
			if tt.want == "" {
				if strings.Contains(err.Error(), "check") || hint != "" {
					t.Errorf("error %q / hint %q, want no hint for %d", err, hint, tt.status)
				}
				return
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(hint, tt.want) {
				t.Errorf("error %q, hint %q; want both to say %q", err, hint, tt.want)
			}
		})
	}
}
