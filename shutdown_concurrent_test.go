package prwmetric

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// TestConcurrentShutdownHonoursItsContext: a second Shutdown, called while
// the first waits for a running export, returns when its own context ends
// (Shutdown works "within ctx"); it used to wait for the first one (a
// sync.Once), up to the whole timeout. Once the first has finished, a
// later Shutdown returns at once.
func TestConcurrentShutdownHonoursItsContext(t *testing.T) {
	endpoint, _, entered, release, _ := holdingReceiver(t)
	exp := newExporter(t, pinned(WithEndpoint(endpoint), WithLogger(discardLogger()))...)
	exported := make(chan error, 1)
	go func() { exported <- exp.Export(context.Background(), counterData(1)) }()
	<-entered
	first := make(chan error, 1)
	go func() { first <- exp.Shutdown(context.Background()) }()
	// The first Shutdown sets isShutdown, then waits for the held export.
	for i := 0; !exp.isShutdown.Load(); i++ {
		if i > 1e7 {
			close(release)
			t.Fatal("the first Shutdown never started")
		}
		runtime.Gosched()
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	second := make(chan error, 1)
	go func() { second <- exp.Shutdown(ctx) }()
	returned := false
	select {
	case err := <-second:
		returned = true
		if !errors.Is(err, context.Canceled) {
			t.Errorf("second Shutdown = %v, want its context's error", err)
		}
	case <-time.After(10 * time.Second): // a bound on a hang, not a wait
		t.Error("second Shutdown still blocked 10 s after its context ended: it waits for the first one")
	}
	select {
	case <-first:
		t.Error("the first Shutdown returned before the export it waits for")
	default:
	}

	close(release)
	if err := <-exported; err != nil {
		t.Fatalf("Export: %v", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first Shutdown: %v", err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after the first finished = %v, want nil", err)
	}
	if !returned {
		<-second
	}
}
