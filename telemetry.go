package prwmetric

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

const componentType = "prwmetric_remote_write_metric_exporter"

var exporterIDs atomic.Int64

// telemetry holds the self-observability instruments; a nil *telemetry
// records nothing, so the exporter pays nothing when it is off.
type telemetry struct {
	dataPoints metric.Int64Counter
	duration   metric.Float64Histogram
	series     metric.Int64Counter
	samples    metric.Int64Counter
	histograms metric.Int64Counter
	exemplars  metric.Int64Counter
	requests   metric.Int64Counter
	bytes      metric.Int64Counter

	base       attribute.Set
	sent       metric.MeasurementOption
	failed     metric.MeasurementOption
	raw        metric.MeasurementOption
	compressed metric.MeasurementOption
	zstd       metric.MeasurementOption

	// mu guards what a send counts until it is settled: a send whose
	// native histograms the receiver refuses goes again (see settle), and
	// its series count then, once. cause and unwritten are what the
	// export's own send (not its zeros, WithInitialZero) met, until
	// outcome takes them (see exportOutcome). undelivered is the part of
	// pending counted by requests that failed: after a refusal of 2.0 or
	// zstd they go again (see resending).
	mu          sync.Mutex
	pending     struct{ sent, failed partCounts }
	undelivered struct{ sent, failed partCounts }
	cause       error
	unwritten   int
	// skipped counts the export's custom-bucket histograms a 1.0 send
	// left out (reportSkippedByV1).
	skipped int
}

func newTelemetry(c config) (*telemetry, error) {
	if c.meterProvider == nil {
		return nil, nil
	}
	m := c.meterProvider.Meter("github.com/prwmetric/prwmetric", metric.WithInstrumentationVersion(Version))
	t := &telemetry{}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		ctr, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return ctr
	}
	t.dataPoints = counter("otel.sdk.exporter.metric_data_point.exported", "{data_point}",
		"The number of metric data points for which the export has finished, either successful or failed.")
	t.series = counter("prwmetric.exporter.series", "{series}", "Prometheus series sent, by outcome.")
	t.samples = counter("prwmetric.exporter.samples", "{sample}", "Float samples sent, by outcome.")
	t.histograms = counter("prwmetric.exporter.histograms", "{histogram}", "Native histogram samples sent, by outcome.")
	t.exemplars = counter("prwmetric.exporter.exemplars", "{exemplar}", "Exemplars sent, by outcome.")
	t.requests = counter("prwmetric.exporter.requests", "{request}", "Remote-write requests, by HTTP status class.")
	t.bytes = counter("prwmetric.exporter.sent_bytes", "By", "Request body bytes sent, compressed and raw (uncompressed protobuf).")
	var err error
	t.duration, err = m.Float64Histogram("otel.sdk.exporter.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("The duration of exporting a batch of telemetry records."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	attrs := []attribute.KeyValue{
		attribute.String("otel.component.type", componentType),
		attribute.String("otel.component.name", componentType+"/"+strconv.FormatInt(exporterIDs.Add(1)-1, 10)),
	}
	if host, port, err := net.SplitHostPort(c.endpointURL.Host); err == nil {
		attrs = append(attrs, attribute.String("server.address", host))
		if p, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attribute.Int("server.port", p))
		}
	} else {
		attrs = append(attrs, attribute.String("server.address", c.endpointURL.Hostname()))
	}
	t.base = attribute.NewSet(attrs...)
	with := func(kv ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append(t.base.ToSlice(), kv...)...))
	}
	t.sent = with(attribute.String("outcome", "sent"))
	t.failed = with(attribute.String("outcome", "failed"))
	t.raw = with(attribute.String("encoding", "raw"))
	t.compressed = with(attribute.String("encoding", "snappy"))
	t.zstd = with(attribute.String("encoding", "zstd"))
	return t, nil
}

// exportOutcome is what an export's data points came to.
type exportOutcome struct {
	// kept counts the points the conversion kept; skipped those of them
	// a 1.0 send could not carry (custom-bucket histograms).
	kept, skipped int
	// cause is the failure of the export's own send; unwritten counts
	// the samples and histograms partial writes left out.
	cause     error
	unwritten int
}

// outcome takes what the export that has just converted into sc and sent
// came to: the points sc's last conversion kept, and what settled left.
func (t *telemetry) outcome(sc *seriesCache) *exportOutcome {
	if t == nil {
		return nil
	}
	out := &exportOutcome{kept: pointsKept(sc)}
	t.mu.Lock()
	out.cause, out.unwritten, out.skipped = t.cause, t.unwritten, t.skipped
	t.cause, t.unwritten, t.skipped = nil, 0, 0
	t.mu.Unlock()
	return out
}

// exported records one finished export of rm, which came to out; nil when
// the export never had its turn, converted nothing, and failed as a whole.
// As the semantic conventions ask of partial success, only points not
// exported count failed: those the conversion dropped (error.type
// "conversion"), with the custom-bucket histograms a 1.0 send left out,
// and of the rest all when the export's own send failed (a
// request does not map back to points), else one per sample or histogram
// partial writes left out. Zeros (WithInitialZero) are no data points:
// their failure fails none.
func (t *telemetry) exported(ctx context.Context, rm *metricdata.ResourceMetrics, out *exportOutcome, start time.Time, err error) {
	if t == nil {
		return
	}
	opt := metric.WithAttributeSet(t.base)
	if err != nil {
		opt = t.withError(errorType(err))
	}
	t.duration.Record(ctx, time.Since(start).Seconds(), opt)
	total := countDataPoints(rm)
	if out == nil {
		t.addPoints(ctx, total, opt)
		return
	}
	// What 1.0 cannot carry was not converted for this receiver.
	kept := min(max(out.kept-out.skipped, 0), total)
	failed, why := 0, ""
	switch {
	case out.cause != nil:
		failed, why = kept, errorType(out.cause)
	case out.unwritten > 0:
		failed, why = min(kept, out.unwritten), errorTypePartialWrite
	}
	t.addPoints(ctx, kept-failed, metric.WithAttributeSet(t.base))
	if failed > 0 {
		t.addPoints(ctx, failed, t.withError(why))
	}
	t.addPoints(ctx, total-kept, t.withError(errorTypeConversion))
}

// addPoints counts n data points; 0 makes no stream.
func (t *telemetry) addPoints(ctx context.Context, n int, opt metric.MeasurementOption) {
	if n > 0 {
		t.dataPoints.Add(ctx, int64(n), opt)
	}
}

func (t *telemetry) withError(typ string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(append(t.base.ToSlice(), attribute.String("error.type", typ))...))
}

// pointsKept returns how many data points the last conversion into sc kept:
// those whose cache entry it used, less those emit dropped. A metric it
// dropped whole uses no point entry, a point it dropped is not looked up.
func pointsKept(sc *seriesCache) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.res == nil {
		return 0 // the conversion failed (forget)
	}
	n := 0
	for _, se := range sc.res.scopes {
		if se.seen != sc.gen {
			continue
		}
		for _, me := range se.metrics {
			if me.seen == sc.gen {
				n += me.seenPoints
			}
		}
	}
	return n - sc.pointsDropped
}

// attempt records one attempt of a request and its outcome. Its bytes count
// unless the request surely never left (neverLeft): a refused connection
// sends nothing.
func (t *telemetry) attempt(ctx context.Context, raw, compressed int, comp Compression, err error) {
	if t == nil {
		return
	}
	// Every error but a *WriteError is a 2xx answer that does not say all
	// was written (a 2.0 partial write, no Written headers).
	class, sent := "2xx", true
	switch we := errorOf[*WriteError](err); {
	case we == nil:
	case we.StatusCode != 0:
		class = strconv.Itoa(we.StatusCode/100) + "xx"
	default:
		class, sent = "none", !neverLeft(we.Err)
	}
	t.requests.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(append(t.base.ToSlice(), attribute.String("http.response.status_class", class))...)))
	if !sent {
		return
	}
	t.bytes.Add(ctx, int64(raw), t.raw)
	if comp == CompressionZstd {
		t.bytes.Add(ctx, int64(compressed), t.zstd)
	} else {
		t.bytes.Add(ctx, int64(compressed), t.compressed)
	}
}

// part notes the content of one request of a send, once its attempts are
// over: failed when err is not nil, but for what a 2.0 receiver's 400
// says it wrote (short); of a partial write (short, err nil), what the
// receiver did not write. Its series count as sent then: the receiver
// took the request.
func (t *telemetry) part(parts partCounts, short *shortWrite, err error) {
	if t == nil {
		return
	}
	var sent, failed partCounts
	switch {
	case short != nil:
		// Series all count sent for a 2xx; a 400 with written counts
		// (written.series set) dropped the rest, as its WriteError says.
		sent = partCounts{
			series:     parts.series,
			samples:    min(short.written.samples, parts.samples),
			histograms: min(short.written.histograms, parts.histograms),
			exemplars:  min(short.written.exemplars, parts.exemplars),
		}
		if short.written.series > 0 {
			sent.series = min(short.written.series, parts.series)
		}
		failed = partCounts{
			series:     parts.series - sent.series,
			samples:    parts.samples - sent.samples,
			histograms: parts.histograms - sent.histograms,
			exemplars:  parts.exemplars - sent.exemplars,
		}
	case err != nil:
		failed = parts
	default:
		sent = parts
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending.sent.add(sent)
	t.pending.failed.add(failed)
	if err != nil {
		t.undelivered.sent.add(sent)
		t.undelivered.failed.add(failed)
	}
}

// settled records what a send counted (part), now that its series go no
// more; err and partial are its outcome, which the export's own send
// (not zeros) leaves for its data points (outcome).
func (t *telemetry) settled(ctx context.Context, zeros bool, err error, partial *PartialWriteError) {
	if t == nil {
		return
	}
	t.mu.Lock()
	p := t.pending
	t.pending.sent, t.pending.failed = partCounts{}, partCounts{}
	t.undelivered.sent, t.undelivered.failed = partCounts{}, partCounts{}
	if !zeros {
		if err != nil {
			t.cause = err
		}
		if partial != nil {
			t.unwritten += partial.SamplesSent - partial.SamplesWritten + partial.HistogramsSent - partial.HistogramsWritten
		}
	}
	t.mu.Unlock()
	t.count(ctx, p.sent, t.sent)
	t.count(ctx, p.failed, t.failed)
}

// skippedByV1 notes n custom-bucket histograms of the export a 1.0 send
// left out: their data points were not exported.
func (t *telemetry) skippedByV1(n int) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.skipped += n
	t.mu.Unlock()
}

// resending forgets what the failed requests of a send counted: what was
// not delivered goes again (see settle), whatever failed it, and counts
// then.
func (t *telemetry) resending() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.pending.sent = t.pending.sent.minus(t.undelivered.sent)
	t.pending.failed = t.pending.failed.minus(t.undelivered.failed)
	t.undelivered.sent, t.undelivered.failed = partCounts{}, partCounts{}
	t.mu.Unlock()
}

// discard forgets what a send counted: it goes again (see settle).
func (t *telemetry) discard() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.pending.sent, t.pending.failed = partCounts{}, partCounts{}
	t.undelivered.sent, t.undelivered.failed = partCounts{}, partCounts{}
	t.mu.Unlock()
}

func (t *telemetry) count(ctx context.Context, c partCounts, outcome metric.MeasurementOption) {
	t.series.Add(ctx, int64(c.series), outcome)
	t.samples.Add(ctx, int64(c.samples), outcome)
	t.histograms.Add(ctx, int64(c.histograms), outcome)
	t.exemplars.Add(ctx, int64(c.exemplars), outcome)
}

func (c *partCounts) add(d partCounts) {
	c.series += d.series
	c.samples += d.samples
	c.histograms += d.histograms
	c.exemplars += d.exemplars
}

func (c partCounts) minus(d partCounts) partCounts {
	return partCounts{c.series - d.series, c.samples - d.samples, c.histograms - d.histograms, c.exemplars - d.exemplars}
}

// Values of error.type besides status codes.
const (
	errorTypeConversion   = "conversion"
	errorTypePartialWrite = "partial_write"
)

// errorType is a low-cardinality description of err, for error.type.
func errorType(err error) string {
	var we *WriteError
	var pw *PartialWriteError
	switch {
	case errors.As(err, &we) && we.StatusCode != 0:
		return strconv.Itoa(we.StatusCode)
	case errors.As(err, &pw):
		return errorTypePartialWrite
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &we):
		return "transport"
	}
	return errorTypeConversion
}

func countDataPoints(rm *metricdata.ResourceMetrics) int {
	if rm == nil {
		return 0
	}
	n := 0
	for i := range rm.ScopeMetrics {
		for j := range rm.ScopeMetrics[i].Metrics {
			points, _ := dataPoints(rm.ScopeMetrics[i].Metrics[j].Data)
			n += points
		}
	}
	return n
}
