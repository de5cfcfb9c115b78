package sigv4

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prwmetric/prwmetric/sigv4/internal/sigv4test"
)

const (
	testAccessKey = "ASIATESTKEY000000009"
	testSecretKey = "tRaNsPoRtSeCrEt/000000000000000000000000000"
	testToken     = "tRaNsPoRtToKeN//////////000000000000000000000000"
)

func testTransport(t *testing.T, next http.RoundTripper) *transport {
	t.Helper()
	sigv4test.Isolate(t)
	tr, err := newTransport(Config{Region: "us-west-2", AccessKey: testAccessKey, SecretKey: testSecretKey, SessionToken: testToken}, next)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func testVerifier() *sigv4test.Verifier {
	return &sigv4test.Verifier{
		Region:      "us-west-2",
		Service:     DefaultService,
		Credentials: []sigv4test.Credentials{{AccessKey: testAccessKey, SecretKey: testSecretKey, SessionToken: testToken}},
		Require:     []string{"content-length", "content-type"},
	}
}

// recorder keeps the last request it was given and answers 204.
type recorder struct {
	req  *http.Request
	body []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.req = req
	r.body, _ = io.ReadAll(req.Body)
	_ = req.Body.Close()
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

// TestSignedRequest signs a request and checks the result with the
// independent verifier, then changes it after signing.
func TestSignedRequest(t *testing.T) {
	rec := &recorder{}
	tr := testTransport(t, rec)
	body := []byte("snappy-compressed protobuf")
	req := httptest.NewRequest(http.MethodPost, "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1/api/v1/remote_write", bytes.NewReader(body))
	req.RequestURI = ""
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-protobuf")
	if _, err := tr.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Authorization") != "" || req.Header.Get("X-Amz-Date") != "" {
		t.Error("RoundTrip modified the caller's request")
	}
	if !bytes.Equal(rec.body, body) {
		t.Errorf("sent body %q, want %q: signing consumed the body", rec.body, body)
	}
	v := testVerifier()
	if _, err := v.Verify(rec.req, rec.body); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	cases := []struct {
		name   string
		change func(r *http.Request) []byte
	}{
		{name: "body changed", change: func(*http.Request) []byte { return []byte("snappy-compressed protobuX") }},
		{name: "content type changed", change: func(r *http.Request) []byte {
			r.Header.Set("Content-Type", "application/json")
			return body
		}},
		{name: "path changed", change: func(r *http.Request) []byte {
			r.URL.Path = "/workspaces/ws-2/api/v1/remote_write"
			return body
		}},
		{name: "token removed", change: func(r *http.Request) []byte {
			r.Header.Del("X-Amz-Security-Token")
			return body
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rec.req.Clone(rec.req.Context())
			if _, err := v.Verify(r, tc.change(r)); err == nil {
				t.Error("Verify accepted a request changed after signing")
			}
		})
	}
}

// TestUnreadableBody checks that a body without GetBody fails the request
// rather than being consumed by the signer.
func TestUnreadableBody(t *testing.T) {
	rec := &recorder{}
	tr := testTransport(t, rec)
	req, err := http.NewRequest(http.MethodPost, "https://example.com/", io.NopCloser(strings.NewReader("x")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "GetBody") {
		t.Fatalf("RoundTrip error = %v, want one about GetBody", err)
	}
	if rec.req != nil {
		t.Error("the request was sent")
	}
}

// TestTransportConcurrentSafe signs from many goroutines at once.
func TestTransportConcurrentSafe(t *testing.T) {
	v := testVerifier()
	var mu sync.Mutex
	var failures []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(r, body); err != nil {
			mu.Lock()
			failures = append(failures, err.Error())
			mu.Unlock()
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	client := &http.Client{Transport: testTransport(t, srv.Client().Transport)}

	const goroutines, each = 16, 10
	var wg sync.WaitGroup
	statuses := make(chan int, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				body := strings.Repeat("x", g*each+i+1) // every body different
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/remote_write", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-protobuf")
				resp, err := client.Do(req)
				if err != nil {
					statuses <- 0
					continue
				}
				_ = resp.Body.Close()
				statuses <- resp.StatusCode
			}
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusNoContent {
			t.Errorf("status %d", s)
		}
	}
	if len(failures) > 0 {
		t.Errorf("verification failures: %q", failures[:min(3, len(failures))])
	}
}

// TestRedactionReadsTheEnvironment checks that the transport redacts the
// secrets the AWS SDK takes from the environment: the values of the
// credential variables, AWS_SECRET_KEY (the SDK's alias) included, and
// the content of the token files, read again at each redaction so that a
// token rotated after New is redacted too.
func TestRedactionReadsTheEnvironment(t *testing.T) {
	sigv4test.Isolate(t)
	dir := t.TempDir()
	webIdentityFile, containerFile := filepath.Join(dir, "web-identity"), filepath.Join(dir, "container")
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(webIdentityFile, "first-web-identity-token\n")
	write(containerFile, "first-container-token")
	t.Setenv("AWS_SECRET_KEY", "aliased/secret/key/000000000000000000000000")
	t.Setenv("AWS_SESSION_TOKEN", "environment-session-token-0000000000")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-authorization-token-000000")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", webIdentityFile)
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", containerFile)
	tr, err := newTransport(Config{Region: "us-west-2", AccessKey: testAccessKey, SecretKey: testSecretKey}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	write(containerFile, "rotated-container-token")

	secrets := []string{
		"aliased/secret/key/000000000000000000000000",
		"environment-session-token-0000000000",
		"container-authorization-token-000000",
		"first-web-identity-token",
		"rotated-container-token",
	}
	got := tr.redact("echo: " + strings.Join(secrets, ", "))
	want := "echo: " + strings.Join(slices.Repeat([]string{redacted}, len(secrets)), ", ")
	if got != want {
		t.Errorf("redact =\n%s\nwant\n%s", got, want)
	}
}

// TestRegionFromEndpointHost: without Config.Region, a request to an AMP
// endpoint is signed for the region its host names, not the chain's (on
// EKS, IRSA sets AWS_REGION to the cluster's, and AMP refuses a signature
// for another region), and also when the chain has none (on EC2 the SDK
// does not ask the instance metadata service for it); Config.Region, when
// given, wins.
func TestRegionFromEndpointHost(t *testing.T) {
	const url = "https://aps-workspaces.eu-central-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"
	for _, tc := range []struct {
		name   string
		region string // Config.Region
		chain  string // AWS_REGION, the cluster's; "" for none
		want   string
	}{
		{"host's region over the chain's", "", "ap-south-1", "eu-central-1"},
		{"host's region without the chain's", "", "", "eu-central-1"},
		{"Config.Region wins", "us-west-2", "ap-south-1", "us-west-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigv4test.Isolate(t)
			if tc.chain != "" {
				t.Setenv("AWS_REGION", tc.chain)
			}
			rec := &recorder{}
			tr, err := newTransport(Config{Region: tc.region, AccessKey: testAccessKey, SecretKey: testSecretKey, SessionToken: testToken}, rec)
			if err != nil {
				t.Fatal(err)
			}
			body := []byte("body")
			req := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.RequestURI = ""
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			req.Header.Set("Content-Type", "application/x-protobuf")
			if _, err := tr.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			v := testVerifier()
			v.Region = tc.want
			if _, err := v.Verify(rec.req, rec.body); err != nil {
				t.Errorf("signed for another region than %s: %v (Authorization %q)", tc.want, err, rec.req.Header.Get("Authorization"))
			}
		})
	}
}

// closeRecorder is a request body that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// TestNoRegionForHost: without Config.Region and a chain region, a request
// to a host that names no region fails before credentials are fetched,
// with the fix, and its body is closed as RoundTrip must.
func TestNoRegionForHost(t *testing.T) {
	sigv4test.Isolate(t)
	rec := &recorder{}
	tr, err := newTransport(Config{AccessKey: testAccessKey, SecretKey: testSecretKey, SessionToken: testToken}, rec)
	if err != nil {
		t.Fatalf("newTransport without a region: %v", err)
	}
	body := &closeRecorder{Reader: strings.NewReader("body")}
	req, err := http.NewRequest(http.MethodPost, "https://prometheus.example.com:9090/api/v1/write", body)
	if err != nil {
		t.Fatal(err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("body")), nil }

	_, err = tr.RoundTrip(req)
	want := `sigv4: no AWS region for host prometheus.example.com: set Config.Region (OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_REGION), AWS_REGION, or region in the profile, to the region of the workspace, e.g. "us-east-1"`
	if err == nil || err.Error() != want {
		t.Fatalf("RoundTrip error = %v, want %s", err, want)
	}
	if rec.req != nil {
		t.Error("the request was sent")
	}
	if !body.closed {
		t.Error("the request body was not closed")
	}
	if tr.last.Load() != nil {
		t.Error("credentials were fetched for a request that cannot be signed")
	}
}

func TestHostRegion(t *testing.T) {
	for host, want := range map[string]string{
		"aps-workspaces.us-east-1.amazonaws.com":                    "us-east-1",
		"aps-workspaces-fips.us-gov-west-1.amazonaws.com":           "us-gov-west-1",
		"aps-workspaces.cn-north-1.amazonaws.com.cn":                "cn-north-1",
		"vpce-0abc-xyz.aps-workspaces.eu-west-3.vpce.amazonaws.com": "eu-west-3",
		"APS-WORKSPACES.EU-WEST-1.AMAZONAWS.COM":                    "eu-west-1",
		"aps-workspaces.example.com":                                "",
		"aps-workspaces.us-east-1.example.com":                      "",
		"127.0.0.1":                                                 "",
		"aps-workspaces.notaregion.amazonaws.com":                   "",
		"aps-workspaces.us-east-x.amazonaws.com":                    "",
		"prometheus.us-east-1.amazonaws.com":                        "",
	} {
		if got := hostRegion(host); got != want {
			t.Errorf("hostRegion(%q) = %q, want %q", host, got, want)
		}
	}
}
