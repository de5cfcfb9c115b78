package sigv4test

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// STS is a fake AWS Security Token Service on 127.0.0.1 answering
// AssumeRole and AssumeRoleWithWebIdentity with Issue. Point the SDK at it
// with AWS_ENDPOINT_URL_STS=URL().
type STS struct {
	// Issue are the temporary credentials handed out.
	Issue Credentials
	// Caller, when set, verifies AssumeRole's signature: the base
	// credentials must have signed it.
	Caller *Verifier
	// FailWith, when not zero, answers every call with this status and an
	// AccessDenied error whose message quotes the web identity token, as
	// a careless server might.
	FailWith int
	// Hang holds every call until Close.
	Hang bool

	ts      *httptest.Server
	release chan struct{}
	once    sync.Once

	mu    sync.Mutex
	calls []STSCall
}

// STSCall is one call the fake STS received.
type STSCall struct {
	Action           string
	RoleARN          string
	RoleSessionName  string
	ExternalID       string
	WebIdentityToken string
	// SignatureError is why AssumeRole's signature did not verify, "" when
	// it did (or was not checked).
	SignatureError string
}

// NewSTS returns an unstarted fake STS handing out issue; set its fields,
// then Start it, and Close it.
func NewSTS(issue Credentials) *STS {
	s := &STS{Issue: issue, release: make(chan struct{})}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	return s
}

// Start serves.
func (s *STS) Start() { s.ts.Start() }

// URL returns the endpoint, for AWS_ENDPOINT_URL_STS.
func (s *STS) URL() string { return s.ts.URL }

// Close releases held calls and stops the server.
func (s *STS) Close() {
	s.once.Do(func() { close(s.release) })
	s.ts.Close()
}

// Calls returns the calls received, in order.
func (s *STS) Calls() []STSCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]STSCall(nil), s.calls...)
}

func (s *STS) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	call := STSCall{
		Action:           form.Get("Action"),
		RoleARN:          form.Get("RoleArn"),
		RoleSessionName:  form.Get("RoleSessionName"),
		ExternalID:       form.Get("ExternalId"),
		WebIdentityToken: form.Get("WebIdentityToken"),
	}
	if call.Action == "AssumeRole" && s.Caller != nil {
		if _, err := s.Caller.Verify(r, body); err != nil {
			call.SignatureError = err.Error()
		}
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()

	if s.Hang {
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
		// An error the SDK does not retry, so nothing lingers after Close.
		writeSTSError(w, http.StatusForbidden, "AccessDenied", "released")
		return
	}
	switch {
	case call.SignatureError != "":
		writeSTSError(w, http.StatusForbidden, "SignatureDoesNotMatch", call.SignatureError)
	case s.FailWith != 0:
		writeSTSError(w, s.FailWith, "AccessDenied", fmt.Sprintf("Not authorized to perform %s with token %s", call.Action, call.WebIdentityToken))
	case call.Action == "AssumeRole", call.Action == "AssumeRoleWithWebIdentity":
		writeCredentials(w, call.Action, s.Issue)
	default:
		writeSTSError(w, http.StatusBadRequest, "InvalidAction", "unknown action "+call.Action)
	}
}

// writeCredentials answers as STS does, in the awsquery protocol's XML.
func writeCredentials(w http.ResponseWriter, action string, c Credentials) {
	esc := func(v string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(v))
		return b.String()
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <%[1]sResult>
    <Credentials>
      <AccessKeyId>%[2]s</AccessKeyId>
      <SecretAccessKey>%[3]s</SecretAccessKey>
      <SessionToken>%[4]s</SessionToken>
      <Expiration>%[5]s</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/writer/session</Arn>
      <AssumedRoleId>AROATEST:session</AssumedRoleId>
    </AssumedRoleUser>
  </%[1]sResult>
  <ResponseMetadata><RequestId>fake-request</RequestId></ResponseMetadata>
</%[1]sResponse>
`, action, esc(c.AccessKey), esc(c.SecretKey), esc(c.SessionToken), time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
}

func writeSTSError(w http.ResponseWriter, status int, code, message string) {
	type errorBody struct {
		Type    string
		Code    string
		Message string
	}
	resp := struct {
		XMLName   xml.Name  `xml:"ErrorResponse"`
		Xmlns     string    `xml:"xmlns,attr"`
		Error     errorBody `xml:"Error"`
		RequestID string    `xml:"RequestId"`
	}{Xmlns: "https://sts.amazonaws.com/doc/2011-06-15/", Error: errorBody{Type: "Sender", Code: code, Message: message}, RequestID: "fake-request"}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(resp)
}
