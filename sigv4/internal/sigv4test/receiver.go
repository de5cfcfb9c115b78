package sigv4test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// WritePath is the path of an AMP workspace's remote-write endpoint.
const WritePath = "/workspaces/ws-test/api/v1/remote_write"

// Receiver is a remote-write endpoint on 127.0.0.1 that, like AMP, answers
// 403 to any request whose SigV4 signature does not verify, and passes the
// others to a prwmetrictest.Server, which decodes and stores them.
type Receiver struct {
	// Store decodes and keeps what verified requests carried.
	Store    *prwmetrictest.Server
	verifier *Verifier
	// echo makes rejections quote the request's credentials headers, as
	// some gateways do.
	echo bool
	// redirects maps a path to the Location it answers 307 with, after
	// verifying the request.
	redirects map[string]string

	ts     *httptest.Server
	client *http.Client

	mu       sync.Mutex
	accepted []Accepted
	rejected []string
}

// Accepted is one request that verified.
type Accepted struct {
	Path string
	Result
}

// ReceiverOption configures a Receiver.
type ReceiverOption func(*Receiver)

// EchoCredentials makes rejections quote the request's Authorization and
// X-Amz-Security-Token headers in the response body.
func EchoCredentials() ReceiverOption { return func(r *Receiver) { r.echo = true } }

// Redirect makes requests to path, once verified, answer 307 Temporary
// Redirect to location (a path of the receiver or another URL).
func Redirect(path, location string) ReceiverOption {
	return func(r *Receiver) { r.redirects[path] = location }
}

// NewReceiver starts a receiver that verifies with v. Close it.
func NewReceiver(v *Verifier, opts ...ReceiverOption) *Receiver {
	r := &Receiver{
		Store:     prwmetrictest.NewServer(),
		verifier:  v,
		redirects: map[string]string{},
		client:    &http.Client{Transport: &http.Transport{}},
	}
	for _, o := range opts {
		o(r)
	}
	r.ts = httptest.NewServer(http.HandlerFunc(r.handle))
	return r
}

// URL returns the write URL.
func (r *Receiver) URL() string { return r.ts.URL + WritePath }

// Origin returns the receiver's scheme and host.
func (r *Receiver) Origin() string { return r.ts.URL }

// Close stops the receiver.
func (r *Receiver) Close() {
	r.ts.Close()
	r.client.CloseIdleConnections()
	r.Store.Close()
}

// Accepted returns the requests that verified, in order.
func (r *Receiver) Accepted() []Accepted {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Accepted(nil), r.accepted...)
}

// Rejected returns why requests were rejected, in order.
func (r *Receiver) Rejected() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.rejected...)
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, prwmetrictest.DefaultMaxBodySize))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	res, err := r.verifier.Verify(req, body)
	if err != nil {
		r.mu.Lock()
		r.rejected = append(r.rejected, err.Error())
		r.mu.Unlock()
		msg := "SignatureDoesNotMatch: " + err.Error()
		if r.echo {
			msg += fmt.Sprintf("\nAuthorization: %s\nX-Amz-Security-Token: %s", req.Header.Get("Authorization"), req.Header.Get("X-Amz-Security-Token"))
		}
		http.Error(w, msg, http.StatusForbidden)
		return
	}
	r.mu.Lock()
	r.accepted = append(r.accepted, Accepted{Path: req.URL.Path, Result: res})
	r.mu.Unlock()
	if location, ok := r.redirects[req.URL.Path]; ok {
		http.Redirect(w, req, location, http.StatusTemporaryRedirect)
		return
	}
	if req.URL.Path != WritePath {
		http.NotFound(w, req)
		return
	}
	r.forward(w, req, body)
}

// forward hands a verified request to the store and relays its answer.
func (r *Receiver) forward(w http.ResponseWriter, req *http.Request, body []byte) {
	out, err := http.NewRequestWithContext(req.Context(), http.MethodPost, r.Store.URL(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out.Header = req.Header.Clone()
	resp, err := r.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
