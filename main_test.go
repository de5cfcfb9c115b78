package prwmetric

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: an
// exporter that leaks one per export would grow inside the host service.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
