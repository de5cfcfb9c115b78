package prwmetrictest

import (
	"mime"
	"net/http"
	"strings"
)

// Header names and values of the Remote-Write protocols, in one place.
const (
	headerContentEncoding = "Content-Encoding"
	headerContentType     = "Content-Type"
	headerVersion         = "X-Prometheus-Remote-Write-Version"
	headerUserAgent       = "User-Agent"
	headerVMVersion       = "X-VictoriaMetrics-Remote-Write-Version"
	encodingZstd          = "zstd"
	vmVersion1            = "1"

	// HeaderSamplesWritten and its siblings are the Remote-Write 2.0
	// response headers reporting how much of a request was written.
	HeaderSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	HeaderHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	HeaderExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"

	mediaTypeProtobuf = "application/x-protobuf"
	protoV1           = "prometheus.WriteRequest"
	protoV2           = "io.prometheus.write.v2.Request"
	versionV1         = "0.1.0"
	versionV2Prefix   = "2."
)

// contentType sorts a request's Content-Type into a protocol. ok is false
// when the header names a message this receiver does not know (answer 415).
func contentType(h http.Header, v *violations) (p Protocol, ok bool) {
	ct := h.Get(headerContentType)
	if ct == "" {
		v.add("missing header %s: %s", headerContentType, mediaTypeProtobuf)
		return ProtocolV1, true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != mediaTypeProtobuf {
		v.add("header %s is %q, want %q", headerContentType, ct, mediaTypeProtobuf)
		return ProtocolV1, true
	}
	switch params["proto"] {
	case "", protoV1:
		return ProtocolV1, true
	case protoV2:
		return ProtocolV2, true
	default:
		v.add("header %s names unknown message %q; want %q or %q", headerContentType, params["proto"], protoV1, protoV2)
		return ProtocolUnknown, false
	}
}

// checkHeaders applies SPEC §1 (and §4 for 2.0) to the request headers;
// a zstd request follows the VictoriaMetrics protocol instead, with its
// own version header.
func checkHeaders(h http.Header, p Protocol, zstd bool, v *violations) {
	if zstd {
		if ver := h.Get(headerVMVersion); ver != vmVersion1 {
			v.add("header %s is %q, want %q with Content-Encoding: zstd", headerVMVersion, ver, vmVersion1)
		}
	} else if ce := h.Get(headerContentEncoding); ce == "" {
		v.add("missing header %s: snappy", headerContentEncoding)
	} else if !strings.EqualFold(ce, "snappy") {
		v.add("header %s is %q, want \"snappy\"", headerContentEncoding, ce)
	}
	ver := h.Get(headerVersion)
	switch {
	case zstd:
		// vmagent sends no Prometheus version with zstd.
	case ver == "":
		v.add("missing header %s", headerVersion)
	case p == ProtocolV1 && ver != versionV1:
		v.add("header %s is %q, want %q for Remote-Write 1.0", headerVersion, ver, versionV1)
	case p == ProtocolV2 && !strings.HasPrefix(ver, versionV2Prefix):
		v.add("header %s is %q, want 2.0.x for Remote-Write 2.0", headerVersion, ver)
	}
	if h.Get(headerUserAgent) == "" {
		v.add("missing header %s", headerUserAgent)
	}
}
