// Package prwmetrictest provides an in-process Prometheus Remote-Write
// receiver for tests, in the spirit of net/http/httptest.
//
// A [Server] listens on a free port of 127.0.0.1, accepts Remote-Write 1.0
// (prometheus.WriteRequest) and 2.0 (io.prometheus.write.v2.Request)
// requests, and records everything it receives:
//
//	srv := prwmetrictest.NewServer()
//	defer srv.Close()
//	exp, err := prwmetric.New(prwmetric.WithEndpoint(srv.URL()))
//	// … record metrics, then ForceFlush or Shutdown the MeterProvider …
//	got, err := srv.Latest("requests_total", map[string]string{"path": "/"})
//
// # Validation
//
// Every request is checked against the rules a Remote-Write sender must
// follow, and each broken rule is recorded as a human-readable violation
// ([Server.Violations], [Request.Violations]):
//
//   - method POST on the write path, body within the size limit;
//   - headers Content-Encoding: snappy, Content-Type:
//     application/x-protobuf (with proto=io.prometheus.write.v2.Request for
//     2.0), X-Prometheus-Remote-Write-Version 0.1.0 (2.0.x for 2.0), and a
//     User-Agent;
//   - a snappy block-compressed (not framed) body holding the protobuf
//     message;
//   - per series: a __name__ label matching [a-zA-Z_:][a-zA-Z0-9_:]*,
//     label names matching [a-zA-Z_][a-zA-Z0-9_]* and not starting with
//     "__" (but __type__ and __unit__, Prometheus' metadata labels),
//     labels sorted by name in byte order, no repeated names, no empty
//     values, valid UTF-8 (in 2.0 requests names may be any valid
//     UTF-8, as Prometheus 3 accepts them);
//   - samples and histograms in timestamp order within a series, also
//     across requests (a sample older than one already stored is a
//     violation, as in Prometheus), and timestamps that look like
//     milliseconds;
//   - the stale NaN ([StaleNaN]) only as a sample value or as the sum of a
//     native histogram stale marker;
//   - native histograms valid by Prometheus' own rules; classic
//     histograms with cumulative bucket counts and, when the request
//     holds the _count, a +Inf bucket equal to it (a histogram's series
//     may be split across requests);
//   - exemplar labels valid and at most 128 runes together;
//   - for 2.0: symbols[0] == "", references inside the symbols table, no
//     series with both samples and histograms, exemplars with timestamps,
//     start timestamps not after the sample.
//
// By default a request that breaks a rule is answered 400 with the
// violations in the body, and nothing in it is stored, like a strict
// backend. [WithLenient] accepts such requests instead. A request that
// cannot be decoded is always answered 400 (413 when too large, as sent
// or once decompressed).
//
// # Reading what arrived
//
// Accepted (2xx) requests are merged into series keyed by label set.
// [Server.Find], [Server.Latest], [Server.Samples],
// [Server.NativeHistograms], [Server.Exemplars] and
// [Server.ClassicHistogram] select a series by metric name plus a subset
// of its labels, and fail with a message listing what was received when
// nothing or more than one series matches (and, when requests were
// refused, how many and the first one's violation). [Server.Latest] and
// [Server.ClassicHistogram] skip staleness markers, so after a
// MeterProvider's Shutdown they return the last values recorded;
// [Server.Samples] returns every sample. [Server.Series] returns all of
// them, [Server.Metadata] the metric families' metadata, and
// [Server.Requests] every request with its raw headers, body and decoded
// message.
//
// Remote-Write 2.0 requests answered normally carry the
// X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written headers.
// [WithRemoteWrite1Only] makes the receiver answer 2.0 requests with 415,
// like a backend that only speaks 1.0. A request compressed with zstd (the
// VictoriaMetrics remote write protocol) is answered 415, as Prometheus
// does, unless [WithZstd] makes the receiver accept it, as VictoriaMetrics
// does.
//
// # Waiting without sleeping
//
// [Server.WaitForRequests] blocks until a number of requests has arrived,
// the context ends or the server closes:
//
//	n := srv.RequestCount()
//	// … trigger an export …
//	if err := srv.WaitForRequests(ctx, n+1); err != nil { … }
//
// A request is recorded (and stored, when accepted) before it is
// answered, so once a synchronous export has returned, its data is
// visible without waiting.
//
// # Simulating a failing backend
//
// [Server.RespondWith] makes the next n requests get a canned [Response]:
// any status, a Retry-After header, extra headers, a body, and a delay.
// The delay ends early when the client gives up or the server closes, so
// a test cannot hang on it. Requests answered with a non-2xx status are
// recorded but not stored.
package prwmetrictest
