//go:build !unix

package benchmarks

import "time"

// processCPU does not know the process's CPU time on this platform; the
// benchmarks then report wall time alone.
func processCPU() (time.Duration, bool) { return 0, false }
