package prwmetric

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

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
	// negotiation is the protocol spoken now (see WithProtocol).
	negotiation negotiation
	series      *seriesCache
	// tel is nil without WithMeterProvider.
	tel *telemetry

	// exporting admits one export at a time: exports reuse the cache and
	// the buffers below, and one export's requests must not overtake the
	// previous one's. A PeriodicReader never exports concurrently anyway.
	exporting chan struct{}
	batch     batch
	buffers   sendBuffers

	// isShutdown is set by the first Shutdown, which closes shutdownDone
	// when it has finished.
	isShutdown   atomic.Bool
	shutdownDone chan struct{}
}

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
	rules, err := newRules(cfg)
	if err != nil {
		return nil, err
	}
	tel, err := newTelemetry(cfg)
	if err != nil {
		return nil, fmt.Errorf("prwmetric: WithMeterProvider: creating instruments: %w", err)
	}
	series := newSeriesCache(rules, !cfg.withoutStaleMarkers)
	if cfg.initialZero {
		series.zeros = newInitialZeros()
	}
	series.collectV2 = cfg.protocol == ProtocolV2
	return &Exporter{
		cfg:          cfg,
		client:       cl,
		retry:        newRetryPolicy(cfg.retry, cfg.timeout),
		negotiation:  negotiation{configured: cfg.protocol, compression: cfg.compression},
		series:       series,
		tel:          tel,
		exporting:    make(chan struct{}, 1),
		shutdownDone: make(chan struct{}),
	}, nil
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

// String names the exporter by its endpoint, credentials and query values
// hidden. fmt prints this rather than the configuration, which holds
// secrets.
func (e *Exporter) String() string {
	if e == nil || e.client == nil {
		return "prwmetric.Exporter(not made by New)"
	}
	return "prwmetric.Exporter(" + e.client.redacted + ")"
}

// GoString is String, for %#v.
func (e *Exporter) GoString() string { return e.String() }

// Export converts rm to Prometheus series and sends them, in one request or,
// past the size limits, in several sent side by side (see
// WithMaxConcurrentRequests). Unless WithRetry enables retries, each
// request is tried once: on failure Export returns a *WriteError, and the
// series it counts dropped (WriteError.Series) are lost for this export;
// cumulative values catch up on the next success. The error is the report: the PeriodicReader hands it to the
// OpenTelemetry error handler, once; WithLogger adds a structured warning.
//
// Data that cannot be converted is dropped, the rest is sent, and the
// returned error lists what was dropped. With nothing to send, Export
// makes no request. Concurrent calls run one after the other.
func (e *Exporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) (err error) {
	if e.isShutdown.Load() {
		return fmt.Errorf("prwmetric: export after Shutdown: %w", sdkmetric.ErrExporterShutdown)
	}
	start := time.Now()
	var outcome *exportOutcome // set once this export has had its turn
	defer func() {
		if !errors.Is(err, sdkmetric.ErrExporterShutdown) {
			e.tel.exported(context.WithoutCancel(ctx), rm, outcome, start, err)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, e.cfg.timeout)
	defer cancel()
	if err := e.acquire(ctx); err != nil {
		err = fmt.Errorf("prwmetric: waiting for the previous export to finish: %w; the data of this export is dropped", err)
		e.cfg.failureLogger().Warn(err.Error())
		return err
	}
	defer e.release()
	// Taken before the next export converts and sends.
	defer func() { outcome = e.tel.outcome(e.series) }()
	if e.isShutdown.Load() {
		// Shutdown happened while this export waited.
		return fmt.Errorf("prwmetric: export after Shutdown: %w", sdkmetric.ErrExporterShutdown)
	}

	b := &e.batch
	defer b.reset()
	if z := e.series.zeros; z != nil {
		defer z.release()
	}
	var delivered []span
	st := e.startStream(ctx, b)
	ok, convErr := e.convertSafely(rm, b)
	switch {
	case st != nil:
		// What was sent of a conversion that failed half-way counts.
		delivered, err = e.finishStream(ctx, b, st, ok)
	case !ok || len(b.records) == 0:
		return convErr
	default:
		delivered, err = e.sendAll(ctx, b)
	}
	if refusesNativeHistograms(err) && e.series.sendsNativeHistograms() {
		// Nothing of it is marked delivered (see marksEarly): what went
		// through before the refusal goes again, the same samples, which
		// receivers accept.
		e.series.rememberNativeHistograms()
		e.series.dropNativeHistograms()
		e.cfg.logger.Warn("prwmetric: the receiver refuses native histograms; sending this export again and from now on with exponential histograms as classic histograms. To keep native histograms, enable them on the receiver (Prometheus 2.40+: --enable-feature=native-histograms; Mimir: -ingester.native-histograms-ingestion-enabled); to choose classic histograms up front, use WithoutNativeHistograms",
			"endpoint", e.client.redacted)
		b.reset()
		if ok, convErr = e.convertSafely(rm, b); !ok || len(b.records) == 0 {
			return convErr
		}
		delivered, err = e.sendAll(ctx, b)
	}
	if e.isShutdown.Load() {
		// Shutdown closed idle connections while this export held one.
		e.client.close()
	}
	// What the receiver accepted counts, even when a later request of
	// the export failed: it holds those samples and those ends.
	e.series.markDelivered(b, delivered)
	if z := e.series.zeros; z != nil {
		z.sent(b.arrived(delivered), b.processed)
	}
	if err != nil {
		return errors.Join(convErr, err)
	}
	return convErr
}

// sendAll sends the export's zeros (WithInitialZero), then b. A refusal of
// native histograms comes back as err, before anything is marked delivered.
func (e *Exporter) sendAll(ctx context.Context, b *batch) (delivered []span, err error) {
	refused, zeroErr := e.sendZeros(ctx)
	if refused != nil {
		return nil, refused
	}
	delivered, err = e.send(ctx, b, &e.buffers)
	if refusesNativeHistograms(err) && e.series.sendsNativeHistograms() {
		// Alone, so that Export sees the refusal and sends it all again
		// (the zeros too) without native histograms.
		return delivered, err
	}
	return delivered, errors.Join(zeroErr, err)
}

// convertSafely converts rm into b through the cache. A panic in conversion
// becomes an error for this export, which then sends nothing more (ok is
// false; requests it had already cut go, see stream): the exporter must
// never crash the service it runs in.
func (e *Exporter) convertSafely(rm *metricdata.ResourceMetrics, b *batch) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("prwmetric: conversion failed, export dropped: %v", r)
			e.cfg.failureLogger().Error("prwmetric: conversion panicked; this export is dropped", "panic", fmt.Sprint(r))
			e.series.forget()
		}
	}()
	return true, e.series.convert(rm, b, time.Now().UnixMilli())
}

func (e *Exporter) warn(err error) {
	var we *WriteError
	if !errors.As(err, &we) {
		e.cfg.failureLogger().Warn("prwmetric: remote write failed", "error", err.Error())
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
	if h := we.hint(); h != "" {
		attrs = append(attrs, "hint", h)
	}
	e.cfg.failureLogger().Warn("prwmetric: remote write failed; the data of this export is dropped", attrs...)
}

// acquire takes the one export slot (see Exporter.exporting), waiting at
// most until ctx is done. A free slot is taken even when ctx is: the
// deadline then fails the export's send, with the right reason.
func (e *Exporter) acquire(ctx context.Context) error {
	select {
	case e.exporting <- struct{}{}:
		return nil
	default:
	}
	select {
	case e.exporting <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Exporter) release() { <-e.exporting }

// ForceFlush returns ctx.Err(): the exporter holds no data between exports.
func (*Exporter) ForceFlush(ctx context.Context) error {
	return ctx.Err()
}

// Shutdown stops the exporter: later exports return an error wrapping
// sdkmetric.ErrExporterShutdown and send nothing; an export already running
// is waited for (within ctx and the timeout), so that its samples arrive
// before the staleness markers with which Shutdown then ends every series
// the receiver holds (unless WithoutStaleMarkers or WithoutShutdownMarkers);
// idle connections are closed. It is idempotent and safe to call
// concurrently with Export and with itself: only the first call sends; a
// later one waits for it, within its own ctx.
func (e *Exporter) Shutdown(ctx context.Context) error {
	if !e.isShutdown.CompareAndSwap(false, true) {
		select {
		case <-e.shutdownDone:
		case <-ctx.Done():
		}
		return ctx.Err()
	}
	defer close(e.shutdownDone)
	if err := e.shutdown(ctx); err != nil {
		return err
	}
	return ctx.Err()
}

// shutdown is the first Shutdown's work.
func (e *Exporter) shutdown(ctx context.Context) error {
	defer e.client.close()
	ctx, cancel := context.WithTimeout(ctx, e.cfg.timeout)
	defer cancel()
	// A running export goes first: its samples must reach the receiver
	// before the markers that end their series, and what it delivers
	// decides which series there are to end.
	if err := e.acquire(ctx); err != nil {
		return fmt.Errorf("prwmetric: Shutdown: an export still running did not finish in time, so no staleness markers were sent (the receiver ends the series after its staleness window): %w", err)
	}
	defer e.release()
	b := &e.batch
	defer b.reset()
	if e.cfg.withoutShutdownMarkers {
		return nil
	}
	e.series.endAll(b, time.Now().UnixMilli())
	if len(b.records) == 0 {
		return nil
	}
	_, err := e.send(ctx, b, &e.buffers)
	return err
}

var _ sdkmetric.Exporter = (*Exporter)(nil)
