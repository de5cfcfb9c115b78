package prwmetric

import (
	"fmt"
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
