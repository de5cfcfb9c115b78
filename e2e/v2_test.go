package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/prwmetric/prwmetric"
)

// Remote Write 2.0 end to end: Prometheus 3 receives io.prometheus.write.v2.Request
// and must store exactly what Remote Write 1.0 stores, plus what only 2.0
// carries (start timestamps, per-series metadata, custom-bucket native
// histograms, UTF-8 names); receivers that only speak 1.0 (Prometheus 2.42,
// VictoriaMetrics 1.79, Prometheus 3 accepting 1.0 only) must get the data
// through the fallback with one warning.

// rwRequest is one Remote Write request a protocolProxy forwarded, what its
// body held and what the receiver answered.
type rwRequest struct {
	protocol    string // "1.0" or "2.0", from the Content-Type's proto parameter
	contentType string
	encoding    string // Content-Encoding: "snappy" or "zstd"
	version     string // X-Prometheus-Remote-Write-Version
	vmVersion   string // X-VictoriaMetrics-Remote-Write-Version
	sent        writeCounts
	series      int    // time series in the body
	problem     string // why the body could not be decoded, if it could not
	status      int
	answer      string      // the start of the response body, when not 2xx
	written     writeCounts // X-Prometheus-Remote-Write-*-Written
	hasWritten  bool        // any of those headers was present
}

// writeCounts counts samples, native histogram samples and exemplars.
type writeCounts struct {
	samples, histograms, exemplars int
}

func (c writeCounts) String() string {
	return fmt.Sprintf("%d samples, %d histograms, %d exemplars", c.samples, c.histograms, c.exemplars)
}

// protocolProxy is a reverse proxy on 127.0.0.1 in front of a backend that
// decodes every request body by its Content-Type (1.0 or 2.0) and records
// it with the backend's answer, so that a test knows which protocol really
// went over the wire and how much the receiver said it wrote.
type protocolProxy struct {
	URL  string
	mu   sync.Mutex
	reqs []rwRequest // in order of arrival
	// inFlight and maxInFlight count requests forwarded and not yet
	// answered.
	inFlight, maxInFlight int
	// concurrent, when set (holdFirst), is closed when a second request is
	// in flight; the first request waits for that, at most holdTimeout.
	concurrent chan struct{}
	holdFirst  bool
}

// holdTimeout bounds how long holdFirstUntilConcurrent keeps the first
// request waiting for a second.
const holdTimeout = 20 * time.Second

const (
	contentTypeV2   = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	protoV2         = "io.prometheus.write.v2.Request"
	headerVersion   = "X-Prometheus-Remote-Write-Version"
	headerSamples   = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogram = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplars = "X-Prometheus-Remote-Write-Exemplars-Written"
	headerVMVersion = "X-VictoriaMetrics-Remote-Write-Version"
)

func newProtocolProxy(t *testing.T, target string) *protocolProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &protocolProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := rwRequest{
			contentType: r.Header.Get("Content-Type"),
			encoding:    r.Header.Get("Content-Encoding"),
			version:     r.Header.Get(headerVersion),
			vmVersion:   r.Header.Get(headerVMVersion),
		}
		slot, first := p.arrive()
		defer p.leave()
		if first && p.holdFirst {
			timer := time.NewTimer(holdTimeout)
			select {
			case <-p.concurrent:
			case <-timer.C:
			}
			timer.Stop()
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 256<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.protocol, rec.sent, rec.series, rec.problem = decodeWrite(rec.contentType, rec.encoding, body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		// An uncompressed answer can be recorded as it is; the exporter's
		// transport takes either.
		r.Header.Del("Accept-Encoding")
		sw := &statusWriter{ResponseWriter: w}
		rp.ServeHTTP(sw, r)
		rec.status = sw.status
		if rec.status < 200 || rec.status > 299 {
			rec.answer = sw.body.String()
		}
		// The reverse proxy copied the backend's headers into w.Header().
		h := w.Header()
		for _, f := range []struct {
			name string
			dst  *int
		}{{headerSamples, &rec.written.samples}, {headerHistogram, &rec.written.histograms}, {headerExemplars, &rec.written.exemplars}} {
			v := h.Get(f.name)
			if v == "" {
				continue
			}
			rec.hasWritten = true
			n, err := strconv.Atoi(v)
			if err != nil {
				rec.problem += fmt.Sprintf("; %s: %q is not a number", f.name, v)
			}
			*f.dst = n
		}
		p.mu.Lock()
		p.reqs[slot] = rec
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// holdFirstUntilConcurrent makes the proxy keep the first request it gets
// until a second one is in flight (at most holdTimeout), so that a test
// sees whether the exporter sends requests concurrently without depending
// on how fast the backend answers. Call it before the first request.
func (p *protocolProxy) holdFirstUntilConcurrent() {
	p.concurrent = make(chan struct{})
	p.holdFirst = true
}

// arrive reserves the request's place in arrival order and counts it in
// flight; first is whether it is the proxy's first request.
func (p *protocolProxy) arrive() (slot int, first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	slot = len(p.reqs)
	p.reqs = append(p.reqs, rwRequest{})
	p.inFlight++
	if p.inFlight > p.maxInFlight {
		p.maxInFlight = p.inFlight
		if p.maxInFlight == 2 && p.concurrent != nil {
			close(p.concurrent)
		}
	}
	return slot, slot == 0
}

func (p *protocolProxy) leave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inFlight--
}

// mostInFlight is the largest number of requests that were in flight at
// once.
func (p *protocolProxy) mostInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxInFlight
}

func (p *protocolProxy) writeURL() string { return p.URL + "/api/v1/write" }

// requests returns a copy of what was recorded so far.
func (p *protocolProxy) requests() []rwRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]rwRequest(nil), p.reqs...)
}

// protocols lists each request's protocol in order.
func (p *protocolProxy) protocols() []string {
	var out []string
	for _, r := range p.requests() {
		out = append(out, r.protocol)
	}
	return out
}

// requireAllV2 checks that every request so far was a Remote Write 2.0
// request by Content-Type, version header and body, that the receiver
// accepted it (204) and answered with written counts equal to what the body
// carried.
func (p *protocolProxy) requireAllV2(t *testing.T) {
	t.Helper()
	reqs := p.requests()
	if len(reqs) == 0 {
		t.Fatal("no request reached the receiver")
	}
	var errs []string
	for i, r := range reqs {
		if r.problem != "" {
			errs = append(errs, fmt.Sprintf("request %d: %s", i+1, r.problem))
		}
		if r.protocol != "2.0" || r.contentType != contentTypeV2 || r.version != "2.0.0" {
			errs = append(errs, fmt.Sprintf("request %d: Content-Type %q, %s %q, want %q and 2.0.0", i+1, r.contentType, headerVersion, r.version, contentTypeV2))
		}
		if r.status != http.StatusNoContent {
			errs = append(errs, fmt.Sprintf("request %d: receiver answered %d, want 204", i+1, r.status))
		}
		if !r.hasWritten {
			errs = append(errs, fmt.Sprintf("request %d: receiver sent no X-Prometheus-Remote-Write-*-Written headers: it did not read the request as 2.0", i+1))
		} else if r.written != r.sent {
			errs = append(errs, fmt.Sprintf("request %d: receiver wrote %v, the request carried %v", i+1, r.written, r.sent))
		}
	}
	const maxErrs = 10
	if len(errs) > maxErrs {
		errs = append(errs[:maxErrs], fmt.Sprintf("… and %d more", len(errs)-maxErrs))
	}
	if len(errs) > 0 {
		t.Errorf("of %d requests, not all were Remote Write 2.0 written in full:\n\t%s", len(reqs), joinLines(errs))
	}
}

// statusWriter remembers the status code a handler answered with and the
// start of its body.
type statusWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if room := 1024 - s.body.Len(); room > 0 {
		s.body.Write(b[:min(room, len(b))])
	}
	return s.ResponseWriter.Write(b)
}

// decodeWrite decodes a Remote Write body of either protocol, as chosen by
// its Content-Type, compressed as its Content-Encoding says (snappy, the
// default, or zstd, the VictoriaMetrics protocol), and counts what it
// carries.
func decodeWrite(contentType, encoding string, body []byte) (protocol string, n writeCounts, series int, problem string) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-protobuf" {
		return "", n, 0, fmt.Sprintf("Content-Type %q is not application/x-protobuf (%v)", contentType, err)
	}
	var raw []byte
	switch encoding {
	case "", "snappy":
		if raw, err = snappy.Decode(nil, body); err != nil {
			return "", n, 0, fmt.Sprintf("body is not snappy: %v", err)
		}
	case "zstd":
		if raw, err = zstdDecoder.DecodeAll(body, nil); err != nil {
			return "", n, 0, fmt.Sprintf("body is not zstd: %v", err)
		}
	default:
		return "", n, 0, fmt.Sprintf("unknown Content-Encoding %q", encoding)
	}
	switch params["proto"] {
	case protoV2:
		var req writev2.Request
		if err := req.Unmarshal(raw); err != nil {
			return "2.0", n, 0, fmt.Sprintf("body is not an io.prometheus.write.v2.Request: %v", err)
		}
		if len(req.Symbols) == 0 || req.Symbols[0] != "" {
			problem = "symbols table does not start with the empty string"
		}
		for _, ts := range req.Timeseries {
			n.samples += len(ts.Samples)
			n.histograms += len(ts.Histograms)
			n.exemplars += len(ts.Exemplars)
		}
		return "2.0", n, len(req.Timeseries), problem
	case "", "prometheus.WriteRequest":
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			return "1.0", n, 0, fmt.Sprintf("body is not a prometheus.WriteRequest: %v", err)
		}
		for _, ts := range req.Timeseries {
			n.samples += len(ts.Samples)
			n.histograms += len(ts.Histograms)
			n.exemplars += len(ts.Exemplars)
		}
		return "1.0", n, len(req.Timeseries), ""
	}
	return "", n, 0, fmt.Sprintf("unknown proto parameter in Content-Type %q", contentType)
}

// zstdDecoder decodes zstd bodies (DecodeAll is safe for concurrent use).
var zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))

func newV2Exporter(t *testing.T, proxy *protocolProxy, opts ...prwmetric.Option) (*prwmetric.Exporter, *logRecorder) {
	t.Helper()
	return newExporter(t, proxy.writeURL(), append([]prwmetric.Option{prwmetric.WithProtocol(prwmetric.ProtocolV2)}, opts...)...)
}

func requireNoWarnings(t *testing.T, logs *logRecorder) {
	t.Helper()
	if w := logs.lines(slog.LevelWarn); len(w) > 0 {
		t.Errorf("the exporter warned although every export succeeded over Remote Write 2.0:\n\t%s", joinLines(w))
	}
}

// TestPrometheus3V2Scenarios pushes every scenario of the 1.0 tests over
// Remote Write 2.0 (counters, up-down counters, gauges, classic and
// exponential histograms, exemplars, odd label values, 10 000 series,
// target_info) and reads back exactly what 1.0 stores, through
// /api/v1/query and /api/v1/query_exemplars.
func TestPrometheus3V2Scenarios(t *testing.T) {
	s := startPrometheus3(t, promConfig{})
	proxy := newProtocolProxy(t, s.baseURL)
	exp, logs := newV2Exporter(t, proxy)
	c := newClock()
	wantTargetInfo := wantSeries{}
	for _, sc := range floatScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			d := sc.build(c)
			for _, rm := range d.exports {
				export(t, exp, rm)
				wantTargetInfo.add(targetInfoLabels(), newestTime(rm), 1)
			}
			got := s.readRange(t, sc.selector, c.now(), time.Hour)
			compareFloats(t, s.name, got.Floats, d.want)
			compareNative(t, s.name, got.Histograms, d.wantNative)
			if d.prom != nil {
				d.prom(t, s)
			}
		})
	}
	t.Run("target_info", func(t *testing.T) {
		got := s.readRange(t, "target_info", c.now(), time.Hour)
		compareFloats(t, s.name, got.Floats, wantTargetInfo)
	})
	requireNoWarnings(t, logs)
	proxy.requireAllV2(t)
}

// TestPrometheus3V2StartTimestamps checks the start timestamps 2.0 carries.
// With --enable-feature=created-timestamp-zero-ingestion, Prometheus 3
// stores a sample of value 0 (an empty native histogram for native
// histograms) at a sample's start timestamp when that is older than the
// sample and newer than what the series holds (tsdb/head_append_v2.go,
// bestEffortAppendSTZeroSample). So counters, classic histogram series and
// native histograms must read back with a zero at their start time, and
// again at a new start time after a reset; gauges, up-down counters and
// target_info carry no start timestamp and must read back without one.
func TestPrometheus3V2StartTimestamps(t *testing.T) {
	s := startPrometheus3(t, promConfig{extraArgs: []string{"--enable-feature=created-timestamp-zero-ingestion"}})
	proxy := newProtocolProxy(t, s.baseURL)
	exp, logs := newV2Exporter(t, proxy)
	c := newClock()
	st1, t1, t2 := c.next(), c.next(), c.next()
	st2, t3 := c.next(), c.next() // the requests counter restarts at st2
	times := []time.Time{t1, t2, t3}

	w := wantSeries{}
	wantNative := map[string][]nativeHistogram{}
	wantTargetInfo := wantSeries{}
	getLabels := seriesLabels("e2e_st_requests_total", "method", "GET")
	bytesLabels := seriesLabels("e2e_st_sent_bytes_total")
	w.add(getLabels, st1, 0)
	w.add(bytesLabels, st1, 0)
	for _, name := range []string{"e2e_st_latency_milliseconds_sum", "e2e_st_latency_milliseconds_count"} {
		w.add(seriesLabels(name), st1, 0)
	}
	for _, le := range []string{"0.1", "1", "+Inf"} {
		w.add(seriesLabels("e2e_st_latency_milliseconds_bucket", "le", le), st1, 0)
	}
	sizeKey := labelKey(seriesLabels("e2e_st_size_bytes"))
	wantNative[sizeKey] = []nativeHistogram{{T: st1.UnixMilli()}}

	requests := []float64{5, 9, 2}
	for i, ts := range times {
		reqStart := st1
		if i == 2 {
			reqStart = st2
			w.add(getLabels, st2, 0)
		}
		w.add(getLabels, ts, requests[i])
		sent := int64(100 * (i + 1))
		w.add(bytesLabels, ts, float64(sent))
		queue := int64(3 - 2*i)
		w.add(seriesLabels("e2e_st_queue"), ts, float64(queue))
		temp := 20.5 + float64(i)
		w.add(seriesLabels("e2e_st_temperature"), ts, temp)
		lat := metricdata.HistogramDataPoint[float64]{
			StartTime: st1, Time: ts, Bounds: []float64{0.1, 1},
			BucketCounts: []uint64{uint64(i), 1, 2}, Count: uint64(i + 3), Sum: 10.25 + float64(i),
		}
		classicHistogram(w, "e2e_st_latency_milliseconds", lat)
		size := metricdata.ExponentialHistogramDataPoint[float64]{
			StartTime: st1, Time: ts, Count: uint64(2 + i), Sum: 3.5 * float64(2+i), Scale: 0,
			PositiveBucket: metricdata.ExponentialBucket{Offset: 1, Counts: []uint64{1, uint64(1 + i)}},
		}
		wantNative[sizeKey] = append(wantNative[sizeKey], expectedNative(size))

		rm := resourceMetrics(
			metricdata.Metrics{Name: "e2e.st.requests", Unit: "{request}", Data: metricdata.Sum[float64]{
				Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
				DataPoints: []metricdata.DataPoint[float64]{{Attributes: attrs("method", "GET"), StartTime: reqStart, Time: ts, Value: requests[i]}},
			}},
			metricdata.Metrics{Name: "e2e.st.sent", Unit: "By", Data: metricdata.Sum[int64]{
				Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
				DataPoints: []metricdata.DataPoint[int64]{{StartTime: st1, Time: ts, Value: sent}},
			}},
			// An up-down counter and a gauge with a start time all the
			// same: Remote Write 2.0 carries none for them.
			metricdata.Metrics{Name: "e2e.st.queue", Unit: "{item}", Data: metricdata.Sum[int64]{
				Temporality: metricdata.CumulativeTemporality, IsMonotonic: false,
				DataPoints: []metricdata.DataPoint[int64]{{StartTime: st1, Time: ts, Value: queue}},
			}},
			metricdata.Metrics{Name: "e2e.st.temperature", Data: metricdata.Gauge[float64]{
				DataPoints: []metricdata.DataPoint[float64]{{StartTime: st1, Time: ts, Value: temp}},
			}},
			metricdata.Metrics{Name: "e2e.st.latency", Unit: "ms", Data: metricdata.Histogram[float64]{
				Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{lat},
			}},
			metricdata.Metrics{Name: "e2e.st.size", Unit: "By", Data: metricdata.ExponentialHistogram[float64]{
				Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{size},
			}},
		)
		export(t, exp, rm)
		wantTargetInfo.add(targetInfoLabels(), ts, 1)
	}

	got := s.readRange(t, `{__name__=~"e2e_st_.*"}`, t3, time.Hour)
	compareFloats(t, s.name, got.Floats, w)
	compareNative(t, s.name, got.Histograms, wantNative)
	got = s.readRange(t, "target_info", t3, time.Hour)
	compareFloats(t, s.name, got.Floats, wantTargetInfo)
	requireNoWarnings(t, logs)
	proxy.requireAllV2(t)
}

// TestPrometheus3V2Metadata checks the metadata each 2.0 series carries:
// with --enable-feature=type-and-unit-labels Prometheus 3 turns a 2.0
// series' metadata type and unit into __type__ and __unit__ labels
// (storage/remote/write_handler.go), so they read back through the query
// API. Remote Write 1.0 sends metadata apart from the series, so none of
// this appears with 1.0.
func TestPrometheus3V2Metadata(t *testing.T) {
	s := startPrometheus3(t, promConfig{extraArgs: []string{"--enable-feature=type-and-unit-labels"}})
	proxy := newProtocolProxy(t, s.baseURL)
	exp, logs := newV2Exporter(t, proxy)
	c := newClock()
	start, ts := c.now(), c.next()

	typed := func(name, typ, unit string, kv ...string) map[string]string {
		ls := seriesLabels(name, kv...)
		ls["__type__"] = typ
		if unit != "" {
			ls["__unit__"] = unit
		}
		return ls
	}
	w := wantSeries{}
	w.add(typed("e2e_meta_sent_bytes_total", "counter", "bytes"), ts, 42)
	w.add(typed("e2e_meta_queue", "gauge", ""), ts, -3)
	w.add(typed("e2e_meta_lag_seconds", "gauge", "seconds"), ts, 1.5)
	lat := metricdata.HistogramDataPoint[float64]{
		StartTime: start, Time: ts, Bounds: []float64{1}, BucketCounts: []uint64{1, 2}, Count: 3, Sum: 7.5,
	}
	w.add(typed("e2e_meta_latency_milliseconds_bucket", "histogram", "milliseconds", "le", "1"), ts, 1)
	w.add(typed("e2e_meta_latency_milliseconds_bucket", "histogram", "milliseconds", "le", "+Inf"), ts, 3)
	w.add(typed("e2e_meta_latency_milliseconds_sum", "histogram", "milliseconds"), ts, 7.5)
	w.add(typed("e2e_meta_latency_milliseconds_count", "histogram", "milliseconds"), ts, 3)
	size := metricdata.ExponentialHistogramDataPoint[float64]{
		StartTime: start, Time: ts, Count: 2, Sum: 5, Scale: 0,
		PositiveBucket: metricdata.ExponentialBucket{Offset: 1, Counts: []uint64{2}},
	}
	wantNative := map[string][]nativeHistogram{
		labelKey(typed("e2e_meta_size_bytes", "histogram", "bytes")): {expectedNative(size)},
	}
	ti := targetInfoLabels()
	ti["__type__"] = "gauge"
	wantTargetInfo := wantSeries{}
	wantTargetInfo.add(ti, ts, 1)

	export(t, exp, resourceMetrics(
		metricdata.Metrics{Name: "e2e.meta.sent", Unit: "By", Description: "Bytes sent.", Data: metricdata.Sum[int64]{
			Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
			DataPoints: []metricdata.DataPoint[int64]{{StartTime: start, Time: ts, Value: 42}},
		}},
		metricdata.Metrics{Name: "e2e.meta.queue", Unit: "{item}", Data: metricdata.Sum[int64]{
			Temporality: metricdata.CumulativeTemporality, IsMonotonic: false,
			DataPoints: []metricdata.DataPoint[int64]{{StartTime: start, Time: ts, Value: -3}},
		}},
		metricdata.Metrics{Name: "e2e.meta.lag", Unit: "s", Data: metricdata.Gauge[float64]{
			DataPoints: []metricdata.DataPoint[float64]{{Time: ts, Value: 1.5}},
		}},
		metricdata.Metrics{Name: "e2e.meta.latency", Unit: "ms", Data: metricdata.Histogram[float64]{
			Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{lat},
		}},
		metricdata.Metrics{Name: "e2e.meta.size", Unit: "By", Data: metricdata.ExponentialHistogram[float64]{
			Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{size},
		}},
	))
	got := s.readRange(t, `{__name__=~"e2e_meta_.*"}`, ts, time.Hour)
	compareFloats(t, s.name, got.Floats, w)
	compareNative(t, s.name, got.Histograms, wantNative)
	got = s.readRange(t, "target_info", ts, time.Hour)
	compareFloats(t, s.name, got.Floats, wantTargetInfo)
	requireNoWarnings(t, logs)
	proxy.requireAllV2(t)
}

// expectedNHCB is the native histogram with custom buckets Prometheus must
// return for dp: one bucket per explicit bucket that is not empty, the
// first [-Inf, bound0] (both ends inclusive, rule 3), the others
// (previous bound, bound] up to (last bound, +Inf] (rule 0).
func expectedNHCB[N int64 | float64](dp metricdata.HistogramDataPoint[N]) nativeHistogram {
	h := nativeHistogram{T: dp.Time.UnixMilli(), Count: float64(dp.Count), Sum: float64(dp.Sum)}
	for i, n := range dp.BucketCounts {
		if n == 0 {
			continue // the API leaves empty buckets out
		}
		b := nativeBucket{Rule: 0, Lower: math.Inf(-1), Upper: math.Inf(1), Count: float64(n)}
		if i == 0 {
			b.Rule = 3
		} else {
			b.Lower = dp.Bounds[i-1]
		}
		if i < len(dp.Bounds) {
			b.Upper = dp.Bounds[i]
		}
		h.Buckets = append(h.Buckets, b)
	}
	sortBuckets(h.Buckets)
	return h
}

// TestPrometheus3NHCB sends explicit-bucket histograms as native histograms
// with custom buckets (WithNativeHistogramsForExplicitBuckets): Prometheus 3
// must hold one native histogram per series whose buckets are the explicit
// bounds and counts, and no classic series; with WithClassicHistograms
// also the classic _bucket, _sum and _count series. histogram_quantile
// gives the same answer on both forms.
func TestPrometheus3NHCB(t *testing.T) {
	cases := []struct {
		name    string
		opts    []prwmetric.Option
		classic bool
	}{
		{name: "native only", opts: []prwmetric.Option{prwmetric.WithNativeHistogramsForExplicitBuckets()}},
		{name: "native and classic", opts: []prwmetric.Option{prwmetric.WithNativeHistogramsForExplicitBuckets(), prwmetric.WithClassicHistograms()}, classic: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startPrometheus3(t, promConfig{})
			proxy := newProtocolProxy(t, s.baseURL)
			exp, logs := newV2Exporter(t, proxy, tc.opts...)
			c := newClock()
			start := c.now()
			w := wantSeries{}
			wantNative := map[string][]nativeHistogram{}
			latKey := labelKey(seriesLabels("e2e_nhcb_latency_milliseconds", "method", "GET"))
			sizeKey := labelKey(seriesLabels("e2e_nhcb_size_bytes"))
			latency := []struct {
				counts []uint64
				sum    float64
			}{
				{counts: []uint64{1, 1, 2, 0, 0}, sum: 1.75},
				{counts: []uint64{2, 2, 4, 0, 2}, sum: 23.5},
			}
			var last time.Time
			for i, l := range latency {
				ts := c.next()
				last = ts
				lat := metricdata.HistogramDataPoint[float64]{
					Attributes: attrs("method", "GET"), StartTime: start, Time: ts,
					Bounds: []float64{0.1, 0.5, 1, 5}, BucketCounts: l.counts, Count: total(l.counts), Sum: l.sum,
				}
				size := metricdata.HistogramDataPoint[int64]{
					StartTime: start, Time: ts,
					Bounds: []float64{0, 100, 1000}, BucketCounts: []uint64{0, 1, uint64(i + 1), 3}, Count: uint64(i + 5), Sum: 12345 + int64(i),
				}
				wantNative[latKey] = append(wantNative[latKey], expectedNHCB(lat))
				wantNative[sizeKey] = append(wantNative[sizeKey], expectedNHCB(size))
				if tc.classic {
					classicHistogram(w, "e2e_nhcb_latency_milliseconds", lat, "method", "GET")
					classicHistogram(w, "e2e_nhcb_size_bytes", size)
				}
				export(t, exp, resourceMetrics(
					metricdata.Metrics{Name: "e2e.nhcb.latency", Unit: "ms", Data: metricdata.Histogram[float64]{
						Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{lat},
					}},
					metricdata.Metrics{Name: "e2e.nhcb.size", Unit: "By", Data: metricdata.Histogram[int64]{
						Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[int64]{size},
					}},
				))
			}
			got := s.readRange(t, `{__name__=~"e2e_nhcb_.*"}`, last, time.Hour)
			compareFloats(t, s.name, got.Floats, w)
			compareNative(t, s.name, got.Histograms, wantNative)

			// Latest buckets: cumulative 2, 4, 8, 8, 10 for le 0.1, 0.5,
			// 1, 5, +Inf; the median's rank 5 is in (0.5, 1], which holds
			// ranks 5..8: 0.5 + 0.5*(5-4)/(8-4).
			queries := []string{`histogram_quantile(0.5, e2e_nhcb_latency_milliseconds)`}
			if tc.classic {
				queries = append(queries, `histogram_quantile(0.5, e2e_nhcb_latency_milliseconds_bucket)`)
			}
			k := labelKey(seriesLabels("", "method", "GET"))
			for _, q := range queries {
				if res := s.queryVector(t, q, last); len(res) != 1 || res[k] != 0.625 {
					t.Errorf("%s = %v, want {%s: 0.625}", q, res, k)
				}
			}
			requireNoWarnings(t, logs)
			proxy.requireAllV2(t)
		})
	}
}

// fallbackBackend is a receiver that does not speak Remote Write 2.0.
type fallbackBackend struct {
	name string
	// start starts it and returns its base URL and a reader of float
	// series matching selector in [from, to].
	start func(t *testing.T) (baseURL string, read func(t *testing.T, selector string, from, to time.Time) map[string][]sample)
	// firstStatus is how the receiver answers a 2.0 request.
	firstStatus int
	// firstWritten: whether that answer carries the written-count headers.
	firstWritten bool
}

// TestFallbackV2ToV1 runs a ProtocolV2 exporter against receivers that do not
// speak 2.0: Prometheus 2.42 and VictoriaMetrics 1.79 decode a 2.0 body as an
// empty 1.0 request and answer 204 without written counts; Prometheus 3
// accepting only prometheus.WriteRequest answers 415. Over three exports,
// each Export succeeds, the first export goes out as 2.0 once and then again
// as 1.0, every later one as 1.0 only, exactly one warning is logged, and
// every sample of all three exports reads back exactly.
func TestFallbackV2ToV1(t *testing.T) {
	for _, b := range fallbackBackends() {
		t.Run(b.name, func(t *testing.T) {
			baseURL, read := b.start(t)
			proxy := newProtocolProxy(t, baseURL)
			exp, logs := newV2Exporter(t, proxy)
			c := newClock()
			from := c.now()
			w := wantSeries{}
			const exports = 3
			for i := range exports {
				export(t, exp, fallbackExport(c, from, i, w))
			}
			got := read(t, `{__name__=~"e2e_fallback_.*"}`, from, c.now())
			compareFloats(t, b.name, got, w)

			warns := logs.lines(slog.LevelWarn)
			if len(warns) != 1 || !strings.Contains(warns[0], "2.0") {
				t.Errorf("warnings over %d exports:\n\t%s\nwant exactly one, about Remote Write 2.0", exports, joinLines(warns))
			}
			reqs := proxy.requests()
			wantProtocols := []string{"2.0", "1.0", "1.0", "1.0"}
			if got := proxy.protocols(); fmt.Sprint(got) != fmt.Sprint(wantProtocols) {
				t.Fatalf("requests by protocol: %v, want %v (one 2.0 attempt, its data again as 1.0, then 1.0 only)", got, wantProtocols)
			}
			first := reqs[0]
			if first.status != b.firstStatus || first.hasWritten != b.firstWritten {
				t.Errorf("%s answered the 2.0 request with %d (written headers: %v), want %d (written headers: %v)",
					b.name, first.status, first.hasWritten, b.firstStatus, b.firstWritten)
			}
			if first.version != "2.0.0" || first.contentType != contentTypeV2 {
				t.Errorf("first request: Content-Type %q, version %q: not a 2.0 request", first.contentType, first.version)
			}
			if reqs[1].sent != first.sent {
				t.Errorf("the 1.0 resend carried %v, the 2.0 request %v: the same data must be resent", reqs[1].sent, first.sent)
			}
			for i, r := range reqs {
				if r.problem != "" {
					t.Errorf("request %d: %s", i+1, r.problem)
				}
				if i > 0 && (r.status < 200 || r.status > 299) {
					t.Errorf("1.0 request %d: %s answered %d", i+1, b.name, r.status)
				}
			}
		})
	}
}

// TestFallbackV2ToV1ClassicHistograms runs an exporter that sends explicit
// histograms as custom-bucket native histograms and keeps the classic series
// (WithNativeHistogramsForExplicitBuckets, WithClassicHistograms) against
// receivers that do not speak 2.0. After the fallback the native histograms
// are left out of the 1.0 requests and the classic series, which carry the
// same data, go: every sample reads back exactly, Export returns nil and the
// fallback is the one warning.
func TestFallbackV2ToV1ClassicHistograms(t *testing.T) {
	for _, b := range fallbackBackends() {
		t.Run(b.name, func(t *testing.T) {
			baseURL, read := b.start(t)
			proxy := newProtocolProxy(t, baseURL)
			exp, logs := newV2Exporter(t, proxy, prwmetric.WithNativeHistogramsForExplicitBuckets(), prwmetric.WithClassicHistograms())
			c := newClock()
			from := c.now()
			w := wantSeries{}
			const exports = 2
			for i := range exports {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				err := exp.Export(ctx, fallbackExport(c, from, i, w))
				cancel()
				if err != nil {
					t.Errorf("Export %d: %v; the classic series carry the data", i+1, err)
				}
			}
			got := read(t, `{__name__=~"e2e_fallback_.*"}`, from, c.now())
			compareFloats(t, b.name, got, w)

			warns := logs.lines(slog.LevelWarn)
			if len(warns) != 1 || !strings.Contains(warns[0], "does not speak Remote Write 2.0") {
				t.Errorf("warnings over %d exports:\n\t%s\nwant only the one about the fallback", exports, joinLines(warns))
			}
			reqs := proxy.requests()
			wantProtocols := []string{"2.0", "1.0", "1.0"}
			if got := proxy.protocols(); fmt.Sprint(got) != fmt.Sprint(wantProtocols) {
				t.Fatalf("requests by protocol: %v, want %v", got, wantProtocols)
			}
			// The 2.0 attempt carried the export's one histogram point as a
			// native histogram beside the classic series; the 1.0 resend
			// the classic series alone.
			first, resend := reqs[0], reqs[1]
			if first.sent.histograms != 1 || resend.sent != (writeCounts{samples: first.sent.samples}) {
				t.Errorf("2.0 attempt carried %v, 1.0 resend %v; want 1 native histogram in the first and the same samples, no histogram, in the second", first.sent, resend.sent)
			}
		})
	}
}

// fallbackBackends are the receivers that do not speak Remote Write 2.0.
func fallbackBackends() []fallbackBackend {
	promReader := func(s *promServer) func(*testing.T, string, time.Time, time.Time) map[string][]sample {
		return func(t *testing.T, selector string, _, to time.Time) map[string][]sample {
			return s.readRange(t, selector, to, time.Hour).Floats
		}
	}
	return []fallbackBackend{
		{
			name: "Prometheus 2.42",
			start: func(t *testing.T) (string, func(*testing.T, string, time.Time, time.Time) map[string][]sample) {
				s := startPrometheus2(t, promConfig{})
				return s.baseURL, promReader(s)
			},
			firstStatus: http.StatusNoContent,
		},
		{
			name: "VictoriaMetrics",
			start: func(t *testing.T) (string, func(*testing.T, string, time.Time, time.Time) map[string][]sample) {
				s := startVictoriaMetrics(t)
				return s.baseURL, s.export
			},
			firstStatus: http.StatusNoContent,
		},
		{
			name: "Prometheus 3 accepting 1.0 only",
			start: func(t *testing.T) (string, func(*testing.T, string, time.Time, time.Time) map[string][]sample) {
				s := startPrometheus(t, "Prometheus 3 ("+prometheus3Version+", 1.0 only)", prometheus3Bin.path(t), promConfig{},
					"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest")
				return s.baseURL, promReader(s)
			},
			firstStatus: http.StatusUnsupportedMediaType,
		},
	}
}

// fallbackExport is export i of the fallback test: a counter with two
// series, a gauge and a classic histogram, all stamped with a new time
// from c; it adds what must be stored to w.
func fallbackExport(c *clock, start time.Time, i int, w wantSeries) *metricdata.ResourceMetrics {
	ts := c.next()
	get, post := float64(3*i+1), float64(10*i)
	w.add(seriesLabels("e2e_fallback_requests_total", "method", "GET"), ts, get)
	w.add(seriesLabels("e2e_fallback_requests_total", "method", "POST"), ts, post)
	temp := -4.5 + float64(i)
	w.add(seriesLabels("e2e_fallback_temperature"), ts, temp)
	lat := metricdata.HistogramDataPoint[float64]{
		StartTime: start, Time: ts, Bounds: []float64{0.25, 2.5},
		BucketCounts: []uint64{uint64(i), 1, 1}, Count: uint64(i + 2), Sum: 4.75 + float64(i),
	}
	classicHistogram(w, "e2e_fallback_latency_seconds", lat)
	return resourceMetrics(
		metricdata.Metrics{Name: "e2e.fallback.requests", Data: metricdata.Sum[float64]{
			Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
			DataPoints: []metricdata.DataPoint[float64]{
				{Attributes: attrs("method", "GET"), StartTime: start, Time: ts, Value: get},
				{Attributes: attrs("method", "POST"), StartTime: start, Time: ts, Value: post},
			},
		}},
		metricdata.Metrics{Name: "e2e.fallback.temperature", Data: metricdata.Gauge[float64]{
			DataPoints: []metricdata.DataPoint[float64]{{Time: ts, Value: temp}},
		}},
		metricdata.Metrics{Name: "e2e.fallback.latency", Unit: "s", Data: metricdata.Histogram[float64]{
			Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{lat},
		}},
	)
}

// TestPrometheus3V2UTF8Names sends dotted metric and attribute names
// unescaped (otlptranslator.NoUTF8EscapingWithSuffixes, allowed with 2.0
// only) and reads them back under their UTF-8 names with the {"name"}
// selector syntax: suffixes are still added, dots are kept, in the metric
// name, the data point attributes and target_info's resource attributes.
func TestPrometheus3V2UTF8Names(t *testing.T) {
	s := startPrometheus3(t, promConfig{})
	proxy := newProtocolProxy(t, s.baseURL)
	exp, logs := newV2Exporter(t, proxy, prwmetric.WithTranslationStrategy(otlptranslator.NoUTF8EscapingWithSuffixes))
	c := newClock()
	start, ts := c.now(), c.next()
	kv := []string{"http.request.method", "GET", "url.scheme", "https"}
	set := attribute.NewSet(attribute.String("http.request.method", "GET"), attribute.String("url.scheme", "https"))
	lat := metricdata.HistogramDataPoint[float64]{
		Attributes: set, StartTime: start, Time: ts, Bounds: []float64{0.5}, BucketCounts: []uint64{3, 1}, Count: 4, Sum: 2.25,
	}
	export(t, exp, resourceMetrics(
		metricdata.Metrics{Name: "e2e.utf8.http.server.requests", Unit: "{request}", Data: metricdata.Sum[int64]{
			Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
			DataPoints: []metricdata.DataPoint[int64]{{Attributes: set, StartTime: start, Time: ts, Value: 17}},
		}},
		metricdata.Metrics{Name: "e2e.utf8.http.server.duration", Unit: "s", Data: metricdata.Histogram[float64]{
			Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{lat},
		}},
	))

	wantRequests := wantSeries{}
	wantRequests.add(seriesLabels("e2e.utf8.http.server.requests_total", kv...), ts, 17)
	wantDuration := wantSeries{}
	classicHistogram(wantDuration, "e2e.utf8.http.server.duration_seconds", lat, kv...)
	got := s.readRange(t, `{"e2e.utf8.http.server.requests_total"}`, ts, time.Hour)
	compareFloats(t, s.name, got.Floats, wantRequests)
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		name := "e2e.utf8.http.server.duration_seconds" + suffix
		want := wantSeries{}
		for k, v := range wantDuration {
			if strings.HasPrefix(k, name+"{") {
				want[k] = v
			}
		}
		got := s.readRange(t, `{"`+name+`"}`, ts, time.Hour)
		compareFloats(t, s.name, got.Floats, want)
	}
	// A matcher on a dotted label name.
	q := `{"e2e.utf8.http.server.requests_total", "http.request.method"="GET", "url.scheme"="https"}`
	if res := s.queryVector(t, q, ts); len(res) != 1 || res[labelKey(seriesLabels("e2e.utf8.http.server.requests_total", kv...))] != 17 {
		t.Errorf("%s = %v, want the one series with value 17", q, res)
	}
	ti := targetInfoLabels()
	delete(ti, "host_name")
	delete(ti, "cloud_region")
	ti["host.name"], ti["cloud.region"] = "e2e-host", "eu-west-1"
	wantTargetInfo := wantSeries{}
	wantTargetInfo.add(ti, ts, 1)
	got = s.readRange(t, "target_info", ts, time.Hour)
	compareFloats(t, s.name, got.Floats, wantTargetInfo)
	requireNoWarnings(t, logs)
	proxy.requireAllV2(t)
}

// TestPrometheus3V2OutOfOrderRejected is TestOutOfOrderRejected over 2.0: a
// refusal for the data (400, out of order) is no sign of a receiver that
// does not speak 2.0, so the exporter must neither fall back nor resend: one
// 2.0 request, one warning with Prometheus' own message, and the next
// export goes out as 2.0 again and succeeds.
func TestPrometheus3V2OutOfOrderRejected(t *testing.T) {
	s := startPrometheus3(t, promConfig{})
	proxy := newProtocolProxy(t, s.baseURL)
	c := newClock()
	older, newer, latest := c.next(), c.next(), c.next()

	first, _ := newV2Exporter(t, proxy)
	export(t, first, oooGauge(newer, 2))

	exp, logs := newV2Exporter(t, proxy)
	before := len(proxy.requests())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := exp.Export(ctx, oooGauge(older, 1))
	if err == nil {
		t.Fatal("Export of an out-of-order sample succeeded, want Prometheus' 400")
	}
	var we *prwmetric.WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Export error %q (%T) does not wrap a *prwmetric.WriteError", err, err)
	}
	const wantMsg = "out of order sample"
	if we.StatusCode != http.StatusBadRequest || !strings.Contains(we.Body, wantMsg) {
		t.Errorf("WriteError{StatusCode: %d, Body: %q}, want 400 with %q", we.StatusCode, we.Body, wantMsg)
	}
	refused := proxy.requests()[before:]
	if len(refused) != 1 || refused[0].protocol != "2.0" || refused[0].status != http.StatusBadRequest {
		t.Errorf("requests for the refused export: %+v, want exactly one, 2.0, answered 400 (no resend, no fallback)", refused)
	}
	warns := logs.lines(slog.LevelWarn)
	if len(warns) != 1 || !strings.Contains(warns[0], wantMsg) || !strings.Contains(warns[0], "400") {
		t.Errorf("warnings:\n\t%s\nwant exactly one, with status 400 and %q", joinLines(warns), wantMsg)
	}

	before = len(proxy.requests())
	export(t, exp, oooGauge(latest, 3))
	if got := proxy.protocols()[before:]; fmt.Sprint(got) != "[2.0]" {
		t.Errorf("the export after the refusal went out as %v, want [2.0]", got)
	}
	got := s.readRange(t, "e2e_ooo_value", latest, time.Hour)
	compareFloats(t, s.name, got.Floats, map[string][]sample{
		labelKey(seriesLabels("e2e_ooo_value")): {{T: newer.UnixMilli(), V: 2}, {T: latest.UnixMilli(), V: 3}},
	})
}
