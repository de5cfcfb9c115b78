package prwmetric

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric/prwmetrictest"
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

// TestWrittenCountsOfA400: Prometheus' 2.0 handler commits what it can of a
// request before it answers 400, and says how much in the written counts
// (storage/remote/write_handler.go; its own sender counts sent − written
// as failed). The error counts those series delivered, not dropped; and as
// the counts do not say which they are, every series of the request may be
// held: one that vanishes next is ended with a staleness marker.
func TestWrittenCountsOfA400(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	srv.RespondWith(1, partialCommit400(2))
	exp := newTestExporter(t, srv, WithProtocol(ProtocolV2), WithoutMetadata())
	at := time.UnixMilli(1_700_000_000_000)
	err := exp.Export(context.Background(), manyGauges(3, at))
	var we *WriteError
	if !errors.As(err, &we) || we.Series != 1 || we.Delivered != 2 || !strings.Contains(err.Error(), "(1 series dropped)") {
		t.Fatalf("Export = %v, want a *WriteError of 1 series dropped and 2 delivered: the receiver wrote 2 of the 3 samples", err)
	}
	// Series i=2 is gone from the next export.
	if err := exp.Export(context.Background(), manyGauges(2, at.Add(time.Minute))); err != nil {
		t.Fatalf("second export: %v", err)
	}
	got, err := srv.Samples("load", map[string]string{"i": "2"})
	if err != nil || len(got) != 1 || !got[0].IsStale() {
		t.Errorf("series i=2 after it vanished: %+v, %v; want its staleness marker", got, err)
	}
}
