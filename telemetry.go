package prwmetric

import (
	"context"
	"errors"
	"net"
	"strconv"
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

// exported records one finished export of rm.
func (t *telemetry) exported(ctx context.Context, rm *metricdata.ResourceMetrics, start time.Time, err error) {
	if t == nil {
		return
	}
	opt := metric.WithAttributeSet(t.base)
	if err != nil {
		opt = metric.WithAttributeSet(attribute.NewSet(append(t.base.ToSlice(), attribute.String("error.type", errorType(err)))...))
	}
	t.dataPoints.Add(ctx, int64(countDataPoints(rm)), opt)
	t.duration.Record(ctx, time.Since(start).Seconds(), opt)
}

// attempt records one request sent and its outcome.
func (t *telemetry) attempt(ctx context.Context, raw, compressed int, comp Compression, err error) {
	if t == nil {
		return
	}
	class := "2xx"
	var we *WriteError
	switch {
	case errors.As(err, &we) && we.StatusCode != 0:
		class = strconv.Itoa(we.StatusCode/100) + "xx"
	case err != nil:
		class = "none"
	}
	t.requests.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(append(t.base.ToSlice(), attribute.String("http.response.status_class", class))...)))
	t.bytes.Add(ctx, int64(raw), t.raw)
	if comp == CompressionZstd {
		t.bytes.Add(ctx, int64(compressed), t.zstd)
	} else {
		t.bytes.Add(ctx, int64(compressed), t.compressed)
	}
}

// part records the content of one request of an export, once its attempts
// are over.
func (t *telemetry) part(ctx context.Context, part partCounts, err error) {
	if t == nil {
		return
	}
	outcome := t.sent
	if err != nil {
		outcome = t.failed
	}
	t.series.Add(ctx, int64(part.series), outcome)
	t.samples.Add(ctx, int64(part.samples), outcome)
	t.histograms.Add(ctx, int64(part.histograms), outcome)
	t.exemplars.Add(ctx, int64(part.exemplars), outcome)
}

// errorType is a low-cardinality description of err, for error.type.
func errorType(err error) string {
	var we *WriteError
	switch {
	case errors.As(err, &we) && we.StatusCode != 0:
		return strconv.Itoa(we.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &we):
		return "transport"
	}
	return "conversion"
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
