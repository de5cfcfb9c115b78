package prwmetric

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric/prwmetrictest"
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

// TestV2SymbolsOutliveExemplarBytes: with Remote Write 2.0, an exemplar's
// label strings, read from the batch (whose bytes the next export
// overwrites), enter the exporter-wide symbol table as copies
// (symbolTable.idCopy): a series label equal to one (here an attribute a
// view filters out of one metric, so it rides on its exemplars, and that
// another keeps) keeps its value export after export.
func TestV2SymbolsOutliveExemplarBytes(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	exp := newExporter(t, WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithoutStaleMarkers())
	data := func(k int, exemplarUser string) *metricdata.ResourceMetrics {
		at := convTime.Add(time.Duration(k) * 15 * time.Second)
		counter := metricdata.DataPoint[int64]{StartTime: convStart, Time: at, Value: int64(k)}
		counter.Exemplars = []metricdata.Exemplar[int64]{convExemplar[int64](1, at, attribute.String("user", exemplarUser))}
		gauge := metricdata.DataPoint[float64]{Time: at, Value: float64(k), Attributes: attribute.NewSet(attribute.String("user", "alice01"))}
		return convRM(
			metricdata.Metrics{Name: "logins", Data: convSum(true, counter)},
			metricdata.Metrics{Name: "sessions", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{gauge}}},
		)
	}
	for k, user := range []string{"alice01", "mallory", "trudy42"} {
		rm := data(k+1, user)
		before := len(srv.Requests())
		if err := exp.Export(context.Background(), rm); err != nil {
			t.Fatalf("export %d: %v", k+1, err)
		}
		for _, s := range v2Received(t, srv.Requests()[before:], false) {
			if s.Labels[0].Value != "sessions" {
				continue
			}
			for _, l := range s.Labels {
				if l.Name == "user" && l.Value != "alice01" {
					t.Errorf("export %d: sessions sent with user=%q, want alice01 (the exemplar of export %d has user=%q)", k+1, l.Value, k+1, user)
				}
			}
		}
	}
}
