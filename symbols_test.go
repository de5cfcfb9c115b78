package prwmetric

import (
	"bytes"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestSymbolTableRebuild: when most of the symbol table is strings no
// request uses any more (series gone), it is rebuilt, and later requests
// are still exactly the reference's; so are those of series evicted and
// back again.
func TestSymbolTableRebuild(t *testing.T) {
	c, _ := convConverter(t, WithoutTargetInfo(), WithoutScopeInfo(), WithoutMetadata())
	gauge := func(from, n int) *metricdata.ResourceMetrics {
		dps := make([]metricdata.DataPoint[int64], n)
		for i := range dps {
			dps[i] = convPoint(int64(i), attribute.Int("id", from+i))
		}
		return convRM(metricdata.Metrics{Name: "g", Data: metricdata.Gauge[int64]{DataPoints: dps}})
	}
	sc := newSeriesCache(c, false)
	sc.collectV2 = true
	var b batch
	export := func(rm *metricdata.ResourceMetrics) {
		t.Helper()
		b.reset()
		_ = sc.convert(rm, &b, time.Now().UnixMilli())
		got := cacheRequestsV2(sc, &b, 1<<30, 1<<40)
		want, _ := referenceV2(c, rm)
		raw, err := want.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !bytes.Equal(got[0], raw) {
			t.Fatalf("request differs from the reference")
		}
	}
	export(gauge(0, 70000)) // 70 000 distinct values, never delivered
	epoch := sc.symbols.epoch
	export(gauge(1000000, 10)) // the 70 000 are evicted, the table rebuilt
	if sc.symbols.epoch == epoch {
		t.Fatalf("table of %d strings not rebuilt for a request of 10 series", len(sc.symbols.strs))
	}
	export(gauge(1000000, 10))
	export(gauge(0, 10)) // evicted series back again
	if n := len(sc.symbols.strs); n > 100 {
		t.Errorf("table holds %d strings for 20 series", n)
	}
	if n := len(sc.v2series) - len(sc.v2free); n > 21 {
		t.Errorf("%d series states in use for 20 series", n)
	}
}
