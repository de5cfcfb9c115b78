package prwmetric

import (
	"context"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestStreamCutsDuringConversion: with Remote Write 1.0 an export's requests
// are cut, and handed to the workers, while the conversion still runs: after
// the conversion, before the rest is published, requests are already out.
// With 2.0, or WithInitialZero, nothing is cut before the conversion ends.
func TestStreamCutsDuringConversion(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		stream bool
	}{
		{"1.0", nil, true},
		{"1.0 zstd", []Option{WithCompression(CompressionZstd)}, true},
		{"2.0", []Option{WithProtocol(ProtocolV2)}, false},
		{"initial zero", []Option{WithInitialZero()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			t.Cleanup(srv.Close)
			exp := newTestExporter(t, srv, append([]Option{WithMaxRequestBytes(4096)}, tt.opts...)...)
			const series = 2000
			at := time.UnixMilli(1_700_000_000_000)
			for k := range 2 { // a first export (new series) and a steady one
				rm := manyGauges(series, at.Add(time.Duration(k)*time.Minute))
				b := &exp.batch
				st := exp.startStream(context.Background(), b)
				if (st != nil) != tt.stream {
					t.Fatalf("export %d: streams %v, want %v", k, st != nil, tt.stream)
				}
				if st == nil {
					continue
				}
				ok, convErr := exp.convertSafely(rm, b)
				if !ok || convErr != nil {
					t.Fatalf("export %d: conversion: %v", k, convErr)
				}
				st.run.p.cutMu.Lock()
				early := len(st.run.p.items)
				st.run.p.cutMu.Unlock()
				delivered, err := exp.finishStream(context.Background(), b, st, true)
				if err != nil {
					t.Fatalf("export %d: %v", k, err)
				}
				exp.series.markDelivered(b, delivered)
				total := len(st.run.p.items)
				b.reset()
				// 2000 series of about 60 bytes: some 30 requests of 4 kB,
				// most cut during the conversion (which looks at the cut
				// every streamStep series).
				if early < total/2 || total < 20 {
					t.Errorf("export %d: %d of %d requests cut during the conversion", k, early, total)
				}
				if got := covered(delivered); got != series {
					t.Errorf("export %d: %d series delivered, want %d", k, got, series)
				}
			}
			if tt.stream {
				samples, err := srv.Samples("load", map[string]string{"i": "1999"})
				if err != nil {
					t.Fatal(err)
				}
				if len(samples) != 2 || samples[1].Value != 1999 || samples[1].Timestamp != at.Add(time.Minute).UnixMilli() {
					t.Errorf("samples of the last series: %+v", samples)
				}
				if v := srv.Violations(); len(v) > 0 {
					t.Errorf("receiver violations: %v", v)
				}
			}
		})
	}
}

// TestStreamAfterFailedConversion: when the conversion fails part-way
// (it panicked), what it had already cut may still go, but nothing more is
// cut or sent; what went is exactly what is reported delivered.
func TestStreamAfterFailedConversion(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	exp := newTestExporter(t, srv, WithMaxRequestBytes(4096))
	b := &exp.batch
	st := exp.startStream(context.Background(), b)
	if st == nil {
		t.Fatal("a 1.0 export does not stream")
	}
	ok, err := exp.convertSafely(manyGauges(2000, time.UnixMilli(1_700_000_000_000)), b)
	if !ok || err != nil {
		t.Fatalf("conversion: %v", err)
	}
	st.run.p.cutMu.Lock()
	early := len(st.run.p.items)
	st.run.p.cutMu.Unlock()
	// As if the conversion had failed here: the rest of the batch is
	// never cut.
	delivered, err := exp.finishStream(context.Background(), b, st, false)
	if err != nil {
		t.Fatalf("finishStream: %v", err)
	}
	if n := len(st.run.p.items); n != early {
		t.Errorf("%d requests cut after the failure (%d before)", n-early, early)
	}
	reqs := srv.Requests()
	if len(reqs) > early {
		t.Errorf("%d requests sent, only %d were cut", len(reqs), early)
	}
	got := 0
	for _, r := range reqs {
		got += len(r.V1.Timeseries)
	}
	if covered(delivered) != got {
		t.Errorf("%d records reported delivered, the receiver got %d series", covered(delivered), got)
	}
	if covered(delivered) >= len(b.records) {
		t.Errorf("all %d records delivered: the rest of the batch was sent", len(b.records))
	}
	b.reset()
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("receiver violations: %v", v)
	}
}
