package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// v2Data has every kind of series a 2.0 request carries: a counter with
// exemplars (start time), a gauge (none), a classic histogram with bucket
// exemplars, a native histogram, a summary.
func v2Data() *metricdata.ResourceMetrics {
	counter := convPoint[int64](10, attribute.String("method", "GET"))
	counter.Exemplars = []metricdata.Exemplar[int64]{
		convExemplar[int64](3, convTime, attribute.String("user", "u1")),
		convExemplar[int64](4, convLater),
	}
	hist := convHistPoint[float64](7, []float64{1, 5}, []uint64{1, 1, 1})
	hist.Exemplars = []metricdata.Exemplar[float64]{convExemplar(0.5, convTime), convExemplar(9.0, convLater)}
	exp := convExpPoint(0, 1, metricdata.ExponentialBucket{Offset: 0, Counts: []uint64{1, 2}}, metricdata.ExponentialBucket{}, 4.5)
	return convRM(
		metricdata.Metrics{Name: "requests", Description: "Requests served.", Unit: "{request}", Data: convSum(true, counter)},
		metricdata.Metrics{Name: "temperature", Description: "Room temperature.", Unit: "Cel", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{convPoint(21.5)}}},
		metricdata.Metrics{Name: "latency", Unit: "s", Data: convHist(hist)},
		metricdata.Metrics{Name: "size", Unit: "By", Data: convExpHist(exp)},
		metricdata.Metrics{Name: "rtt", Data: metricdata.Summary{DataPoints: []metricdata.SummaryDataPoint{{
			StartTime: convStart, Time: convTime, Count: 2, Sum: 3,
			QuantileValues: []metricdata.QuantileValue{{Quantile: 0.5, Value: 1}, {Quantile: 1, Value: 2}},
		}}}},
	)
}

// v2Want is what the receiver should decode from the exporter's 2.0
// requests for rm, by the reference.
func v2Want(t *testing.T, rm *metricdata.ResourceMetrics, opts ...Option) []v2Series {
	t.Helper()
	c, _ := convConverter(t, opts...)
	want, err := referenceV2(c, rm)
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	return resolveV2(t, want)
}

// v2Received decodes the series of 2.0 requests that broke no rule; split
// allows a classic histogram's series to be split between requests.
func v2Received(t *testing.T, reqs []prwmetrictest.Request, split bool) []v2Series {
	t.Helper()
	var all []v2Series
	for _, r := range reqs {
		if r.Protocol != prwmetrictest.ProtocolV2 || r.V2 == nil {
			t.Fatalf("request %d: protocol %v, want 2.0", r.Seq, r.Protocol)
		}
		for _, v := range r.Violations {
			if !split || !strings.Contains(v, `no le="+Inf" bucket`) {
				t.Errorf("request %d broke a rule: %s", r.Seq, v)
			}
		}
		all = append(all, resolveV2(t, r.V2)...)
	}
	return all
}

func TestProtocolV2Export(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	logger, logs := newLogCapture()
	exp := newExporter(t, WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithLogger(logger), WithoutStaleMarkers())
	rm := v2Data()
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	h := reqs[0].Header
	if h.Get("Content-Type") != contentTypeV2 || h.Get("X-Prometheus-Remote-Write-Version") != versionV2 || h.Get("Content-Encoding") != "snappy" {
		t.Errorf("headers %v", h)
	}
	got := v2Received(t, reqs, false)
	if diff := cmp.Diff(v2Want(t, rm), got, convCmpOpts); diff != "" {
		t.Errorf("series (-reference +received):\n%s", diff)
	}
	// Independently of the reference: start times on counters,
	// histograms and summaries only, and each series' family metadata.
	type meta struct {
		typ        writev2.Metadata_MetricType
		help, unit string
		start      bool
	}
	counter, histogram, summary := writev2.Metadata_METRIC_TYPE_COUNTER, writev2.Metadata_METRIC_TYPE_HISTOGRAM, writev2.Metadata_METRIC_TYPE_SUMMARY
	wantMeta := map[string]meta{
		"requests_total":         {counter, "Requests served.", "", true},
		"temperature_celsius":    {writev2.Metadata_METRIC_TYPE_GAUGE, "Room temperature.", "celsius", false},
		"latency_seconds_bucket": {histogram, "", "seconds", true},
		"latency_seconds_sum":    {histogram, "", "seconds", true},
		"latency_seconds_count":  {histogram, "", "seconds", true},
		"size_bytes":             {histogram, "", "bytes", true},
		"rtt":                    {summary, "", "", true},
		"rtt_sum":                {summary, "", "", true},
		"rtt_count":              {summary, "", "", true},
		"target_info":            {writev2.Metadata_METRIC_TYPE_GAUGE, targetInfoHelp, "", false},
	}
	seen := map[string]bool{}
	for _, s := range got {
		name := s.Labels[0].Value
		w, ok := wantMeta[name]
		if !ok {
			t.Errorf("unexpected series %s", name)
			continue
		}
		seen[name] = true
		var start int64
		if len(s.Samples) > 0 {
			start = s.Samples[0].StartTimestamp
		} else {
			start = s.Histograms[0].StartTimestamp
		}
		if wantStart := map[bool]int64{true: convStart.UnixMilli()}[w.start]; start != wantStart {
			t.Errorf("series %s: start %d, want %d", name, start, wantStart)
		}
		if s.Type != w.typ || s.Help != w.help || s.Unit != w.unit {
			t.Errorf("series %s: metadata %v %q %q, want %v %q %q", name, s.Type, s.Help, s.Unit, w.typ, w.help, w.unit)
		}
	}
	if len(seen) != len(wantMeta) {
		t.Errorf("series names %v, want those of %v", seen, wantMeta)
	}

	// The SDK repeats a cumulative point's exemplars: the receiver has
	// them, so they are not sent again (2.0 receivers count them as not
	// written), and no partial write is reported.
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("second Export: %v", err)
	}
	second := srv.Requests()[1]
	for _, ts := range second.V2.Timeseries {
		if len(ts.Exemplars) > 0 {
			t.Errorf("second export repeats exemplars: %+v", ts.Exemplars)
		}
	}
	if len(logs.all()) != 0 {
		t.Errorf("warnings: %v", logs.all())
	}
}

func TestProtocolV2Split(t *testing.T) {
	// Lenient: a histogram's series may be split between requests.
	srv := prwmetrictest.NewServer(prwmetrictest.WithLenient())
	t.Cleanup(srv.Close)
	exp := newExporter(t, WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithMaxRequestBytes(400), WithoutStaleMarkers())
	rm := v2Data()
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) < 3 {
		t.Fatalf("%d requests, want several of at most 400 bytes", len(reqs))
	}
	for _, r := range reqs {
		raw, err := r.V2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(r.V2.Timeseries) > 1 && len(raw) > 400 {
			t.Errorf("request %d: %d series in %d bytes", r.Seq, len(r.V2.Timeseries), len(raw))
		}
	}
	want := v2Want(t, rm)
	if diff := cmp.Diff(want, v2Received(t, v2InExportOrder(t, reqs, want), true), convCmpOpts); diff != "" {
		t.Errorf("series (-reference +received):\n%s", diff)
	}
}

// v2InExportOrder sorts 2.0 requests, which go out side by side, by where
// their first series is in want.
func v2InExportOrder(t *testing.T, reqs []prwmetrictest.Request, want []v2Series) []prwmetrictest.Request {
	t.Helper()
	at := map[string]int{}
	for i, s := range want {
		at[seriesString(s.Labels)] = i
	}
	pos := func(r prwmetrictest.Request) int {
		first := resolveV2(t, r.V2)
		if len(first) == 0 {
			return -1
		}
		return at[seriesString(first[0].Labels)]
	}
	reqs = slices.Clone(reqs)
	slices.SortFunc(reqs, func(a, b prwmetrictest.Request) int { return pos(a) - pos(b) })
	return reqs
}

// TestProtocolFallback: a receiver that does not speak 2.0 gets the export
// again as 1.0, with one warning, and 1.0 from then on; 2.0 is tried again
// after an hour, without a second warning.
func TestProtocolFallback(t *testing.T) {
	cases := []struct {
		name  string
		setup func() *prwmetrictest.Server
	}{
		{"415 Unsupported Media Type", func() *prwmetrictest.Server {
			return prwmetrictest.NewServer(prwmetrictest.WithRemoteWrite1Only())
		}},
		{"2xx without written counts", func() *prwmetrictest.Server {
			srv := prwmetrictest.NewServer()
			// What a 1.0 receiver answers: it decoded an empty request.
			srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusNoContent})
			return srv
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.setup()
			t.Cleanup(srv.Close)
			logger, logs := newLogCapture()
			exp := newExporter(t, WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithLogger(logger), WithoutStaleMarkers())
			rm := counterData(1)
			for i := range 3 {
				if err := exp.Export(context.Background(), rm); err != nil {
					t.Fatalf("Export %d: %v", i, err)
				}
			}
			var protocols []prwmetrictest.Protocol
			for _, r := range srv.Requests() {
				protocols = append(protocols, r.Protocol)
			}
			want := []prwmetrictest.Protocol{prwmetrictest.ProtocolV2, prwmetrictest.ProtocolV1, prwmetrictest.ProtocolV1, prwmetrictest.ProtocolV1}
			if !cmp.Equal(protocols, want) {
				t.Fatalf("protocols %v, want %v", protocols, want)
			}
			c, _ := convConverter(t)
			ref, _ := c.reference(rm)
			if diff := cmp.Diff(ref.Timeseries, srv.Requests()[1].V1.Timeseries, convCmpOpts); diff != "" {
				t.Errorf("1.0 resend (-reference +received):\n%s", diff)
			}
			warnings := logs.all()
			if len(warnings) != 1 || !strings.Contains(warnings[0].String(), "does not speak Remote Write 2.0") {
				t.Fatalf("want one fallback warning, got %v", warnings)
			}

			// An hour later 2.0 is tried again; refused again, no news.
			later := time.Now().Add(refusalRetryAfter + time.Second)
			exp.negotiation.now = func() time.Time { return later }
			if tc.name != "415 Unsupported Media Type" {
				srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusNoContent})
			}
			if err := exp.Export(context.Background(), rm); err != nil {
				t.Fatalf("Export after an hour: %v", err)
			}
			reqs := srv.Requests()[4:]
			if len(reqs) != 2 || reqs[0].Protocol != prwmetrictest.ProtocolV2 || reqs[1].Protocol != prwmetrictest.ProtocolV1 {
				t.Errorf("after an hour: %d requests %v", len(reqs), reqs)
			}
			if n := len(logs.all()); n != 1 {
				t.Errorf("%d warnings after the retry, want still 1: %v", n, logs.all())
			}
		})
	}
}

// TestProtocolFallbackMidExport: when a later request of a split export is
// refused, what was delivered stays, and the rest goes again as 1.0.
func TestProtocolFallbackMidExport(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithLenient())
	t.Cleanup(srv.Close)
	srv.RespondWith(1, prwmetrictest.Response{})                                        // normal 2.0 answer
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusUnsupportedMediaType}) // then refused
	logger, _ := newLogCapture()
	// One request at a time, so that the refusal is the second request.
	exp := newExporter(t, WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithMaxSeriesPerRequest(4), WithLogger(logger), WithoutStaleMarkers(), WithMaxConcurrentRequests(1))
	rm := v2Data()
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) < 3 || reqs[0].Protocol != prwmetrictest.ProtocolV2 || reqs[1].Protocol != prwmetrictest.ProtocolV2 {
		t.Fatalf("requests: %v", reqs)
	}
	var names []string
	for _, s := range resolveV2(t, reqs[0].V2) {
		names = append(names, seriesString(s.Labels))
	}
	for _, r := range reqs[2:] {
		if r.Protocol != prwmetrictest.ProtocolV1 {
			t.Fatalf("request %d after the refusal is %v", r.Seq, r.Protocol)
		}
		for _, ts := range r.V1.Timeseries {
			names = append(names, seriesString(ts.Labels))
		}
	}
	var want []string
	for _, s := range v2Want(t, rm) {
		want = append(want, seriesString(s.Labels))
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("series delivered (-want +got):\n%s", diff)
	}
}

// TestProtocolFallbackConcurrent: with the requests of a 2.0 export side
// by side, the receiver refuses one as 2.0 and accepts the others. Exactly
// what it did not store (the refused request, and any not started after
// the refusal) goes again as 1.0: every series arrives once.
func TestProtocolFallbackConcurrent(t *testing.T) {
	srv := prwmetrictest.NewServer(prwmetrictest.WithLenient())
	t.Cleanup(srv.Close)
	srv.RespondWith(1, prwmetrictest.Response{})                                        // normal 2.0 answer
	srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusUnsupportedMediaType}) // then one refused
	exp := newExporter(t, WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithMaxSeriesPerRequest(4),
		WithLogger(discardLogger()), WithoutStaleMarkers(), WithMaxConcurrentRequests(8))
	rm := v2Data()
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
	count := map[string]int{}
	var v1 int
	for _, r := range srv.Requests() {
		switch {
		case !r.Stored:
		case r.Protocol == prwmetrictest.ProtocolV2:
			for _, s := range resolveV2(t, r.V2) {
				count[seriesString(s.Labels)]++
			}
		default:
			v1++
			for _, ts := range r.V1.Timeseries {
				count[seriesString(ts.Labels)]++
			}
		}
	}
	if v1 == 0 {
		t.Errorf("no 1.0 request after the refusal")
	}
	want := map[string]int{}
	for _, s := range v2Want(t, rm) {
		want[seriesString(s.Labels)] = 1
	}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("times each series was stored (-want +got):\n%s", diff)
	}
}

func TestProtocolPartialWrite(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	srv.RespondWith(1, prwmetrictest.Response{Header: http.Header{
		prwmetrictest.HeaderSamplesWritten:    {"1"},
		prwmetrictest.HeaderHistogramsWritten: {"0"},
		prwmetrictest.HeaderExemplarsWritten:  {"0"},
	}})
	logger, logs := newLogCapture()
	exp := newExporter(t, WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithLogger(logger), WithoutStaleMarkers(), WithoutTargetInfo())
	err := exp.Export(context.Background(), v2Data())
	var pe *PartialWriteError
	if !errors.As(err, &pe) {
		t.Fatalf("Export: %v, want a *PartialWriteError", err)
	}
	want := PartialWriteError{Endpoint: srv.URL(), SamplesSent: 11, SamplesWritten: 1, HistogramsSent: 1, ExemplarsSent: 4}
	if *pe != want {
		t.Errorf("got %+v\nwant %+v", *pe, want)
	}
	warnings := logs.all()
	if len(warnings) != 1 || !strings.Contains(warnings[0].String(), "samples_sent=11") || !strings.Contains(warnings[0].String(), "samples_written=1") {
		t.Errorf("warnings %v", warnings)
	}
	// The next export is whole again, and nothing is held against it.
	if err := exp.Export(context.Background(), v2Data()); err != nil {
		t.Errorf("next Export: %v", err)
	}
}

func TestProtocolOptions(t *testing.T) {
	cases := []struct {
		name    string
		opts    []Option
		env     map[string]string
		wantErr string
		want    Protocol
	}{
		{name: "default", want: ProtocolV1},
		{name: "v2", opts: []Option{WithProtocol(ProtocolV2)}, want: ProtocolV2},
		{name: "unknown", opts: []Option{WithProtocol(3)}, wantErr: "WithProtocol(3): unknown protocol"},
		{name: "utf-8 names need 2.0", opts: []Option{WithTranslationStrategy(otlptranslator.NoUTF8EscapingWithSuffixes)}, wantErr: "or WithProtocol(ProtocolV2)"},
		{name: "utf-8 names with 2.0", opts: []Option{WithProtocol(ProtocolV2), WithTranslationStrategy(otlptranslator.NoTranslation)}, want: ProtocolV2},
		{name: "custom buckets need 2.0", opts: []Option{WithNativeHistogramsForExplicitBuckets()}, wantErr: "needs WithProtocol(ProtocolV2)"},
		{name: "classic alone", opts: []Option{WithProtocol(ProtocolV2), WithClassicHistograms()}, wantErr: "WithClassicHistograms only applies"},
		{name: "env", env: map[string]string{envProtocol: "2.0"}, want: ProtocolV2},
		{name: "code wins over env", env: map[string]string{envProtocol: "2.0"}, opts: []Option{WithProtocol(ProtocolV1)}, want: ProtocolV1},
		{name: "env invalid", env: map[string]string{envProtocol: "v2"}, wantErr: envProtocol + `: "v2" is not a Remote Write version; use 1.0 or 2.0`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			exp, err := New(append([]Option{WithEndpoint("http://127.0.0.1:1/api/v1/write"), WithLogger(slog.New(slog.DiscardHandler))}, tc.opts...)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
			if exp.cfg.protocol != tc.want {
				t.Errorf("protocol %v, want %v", exp.cfg.protocol, tc.want)
			}
		})
	}
}

// TestCustomBuckets: explicit histograms as native histograms with custom
// buckets, alone or beside the classic series; empty buckets left out of
// the spans; exemplars on the one series.
func TestCustomBuckets(t *testing.T) {
	point := convHistPoint[float64](12, []float64{1, 5, 10, 50}, []uint64{2, 0, 0, 0, 3})
	point.Exemplars = []metricdata.Exemplar[float64]{convExemplar(60.0, convTime)}
	rm := convRM(metricdata.Metrics{Name: "lat", Unit: "s", Data: convHist(point)})
	native := prompb.TimeSeries{
		Labels: convLabels(convL("__name__", "lat_seconds"), convIdentity),
		Histograms: []prompb.Histogram{{
			Count: &prompb.Histogram_CountInt{CountInt: 5}, Sum: 12, Schema: -53,
			ZeroCount:     &prompb.Histogram_ZeroCountInt{ZeroCountInt: 0},
			PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 1}, {Offset: 3, Length: 1}}, PositiveDeltas: []int64{2, 1},
			Timestamp: convMillis, CustomValues: []float64{1, 5, 10, 50},
		}},
		Exemplars: []prompb.Exemplar{convPromExemplar(60, convMillis)},
	}
	for _, classic := range []bool{false, true} {
		t.Run(fmt.Sprintf("classic=%v", classic), func(t *testing.T) {
			opts := []Option{WithoutTargetInfo(), WithoutMetadata(), WithoutScopeInfo(), WithProtocol(ProtocolV2), WithNativeHistogramsForExplicitBuckets()}
			want := []string{seriesString(native.Labels)}
			if classic {
				opts = append(opts, WithClassicHistograms())
				for _, le := range []string{"1", "5", "10", "50", "+Inf"} {
					want = append(want, seriesString(convLabels(convL("__name__", "lat_seconds_bucket"), convIdentity, convL("le", le))))
				}
				want = append(want,
					seriesString(convLabels(convL("__name__", "lat_seconds_sum"), convIdentity)),
					seriesString(convLabels(convL("__name__", "lat_seconds_count"), convIdentity)))
			}
			c, _ := convConverter(t, opts...)
			got, err := convRun(t, c, rm)
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			var names []string
			for _, ts := range got.Timeseries {
				names = append(names, seriesString(ts.Labels))
			}
			if diff := cmp.Diff(want, names); diff != "" {
				t.Fatalf("series (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(native, got.Timeseries[0], convCmpOpts); diff != "" {
				t.Errorf("native histogram (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCustomBucketsFallback: a receiver that speaks only 1.0 gets no
// custom-bucket histograms (it would refuse the request), with a warning
// and an error each export; the classic series still arrive when kept.
func TestCustomBucketsFallback(t *testing.T) {
	for _, classic := range []bool{false, true} {
		t.Run(fmt.Sprintf("classic=%v", classic), func(t *testing.T) {
			srv := prwmetrictest.NewServer(prwmetrictest.WithRemoteWrite1Only())
			t.Cleanup(srv.Close)
			logger, logs := newLogCapture()
			opts := []Option{WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithNativeHistogramsForExplicitBuckets(), WithLogger(logger), WithoutStaleMarkers(), WithoutTargetInfo()}
			if classic {
				opts = append(opts, WithClassicHistograms())
			}
			exp := newExporter(t, opts...)
			rm := convRM(metricdata.Metrics{Name: "lat", Data: convHist(convHistPoint[float64](12, []float64{1}, []uint64{2, 3}))})
			err := exp.Export(context.Background(), rm)
			if classic && err != nil {
				t.Fatalf("Export: %v; the classic series carry the data", err)
			}
			if !classic && (err == nil || !strings.Contains(err.Error(), "1 custom-bucket native histograms not sent")) {
				t.Fatalf("Export: %v", err)
			}
			reqs := srv.Requests()
			last := reqs[len(reqs)-1]
			if classic {
				if last.Protocol != prwmetrictest.ProtocolV1 || len(last.V1.Timeseries) != 4 {
					t.Fatalf("want the 4 classic series as 1.0, got %+v", last)
				}
				for _, ts := range last.V1.Timeseries {
					if len(ts.Histograms) > 0 {
						t.Errorf("1.0 request carries a native histogram: %v", ts.Labels)
					}
				}
			} else if len(reqs) != 1 {
				t.Errorf("%d requests; after the refusal nothing is left to send", len(reqs))
			}
			var fallbacks, skipped int
			for _, w := range logs.all() {
				switch s := w.String(); {
				case strings.Contains(s, "does not speak Remote Write 2.0"):
					fallbacks++
				case strings.Contains(s, "custom-bucket native histograms not sent"):
					skipped++
				}
			}
			if wantSkipped := map[bool]int{false: 1, true: 0}[classic]; fallbacks != 1 || skipped != wantSkipped {
				t.Errorf("warnings: %v", logs.all())
			}
		})
	}
}

// TestUTF8NamesWithV2: with 2.0, names keep their dots; the fast path
// matches the reference (convRun checks) and prwmetrictest accepts them.
func TestUTF8NamesWithV2(t *testing.T) {
	rm := convRM(metricdata.Metrics{Name: "http.server.requests", Unit: "{request}", Data: convSum(true, convPoint[int64](3, attribute.String("http.request.method", "GET")))})
	c, _ := convConverter(t, WithoutTargetInfo(), WithoutMetadata(), WithoutScopeInfo(), WithProtocol(ProtocolV2), WithTranslationStrategy(otlptranslator.NoUTF8EscapingWithSuffixes))
	got, err := convRun(t, c, rm)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	want := convLabels(convL("__name__", "http.server.requests_total", "http.request.method", "GET"), convIdentity)
	if len(got.Timeseries) != 1 {
		t.Fatalf("%d series", len(got.Timeseries))
	}
	if diff := cmp.Diff(want, got.Timeseries[0].Labels, convCmpOpts); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	exp := newExporter(t, WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithTranslationStrategy(otlptranslator.NoUTF8EscapingWithSuffixes), WithoutStaleMarkers())
	if err := exp.Export(context.Background(), rm); err != nil {
		t.Fatalf("Export: %v", err)
	}
	if _, err := srv.Find("http.server.requests_total", map[string]string{"http.request.method": "GET"}); err != nil {
		t.Errorf("receiver: %v (violations %q)", err, srv.Violations())
	}
}

func TestWrittenCounts(t *testing.T) {
	cases := []struct {
		name   string
		header http.Header
		want   partCounts
		ok     bool
	}{
		{"none", http.Header{}, partCounts{}, false},
		{"all", http.Header{"X-Prometheus-Remote-Write-Samples-Written": {"3"}, "X-Prometheus-Remote-Write-Histograms-Written": {"2"}, "X-Prometheus-Remote-Write-Exemplars-Written": {"1"}}, partCounts{samples: 3, histograms: 2, exemplars: 1}, true},
		{"one is enough to speak 2.0", http.Header{"X-Prometheus-Remote-Write-Samples-Written": {"7"}}, partCounts{samples: 7}, true},
		// Unreadable counts read as nothing written: the warning then
		// shows what the receiver failed to confirm.
		{"garbage", http.Header{"X-Prometheus-Remote-Write-Samples-Written": {"many"}}, partCounts{}, true},
		{"negative", http.Header{"X-Prometheus-Remote-Write-Samples-Written": {"-1"}}, partCounts{}, true},
		{"overflow", http.Header{"X-Prometheus-Remote-Write-Samples-Written": {"99999999999999999999999"}}, partCounts{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := writtenCounts(tc.header)
			if got != tc.want || ok != tc.ok {
				t.Errorf("writtenCounts = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestProtocolV2ExportsInARow: exports one after the other, each cut into
// several 2.0 requests that the workers encode while the next are cut, with
// series added and an exemplar now and then (the cut reuses what it
// numbered the export before, see seriesV2), and one export failing part-way.
// Every export that succeeds delivers exactly the reference's series.
func TestProtocolV2ExportsInARow(t *testing.T) {
	srv := prwmetrictest.NewServer()
	t.Cleanup(srv.Close)
	exp := newExporter(t, WithEndpoint(srv.URL()), WithProtocol(ProtocolV2), WithMaxSeriesPerRequest(4),
		WithMaxConcurrentRequests(1), WithoutStaleMarkers())
	data := func(k, series int, exemplar bool) *metricdata.ResourceMetrics {
		at := convTime.Add(time.Duration(k) * 15 * time.Second)
		var gauges []metricdata.DataPoint[float64]
		for i := range series {
			gauges = append(gauges, metricdata.DataPoint[float64]{Time: at, Value: float64(k * i),
				Attributes: attribute.NewSet(attribute.Int("id", i), attribute.String("zone", fmt.Sprint("z", i%3)))})
		}
		counter := metricdata.DataPoint[int64]{StartTime: convStart, Time: at, Value: int64(k), Attributes: attribute.NewSet(attribute.String("queue", "q"))}
		if exemplar {
			counter.Exemplars = []metricdata.Exemplar[int64]{convExemplar[int64](1, at, attribute.String("job", fmt.Sprint("j", k)))}
		}
		return convRM(
			metricdata.Metrics{Name: "jobs", Description: "Jobs.", Unit: "{job}", Data: convSum(true, counter)},
			metricdata.Metrics{Name: "queue_depth", Description: "Depth.", Unit: "1", Data: metricdata.Gauge[float64]{DataPoints: gauges}},
		)
	}
	steps := []struct {
		name     string
		series   int
		exemplar bool
		failAt   int // the request that fails; -1: none
	}{
		{name: "first", series: 14, failAt: -1},
		{name: "again", series: 14, failAt: -1},
		{name: "again, steady", series: 14, failAt: -1},
		{name: "more series", series: 17, failAt: -1},
		{name: "an exemplar", series: 17, exemplar: true, failAt: -1},
		{name: "the third request fails", series: 17, failAt: 2},
		{name: "after the failure", series: 17, failAt: -1},
		{name: "after the failure, steady", series: 17, failAt: -1},
	}
	seen := 0
	for k, st := range steps {
		rm := data(k+1, st.series, st.exemplar)
		if st.failAt >= 0 {
			srv.RespondWith(st.failAt, prwmetrictest.Response{})
			srv.RespondWith(1, prwmetrictest.Response{Status: http.StatusServiceUnavailable, Body: "try later"})
		}
		err := exp.Export(context.Background(), rm)
		reqs := srv.Requests()[seen:]
		seen += len(reqs)
		if st.failAt >= 0 {
			var we *WriteError
			if !errors.As(err, &we) {
				t.Fatalf("%s: Export = %v, want a WriteError", st.name, err)
			}
			if len(reqs) != st.failAt+1 || we.Delivered != 4*st.failAt {
				t.Errorf("%s: %d requests, %d series delivered; want %d and %d", st.name, len(reqs), we.Delivered, st.failAt+1, 4*st.failAt)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: Export: %v", st.name, err)
		}
		if len(reqs) < 4 {
			t.Fatalf("%s: %d requests, want several of 4 series", st.name, len(reqs))
		}
		if diff := cmp.Diff(v2Want(t, rm), v2Received(t, reqs, false), convCmpOpts); diff != "" {
			t.Errorf("%s: series (-reference +received):\n%s", st.name, diff)
		}
	}
}

// TestRetryAfterAnHourIsOneRequest: an hour after the receiver refused 2.0
// (or zstd), the export that tries it again sends one request so: refused
// again, the whole export goes as 1.0 with snappy, instead of one refused
// request per request in flight. Once a receiver takes it, requests go side
// by side again.
func TestRetryAfterAnHourIsOneRequest(t *testing.T) {
	const series = 6
	at := time.UnixMilli(1_700_000_000_000)
	cases := []struct {
		name                string
		opt                 Option
		refusing, accepting []prwmetrictest.Option
		preferred           func(prwmetrictest.Request) bool
		fallback            func(*negotiation) *fallback
	}{
		{"2.0", WithProtocol(ProtocolV2), []prwmetrictest.Option{prwmetrictest.WithRemoteWrite1Only()}, nil,
			func(r prwmetrictest.Request) bool { return r.Protocol == prwmetrictest.ProtocolV2 },
			func(n *negotiation) *fallback { return &n.v1 }},
		{"zstd", WithCompression(CompressionZstd), nil, []prwmetrictest.Option{prwmetrictest.WithZstd()},
			func(r prwmetrictest.Request) bool { return r.Header.Get("Content-Encoding") == contentEncodingZstd },
			func(n *negotiation) *fallback { return &n.snappy }},
	}
	// export exports series gauges an hour after exp's receiver refused,
	// and returns how many of its requests went the preferred way.
	export := func(t *testing.T, exp *Exporter, srv *prwmetrictest.Server, preferred func(prwmetrictest.Request) bool, later time.Time) int {
		exp.negotiation.now = func() time.Time { return later }
		before := len(srv.Requests())
		sample := at.Add(time.Minute)
		if err := exp.Export(context.Background(), manyGauges(series, sample)); err != nil {
			t.Fatalf("export an hour later: %v", err)
		}
		n := 0
		for _, r := range srv.Requests()[before:] {
			if preferred(r) {
				n++
			}
		}
		for i := range series {
			if got, err := srv.Latest("load", map[string]string{"i": strconv.Itoa(i)}); err != nil || got.Timestamp != sample.UnixMilli() || got.Value != float64(i) {
				t.Errorf("series %d: %+v, %v; want %d at the export an hour later", i, got, err, i)
			}
		}
		return n
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			later := time.Now().Add(refusalRetryAfter + time.Second)
			srv := prwmetrictest.NewServer(tc.refusing...)
			t.Cleanup(srv.Close)
			exp := newExporter(t, WithEndpoint(srv.URL()), tc.opt, WithLogger(discardLogger()), WithoutStaleMarkers(), WithoutMetadata(), WithMaxSeriesPerRequest(1))
			if err := exp.Export(context.Background(), manyGauges(series, at)); err != nil {
				t.Fatalf("first export: %v", err)
			}
			if n := export(t, exp, srv, tc.preferred, later); n != 1 {
				t.Errorf("refused: the export an hour later sent %d requests the receiver refuses, want 1", n)
			}

			// A receiver that takes it now gets it in every request, and
			// the next export sends them side by side again.
			srv = prwmetrictest.NewServer(tc.accepting...)
			t.Cleanup(srv.Close)
			exp = newExporter(t, WithEndpoint(srv.URL()), tc.opt, WithLogger(discardLogger()), WithoutStaleMarkers(), WithoutMetadata(), WithMaxSeriesPerRequest(1), WithMaxConcurrentRequests(9))
			tc.fallback(&exp.negotiation).fallBack(time.Now())
			if n := export(t, exp, srv, tc.preferred, later); n != series {
				t.Errorf("accepted: %d of the %d requests went the preferred way", n, series)
			}
			if c := exp.negotiation.concurrency(later, ProtocolV2, CompressionZstd, 9); c != 9 {
				t.Errorf("accepted: the next export sends %d requests at once, want the configured 9", c)
			}
		})
	}
}
