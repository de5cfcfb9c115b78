package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"

	"github.com/golang/snappy"
	prw "github.com/open-telemetry/opentelemetry-collector-contrib/pkg/translator/prometheusremotewrite"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prwmetric/prwmetric/internal/pdataconv"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// collectorMaxBatchBytes is the Collector prometheusremotewrite exporter's
// default max_batch_size_bytes.
const collectorMaxBatchBytes = 3_000_000

// collectorPRW is what the Collector's prometheusremotewrite exporter does
// with a pmetric.Metrics, cut to the part that costs: the contrib translator
// (FromMetrics, with the exporter's default settings), batching by size as
// the exporter does (series copied into each request in map order, samples
// sorted by time), gogo protobuf into a reused buffer, snappy into a reused
// buffer, and a POST per request. The exporter runs its requests on 5
// consumers; here they go one after another, which costs the same CPU.
type collectorPRW struct {
	url      string
	client   *http.Client
	settings prw.Settings

	protoBuf, snappyBuf []byte
}

func newCollectorPRW(url string) *collectorPRW {
	return &collectorPRW{
		url:      url,
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		settings: prw.Settings{AddMetricSuffixes: true},
	}
}

func (c *collectorPRW) export(ctx context.Context, md pmetric.Metrics) error {
	tsMap, err := prw.FromMetrics(md, c.settings)
	if err != nil {
		return fmt.Errorf("FromMetrics: %w", err)
	}
	for _, req := range collectorBatches(tsMap, collectorMaxBatchBytes) {
		if err := c.send(ctx, req); err != nil {
			return err
		}
	}
	return nil
}

// collectorBatches cuts the series into requests below maxBytes, as the
// exporter's batchTimeSeries does.
func collectorBatches(tsMap map[string]*prompb.TimeSeries, maxBytes int) []*prompb.WriteRequest {
	var reqs []*prompb.WriteRequest
	batch := make([]prompb.TimeSeries, 0, len(tsMap))
	size, i := 0, 0
	for _, ts := range tsMap {
		n := ts.Size()
		if size+n >= maxBytes {
			reqs = append(reqs, &prompb.WriteRequest{Timeseries: sortSamples(batch)})
			batch, size = make([]prompb.TimeSeries, 0, min(2*len(batch), len(tsMap)-i)), 0
		}
		batch = append(batch, *ts)
		size += n
		i++
	}
	if len(batch) > 0 {
		reqs = append(reqs, &prompb.WriteRequest{Timeseries: sortSamples(batch)})
	}
	return reqs
}

// sortSamples orders each series' samples by time, as the exporter does
// before sending.
func sortSamples(tss []prompb.TimeSeries) []prompb.TimeSeries {
	for i := range tss {
		s := tss[i].Samples
		sort.Slice(s, func(a, b int) bool { return s[a].Timestamp < s[b].Timestamp })
	}
	return tss
}

func (c *collectorPRW) send(ctx context.Context, req *prompb.WriteRequest) error {
	n := req.Size()
	if cap(c.protoBuf) < n {
		c.protoBuf = make([]byte, n)
	}
	raw := c.protoBuf[:n]
	if _, err := req.MarshalToSizedBuffer(raw); err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	if m := snappy.MaxEncodedLen(n); cap(c.snappyBuf) < m {
		c.snappyBuf = make([]byte, m)
	}
	body := snappy.Encode(c.snappyBuf[:cap(c.snappyBuf)], raw)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Add("Content-Encoding", "snappy")
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	hr.Header.Set("User-Agent", "OpenTelemetry Collector Contrib")
	resp, err := c.client.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 256))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("remote write returned HTTP status %s", resp.Status)
	}
	return nil
}

// pushCollector: the same data as pdata through the Collector's
// translator and remote-write request path.
func pushCollector(tb testing.TB, fx *fixture, url string) exportFunc {
	c := newCollectorPRW(url)
	tb.Cleanup(c.client.CloseIdleConnections)
	md := fx.pdata()
	return func(ctx context.Context) error {
		pdataconv.SetPdataTime(md, fx.w.Time())
		return c.export(ctx, md)
	}
}
