//go:build unix

package benchmarks

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time, user and system, that this process has
// used so far, and whether the platform tells. The receiver runs in a
// process of its own, so this is the exporter's side alone: its goroutines,
// the garbage collector and the HTTP client.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
