package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestMain fails the tests if run leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The series names the five instruments must arrive under, per the naming
// rules of SPEC §3 (units as words, _total, _ratio).
const (
	counterName   = "demo_requests_total"
	upDownName    = "demo_queue_length"
	gaugeName     = "demo_cpu_utilization_ratio"
	histogramName = "demo_request_duration_seconds"
	nativeName    = "demo_payload_size_bytes"
)

// The durations below are not multiples of the intervals, so the end of
// the run doesn't coincide with a periodic export.

func TestRunEmbeddedReceiver(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-duration", "2200ms", "-interval", "500ms"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	// Each instrument shows up as a row of its kind in the table.
	for _, want := range []string{
		"in-process receiver at http://127.0.0.1:",
		counterName + `{method="`,
		upDownName + `{queue="jobs"}`,
		gaugeName + `{cpu="0"}`,
		histogramName + `{method="`,
		nativeName,
		"native histogram",
		"Stopped after",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	checkCleanOutput(t, got)
}

// checkCleanOutput fails on export errors and on rules the receiver
// flagged, with one exception that only a slow machine produces: Shutdown
// cancels a periodic export in flight (the demo says "interrupted by
// shutdown"); that request may still reach the receiver after the final
// export and be flagged as out of order. Its data is resent anyway.
func checkCleanOutput(t *testing.T, got string) {
	t.Helper()
	interrupted := strings.Contains(got, "interrupted by shutdown")
	for _, line := range strings.Split(got, "\n") {
		switch {
		case strings.Contains(line, "FAILED"), strings.Contains(line, "level=ERROR"):
			t.Errorf("export failed: %s", line)
		case strings.Contains(line, "level=WARN") && !(interrupted && strings.Contains(line, `error="context canceled"`)):
			t.Errorf("unexpected warning: %s", line)
		case strings.HasPrefix(line, "receiver flagged") && !(interrupted && strings.Contains(line, "older than the previous")):
			t.Errorf("receiver flagged the demo's requests: %s", line)
		}
	}
}

// TestRunEndpoint sends to an external receiver and checks, series by
// series, what it got, plus the headers and auth given as flags.
func TestRunEndpoint(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	var out bytes.Buffer
	args := []string{
		"-endpoint", srv.URL(), "-duration", "1100ms", "-interval", "250ms",
		"-header", "X-Scope-OrgID=demo", "-header", "X-Extra = 1",
		"-basic-auth", "alice:s3cret:with-colon",
	}
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "data points sent") {
		t.Errorf("output does not report exports:\n%s", out.String())
	}
	checkCleanOutput(t, out.String())
	if v := srv.Violations(); len(v) != 0 && !strings.Contains(out.String(), "interrupted by shutdown") {
		t.Fatalf("the receiver flagged the demo's requests: %q", v)
	}
	reqs := srv.Requests()
	if len(reqs) == 0 {
		t.Fatal("no request arrived")
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret:with-colon"))
	for _, r := range reqs {
		if r.Header.Get("X-Scope-OrgID") != "demo" || r.Header.Get("X-Extra") != "1" || r.Header.Get("Authorization") != wantAuth {
			t.Fatalf("request %d headers = %v", r.Seq, r.Header)
		}
	}

	// The load is random, so pick whichever attribute values arrived.
	byName := map[string]prwmetrictest.Series{}
	for _, s := range srv.Series() {
		byName[s.Name()] = s
	}
	for _, name := range []string{counterName, upDownName, gaugeName, histogramName + "_count"} {
		s, ok := byName[name]
		if !ok {
			t.Errorf("no series %s arrived; got %v", name, keys(byName))
			continue
		}
		if len(s.Samples) == 0 || s.Samples[0].Value < 0 {
			t.Errorf("series %s: samples %v", s.Labels, s.Samples)
		}
	}
	if s, ok := byName[histogramName+"_count"]; ok {
		h, err := srv.ClassicHistogram(histogramName, map[string]string{"method": s.Labels["method"]})
		if err != nil {
			t.Error(err)
		} else if len(h.Buckets) != 9 { // 8 explicit bounds + +Inf
			t.Errorf("classic histogram has %d buckets, want 9: %+v", len(h.Buckets), h.Buckets)
		}
	}
	hs, err := srv.NativeHistograms(nativeName, nil)
	if err != nil {
		t.Fatal(err)
	} else if len(hs) == 0 || hs[0].Histogram.Count == 0 {
		t.Fatalf("native histogram empty: %+v", hs)
	}

	// The final export carries everything recorded: the totals the demo
	// prints are what the receiver holds last.
	rec := parseRecorded(t, out.String())
	var requests float64
	for _, s := range srv.Series() {
		if s.Name() == counterName {
			v, _ := latest(s.Samples)
			requests += v
		}
	}
	if requests != float64(rec["requests"]) {
		t.Errorf("receiver holds %v requests in all, the demo recorded %d", requests, rec["requests"])
	}
	last := hs[len(hs)-1]
	for last.IsStale() && len(hs) > 1 {
		hs = hs[:len(hs)-1]
		last = hs[len(hs)-1]
	}
	if last.Histogram.Count != float64(rec["payloads"]) || last.Histogram.Sum != float64(rec["payload_bytes"]) {
		t.Errorf("native histogram ends with count %v sum %v, the demo recorded %d payloads of %d bytes",
			last.Histogram.Count, last.Histogram.Sum, rec["payloads"], rec["payload_bytes"])
	}
}

// parseRecorded returns the integer totals of the demo's "Recorded:" line.
func parseRecorded(t *testing.T, out string) map[string]int64 {
	t.Helper()
	_, line, ok := strings.Cut(out, "\nRecorded: ")
	if !ok {
		t.Fatalf("output lacks the Recorded: line:\n%s", out)
	}
	line, _, _ = strings.Cut(line, "\n")
	got := map[string]int64{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			got[k] = n
		}
	}
	for _, k := range []string{"requests", "queue", "durations", "payloads", "payload_bytes"} {
		if _, ok := got[k]; !ok {
			t.Fatalf("Recorded: line lacks %s=<integer>: %q", k, line)
		}
	}
	return got
}

// TestRunWithoutNativeHistograms runs against a receiver that refuses
// native histograms, as Prometheus 2.x does by default: one warning, every
// export succeeds, and the payload histogram arrives as a classic one.
func TestRunWithoutNativeHistograms(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithoutNativeHistograms())
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-endpoint", srv.URL(), "-duration", "700ms", "-interval", "200ms"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "refuses native histograms"); n != 1 {
		t.Errorf("%d warnings about native histograms, want 1:\n%s", n, out.String())
	}
	if hs, _ := srv.NativeHistograms(nativeName, nil); len(hs) != 0 {
		t.Errorf("%d native histograms stored by a receiver that refuses them", len(hs))
	}
	rec := parseRecorded(t, out.String())
	// Shutdown marks every series stale: compare the last real values.
	last := func(name string, match map[string]string) float64 {
		t.Helper()
		samples, err := srv.Samples(name, match)
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		v, _ := latest(samples)
		return v
	}
	count, sum := last(nativeName+"_count", nil), last(nativeName+"_sum", nil)
	inf := last(nativeName+"_bucket", map[string]string{"le": "+Inf"})
	if count != float64(rec["payloads"]) || sum != float64(rec["payload_bytes"]) || inf != count {
		t.Errorf("classic histogram count %v sum %v +Inf bucket %v, the demo recorded %d payloads of %d bytes", count, sum, inf, rec["payloads"], rec["payload_bytes"])
	}
}

// TestRunFailedExport: an export the receiver refuses makes run return an
// error (exit status 1) although the later ones succeed.
func TestRunFailedExport(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	srv.RespondWith(1, prwmetrictest.Response{Status: 400, Body: "bad data"})
	var out bytes.Buffer
	err := run(context.Background(), []string{"-endpoint", srv.URL(), "-duration", "700ms", "-interval", "200ms"}, &out)
	if err == nil || !strings.Contains(err.Error(), "1 of ") || !strings.Contains(err.Error(), "exports failed") {
		t.Fatalf("run = %v, want \"1 of N exports failed\"\n%s", err, out.String())
	}
}

func keys(m map[string]prwmetrictest.Series) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestRunTLSBearer(t *testing.T) {
	srv := prwmetrictest.NewUnstartedServer()
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	args := []string{"-endpoint", srv.URL(), "-tls-ca", ca, "-bearer-token", "tok123", "-duration", "700ms", "-interval", "200ms"}
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	reqs := srv.Requests()
	if len(reqs) == 0 {
		t.Fatalf("no request arrived over TLS:\n%s", out.String())
	}
	if got := reqs[0].Header.Get("Authorization"); got != "Bearer tok123" {
		t.Errorf("Authorization = %q, want the bearer token", got)
	}
	if strings.Contains(out.String(), "tok123") {
		t.Errorf("the token leaked into the output:\n%s", out.String())
	}
}

// TestRunStopsOnCancel is what Ctrl-C does: signal.NotifyContext cancels
// the context, and run must make its last export and return nil.
func TestRunStopsOnCancel(t *testing.T) {
	srv := prwmetrictest.NewServer()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-endpoint", srv.URL(), "-interval", "100ms"}, &out) }()

	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := srv.WaitForRequests(wait, 1); err != nil {
		t.Fatal(err)
	}
	n := srv.RequestCount()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-wait.Done():
		t.Fatal("run did not return after its context was cancelled")
	}
	if srv.RequestCount() <= n {
		t.Errorf("no final export at shutdown: %d requests before cancel, %d after", n, srv.RequestCount())
	}
}

func TestRunFlagErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"header without =", []string{"-header", "X-Foo"}, "want K=V"},
		{"basic auth without colon", []string{"-basic-auth", "alice"}, "-basic-auth wants user:password"},
		{"TLS without endpoint", []string{"-tls-ca", "ca.pem"}, "need -endpoint"},
		{"zero interval", []string{"-interval", "0s"}, "-interval must be positive"},
		{"negative duration", []string{"-duration", "-1s"}, "-duration must not be negative"},
		{"positional argument", []string{"extra"}, "unexpected arguments"},
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
		{"bad endpoint", []string{"-endpoint", "ftp://x"}, "ftp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tt.args, &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
