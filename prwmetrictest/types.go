package prwmetrictest

import (
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// StaleNaN is the bit pattern of the special NaN that marks a series as stale
// (ended). Remote-Write reserves it for that purpose.
const StaleNaN uint64 = 0x7ff0000000000002

// Protocol is the Remote-Write protocol version a request was sent with.
type Protocol int

const (
	// ProtocolUnknown means the request could not be attributed to a protocol,
	// for example because its Content-Type names an unknown message.
	ProtocolUnknown Protocol = iota
	// ProtocolV1 is Remote-Write 1.0 (prometheus.WriteRequest).
	ProtocolV1
	// ProtocolV2 is Remote-Write 2.0 (io.prometheus.write.v2.Request).
	ProtocolV2
)

// String returns "1.0", "2.0" or "unknown".
func (p Protocol) String() string {
	switch p {
	case ProtocolV1:
		return "1.0"
	case ProtocolV2:
		return "2.0"
	default:
		return "unknown"
	}
}

// nameLabel is the label that holds a series' metric name.
const nameLabel = "__name__"

// Labels is the label set of a series or an exemplar, keyed by label name.
// A series' metric name is the value of the "__name__" label.
type Labels map[string]string

// String formats l the way Prometheus prints a series:
// name{a="1", b="2"} with label names in byte order and values quoted.
func (l Labels) String() string {
	names := make([]string, 0, len(l))
	for n := range l {
		if n != nameLabel {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(l[nameLabel])
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l[n]))
	}
	b.WriteByte('}')
	return b.String()
}

// clone returns a copy of l, so callers can't race with the server.
func (l Labels) clone() Labels {
	c := make(Labels, len(l))
	for k, v := range l {
		c[k] = v
	}
	return c
}

// Sample is one float sample of a series.
type Sample struct {
	// Timestamp in milliseconds since the Unix epoch.
	Timestamp int64
	Value     float64
	// StartTimestamp is the series' start (created) time in milliseconds,
	// only carried by Remote-Write 2.0; 0 when not sent.
	StartTimestamp int64
}

// IsStale reports whether s is a staleness marker (value bits == StaleNaN).
func (s Sample) IsStale() bool { return math.Float64bits(s.Value) == StaleNaN }

// Time returns the sample's timestamp as a time.Time.
func (s Sample) Time() time.Time { return time.UnixMilli(s.Timestamp) }

// NativeHistogram is one native (exponential) histogram sample as received,
// with bucket deltas already turned into absolute counts.
type NativeHistogram struct {
	// Timestamp in milliseconds since the Unix epoch.
	Timestamp int64
	// StartTimestamp is the created time, only carried by Remote-Write 2.0.
	StartTimestamp int64
	// Float is true when the sender used float counts rather than integers.
	Float bool
	// Histogram holds schema, zero bucket, count, sum, spans and absolute
	// bucket counts. Use its PositiveBucketIterator to walk the buckets.
	Histogram *histogram.FloatHistogram
}

// IsStale reports whether h is a staleness marker (sum bits == StaleNaN).
func (h NativeHistogram) IsStale() bool {
	return h.Histogram != nil && math.Float64bits(h.Histogram.Sum) == StaleNaN
}

// Exemplar is one exemplar attached to a series.
type Exemplar struct {
	Labels Labels
	Value  float64
	// Timestamp in milliseconds since the Unix epoch; 0 when not sent
	// (allowed in Remote-Write 1.0 only).
	Timestamp int64
}

// Series is everything the receiver stored for one label set, accumulated
// over all accepted requests in arrival order.
type Series struct {
	Labels     Labels
	Samples    []Sample
	Histograms []NativeHistogram
	Exemplars  []Exemplar
}

// Name returns the series' metric name (its "__name__" label).
func (s Series) Name() string { return s.Labels[nameLabel] }

// Metadata describes one metric family, from Remote-Write 1.0 metadata or
// from the metadata carried inside Remote-Write 2.0 series.
type Metadata struct {
	// MetricFamilyName is the family name sent with RW 1.0, or the series
	// name for RW 2.0 (which has no separate family name).
	MetricFamilyName string
	// Type is the lower-case Prometheus type: "counter", "gauge",
	// "histogram", "gaugehistogram", "summary", "info", "stateset" or
	// "unknown".
	Type string
	Help string
	Unit string
}

// Bucket is one bucket of a classic histogram.
type Bucket struct {
	// UpperBound is the bucket's "le" label parsed as a float (+Inf for
	// the last bucket).
	UpperBound float64
	// CumulativeCount is the number of observations <= UpperBound.
	CumulativeCount float64
}

// ClassicHistogram is a classic Prometheus histogram rebuilt from its
// <name>_bucket, <name>_sum and <name>_count series at one timestamp.
type ClassicHistogram struct {
	// Labels of the histogram, without "le" and with the base name as
	// "__name__".
	Labels Labels
	// Timestamp in milliseconds of the samples used.
	Timestamp int64
	// Buckets ordered by UpperBound, the last one being +Inf.
	Buckets []Bucket
	// Count and Sum are NaN when the _count or _sum series has no sample
	// at Timestamp.
	Count float64
	Sum   float64
}

// Request is one HTTP request as the receiver saw it, decoded.
type Request struct {
	// Seq is the 1-based arrival number of the request.
	Seq int
	// Received is when the request body was read.
	Received time.Time
	Method   string
	Path     string
	// Header holds the request headers verbatim, including any
	// Authorization header.
	Header http.Header
	// Body is the request body as received (still compressed).
	Body []byte
	// Protocol is the Remote-Write version the request claimed.
	Protocol Protocol
	// V1 is the decoded Remote-Write 1.0 message, nil otherwise.
	V1 *prompb.WriteRequest
	// V2 is the decoded Remote-Write 2.0 message, nil otherwise.
	V2 *writev2.Request
	// Violations lists every rule the request broke; empty for a valid
	// request.
	Violations []string
	// Status is the HTTP status the receiver answered (or is answering,
	// when a delay is pending).
	Status int
	// Stored reports whether the request's data was kept; only requests
	// answered 2xx are stored.
	Stored bool
}
