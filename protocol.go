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
	//
	// A receiver that answers a 2.0 request 415, or with a success that
	// lacks the X-Prometheus-Remote-Write-*-Written headers every 2.0
	// receiver sends (an old receiver decodes a 2.0 body as an empty 1.0
	// request), gets the data again as 1.0 in the same export, with one
	// warning; the exporter stays on 1.0 and tries 2.0 again after an
	// hour. A 2.0 receiver that writes less than it was sent makes Export
	// return a *PartialWriteError.
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
