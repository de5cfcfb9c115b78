// Package e2e holds prwmetric's end-to-end tests: they start real Remote
// Write receivers (Prometheus 2.42 and 3.x, VictoriaMetrics 1.79 and 1.151)
// as child processes, push metrics through prwmetric.Exporter and read them
// back through each backend's query API, with snappy and with zstd (the
// VictoriaMetrics remote write protocol, and its fallback where it is
// refused), and with an export's requests sent concurrently. They also
// build and run the demo command (examples/basic) against Prometheus
// servers started as installed (no feature flags), and run hundreds of
// short exporter lifetimes against one server, checking through its own
// /metrics that it refused nothing. The compatibility profiles are checked
// side by side against Prometheus' OTLP receiver and the Collector's
// translator library, and a client_golang registry pushed through the
// OpenTelemetry bridge against a scrape of it.
//
// The package has no non-test code; it is a separate module so that the
// backends' test-only dependencies never reach prwmetric's users. See
// README.md for how to run the tests and which backend versions they cover.
package e2e
