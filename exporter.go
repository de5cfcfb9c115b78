package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
	series *seriesTracker
	// tel is nil without WithMeterProvider.
	tel *telemetry

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
	tel, err := newTelemetry(cfg)
	if err != nil {
		return nil, fmt.Errorf("prwmetric: WithMeterProvider: creating instruments: %w", err)
	}
	e := &Exporter{cfg: cfg, client: cl, retry: newRetryPolicy(cfg.retry), conv: conv, tel: tel}
	e.series = newSeriesTracker(!cfg.withoutStaleMarkers)
	return e, nil
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

// Export converts rm to Prometheus series and sends them, in one request or,
// past the size limits, in several sent in order. Unless WithRetry enables
// retries, each request is tried once: on failure Export logs one warning and
// returns an error with the same facts (a *WriteError), and the data of this
// export is dropped; cumulative values catch up on the next success. This is the one place that
// both logs and returns an error, on purpose: the SDK hands the error to the
// OpenTelemetry error handler, which many services leave silent.
//
// Data that cannot be converted is dropped with a warning, the rest is sent,
// and the returned error lists what was dropped. With nothing to send, Export
// makes no request.
func (e *Exporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) (err error) {
	if e.isShutdown.Load() {
		return fmt.Errorf("prwmetric: export after Shutdown: %w", sdkmetric.ErrExporterShutdown)
	}
	defer func(start time.Time) { e.tel.exported(context.WithoutCancel(ctx), rm, start, err) }(time.Now())
	ctx, cancel := context.WithTimeout(ctx, e.cfg.timeout)
	defer cancel()

	req, convErr := e.convert(rm)
	if req == nil {
		req = &prompb.WriteRequest{}
	}
	live := e.series.observe(req)
	req.Timeseries = append(req.Timeseries, e.series.markers(live, time.Now().UnixMilli())...)
	if len(req.Timeseries) == 0 {
		return convErr
	}
	err = e.send(ctx, req)
	if e.isShutdown.Load() {
		// Shutdown closed idle connections while this export held one.
		e.client.close()
	}
	if err != nil {
		return errors.Join(convErr, err)
	}
	e.series.delivered(live)
	return convErr
}

// send delivers req in requests within the size limits, in order, so that a
// series' samples never overtake each other. The first failure stops the
// rest: it is logged once and returned.
func (e *Exporter) send(ctx context.Context, req *prompb.WriteRequest) error {
	parts := split(req, e.cfg.maxSeries, e.cfg.maxBytes)
	delivered, total := 0, len(req.Timeseries)
	for _, part := range parts {
		raw, err := part.Marshal()
		if err != nil {
			err = fmt.Errorf("prwmetric: encoding the write request: %w (%d of %d series delivered)", err, delivered, total)
			e.warn(err)
			return err
		}
		body, n := snappy.Encode(nil, raw), len(part.Timeseries)
		err = e.retry.run(ctx, func(ctx context.Context, attempt int) error {
			err := e.client.attempt(ctx, body, n, attempt)
			e.tel.attempt(ctx, len(raw), len(body), err)
			return err
		})
		e.tel.part(ctx, part, err)
		if err != nil {
			var we *WriteError
			if errors.As(err, &we) {
				we.Series, we.Delivered = total-delivered, delivered
			}
			e.warn(err)
			return err
		}
		delivered += n
	}
	return nil
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
	if we.Delivered > 0 {
		attrs = append(attrs, "series_delivered", we.Delivered)
	}
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

// Shutdown stops the exporter: it ends every series of the last successful
// export with a staleness marker (unless WithoutStaleMarkers), then later
// exports return an error wrapping sdkmetric.ErrExporterShutdown and send
// nothing, and idle connections are closed. It is idempotent and safe to call
// concurrently with Export; only the first call sends.
func (e *Exporter) Shutdown(ctx context.Context) error {
	var err error
	e.shutdownOnce.Do(func() {
		e.isShutdown.Store(true)
		defer e.client.close()
		markers := e.series.endAll(time.Now().UnixMilli())
		if len(markers) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, e.cfg.timeout)
		defer cancel()
		err = e.send(ctx, &prompb.WriteRequest{Timeseries: markers})
	})
	if err != nil {
		return err
	}
	return ctx.Err()
}
