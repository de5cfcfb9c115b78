package prwmetric

import (
	"fmt"
	"strings"
)

// Protocol is a version of the Prometheus Remote Write protocol.
type Protocol int

const (
	// ProtocolV1 is Remote Write 1.0: every series carries its labels in
	// full, metadata travels once per family. Every receiver speaks it.
	ProtocolV1 Protocol = 1
	// ProtocolV2 is Remote Write 2.0: each request carries every label
	// string once (a symbols table), each series its metadata and the
	// start time of counters, histograms and summaries, and the receiver
	// answers how much it wrote. Prometheus 3 (with
	// --web.remote-write-receiver.accepted-protobuf-messages including
	// io.prometheus.write.v2.Request) and Mimir speak it.
	ProtocolV2 Protocol = 2
)

// String returns "1.0" or "2.0", the protocol's version as the
// specification names it.
func (p Protocol) String() string {
	switch p {
	case ProtocolV1:
		return "1.0"
	case ProtocolV2:
		return "2.0"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// parseProtocol reads a protocol version as String writes it.
func parseProtocol(s string) (Protocol, error) {
	switch strings.TrimSpace(s) {
	case "1.0":
		return ProtocolV1, nil
	case "2.0":
		return ProtocolV2, nil
	}
	return 0, fmt.Errorf("%q is not a Remote Write version; use 1.0 or 2.0", s)
}

// WithProtocol chooses the Remote Write protocol. The default is ProtocolV1,
// which every receiver accepts.
//
// With ProtocolV2 the exporter negotiates: when the receiver answers a 2.0
// request with 415 Unsupported Media Type, or with a success that lacks the
// X-Prometheus-Remote-Write-*-Written headers every 2.0 receiver sends (an
// old receiver decodes a 2.0 body as an empty 1.0 request and writes
// nothing), the exporter logs one warning, sends the same data again as
// 1.0, and stays on 1.0; it tries 2.0 again after an hour, in case the
// receiver was upgraded. A 2.0 receiver that writes fewer samples,
// histograms or exemplars than were sent makes Export log a warning with
// the counts and return an error.
//
// ProtocolV2 also allows translation strategies that keep UTF-8 names (see
// WithTranslationStrategy) and custom-bucket native histograms (see
// WithNativeHistogramsForExplicitBuckets).
func WithProtocol(p Protocol) Option {
	return optionFunc(func(c config) config { c.protocol = p; return c })
}

// WithNativeHistogramsForExplicitBuckets sends each explicit-bucket
// histogram data point as one native histogram with custom buckets (schema
// -53, "NHCB") instead of the classic _bucket, _sum and _count series:
// one series instead of buckets+2, with the same bounds. It requires
// WithProtocol(ProtocolV2), and a receiver that stores native histograms
// with custom buckets (Prometheus 3). Default: classic series.
//
// When the receiver turns out to speak only Remote Write 1.0 (see
// WithProtocol), those histograms are left out of its requests: each export
// then warns and returns an error saying how many, unless
// WithClassicHistograms sends the classic series as well, which carry the
// same data.
func WithNativeHistogramsForExplicitBuckets() Option {
	return optionFunc(func(c config) config { c.customBuckets = true; return c })
}

// WithClassicHistograms keeps the classic _bucket, _sum and _count series of
// explicit-bucket histograms beside the native histograms that
// WithNativeHistogramsForExplicitBuckets sends, so that queries and
// receivers that only know classic histograms keep working during a
// migration. It requires WithNativeHistogramsForExplicitBuckets; the
// classic series are the default without it.
func WithClassicHistograms() Option {
	return optionFunc(func(c config) config { c.classicHistograms = true; return c })
}

func validateProtocol(c *config) []error {
	var errs []error
	switch c.protocol {
	case ProtocolV1, ProtocolV2:
	default:
		errs = append(errs, fmt.Errorf("prwmetric: WithProtocol(%d): unknown protocol; use ProtocolV1 or ProtocolV2", int(c.protocol)))
	}
	if c.customBuckets && c.protocol != ProtocolV2 {
		errs = append(errs, fmt.Errorf("prwmetric: WithNativeHistogramsForExplicitBuckets needs WithProtocol(ProtocolV2): custom-bucket native histograms are a Remote Write 2.0 feature"))
	}
	if c.classicHistograms && !c.customBuckets {
		errs = append(errs, fmt.Errorf("prwmetric: WithClassicHistograms only applies with WithNativeHistogramsForExplicitBuckets (classic series are already the default); remove it or add that option"))
	}
	return errs
}
