package prwmetric

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prwmetric/prwmetric/prwmetrictest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// This file holds the helpers every test file of the package shares: a receiver that decodes what was POSTed (snappy block
// + prompb), fixed metric data, and a slog handler that captures records.

// --- fixed data -------------------------------------------------------------

var (
	testStart = time.Unix(1700000000, 0).UTC()
	// testTime has sub-millisecond digits, so truncation to milliseconds is
	// visible on the wire.
	testTime = time.Unix(1700000060, 123456789).UTC()
)

// testMillis is testTime in milliseconds since the epoch.
const testMillis int64 = 1700000060123

// pinned fixes the parts of the output that other features own (scope
// labels, target_info, metadata, staleness markers at Shutdown), so these
// tests compare exact series and count requests exactly.
func pinned(opts ...Option) []Option {
	return append([]Option{WithoutScopeInfo(), WithoutTargetInfo(), WithoutMetadata(), WithoutStaleMarkers()}, opts...)
}

func testResource() *resource.Resource {
	return resource.NewSchemaless(
		attribute.String("service.name", "checkout"),
		attribute.String("service.instance.id", "pod-1"),
	)
}

// counterData is one monotonic int64 Sum "requests" {method="GET"} = v.
func counterData(v int64) *metricdata.ResourceMetrics {
	return &metricdata.ResourceMetrics{
		Resource: testResource(),
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope: instrumentation.Scope{Name: "prwmetric/test", Version: "1.0.0"},
			Metrics: []metricdata.Metrics{{
				Name: "requests",
				Data: metricdata.Sum[int64]{
					Temporality: metricdata.CumulativeTemporality,
					IsMonotonic: true,
					DataPoints: []metricdata.DataPoint[int64]{{
						Attributes: attribute.NewSet(attribute.String("method", "GET")),
						StartTime:  testStart,
						Time:       testTime,
						Value:      v,
					}},
				},
			}},
		}},
	}
}

// counterSeries is what counterData(v) becomes on the wire.
func counterSeries(v float64) series {
	return series{
		Labels:  []string{"__name__=requests_total", "instance=pod-1", "job=checkout", "method=GET"},
		Samples: []sample{{Value: v, Millis: testMillis}},
	}
}

// --- decoded requests ---------------------------------------------------------

// sample and series are a readable form of prompb's types for cmp.Diff.
type sample struct {
	Value  float64
	Millis int64
}

type series struct {
	// Labels are "name=value" in wire order, so that sorting is checked too.
	Labels     []string
	Samples    []sample
	Exemplars  int
	Histograms int
}

func (s series) name() string { return strings.TrimPrefix(s.Labels[0], "__name__=") }

func fromProm(wr *prompb.WriteRequest) []series {
	out := make([]series, 0, len(wr.Timeseries))
	for _, ts := range wr.Timeseries {
		s := series{Exemplars: len(ts.Exemplars), Histograms: len(ts.Histograms)}
		for _, l := range ts.Labels {
			s.Labels = append(s.Labels, l.Name+"="+l.Value)
		}
		for _, smp := range ts.Samples {
			s.Samples = append(s.Samples, sample{Value: smp.Value, Millis: smp.Timestamp})
		}
		out = append(out, s)
	}
	return out
}

// named returns the series whose metric name is one of names, sorted by
// labels: the conversion may add other series (target_info) and order them
// as it likes.
func named(all []series, names ...string) []series {
	var out []series
	for _, s := range all {
		for _, n := range names {
			if len(s.Labels) > 0 && s.name() == n {
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Join(out[i].Labels, ",") < strings.Join(out[j].Labels, ",")
	})
	return out
}

// decodeBody undoes what the exporter does: snappy block format, then the
// Remote-Write 1.0 protobuf.
func decodeBody(body []byte) (*prompb.WriteRequest, error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy block decode: %w", err)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("prompb unmarshal: %w", err)
	}
	return &wr, nil
}

// received is one request as a test server saw it.
type received struct {
	Method     string
	Host       string
	Path       string
	RequestURI string
	Header     http.Header
	// Body is the decoded write request; DecodeErr says why it is nil.
	Body      *prompb.WriteRequest
	DecodeErr error
	// Series is Body in readable form.
	Series []series
}

// recorder keeps every request a test server received: prwmetrictest's,
// or those a hand-made server (a proxy, a misbehaving peer) records.
type recorder struct {
	srv  *prwmetrictest.Server
	mu   sync.Mutex
	reqs []received
}

// record reads and decodes r's body (bounded) and keeps the request.
func (rec *recorder) record(r *http.Request) received {
	got := received{
		Method:     r.Method,
		Host:       r.Host,
		Path:       r.URL.Path,
		RequestURI: r.RequestURI,
		Header:     r.Header.Clone(),
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err == nil {
		got.Body, err = decodeBody(body)
	}
	if err != nil {
		got.DecodeErr = err
	} else {
		got.Series = fromProm(got.Body)
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, got)
	rec.mu.Unlock()
	return got
}

func (rec *recorder) all() []received {
	if rec.srv != nil {
		var out []received
		for _, r := range rec.srv.Requests() {
			got := received{Method: r.Method, Path: r.Path, RequestURI: r.Path, Header: r.Header, Body: r.V1}
			if r.V1 == nil {
				got.DecodeErr = fmt.Errorf("not a Remote Write 1.0 request: %q", r.Violations)
			} else {
				got.Series = fromProm(r.V1)
			}
			out = append(out, got)
		}
		return out
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]received(nil), rec.reqs...)
}

func (rec *recorder) count() int {
	if rec.srv != nil {
		return rec.srv.RequestCount()
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

// only returns the single request received, failing the test if there was
// not exactly one or it did not decode.
func (rec *recorder) only(t *testing.T) received {
	t.Helper()
	all := rec.all()
	if len(all) != 1 {
		t.Fatalf("server received %d requests, want exactly 1", len(all))
	}
	if all[0].DecodeErr != nil {
		t.Fatalf("request body does not decode: %v", all[0].DecodeErr)
	}
	return all[0]
}

// startServer starts a 127.0.0.1 test server closed at cleanup; its
// handshake and handler errors are discarded to keep test output clean.
func startServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// newReceiver starts prwmetrictest's receiver answering every request with
// status and body (lenient: it stores and shows what breaks the protocol's
// rules, for the tests to judge). Its URL has the usual /api/v1/write path.
func newReceiver(t *testing.T, status int, body string) (endpoint string, rec *recorder) {
	t.Helper()
	srv := prwmetrictest.NewServer(prwmetrictest.WithLenient())
	t.Cleanup(srv.Close)
	srv.RespondWith(prwmetrictest.Always, prwmetrictest.Response{Status: status, Body: body})
	return srv.URL(), &recorder{srv: srv}
}

// newExporter calls New and shuts the exporter down at cleanup.
func newExporter(t *testing.T, opts ...Option) *Exporter {
	t.Helper()
	exp, err := New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if exp == nil {
		t.Fatal("New returned a nil exporter and no error")
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// closedEndpoint returns a URL on 127.0.0.1 where nothing listens: the
// port was just released, so connecting is refused.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/api/v1/write"
}

// --- captured logs --------------------------------------------------------------

// logRecord is one captured slog record with its attributes as text.
type logRecord struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

// String renders everything in the record, for searching it for secrets.
func (r logRecord) String() string {
	keys := make([]string, 0, len(r.Attrs))
	for k := range r.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, r.Attrs[k])
	}
	return b.String()
}

// logCapture is a slog.Handler that keeps every record, safe for
// concurrent use.
type logCapture struct {
	mu      *sync.Mutex
	records *[]logRecord
	prefix  string
	attrs   []slog.Attr
}

func newLogCapture() (*slog.Logger, *logCapture) {
	h := &logCapture{mu: &sync.Mutex{}, records: &[]logRecord{}}
	return slog.New(h), h
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Message: r.Message, Attrs: map[string]string{}}
	var add func(prefix string, a slog.Attr)
	add = func(prefix string, a slog.Attr) {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			for _, g := range v.Group() {
				add(prefix+a.Key+".", g)
			}
			return
		}
		rec.Attrs[prefix+a.Key] = v.String()
	}
	for _, a := range h.attrs {
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool { add(h.prefix, a); return true })
	h.mu.Lock()
	*h.records = append(*h.records, rec)
	h.mu.Unlock()
	return nil
}

func (h *logCapture) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		c.attrs = append(append([]slog.Attr(nil), c.attrs...), slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
	}
	return &c
}

func (h *logCapture) WithGroup(name string) slog.Handler {
	c := *h
	c.prefix += name + "."
	return &c
}

func (h *logCapture) all() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), *h.records...)
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func basicHeader(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// roundTripperFunc adapts a function to http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// manyGauges is one gauge metric with n series, value i for series i.
func manyGauges(n int, at time.Time) *metricdata.ResourceMetrics {
	dps := make([]metricdata.DataPoint[float64], n)
	for i := range dps {
		dps[i] = metricdata.DataPoint[float64]{
			Attributes: attribute.NewSet(attribute.Int("i", i)),
			Time:       at,
			Value:      float64(i),
		}
	}
	return &metricdata.ResourceMetrics{
		Resource: resource.NewSchemaless(attribute.String("service.name", "svc")),
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope:   instrumentation.Scope{Name: "test"},
			Metrics: []metricdata.Metrics{{Name: "load", Description: "d", Data: metricdata.Gauge[float64]{DataPoints: dps}}},
		}},
	}
}

func newTestExporter(t *testing.T, srv *prwmetrictest.Server, opts ...Option) *Exporter {
	t.Helper()
	base := []Option{WithEndpoint(srv.URL()), WithoutEnvironment(), WithLogger(slog.New(slog.DiscardHandler)), WithoutTargetInfo(), WithoutScopeInfo()}
	exp, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// lines renders every record kept (see logRecord.String).
func (h *logCapture) lines() []string {
	var out []string
	for _, r := range h.all() {
		out = append(out, r.String())
	}
	return out
}

// encode is batchView.encode of the batch as it is.
func (b *batch) encode(buf []byte, c cut) []byte {
	v := b.view()
	return v.encode(buf, c)
}

// allRecords is the one span of every record of b.
func (b *batch) allRecords() []span {
	return []span{{0, len(b.records)}}
}

// cut is cutSpans for the records from from on, as the oracle checks cut
// whole batches.
func (b *batch) cut(from, maxSeries, maxBytes int, cuts []cut) []cut {
	return b.cutSpans([]span{{from, len(b.records)}}, maxSeries, maxBytes, cuts)
}

// partialWrite200 is a 2.0 receiver's success that wrote samplesWritten
// samples of the request (a partial write).
func partialWrite200(samplesWritten int) prwmetrictest.Response {
	r := partialCommit400(samplesWritten)
	r.Status, r.Body = http.StatusOK, ""
	return r
}

// partialCommit400 is a 2.0 receiver's answer to a request it committed
// only part of, as Prometheus answers one with a bad series: 400, and the
// samples it wrote in the written counts.
func partialCommit400(samplesWritten int) prwmetrictest.Response {
	return prwmetrictest.Response{Status: http.StatusBadRequest, Body: "out of order sample", Header: http.Header{
		prwmetrictest.HeaderSamplesWritten:    {strconv.Itoa(samplesWritten)},
		prwmetrictest.HeaderHistogramsWritten: {"0"},
		prwmetrictest.HeaderExemplarsWritten:  {"0"},
	}}
}
