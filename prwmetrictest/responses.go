package prwmetrictest

import (
	"net/http"
	"time"
)

// Always, passed as the count to [Server.RespondWith], makes a response
// apply to every following request until [Server.ClearResponses].
const Always = -1

// Response is a canned answer for [Server.RespondWith], to simulate a
// failing or slow backend.
type Response struct {
	// Status is the HTTP status to answer. 0 keeps the normal answer
	// (204, or 400 for a request that breaks a rule). Only requests
	// answered 2xx are stored.
	Status int
	// RetryAfter, when not empty, is sent as the Retry-After header:
	// seconds ("2") or an HTTP date.
	RetryAfter string
	// Header holds extra response headers, for example the Remote-Write
	// 2.0 "written" headers to simulate a partial write. A non-zero
	// Status suppresses the receiver's own 2.0 written headers.
	Header http.Header
	// Body is the response body; empty keeps the normal body.
	Body string
	// Delay holds the answer back this long after the request was
	// recorded (and stored, for a 2xx). The wait ends early when the
	// client gives up or the server is closed, so tests never hang.
	Delay time.Duration
}

type queued struct {
	n    int // remaining uses, or Always
	resp Response
}

// RespondWith makes the next n requests get r instead of the normal
// answer; pass [Always] for every following request. Calls queue up:
// RespondWith(2, a) then RespondWith(1, b) answers a, a, b, then normally.
// n == 0 does nothing.
func (s *Server) RespondWith(n int, r Response) {
	if n == 0 {
		return
	}
	if n < 0 {
		n = Always
	}
	r.Header = r.Header.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, queued{n: n, resp: r})
}

// ClearResponses drops every response queued by RespondWith, so the
// following requests get the normal answer.
func (s *Server) ClearResponses() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = nil
}

// nextResponse pops the canned response for one request, if any.
func (s *Server) nextResponse() (Response, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return Response{}, false
	}
	q := &s.queue[0]
	r := q.resp
	if q.n != Always {
		q.n--
		if q.n == 0 {
			s.queue = s.queue[1:]
		}
	}
	return r, true
}
