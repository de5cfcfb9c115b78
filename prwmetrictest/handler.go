package prwmetrictest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// handle receives one request: read (bounded), decode, validate, record,
// wait if told to, answer.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	canned, hasCanned := s.nextResponse()
	req := Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Header: r.Header.Clone(),
	}
	var v violations
	status := http.StatusNoContent
	var d *decoded

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.maxBody))
	req.Body = body
	req.Received = time.Now()
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		v.add("request body is larger than the limit of %d bytes", s.cfg.maxBody)
		status = http.StatusRequestEntityTooLarge
	case err != nil:
		v.add("reading request body: %v", err)
		status = http.StatusBadRequest
	case r.Method != http.MethodPost:
		v.add("method %s, want POST", r.Method)
		status = http.StatusMethodNotAllowed
	case r.URL.Path != s.cfg.path:
		v.add("path %q, want %q", r.URL.Path, s.cfg.path)
		status = http.StatusNotFound
	default:
		status, d = s.decode(&req, &v)
	}
	refusedNative := s.cfg.noNative && d != nil && d.histograms > 0
	if refusedNative {
		status = http.StatusInternalServerError
	}

	s.mu.Lock()
	if d != nil {
		s.checkOrder(&v, d)
	}
	req.Violations = v.result()
	if status == http.StatusNoContent && len(req.Violations) > 0 && !s.cfg.lenient {
		status = http.StatusBadRequest
	}
	if hasCanned && canned.Status != 0 {
		status = canned.Status
	}
	req.Status = status
	if d != nil && status >= 200 && status < 300 {
		s.store(d)
		req.Stored = true
	}
	req.Seq = len(s.requests) + 1
	for _, msg := range req.Violations {
		s.violations = append(s.violations, fmt.Sprintf("request %d: %s", req.Seq, msg))
	}
	s.requests = append(s.requests, req)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	if hasCanned && canned.Delay > 0 {
		t := time.NewTimer(canned.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.closed:
		}
		t.Stop()
	}

	h := w.Header()
	if req.Protocol == ProtocolV2 && d != nil && !(hasCanned && canned.Status != 0) {
		written := func(n int) string {
			if !req.Stored {
				n = 0
			}
			return strconv.Itoa(n)
		}
		h.Set(HeaderSamplesWritten, written(d.samples))
		h.Set(HeaderHistogramsWritten, written(d.histograms))
		h.Set(HeaderExemplarsWritten, written(d.exemplars))
	}
	respBody := ""
	switch {
	case refusedNative && !(hasCanned && canned.Status != 0):
		respBody = "native histograms are disabled"
	case status >= 400:
		respBody = strings.Join(req.Violations, "\n")
	}
	if hasCanned {
		if canned.RetryAfter != "" {
			h.Set("Retry-After", canned.RetryAfter)
		}
		for k, vals := range canned.Header {
			h[k] = append([]string(nil), vals...)
		}
		if canned.Body != "" {
			respBody = canned.Body
		}
	}
	if respBody != "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(status)
	if respBody != "" && status != http.StatusNoContent {
		_, _ = io.WriteString(w, respBody)
	}
}

// decode checks headers and decodes the body by protocol, returning the
// normal status and the decoded content (nil when it could not decode).
func (s *Server) decode(req *Request, v *violations) (int, *decoded) {
	p, ok := contentType(req.Header, v)
	req.Protocol = p
	if !ok {
		return http.StatusUnsupportedMediaType, nil
	}
	if p == ProtocolV2 && s.cfg.v1Only {
		return http.StatusUnsupportedMediaType, nil
	}
	zstd := strings.EqualFold(strings.TrimSpace(req.Header.Get(headerContentEncoding)), encodingZstd)
	if zstd && (!s.cfg.zstd || p == ProtocolV2) {
		return http.StatusUnsupportedMediaType, nil
	}
	checkHeaders(req.Header, p, zstd, v)
	raw, err := decompress(req.Body, zstd, s.cfg.maxBody)
	if err != nil {
		v.add("%v", err)
		if tooLarge := (*decompressedTooLargeError)(nil); errors.As(err, &tooLarge) {
			return http.StatusRequestEntityTooLarge, nil
		}
		return http.StatusBadRequest, nil
	}
	var d *decoded
	// Each protocol has its own decoder; both produce the same decoded
	// form, so storage, ordering checks and queries are shared.
	switch p {
	case ProtocolV2:
		req.V2, d, err = decodeV2(raw, v)
	default:
		req.V1, d, err = decodeV1(raw, v)
	}
	if err != nil {
		v.add("%v", err)
		return http.StatusBadRequest, nil
	}
	checkClassicHistograms(v, d.series)
	return http.StatusNoContent, d
}
