// Package prwmetric is an OpenTelemetry metric exporter that pushes metrics
// straight to a Prometheus Remote Write endpoint: Prometheus, Cortex, Mimir,
// Thanos, VictoriaMetrics and every other receiver of the protocol. No
// Prometheus server scrapes the service and no collector sits in between.
//
// # Use
//
// Build an exporter and hand it to a periodic reader:
//
//	exp, err := prwmetric.New(prwmetric.WithEndpoint("http://prometheus:9090/api/v1/write"))
//	if err != nil {
//		return err
//	}
//	provider := sdkmetric.NewMeterProvider(
//		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(15*time.Second))),
//		sdkmetric.WithResource(res),
//	)
//	defer provider.Shutdown(context.Background())
//
// At each collection the reader calls Export, which converts every data point
// to Prometheus series, encodes them as Remote Write 1.0 requests (protobuf
// WriteRequests, snappy block-compressed; one, unless the export is larger
// than WithMaxRequestBytes or WithMaxSeriesPerRequest allow) and POSTs them,
// up to WithMaxConcurrentRequests at once. Series labels are built and
// encoded once and cached, so a steady export costs little more than the
// compression.
//
// # Failures and retries
//
// By default the exporter never retries (WithRetry turns retries on). When a
// request fails (a status other than 2xx, a network error, the timeout)
// Export returns a *WriteError: the endpoint (without credentials or query
// values), the status, the start of the response body (credentials the
// receiver echoes taken out), how many series were dropped and delivered,
// and a hint at the setting to check for 401, 403, 404, 405, 413 and 415.
// The series of the failed requests are lost (and those of the requests
// not yet started, unless the failure was a 400 or 422, which refuses one
// request's data and lets the others go), but as the exporter asks the SDK
// for cumulative temporality, the next successful export carries the
// running totals, so counters and histograms catch up: only the samples in
// between are missing.
//
// Each failure is reported once. The SDK's PeriodicReader hands Export's
// error to the OpenTelemetry error handler, which prints it (log.Print)
// unless the program set its own with otel.SetErrorHandler; ForceFlush and
// Shutdown return it. WithLogger adds the exporter's own structured warning
// for each failure, for programs whose handler is silent. Notices that are no
// failure (a fallback to Remote Write 1.0 or to classic histograms) go to
// the logger, slog.Default() unless WithLogger is set.
//
// A request that got no answer (a timeout, a cancellation, a connection lost
// after the body went out) may have been stored all the same: the next sample
// of each of its series is sent strictly later, as the receiver would refuse
// a second value at one timestamp. Shutdown waits for an export that is
// still running, so that its staleness markers come after that export's
// samples.
//
// # Conversion
//
// The exporter asks the SDK for cumulative temporality for every instrument
// kind. Metric and label names are translated by
// github.com/prometheus/otlptranslator exactly as the OpenTelemetry Prometheus
// (pull) exporter translates them, so dashboards keep working when a service
// moves from pull to push:
//
//   - a monotonic Sum becomes a counter named <name>_total;
//   - a non-monotonic Sum and a Gauge become gauges (a Gauge with unit "1"
//     ends in _ratio; a non-monotonic Sum does not, as in the pull exporter);
//   - a Histogram becomes <name>_bucket{le="…"} with cumulative counts and
//     le="+Inf" equal to the count, <name>_sum and <name>_count;
//   - an ExponentialHistogram becomes a Prometheus native histogram; a
//     receiver that refuses native histograms (Prometheus 2.x without
//     --enable-feature=native-histograms) gets classic histograms instead,
//     with one warning, and WithoutNativeHistograms chooses that up front;
//   - a Summary becomes <name>{quantile="…"}, <name>_sum and <name>_count.
//
// Units become name suffixes ("s" → _seconds, "By" → _bytes). The resource's
// service.namespace/service.name becomes the job label and
// service.instance.id the instance label, which win over data point
// attributes of those names (dropped with a warning); the other resource
// attributes go to one target_info series. The instrumentation scope becomes otel_scope_*
// labels. Exemplars are attached to counters and histogram buckets, and each
// export sends the metadata (type, help, unit) of its metric families, with
// its last request.
//
// Data that cannot be represented is dropped with a warning naming the
// metric, the rest of the export is still sent, and Export returns an error
// listing what was dropped.
//
// # Remote Write 2.0
//
// WithProtocol(ProtocolV2) sends Remote Write 2.0 requests: label strings
// once per request, metadata and start times on each series, exemplars with
// timestamps. A receiver that does not speak 2.0 (415, or a success without
// the written counts 2.0 receivers send) gets the same data again as 1.0,
// with one warning, and 1.0 from then on (2.0 is tried again hourly). A
// receiver that writes less than it was sent makes Export return a
// *PartialWriteError. The default is 1.0, which every receiver accepts.
//
// # Options
//
//   - WithEndpoint (required): the URL, http or https.
//   - WithTimeout (default 30s): bounds each export; an earlier deadline of
//     the context passed to Export applies instead.
//   - WithBasicAuth, WithBasicAuthPasswordFile, WithBearerToken,
//     WithBearerTokenFile, WithOAuth2, WithAuthenticator (default none): one
//     kind of Authorization at most; files are read at each request so
//     rotated secrets work (regular files of at most 64 KiB, read within the
//     export's deadline). WithOAuth2 fetches client-credentials tokens,
//     cached until 10 s before expiry and refreshed once on a 401.
//     WithAuthenticator is how the modules github.com/prwmetric/prwmetric/sigv4
//     (AWS SigV4, Amazon Managed Service for Prometheus) and
//     github.com/prwmetric/prwmetric/azuread (Entra ID, Azure Monitor) plug in;
//     its transport returns NotSent(err) for a request it stopped before it
//     left, which WithRetry does not repeat.
//   - WithHeaders (default none): extra headers such as X-Scope-OrgID;
//     WithHeaderFunc (default none): headers chosen per request.
//   - WithRoundTripper (default none): wrap the transport (signing,
//     tracing); it sees the final request, keeps our TLS and proxy.
//   - WithProxyURL, WithProxy (default http.ProxyFromEnvironment).
//   - WithTLS, WithTLSClientConfig (default system roots, TLS 1.2 minimum;
//     New refuses them with a plain http endpoint).
//   - WithHTTPClient: your own client (proxy and TLS options then belong to
//     its transport).
//   - WithLogger (default slog.Default() for notices; failures then only
//     through Export's error, see above).
//   - WithAggregationSelector (default sdkmetric.DefaultAggregationSelector).
//   - WithCompatibility (default CompatibilityPullExporter): name and label
//     series as Prometheus' or Mimir's OTLP ingestion or the Collector's
//     remote-write exporter does; individual options apply on top.
//   - WithNamespace, WithTranslationStrategy, WithoutScopeInfo,
//     WithoutTargetInfo, WithResourceAsLabels, WithResourceConstantLabels,
//     WithIdentifyingResourceAttributes, WithTypeAndUnitLabels,
//     WithOpenMetricsFloatLabels,
//     WithExternalLabels, WithoutMetadata, WithHistogramMinMax: conversion
//     choices, see each.
//   - WithInitialZero (default off): a 0 before each new counter and
//     histogram series (not a new bucket of a point already sent), so
//     increase() counts its first increment.
//   - WithMaxSeriesPerRequest (default 10 000), WithMaxRequestBytes (default
//     3 MiB): larger exports are split into requests.
//   - WithMaxConcurrentRequests (default 128): requests of one export in flight
//     at once; the next export starts when all have finished.
//   - WithCompression (default CompressionSnappy): CompressionZstd sends the
//     VictoriaMetrics protocol, with fallback to snappy.
//   - WithHTTP2 (default HTTP/1.1): HTTP/2 with a ping health check.
//   - WithRetry (default off): retry 5xx, 429 and network errors with
//     backoff, honouring Retry-After, within a budget that defaults to the
//     export timeout; New refuses intervals below 10ms, negative ones, and
//     budgets that would never retry or outlive the timeout.
//   - WithoutStaleMarkers: do not end vanished series (and all series at
//     Shutdown) with staleness markers.
//   - WithoutShutdownMarkers: keep the markers of vanished series, send none
//     at Shutdown, so a finished batch job's last values stay queryable.
//   - WithMeterProvider (default off): the exporter's own telemetry.
//   - WithoutEnvironment: ignore the environment variables below.
//   - WithProtocol (default ProtocolV1): Remote Write 2.0, with fallback;
//     with it, WithNativeHistogramsForExplicitBuckets and
//     WithClassicHistograms.
//   - WithoutNativeHistograms (default off): exponential histograms as
//     classic histograms.
//
// New reports every invalid setting at once and returns a nil Exporter.
// Credentials never appear in errors or log records: passwords, tokens,
// secret files' contents, the values of headers that carry credentials and
// the endpoint's query values are taken out of every response body and error
// the exporter passes on, in clear and in base64.
//
// # Environment
//
// New reads these variables; an option given in code wins over the variable
// it matches (credentials and TLS each as a whole):
//
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT (default: none) — the URL, as WithEndpoint.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_HEADERS (default: none) — "k1=v1,k2=v2", values URL-encoded, as WithHeaders.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_TIMEOUT (default: 30000) — milliseconds, as WithTimeout.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_CERTIFICATE (default: none) — CA file, as TLSConfig.CAFile.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_CLIENT_CERTIFICATE (default: none) — as TLSConfig.CertFile.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_CLIENT_KEY (default: none) — as TLSConfig.KeyFile.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_BASIC_AUTH_USERNAME (default: none) — with …_BASIC_AUTH_PASSWORD_FILE.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_BASIC_AUTH_PASSWORD_FILE (default: none) — as WithBasicAuthPasswordFile.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_BEARER_TOKEN_FILE (default: none) — as WithBearerTokenFile.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_PROTOCOL (default: 1.0) — 1.0 or 2.0, as WithProtocol.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_OAUTH2_CLIENT_ID (default: none) — with …_OAUTH2_CLIENT_SECRET_FILE and …_OAUTH2_TOKEN_URL, as WithOAuth2.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_OAUTH2_CLIENT_SECRET_FILE (default: none) — as OAuth2Config.ClientSecretFile.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_OAUTH2_TOKEN_URL (default: none) — as OAuth2Config.TokenURL.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_OAUTH2_SCOPES (default: none) — comma-separated, as OAuth2Config.Scopes.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_COMPRESSION (default: snappy) — snappy or zstd, as WithCompression.
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_COMPATIBILITY (default: pull-exporter) — pull-exporter, prometheus-otlp, mimir-otlp or collector, as WithCompatibility.
//
// A malformed value makes New fail with an error naming the variable. The
// module github.com/prwmetric/prwmetric/prwautoexport registers the exporter
// with OpenTelemetry's autoexport as OTEL_METRICS_EXPORTER=prometheusremotewrite;
// the sigv4 and azuread modules register prometheusremotewrite_sigv4 and
// prometheusremotewrite_azuread (see their packages sigv4autoexport and
// azureadautoexport). All three honour OTEL_METRICS_PRODUCERS=prometheus,
// which pushes client_golang's default registry too (see prwautoexport).
//
// # Testing
//
// Package github.com/prwmetric/prwmetric/prwmetrictest is an in-process
// Remote Write receiver for testing your own instrumentation.
package prwmetric
