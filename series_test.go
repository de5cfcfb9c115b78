package prwmetric

import (
	"testing"
	"unsafe"
)

// TestSeriesStateSize guards the per-series memory of 1.0 exports (the
// 1 000 000-series target): a seriesState fits a 32-byte allocation, so
// what 2.0 keeps per series lives aside, in seriesCache.v2series.
func TestSeriesStateSize(t *testing.T) {
	if n := unsafe.Sizeof(seriesState{}); n > 32 {
		t.Errorf("seriesState is %d bytes, want at most 32", n)
	}
}
