package azuread

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

func TestRefreshRule(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name            string
		life, refreshOn time.Duration // refreshOn 0: none
		wantRefresh     time.Duration // after now
		wantUsable      time.Duration // after now
	}{
		{name: "one hour: refresh 5 min before expiry", life: time.Hour, wantRefresh: 55 * time.Minute, wantUsable: time.Hour - 30*time.Second},
		{name: "ten minutes: both rules agree", life: 10 * time.Minute, wantRefresh: 5 * time.Minute, wantUsable: 10*time.Minute - 30*time.Second},
		{name: "one minute: at half its life", life: time.Minute, wantRefresh: 30 * time.Second, wantUsable: 45 * time.Second},
		{name: "24 hours with an earlier refresh_in", life: 24 * time.Hour, refreshOn: 12 * time.Hour, wantRefresh: 12 * time.Hour, wantUsable: 24*time.Hour - 30*time.Second},
		{name: "a later refresh_in is ignored", life: time.Hour, refreshOn: 59 * time.Minute, wantRefresh: 55 * time.Minute, wantUsable: time.Hour - 30*time.Second},
		{name: "a past refresh_in is ignored", life: time.Hour, refreshOn: -time.Minute, wantRefresh: 55 * time.Minute, wantUsable: time.Hour - 30*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := azcore.AccessToken{Token: "t", ExpiresOn: now.Add(tt.life)}
			if tt.refreshOn != 0 {
				tok.RefreshOn = now.Add(tt.refreshOn)
			}
			c := newCachedToken(tok, now)
			if got := c.refreshAt.Sub(now); got != tt.wantRefresh {
				t.Errorf("refresh after %v, want %v", got, tt.wantRefresh)
			}
			if got := c.usableUntil.Sub(now); got != tt.wantUsable {
				t.Errorf("usable for %v, want %v", got, tt.wantUsable)
			}
		})
	}
}

func TestClean(t *testing.T) {
	secret := "Abc~def+ghi/jkl=mno" // needs escaping in a URL
	jwt := "eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	tests := []struct {
		name    string
		give    string
		want    string
		secrets []string
	}{
		{"known secret", "bad secret " + secret + " given", "bad secret [REDACTED] given", []string{secret}},
		{"URL-encoded secret", "body client_id=x&client_secret=Abc~def%2Bghi%2Fjkl%3Dmno", "body client_id=x&client_secret=[REDACTED]", []string{secret}},
		{"assertion", "assertion " + jwt + " refused", "assertion [REDACTED] refused", nil},
		{"form fields", "client_assertion=abc&scope=s&access_token=xyz", "client_assertion=[REDACTED]&scope=s&access_token=[REDACTED]", nil},
		{"JSON fields", `{"client_secret": "abc", "password":"p"}`, `{"client_secret": "[REDACTED]", "password":"[REDACTED]"}`, nil},
		{"short secret withholds everything", "the secret is s3c here", "(details withheld: they contain a secret)", []string{"s3c"}},
		{"plain text kept, spaces folded", "dial tcp 127.0.0.1:1:\n  connection refused", "dial tcp 127.0.0.1:1: connection refused", []string{"", secret}},
		{"long text cut", strings.Repeat("a", 600), strings.Repeat("a", maxDetail) + "…", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clean(tt.give, func() []string { return tt.secrets })
			if got != tt.want {
				t.Errorf("clean(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

// fakeCredential answers GetToken with tokens t1, t2, … valid for life,
// after release is closed (if set).
type fakeCredential struct {
	life    time.Duration
	now     func() time.Time
	release chan struct{}
	entered chan struct{} // receives once per call, if set
	err     error
	calls   atomic.Int32
}

func (c *fakeCredential) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	n := c.calls.Add(1)
	if c.entered != nil {
		c.entered <- struct{}{}
	}
	if c.release != nil {
		select {
		case <-c.release:
		case <-ctx.Done():
			return azcore.AccessToken{}, ctx.Err()
		}
	}
	if c.err != nil {
		return azcore.AccessToken{}, c.err
	}
	return azcore.AccessToken{Token: "t" + string(rune('0'+n)), ExpiresOn: c.now().Add(c.life)}, nil
}

// TestTokenCacheConcurrentSafe: many requests at once make one token
// request, and all get its token.
func TestTokenCacheConcurrentSafe(t *testing.T) {
	cred := &fakeCredential{life: time.Hour, now: time.Now, release: make(chan struct{})}
	cache := newTokenCache(cred, testScope, time.Now, "test", nil)
	const n = 32
	var wg sync.WaitGroup
	tokens := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { tokens[i], errs[i] = cache.token(context.Background()) })
	}
	close(cred.release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || tokens[i] != "t1" {
			t.Fatalf("caller %d got %q, %v; want t1", i, tokens[i], errs[i])
		}
	}
	if got := cred.calls.Load(); got != 1 {
		t.Errorf("%d token requests, want 1", got)
	}
}

// TestTokenCacheWaiters: a caller waiting for another's token request gives
// up with its own context, and fetches anew when the other's context ended
// that request.
func TestTokenCacheWaiters(t *testing.T) {
	cred := &fakeCredential{life: time.Hour, now: time.Now, release: make(chan struct{}), entered: make(chan struct{}, 2)}
	cache := newTokenCache(cred, testScope, time.Now, "test", nil)
	waiting := make(chan struct{}, 2)
	cache.onWait = func() { waiting <- struct{}{} }

	ownerCtx, cancelOwner := context.WithCancel(context.Background())
	ownerDone := make(chan error, 1)
	go func() { _, err := cache.token(ownerCtx); ownerDone <- err }()
	<-cred.entered // the owner's request is in flight

	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := cache.token(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter with a short deadline: %v, want a deadline error", err)
	}
	<-waiting

	waiterDone := make(chan string, 1)
	go func() { tok, _ := cache.token(context.Background()); waiterDone <- tok }()
	<-waiting // the waiter waits for the owner's request
	cancelOwner()
	if err := <-ownerDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("owner: %v, want canceled", err)
	}
	<-cred.entered // the waiter's own request
	close(cred.release)
	if tok := <-waiterDone; tok != "t2" {
		t.Errorf("waiter got %q, want t2 from its own request", tok)
	}
	if got := cred.calls.Load(); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTransport: where the token goes, and that error answers lose it.
func TestTransport(t *testing.T) {
	tests := []struct {
		name      string
		url       string
		redirect  string // the request is a redirect from this URL
		wantToken bool
		wantErr   string
	}{
		{name: "https", url: "https://dce.westeurope-1.metrics.ingest.monitor.azure.com/x", wantToken: true},
		{name: "http to 127.0.0.1", url: "http://127.0.0.1:9090/api/v1/write", wantToken: true},
		{name: "http to ::1", url: "http://[::1]:9090/api/v1/write", wantToken: true},
		{name: "http to localhost", url: "http://localhost:9090/api/v1/write", wantToken: true},
		{name: "plain http elsewhere", url: "http://metrics.example.com/api/v1/write", wantErr: "refusing to send an Entra ID token over plain http to metrics.example.com: use the https endpoint"},
		{name: "redirect on the same origin", url: "https://a.example/v2", redirect: "https://a.example/v1", wantToken: true},
		{name: "redirect to another host", url: "https://b.example/v1", redirect: "https://a.example/v1"},
		{name: "redirect to http on the same host", url: "http://a.example/v1", redirect: "https://a.example/v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent *http.Request
			next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent = r
				return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: r}, nil
			})
			cred := &fakeCredential{life: time.Hour, now: time.Now}
			tr := &transport{next: next, tokens: newTokenCache(cred, testScope, time.Now, "test", nil)}
			req, err := http.NewRequest(http.MethodPost, tt.url, strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.redirect != "" {
				prev, _ := http.NewRequest(http.MethodPost, tt.redirect, nil)
				req.Response = &http.Response{StatusCode: http.StatusTemporaryRedirect, Request: prev}
			}
			_, err = tr.RoundTrip(req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || sent != nil {
					t.Fatalf("err %v (sent: %v), want %q and nothing sent", err, sent != nil, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sent.Header.Get("Authorization"); (got == "Bearer t1") != tt.wantToken {
				t.Errorf("Authorization %q, want token: %v", got, tt.wantToken)
			}
			if req.Header.Get("Authorization") != "" {
				t.Error("the caller's request was modified")
			}
		})
	}
}

func TestScrubBody(t *testing.T) {
	const token = "at-0123456789abcdef"
	body := "denied: Bearer " + token + strings.Repeat(" padding", 20000) + " tail " + token
	resp := &http.Response{StatusCode: http.StatusForbidden, Header: http.Header{"Content-Length": {"1"}}, ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body))}
	scrubBody(resp, token)
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "denied: Bearer [REDACTED] padding") {
		t.Errorf("body starts %.40q", got)
	}
	// Past the searched head the body is passed on as it is: the exporter
	// quotes only its first KiB.
	if !strings.HasSuffix(string(got), " tail "+token) || resp.ContentLength != -1 || resp.Header.Get("Content-Length") != "" {
		t.Errorf("body end or length changed wrongly: %d, %q", resp.ContentLength, got[len(got)-30:])
	}
}

// echoToken is a token whose base64 forms differ between the standard and
// the URL alphabet ("???" encodes to "Pz8/", ">>>" to "Pj4+").
const echoToken = "eyJ0eXAiOiJKV1QifQ.???>>>.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"

// staticCredential issues itself as the token, valid for an hour.
type staticCredential string

func (c staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(c), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// encodedRuns returns every run of n characters of enc's encoding of
// prefix+token that encodes bytes of token only: what must not survive
// when a peer echoes prefix+token base64-encoded.
func encodedRuns(enc *base64.Encoding, prefix, token string, n int) []string {
	full := enc.EncodeToString([]byte(prefix + token))
	start, end := (len(prefix)+2)/3*4, (len(prefix)+len(token))/3*4
	var runs []string
	for i := start; i+n <= end; i++ {
		runs = append(runs, full[i:i+n])
	}
	return runs
}

// TestScrubBodyEncodedToken checks that scrubBody removes the token
// base64-encoded, in either alphabet and at each of the three alignments
// it can have inside a longer encoded text, leaving no 8 characters (6
// bytes) of its encoding.
func TestScrubBodyEncodedToken(t *testing.T) {
	for _, enc := range []struct {
		name string
		enc  *base64.Encoding
	}{{"standard", base64.StdEncoding}, {"URL", base64.URLEncoding}, {"raw URL", base64.RawURLEncoding}} {
		for _, prefix := range []string{"", "Authorization: Bearer ", "Authorization: Bearer x", "Authorization: Bearer xy"} {
			t.Run(fmt.Sprintf("%s after %q", enc.name, prefix), func(t *testing.T) {
				body := "echo " + enc.enc.EncodeToString([]byte(prefix+echoToken+"\r\n")) + " end"
				resp := &http.Response{StatusCode: http.StatusBadRequest, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
				scrubBody(resp, echoToken)
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(got), redacted) || !strings.HasPrefix(string(got), "echo ") || !strings.HasSuffix(string(got), " end") {
					t.Errorf("body %q, want the echo with %s in it", got, redacted)
				}
				checkNoSecrets(t, "scrubbed body", string(got), encodedRuns(enc.enc, prefix, echoToken, 8)...)
			})
		}
	}
}

// TestNonSuccessAnswersLoseToken checks that the transport removes the
// token from every answer but a success, redirects included: the exporter
// quotes a 301, 302 or 303 (which it does not follow) or a 307 or 308
// without Location in its error as it quotes a 4xx or 5xx. A success is
// passed on untouched.
func TestNonSuccessAnswersLoseToken(t *testing.T) {
	echo := func(r *http.Request) string {
		auth := r.Header.Get("Authorization")
		return "you sent " + auth + " = " + base64.StdEncoding.EncodeToString([]byte("Authorization: "+auth))
	}
	tests := []struct {
		name      string
		status    int
		wantClean bool
	}{
		{name: "301", status: http.StatusMovedPermanently, wantClean: true},
		{name: "302", status: http.StatusFound, wantClean: true},
		{name: "303", status: http.StatusSeeOther, wantClean: true},
		{name: "307", status: http.StatusTemporaryRedirect, wantClean: true},
		{name: "308", status: http.StatusPermanentRedirect, wantClean: true},
		{name: "400", status: http.StatusBadRequest, wantClean: true},
		{name: "401", status: http.StatusUnauthorized, wantClean: true},
		{name: "500", status: http.StatusInternalServerError, wantClean: true},
		{name: "200 untouched", status: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent string
			next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent = echo(r)
				return &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(sent)), Request: r}, nil
			})
			tr := &transport{next: next, tokens: newTokenCache(staticCredential(echoToken), testScope, time.Now, "test", nil)}
			req, err := http.NewRequest(http.MethodPost, "https://dce.example/api/v1/write", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantClean {
				if string(got) != sent {
					t.Errorf("body %q, want it untouched: %q", got, sent)
				}
				return
			}
			checkNoSecrets(t, "body", string(got), append(encodedRuns(base64.StdEncoding, "Authorization: Bearer ", echoToken, 8), echoToken)...)
			if want := "you sent Bearer " + redacted + " = "; !strings.HasPrefix(string(got), want) {
				t.Errorf("body %q, want it to start with %q", got, want)
			}
		})
	}
}

// TestAuthorityAndScope: which authority and scope a Config resolves to.
func TestAuthorityAndScope(t *testing.T) {
	tests := []struct {
		name          string
		give          Config
		env           map[string]string
		wantAuthority string
		wantScope     string
		wantTrusted   bool
	}{
		{name: "default", wantAuthority: "https://login.microsoftonline.com/", wantScope: "https://monitor.azure.com/.default"},
		{name: "public", give: Config{Cloud: CloudPublic}, wantAuthority: "https://login.microsoftonline.com/", wantScope: "https://monitor.azure.com/.default"},
		{name: "China", give: Config{Cloud: CloudChina}, wantAuthority: "https://login.chinacloudapi.cn/", wantScope: "https://monitor.azure.cn/.default"},
		{name: "US Government, any case", give: Config{Cloud: "azuregovernment"}, wantAuthority: "https://login.microsoftonline.us/", wantScope: "https://monitor.azure.us/.default"},
		{name: "scope override", give: Config{Cloud: CloudChina, Scope: "api://my-proxy/.default"}, wantAuthority: "https://login.chinacloudapi.cn/", wantScope: "api://my-proxy/.default"},
		{name: "AZURE_AUTHORITY_HOST", env: map[string]string{"AZURE_AUTHORITY_HOST": "https://login.contoso.example/"}, wantAuthority: "https://login.contoso.example/", wantScope: "https://monitor.azure.com/.default", wantTrusted: true},
		{name: "the cloud wins over AZURE_AUTHORITY_HOST", give: Config{Cloud: CloudChina}, env: map[string]string{"AZURE_AUTHORITY_HOST": "https://login.contoso.example/"}, wantAuthority: "https://login.chinacloudapi.cn/", wantScope: "https://monitor.azure.cn/.default"},
		{name: "AuthorityHost wins", give: Config{Cloud: CloudChina, AuthorityHost: "https://adfs.stack.example/"}, env: map[string]string{"AZURE_AUTHORITY_HOST": "https://login.contoso.example/"}, wantAuthority: "https://adfs.stack.example/", wantScope: "https://monitor.azure.cn/.default", wantTrusted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := validate(tt.give, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if s.authority != tt.wantAuthority || s.scope != tt.wantScope || s.trusted != tt.wantTrusted {
				t.Errorf("authority %q scope %q trusted %v, want %q %q %v", s.authority, s.scope, s.trusted, tt.wantAuthority, tt.wantScope, tt.wantTrusted)
			}
		})
	}
}

// TestTokenCacheRefreshAhead: once a refresh is due, callers other than
// the one refreshing send the still-usable token at once instead of
// queueing behind the token request; the refreshing caller gets the new
// token when the authority answers.
func TestTokenCacheRefreshAhead(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cred := &fakeCredential{life: time.Minute, now: clock}
	cache := newTokenCache(cred, testScope, clock, "test", nil)
	if tok, err := cache.token(context.Background()); err != nil || tok != "t1" {
		t.Fatalf("first token %q, %v; want t1", tok, err)
	}
	cred.release, cred.entered = make(chan struct{}), make(chan struct{}, 1)
	mu.Lock()
	now = now.Add(31 * time.Second) // past t1's refresh point, t1 usable until 45 s
	mu.Unlock()

	ownerDone := make(chan string, 1)
	go func() { tok, _ := cache.token(context.Background()); ownerDone <- tok }()
	<-cred.entered // the refresh is in flight
	// The deadline only bounds a failure: the call must return at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if tok, err := cache.token(ctx); err != nil || tok != "t1" {
		t.Errorf("caller during the refresh got %q, %v; want t1 at once", tok, err)
	}
	close(cred.release)
	if tok := <-ownerDone; tok != "t2" {
		t.Errorf("refreshing caller got %q, want t2", tok)
	}
	if tok, _ := cache.token(context.Background()); tok != "t2" {
		t.Errorf("after the refresh: %q, want t2", tok)
	}
	if got := cred.calls.Load(); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
}
