//go:build race

package prwmetric

// Under the race detector an export costs five times as much or more, so
// TestSoak runs 2 000 exports (about 10 s) instead of 10 000 (about 50 s on
// two busy cores); run it without -race for the full soak.
func init() { raceEnabled = true }
