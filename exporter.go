package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Exporter pushes OpenTelemetry metrics to a Prometheus Remote Write
// endpoint. Create it with New and hand it to a sdkmetric.PeriodicReader.
// Its methods are safe for concurrent use.
type Exporter struct {
	cfg    config
	client *client
	retry  retryPolicy
	conv   *converter

	isShutdown   atomic.Bool
	shutdownOnce sync.Once
}

var _ sdkmetric.Exporter = (*Exporter)(nil)

// New returns an Exporter configured by opts. WithEndpoint is required. Every
// invalid setting is reported in the returned error, with a nil Exporter.
func New(opts ...Option) (*Exporter, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	cl, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	conv, err := newConverter(cfg)
	if err != nil {
		return nil, err
	}
	return &Exporter{cfg: cfg, client: cl, retry: newRetryPolicy(cfg.retry), conv: conv}, nil
}

// Temporality returns cumulative for every instrument kind: Prometheus
// counters and histograms are cumulative, and a lost export is made good by
// the next successful one.
func (*Exporter) Temporality(sdkmetric.InstrumentKind) metricdata.Temporality {
	return metricdata.CumulativeTemporality
}

// Aggregation returns the aggregation chosen by WithAggregationSelector.
func (e *Exporter) Aggregation(kind sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return e.cfg.aggregationSelector(kind)
}

// Export converts rm to Prometheus series and sends them in one request.
// Unless WithRetry enables retries, it makes one attempt: on failure it logs one warning and returns an error with the
// same facts (a *WriteError), and the data of this export is dropped;
// cumulative values catch up on the next success. This is the one place that
// both logs and returns an error, on purpose: the SDK hands the error to the
// OpenTelemetry error handler, which many services leave silent.
//
// Data that cannot be converted is dropped with a warning, the rest is sent,
// and the returned error lists what was dropped. With nothing to send, Export
// makes no request.
func (e *Exporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if e.isShutdown.Load() {
		return fmt.Errorf("prwmetric: export after Shutdown: %w", sdkmetric.ErrExporterShutdown)
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.timeout)
	defer cancel()

	req, convErr := e.convert(rm)
	if req == nil || len(req.Timeseries) == 0 {
		return convErr
	}
	raw, err := req.Marshal()
	if err != nil {
		return errors.Join(convErr, fmt.Errorf("prwmetric: encoding the write request: %w", err))
	}
	body, series := snappy.Encode(nil, raw), len(req.Timeseries)
	err = e.retry.run(ctx, func(ctx context.Context, n int) error {
		return e.client.attempt(ctx, body, series, n)
	})
	if err != nil {
		e.warn(err)
		return errors.Join(convErr, err)
	}
	return convErr
}

// convert turns a panic in conversion into an error for this export: the
// exporter must never crash the service it runs in.
func (e *Exporter) convert(rm *metricdata.ResourceMetrics) (req *prompb.WriteRequest, err error) {
	defer func() {
		if r := recover(); r != nil {
			req, err = nil, fmt.Errorf("prwmetric: conversion failed, export dropped: %v", r)
			e.cfg.logger.Error("prwmetric: conversion panicked; this export is dropped", "panic", fmt.Sprint(r))
		}
	}()
	if rm == nil {
		return nil, nil
	}
	return e.conv.convert(rm)
}

func (e *Exporter) warn(err error) {
	var we *WriteError
	if !errors.As(err, &we) {
		e.cfg.logger.Warn("prwmetric: remote write failed", "error", err.Error())
		return
	}
	attrs := []any{"endpoint", we.Endpoint, "series_dropped", we.Series}
	if we.Attempts > 1 {
		attrs = append(attrs, "attempts", we.Attempts)
	}
	if we.StatusCode != 0 {
		attrs = append(attrs, "status", we.StatusCode, "body", we.Body)
	} else {
		attrs = append(attrs, "error", we.Err.Error())
	}
	e.cfg.logger.Warn("prwmetric: remote write failed; the data of this export is dropped", attrs...)
}

// ForceFlush returns ctx.Err(): the exporter holds no data between exports.
func (*Exporter) ForceFlush(ctx context.Context) error {
	return ctx.Err()
}

// Shutdown stops the exporter: later exports return an error wrapping
// sdkmetric.ErrExporterShutdown and send nothing, and idle connections are
// closed. It is idempotent and safe to call concurrently with Export.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.shutdownOnce.Do(func() {
		e.isShutdown.Store(true)
		e.client.close()
	})
	return ctx.Err()
}
