package e2e

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric"
)

// The VictoriaMetrics remote write protocol (WithCompression(CompressionZstd))
// end to end: VictoriaMetrics 1.151 takes it; receivers that do not take it
// refuse it, and the exporter sends the same data again with snappy in the
// same export, warning once.

// TestVictoriaMetricsZstd pushes every scenario to VictoriaMetrics 1.151
// with zstd through a proxy that decodes each body by its Content-Encoding:
// every request must be zstd (the body really is a zstd frame) with
// X-VictoriaMetrics-Remote-Write-Version: 1, answered 204, without any
// snappy request or warning; VictoriaMetrics' own /metrics must count
// exactly those requests and no error; and every sample must read back
// exactly, native histograms as the _count, _sum and vmrange _bucket series
// VictoriaMetrics makes of them.
func TestVictoriaMetricsZstd(t *testing.T) {
	s := startVictoriaMetricsNew(t)
	proxy := newProtocolProxy(t, s.baseURL)
	before := s.writeStats(t)
	exp, logs := newExporter(t, proxy.writeURL(), prwmetric.WithCompression(prwmetric.CompressionZstd))
	runVMScenarios(t, s, exp, true)
	if w := logs.lines(slog.LevelWarn); len(w) > 0 {
		t.Errorf("the exporter warned although VictoriaMetrics takes zstd:\n\t%s", joinLines(w))
	}
	reqs := proxy.requests()
	if len(reqs) == 0 {
		t.Fatal("no request reached VictoriaMetrics")
	}
	for i, r := range reqs {
		if r.problem != "" || r.encoding != "zstd" || r.vmVersion != "1" || r.version != "" || r.protocol != "1.0" || r.status != http.StatusNoContent {
			t.Errorf("request %d: Content-Encoding %q, %s %q, %s %q, protocol %q, answered %d %s (%s); want a zstd 1.0 request with version 1, no Prometheus version, answered 204",
				i+1, r.encoding, headerVMVersion, r.vmVersion, headerVersion, r.version, r.protocol, r.status, r.answer, r.problem)
		}
	}
	after := s.awaitWriteStats(t, func(st vmWriteStats) bool { return st.requests-before.requests >= float64(len(reqs)) })
	if n := after.requests - before.requests; n != float64(len(reqs)) {
		t.Errorf("VictoriaMetrics counted %v write requests, the proxy forwarded %d", n, len(reqs))
	}
	if n := after.errors - before.errors; n != 0 {
		t.Errorf("VictoriaMetrics counted %v write request errors", n)
	}
	t.Logf("%d requests, all zstd, all answered 204", len(reqs))
}

// zstdRefuser is a receiver that does not take zstd bodies.
type zstdRefuser struct {
	name string
	// start starts it and returns its base URL and a reader of float
	// series matching selector in [from, to].
	start func(t *testing.T) (baseURL string, read func(t *testing.T, selector string, from, to time.Time) map[string][]sample)
	// status is how it answers a zstd request.
	status int
}

func zstdRefusers() []zstdRefuser {
	promReader := func(s *promServer) func(*testing.T, string, time.Time, time.Time) map[string][]sample {
		return func(t *testing.T, selector string, _, to time.Time) map[string][]sample {
			return s.readRange(t, selector, to, time.Hour).Floats
		}
	}
	return []zstdRefuser{
		{
			// Reads every body as snappy, whatever its Content-Encoding.
			name: "Prometheus 2.42",
			start: func(t *testing.T) (string, func(*testing.T, string, time.Time, time.Time) map[string][]sample) {
				s := startPrometheus2(t, promConfig{})
				return s.baseURL, promReader(s)
			},
			status: http.StatusBadRequest,
		},
		{
			// Takes Content-Encoding snappy only.
			name: "Prometheus 3",
			start: func(t *testing.T) (string, func(*testing.T, string, time.Time, time.Time) map[string][]sample) {
				s := startPrometheus3(t, promConfig{})
				return s.baseURL, promReader(s)
			},
			status: http.StatusUnsupportedMediaType,
		},
		{
			// Older than the VictoriaMetrics remote write protocol: reads
			// every body as snappy.
			name: "VictoriaMetrics 1.79",
			start: func(t *testing.T) (string, func(*testing.T, string, time.Time, time.Time) map[string][]sample) {
				s := startVictoriaMetrics(t)
				return s.baseURL, s.export
			},
			status: http.StatusBadRequest,
		},
	}
}

// TestZstdRefused runs a zstd exporter against receivers that refuse zstd.
// Each export is split into several requests sent concurrently. Over three
// exports: every Export returns nil; the first export's zstd requests (as
// many as were started before the first refusal) are all refused with the
// receiver's status, and then only snappy requests follow, carrying every
// series of every export exactly once; the exporter warns exactly once,
// about zstd; and every sample reads back exactly.
func TestZstdRefused(t *testing.T) {
	const (
		exports          = 3
		perRequest       = 2
		seriesInExport   = 9 // fallbackExport's 8 and target_info
		requestsInExport = (seriesInExport + perRequest - 1) / perRequest
	)
	for _, b := range zstdRefusers() {
		t.Run(b.name, func(t *testing.T) {
			baseURL, read := b.start(t)
			proxy := newProtocolProxy(t, baseURL)
			exp, logs := newExporter(t, proxy.writeURL(),
				prwmetric.WithCompression(prwmetric.CompressionZstd),
				prwmetric.WithMaxSeriesPerRequest(perRequest),
				prwmetric.WithMaxConcurrentRequests(8))
			c := newClock()
			from := c.now()
			w := wantSeries{}
			for i := range exports {
				export(t, exp, fallbackExport(c, from, i, w))
			}
			compareFloats(t, b.name, read(t, `{__name__=~"e2e_fallback_.*"}`, from, c.now()), w)

			warns := logs.lines(slog.LevelWarn)
			if len(warns) != 1 || !strings.Contains(warns[0], "zstd") {
				t.Errorf("warnings over %d exports:\n\t%s\nwant exactly one, about zstd", exports, joinLines(warns))
			}
			reqs := proxy.requests()
			zstdRequests, snappySeries := 0, 0
			for i, r := range reqs {
				if r.problem != "" {
					t.Errorf("request %d: %s", i+1, r.problem)
				}
				switch {
				case r.encoding == "zstd" && i == zstdRequests:
					zstdRequests++
					if r.status != b.status || r.vmVersion != "1" {
						t.Errorf("zstd request %d: answered %d (%s), %s %q; want %d, version 1", i+1, r.status, r.answer, headerVMVersion, r.vmVersion, b.status)
					}
					if zstdRequests == 1 {
						t.Logf("%s answered the zstd request %d: %s", b.name, r.status, strings.TrimSpace(r.answer))
					}
				case r.encoding == "snappy":
					snappySeries += r.series
					if r.status < 200 || r.status > 299 || r.version != "0.1.0" || r.vmVersion != "" {
						t.Errorf("snappy request %d: answered %d (%s), %s %q, %s %q; want 2xx, a 0.1.0 request", i+1, r.status, r.answer, headerVersion, r.version, headerVMVersion, r.vmVersion)
					}
				default:
					t.Errorf("request %d: Content-Encoding %q after %d zstd requests: want the refused zstd requests first, then snappy only", i+1, r.encoding, zstdRequests)
				}
			}
			if zstdRequests < 1 || zstdRequests > requestsInExport {
				t.Errorf("%d zstd requests, want 1 to %d (the first export's, up to the first refusal)", zstdRequests, requestsInExport)
			}
			if want := exports * seriesInExport; snappySeries != want {
				t.Errorf("the snappy requests carried %d series, want %d: every series of every export exactly once", snappySeries, want)
			}
			t.Logf("%d requests: %d zstd refused, then %d snappy", len(reqs), zstdRequests, len(reqs)-zstdRequests)
		})
	}
}

// vmWriteStats is what VictoriaMetrics' own /metrics says about the Remote
// Write requests it received.
type vmWriteStats struct {
	requests, errors float64 // vm_http_request{s,_errors}_total{path="/api/v1/write"}
	rows             float64 // vm_rows_inserted_total{type="promremotewrite"}
}

// awaitWriteStats polls writeStats until done says they are complete, for
// at most 15 s, and returns the last: VictoriaMetrics updates what /metrics
// shows with a delay of up to a second or so.
func (s *vmServer) awaitWriteStats(t *testing.T, done func(vmWriteStats) bool) vmWriteStats {
	t.Helper()
	st := s.writeStats(t)
	for deadline := time.Now().Add(15 * time.Second); !done(st) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		st = s.writeStats(t)
	}
	return st
}

func (s *vmServer) writeStats(t *testing.T) vmWriteStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := s.do(t, ctx, "/metrics", nil)
	defer body.Close()
	var st vmWriteStats
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		// Label order and spacing as VictoriaMetrics writes them.
		series := strings.ReplaceAll(line[:i], ", ", ",")
		var dst *float64
		switch series {
		case `vm_http_requests_total{path="/api/v1/write",protocol="promremotewrite"}`:
			dst = &st.requests
		case `vm_http_request_errors_total{path="/api/v1/write",protocol="promremotewrite"}`:
			dst = &st.errors
		case `vm_rows_inserted_total{type="promremotewrite"}`:
			dst = &st.rows
		default:
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s /metrics: %q: %v", s.name, line, err)
		}
		*dst = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: read /metrics: %v", s.name, err)
	}
	return st
}

// String shows the counters in failure messages.
func (st vmWriteStats) String() string {
	return fmt.Sprintf("%v requests, %v errors, %v rows", st.requests, st.errors, st.rows)
}
