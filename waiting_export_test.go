package prwmetric

import (
	"context"
	"strings"
	"testing"
)

// TestExportWaitingForAnotherIsLogged: an export whose context ends while
// another export runs fails, and, with WithLogger, its warning says so, as
// every other failure's does; it used to be returned only.
func TestExportWaitingForAnotherIsLogged(t *testing.T) {
	endpoint, _, entered, release, _ := holdingReceiver(t)
	logger, logs := newLogCapture()
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(logger))...)
	first := make(chan error, 1)
	go func() { first <- exp.Export(context.Background(), counterData(1)) }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := exp.Export(ctx, counterData(2))
	close(release)
	if err == nil || !strings.Contains(err.Error(), "waiting for the previous export") {
		t.Fatalf("Export while another runs = %v, want it to say it waited for the previous export", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first Export: %v", err)
	}
	var warned bool
	for _, r := range logs.all() {
		warned = warned || strings.Contains(r.Message, "waiting for the previous export")
	}
	if !warned {
		t.Errorf("no warning about the export that waited; logged: %v", logs.all())
	}
}
