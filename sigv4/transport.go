package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/prwmetric/prwmetric"
)

// emptyPayloadHash is the hex SHA-256 of an empty body.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxScrubbed is how much of an error response is searched for echoed
// secrets: the exporter shows only the first KiB of it.
const maxScrubbed = 64 << 10

// redacted replaces a secret found in a message.
const redacted = "[REDACTED]"

// transport signs each request bound for the origin of the first request
// of its redirect chain, and hands it to next.
type transport struct {
	next   http.RoundTripper
	creds  aws.CredentialsProvider
	signer *v4.Signer
	// region is Config.Region or else the chain's; "" when neither is set.
	region string
	// regionGiven: Config.Region (or its variable) chose region; otherwise
	// the region an AMP endpoint's host names wins over the chain's.
	regionGiven bool
	service     string
	// static holds the configured secrets and those of the credential
	// variables; last the most recently retrieved credentials; source the
	// provider whose credentials assume RoleARN (nil without one); files the
	// token files the SDK sends the content of. All are removed from error
	// messages and error responses.
	static []string
	last   atomic.Pointer[aws.Credentials]
	source *recordingProvider
	files  []string
	// fallback is set when the default chain found no credentials but
	// the instance role, its last resort, so that failing to get them
	// means, most often, that none are configured.
	fallback bool
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sameOrigin(req.URL, firstRequest(req).URL) {
		return t.next.RoundTrip(req)
	}
	// Each failure before next.RoundTrip stops the request before it
	// leaves, the same way every time: NotSent tells the exporter.
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close() // RoundTrip must close the body, even on error.
		}
		return nil, prwmetric.NotSent(err)
	}
	// Checked first: no credentials are fetched for a request that cannot
	// be signed.
	region := t.regionFor(req.URL.Hostname())
	if region == "" {
		return fail(fmt.Errorf("sigv4: no AWS region for host %s: %s", req.URL.Hostname(), regionFix))
	}
	hash, err := payloadHash(req)
	if err != nil {
		return fail(err)
	}
	creds, err := t.creds.Retrieve(req.Context())
	if err != nil {
		return fail(t.credentialsError(err))
	}
	t.last.Store(&creds)
	// RoundTrippers must not modify the caller's request; the clone shares
	// its body, which the signer does not read.
	signed := req.Clone(req.Context())
	if err := t.signer.SignHTTP(req.Context(), creds, signed, hash, t.service, region, time.Now()); err != nil {
		return fail(fmt.Errorf("sigv4: signing the request: %w", err))
	}
	resp, err := t.next.RoundTrip(signed)
	if err != nil || resp.StatusCode/100 == 2 {
		return resp, err
	}
	// Some proxies and gateways echo request headers in error bodies.
	resp.Body = t.scrub(resp.Body, creds)
	return resp, nil
}

// regionFor returns the region to sign a request to host for: Config.Region,
// else the one host names, else the chain's; "" when there is none.
func (t *transport) regionFor(host string) string {
	if !t.regionGiven {
		if r := hostRegion(host); r != "" {
			return r
		}
	}
	return t.region
}

// hostRegion returns the region an Amazon Managed Service for Prometheus
// endpoint's host names (aps-workspaces.<region>.amazonaws.com, its FIPS,
// China and VPC-endpoint forms), or "". AMP refuses a signature for another
// region, and the chain's region is often the workload's, not the
// workspace's: on EKS the IRSA webhook sets AWS_REGION to the cluster's.
func hostRegion(host string) string {
	labels := strings.Split(strings.ToLower(host), ".")
	for i := 0; i+2 < len(labels); i++ {
		if !strings.HasPrefix(labels[i], "aps-workspaces") {
			continue
		}
		region := labels[i+1]
		rest := strings.Join(labels[i+2:], ".")
		if isRegion(region) && (strings.HasSuffix(rest, "amazonaws.com") || strings.HasSuffix(rest, "amazonaws.com.cn")) {
			return region
		}
	}
	return ""
}

// isRegion reports whether s looks like an AWS region: letters, then
// dash-separated words, ending in a number ("us-east-1", "us-gov-west-1").
func isRegion(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 3 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		for _, r := range p {
			digit := r >= '0' && r <= '9'
			if digit != (i == len(parts)-1) || !digit && (r < 'a' || r > 'z') {
				return false
			}
		}
	}
	return true
}

// payloadHash returns the hex SHA-256 of the request's body, read through
// GetBody so that the body itself is left for the transport to send.
func payloadHash(req *http.Request) (string, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return emptyPayloadHash, nil
	}
	if req.GetBody == nil {
		return "", errors.New("sigv4: the request body cannot be read twice (no GetBody), so it cannot be signed")
	}
	body, err := req.GetBody()
	if err != nil {
		return "", fmt.Errorf("sigv4: reading the request body to sign it: %w", err)
	}
	defer body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, body); err != nil {
		return "", fmt.Errorf("sigv4: reading the request body to sign it: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// firstRequest follows a redirected request back to the one the client
// was asked to send.
func firstRequest(req *http.Request) *http.Request {
	for i := 0; i < 100 && req.Response != nil && req.Response.Request != nil; i++ {
		req = req.Response.Request
	}
	return req
}

func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Host, b.Host)
}

// credentialsError describes a failure to get credentials: the export's
// deadline, or the SDK's reason without the credential cache's wrapping and
// without secrets.
func (t *transport) credentialsError(err error) error {
	var canceled *aws.RequestCanceledError
	if errors.As(err, &canceled) {
		return fmt.Errorf("sigv4: gave up waiting for AWS credentials: %w", canceled.Err)
	}
	reason := t.redact(strings.TrimPrefix(err.Error(), "failed to refresh cached credentials, "))
	if t.fallback {
		return fmt.Errorf("sigv4: getting AWS credentials: %s (the chain's last resort, the EC2 instance role, failed: %s)", noCredentials, reason)
	}
	return fmt.Errorf("sigv4: getting AWS credentials: %s", reason)
}

// noCredentials says what to set when the default chain found nothing but
// the instance role and that failed too.
const noCredentials = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, " +
	"or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (IRSA), or Config.AccessKey and Config.SecretKey or Config.Profile, " +
	"or run with an ECS task role or an EC2 instance role"

// secrets returns every secret that could turn up in a message: the
// configured ones, those of the credential variables, the last credentials
// retrieved, the credentials that assume RoleARN, and the content of the
// token files (web identity, container authorization), which an identity
// provider, STS or the container credentials endpoint might quote back.
func (t *transport) secrets(extra ...aws.Credentials) []string {
	s := append([]string(nil), t.static...)
	if last := t.last.Load(); last != nil {
		extra = append(extra, *last)
	}
	if t.source != nil {
		if src := t.source.last.Load(); src != nil {
			extra = append(extra, *src)
		}
	}
	for _, c := range extra {
		s = append(s, c.SecretAccessKey, c.SessionToken)
	}
	for _, path := range t.files {
		s = append(s, readTokenFile(path)...)
	}
	return s
}

// secretVariables are the environment variables whose values the AWS SDK
// uses as secrets: keys and tokens of the default chain (AWS_SECRET_KEY is
// the SDK's alias of AWS_SECRET_ACCESS_KEY) and the token it sends to the
// ECS or EKS Pod Identity container credentials endpoint.
var secretVariables = []string{"AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"}

// tokenFileVariables name files whose content the AWS SDK sends to get
// credentials: the web identity token (IRSA) and the container
// authorization token (EKS Pod Identity).
var tokenFileVariables = []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"}

// environmentSecrets returns the values of secretVariables and the paths
// of tokenFileVariables that are set, as the SDK reads them when it loads
// its configuration.
func environmentSecrets() (values, files []string) {
	for _, name := range secretVariables {
		if v := os.Getenv(name); v != "" {
			values = append(values, v, strings.TrimSpace(v))
		}
	}
	for _, name := range tokenFileVariables {
		if path := os.Getenv(name); path != "" {
			files = append(files, path)
		}
	}
	return values, files
}

// readTokenFile returns the content of a token file, as it is and without
// surrounding white space, read up to maxScrubbed bytes; nothing when it
// cannot be read. It is read when a message is redacted, as the SDK reads
// it at each retrieval, so that a rotated token is known too.
func readTokenFile(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxScrubbed))
	return []string{string(b), strings.TrimSpace(string(b))}
}

// recordingProvider passes on the credentials of the provider it wraps
// and keeps the last ones. It wraps the credentials that assume RoleARN,
// which sign the call to STS, so that their session token is redacted when
// STS quotes the request back; the transport itself only sees the role's.
type recordingProvider struct {
	aws.CredentialsProvider
	last atomic.Pointer[aws.Credentials]
}

// Retrieve returns the wrapped provider's credentials and records them.
func (p *recordingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.CredentialsProvider.Retrieve(ctx)
	if err == nil {
		p.last.Store(&c)
	}
	return c, err
}

// ProviderSources passes on the wrapped provider's sources, which the SDK
// reports in its User-Agent.
func (p *recordingProvider) ProviderSources() []aws.CredentialSource {
	if s, ok := p.CredentialsProvider.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

// IsCredentialsProvider reports whether the wrapped provider is of
// target's type, so that the SDK still recognizes, for example, anonymous
// credentials through the wrapper.
func (p *recordingProvider) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(p.CredentialsProvider, target)
}

func (t *transport) redact(msg string) string { return redact(msg, t.secrets()...) }

// redact replaces every secret in msg, the longest first, so that a
// secret that contains another is replaced whole. Strings shorter than 4
// bytes are no secrets worth mangling a message for.
func redact(msg string, secrets ...string) string {
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, redacted)
		}
	}
	return msg
}

// scrub returns body with the secrets removed from its start.
func (t *transport) scrub(body io.ReadCloser, creds aws.Credentials) io.ReadCloser {
	head, err := io.ReadAll(io.LimitReader(body, maxScrubbed))
	text := redact(string(head), t.secrets(creds)...)
	var rest io.Reader = body
	if err != nil {
		rest = errReader{err}
	}
	return readCloser{Reader: io.MultiReader(bytes.NewReader([]byte(text)), rest), Closer: body}
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
