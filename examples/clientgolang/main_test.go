package main

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// TestPushedEqualsGathered runs the program against an in-process receiver
// and checks that the last values it pushed are, series for series, what
// the registry itself reports (registry.Gather, rendered as the text
// exposition names its series), with job and instance from -job and
// -instance: same names, same label sets, same values.
func TestPushedEqualsGathered(t *testing.T) {
	recv := prwmetrictest.NewServer()
	defer recv.Close()
	d := newDemo()
	o := options{endpoint: recv.URL(), job: "shop-api", instance: "host-1:8080", interval: 50 * time.Millisecond, duration: 300 * time.Millisecond}
	if err := push(context.Background(), o, d, &bytes.Buffer{}); err != nil {
		t.Fatalf("push: %v", err)
	}
	if v := recv.Violations(); len(v) > 0 {
		t.Fatalf("receiver violations: %v", v)
	}

	families, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			gathered(want, f, m, map[string]string{"job": o.job, "instance": o.instance})
		}
	}
	got := map[string]float64{}
	for _, s := range recv.Series() {
		// The last value before the staleness marker Shutdown sent.
		for i := len(s.Samples) - 1; i >= 0; i-- {
			if !s.Samples[i].IsStale() {
				got[s.Labels.String()] = s.Samples[i].Value
				break
			}
		}
	}
	if len(want) < 20 {
		t.Fatalf("only %d series gathered", len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("not pushed: %s %v", k, w)
		case g != w && !(math.IsNaN(g) && math.IsNaN(w)):
			t.Errorf("%s: pushed %v, gathered %v", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("pushed, not in the registry: %s %v", k, g)
		}
	}
}

// gathered adds m's series to out, named as the text exposition names them.
func gathered(out map[string]float64, f *dto.MetricFamily, m *dto.Metric, extra map[string]string) {
	labels := prwmetrictest.Labels{}
	for k, v := range extra {
		labels[k] = v
	}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	add := func(name string, v float64, kv ...string) {
		ls := prwmetrictest.Labels{"__name__": name}
		for k, v := range labels {
			ls[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			ls[kv[i]] = kv[i+1]
		}
		out[ls.String()] = v
	}
	name := f.GetName()
	// le and quantile as a Prometheus 3 scrape stores them
	// (WithOpenMetricsFloatLabels): Go's %g, with ".0" when it has neither
	// "." nor an exponent.
	bound := func(f float64) string {
		if math.IsInf(f, +1) {
			return "+Inf"
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		return s
	}
	switch f.GetType() {
	case dto.MetricType_COUNTER:
		add(name, m.GetCounter().GetValue())
	case dto.MetricType_GAUGE:
		add(name, m.GetGauge().GetValue())
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		for _, b := range h.GetBucket() {
			add(name+"_bucket", float64(b.GetCumulativeCount()), "le", bound(b.GetUpperBound()))
		}
		add(name+"_bucket", float64(h.GetSampleCount()), "le", "+Inf")
		add(name+"_sum", h.GetSampleSum())
		add(name+"_count", float64(h.GetSampleCount()))
	case dto.MetricType_SUMMARY:
		s := m.GetSummary()
		for _, q := range s.GetQuantile() {
			add(name, q.GetValue(), "quantile", bound(q.GetQuantile()))
		}
		add(name+"_sum", s.GetSampleSum())
		add(name+"_count", float64(s.GetSampleCount()))
	default:
		panic("unexpected type " + strings.ToLower(f.GetType().String()))
	}
}

// TestFlags checks that bad flags are refused with a message naming them.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"negative duration", []string{"-duration", "-1s"}, "-duration must not be negative"},
		{"zero interval", []string{"-interval", "0"}, "-interval must be positive"},
		{"empty job", []string{"-job", ""}, "-job must not be empty"},
		{"stray argument", []string{"extra"}, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
