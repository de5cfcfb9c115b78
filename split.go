package prwmetric

import (
	"fmt"
)

// The byte limit is the Collector's default batch size, which receivers are
// sized for; with typical labels (a few hundred bytes a series) it binds
// first, at 6 000–10 000 series. The series limit guards against requests of
// very many tiny series; fewer, larger requests cost less per series on both
// ends than Prometheus' own 2 000-sample batches, which exist to feed its
// parallel shards.
const (
	defaultMaxSeriesPerRequest = 10000
	defaultMaxRequestBytes     = 3 << 20
)

// WithMaxSeriesPerRequest splits an export into requests of at most n series
// (default 10 000). Requests of one export are sent in order, and the first
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
