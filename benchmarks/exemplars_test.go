package benchmarks

import (
	"context"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// TestAddExemplars checks what BenchmarkExemplars measures: every exemplar
// AddExemplars made reaches the receiver, on a bucket series whose bound
// holds its value or on a counter, at the time of its sample, with a
// 32-digit trace id and a 16-digit span id.
func TestAddExemplars(t *testing.T) {
	fx := newFixture(NewWorkload(wInstruments, 20), 0)
	want := AddExemplars(fx.rm)
	if want == 0 {
		t.Fatal("AddExemplars added none")
	}
	srv := NewCaptureServer()
	t.Cleanup(srv.Close)
	exp := newPrwmetric(t, srv.URL+"/api/v1/write")
	for range 2 { // the second export moves the exemplars' time too
		srv.Bodies()
		SetTime(fx.rm, fx.w.Time())
		if err := exp.Export(context.Background(), fx.rm); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for _, body := range srv.Bodies() {
		raw, err := snappy.Decode(nil, body)
		if err != nil {
			t.Fatal(err)
		}
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		for _, ts := range req.Timeseries {
			if len(ts.Exemplars) == 0 {
				continue
			}
			labels := map[string]string{}
			for _, l := range ts.Labels {
				labels[l.Name] = l.Value
			}
			if len(ts.Exemplars) != 1 || len(ts.Samples) != 1 {
				t.Fatalf("%v: %d exemplars and %d samples, want one each", labels, len(ts.Exemplars), len(ts.Samples))
			}
			e := ts.Exemplars[0]
			got++
			if e.Timestamp != ts.Samples[0].Timestamp {
				t.Errorf("%v: exemplar at %d, sample at %d", labels, e.Timestamp, ts.Samples[0].Timestamp)
			}
			if le, ok := labels["le"]; ok {
				bound, err := strconv.ParseFloat(le, 64)
				if err != nil || e.Value > bound {
					t.Errorf("%v: exemplar value %g outside the bucket", labels, e.Value)
				}
			} else if name := labels["__name__"]; len(name) < 6 || name[len(name)-6:] != "_total" {
				t.Errorf("%v: an exemplar on a series neither bucket nor counter", labels)
			}
			if len(e.Labels) != 2 || e.Labels[0].Name != "span_id" || e.Labels[1].Name != "trace_id" ||
				!isHex(e.Labels[0].Value, 16) || !isHex(e.Labels[1].Value, 32) {
				t.Errorf("%v: exemplar labels %v, want a 16-digit span_id and a 32-digit trace_id", labels, e.Labels)
			}
		}
	}
	if got != want {
		t.Errorf("the receiver got %d exemplars, want the %d added", got, want)
	}
}

func isHex(s string, n int) bool {
	_, err := hex.DecodeString(s)
	return len(s) == n && err == nil
}
