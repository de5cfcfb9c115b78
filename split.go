package prwmetric

import (
	"fmt"

	"github.com/prometheus/prometheus/prompb"
)

// Defaults match Prometheus' and the Collector's remote-write queues, which
// every receiver is sized for.
const (
	defaultMaxSeriesPerRequest = 2000
	defaultMaxRequestBytes     = 3 << 20
)

// WithMaxSeriesPerRequest splits an export into requests of at most n series
// (default 2000). Requests of one export are sent in order, and the first
// failure stops the rest of that export. n must be positive.
func WithMaxSeriesPerRequest(n int) Option {
	return optionFunc(func(c config) config { c.maxSeries = n; return c })
}

// WithMaxRequestBytes splits an export into requests whose uncompressed
// protobuf encoding is at most n bytes (default 3 MiB), so that receivers'
// size limits are never hit. A single series larger than n goes alone in its
// own request. n must be positive.
func WithMaxRequestBytes(n int) Option {
	return optionFunc(func(c config) config { c.maxBytes = n; return c })
}

func validateSplit(c *config) []error {
	var errs []error
	if c.maxSeries <= 0 {
		errs = append(errs, fmt.Errorf("prwmetric: WithMaxSeriesPerRequest(%d): the limit must be positive", c.maxSeries))
	}
	if c.maxBytes <= 0 {
		errs = append(errs, fmt.Errorf("prwmetric: WithMaxRequestBytes(%d): the limit must be positive", c.maxBytes))
	}
	return errs
}

// split cuts req into requests within the limits, in order, sharing the
// series (no copy). Metadata travels with the first request. It never returns
// an empty request.
func split(req *prompb.WriteRequest, maxSeries, maxBytes int) []*prompb.WriteRequest {
	if len(req.Timeseries) <= maxSeries && req.Size() <= maxBytes {
		return []*prompb.WriteRequest{req}
	}
	var out []*prompb.WriteRequest
	cur := &prompb.WriteRequest{Metadata: req.Metadata}
	size := cur.Size()
	start := 0
	for i := range req.Timeseries {
		n := req.Timeseries[i].Size()
		n += 1 + sovLen(n) // field tag and length prefix
		if i > start && (i-start >= maxSeries || size+n > maxBytes) {
			cur.Timeseries = req.Timeseries[start:i:i]
			out = append(out, cur)
			cur, size, start = &prompb.WriteRequest{}, 0, i
		}
		size += n
	}
	cur.Timeseries = req.Timeseries[start:]
	return append(out, cur)
}

// sovLen is the length of n as a protobuf varint.
func sovLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}
