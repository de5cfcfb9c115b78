package azuread

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric/internal/testcert"
	"github.com/prwmetric/prwmetric/prwmetrictest"
)

// Names the fakes expect.
const (
	testTenant   = "00000000-aaaa-bbbb-cccc-000000000001"
	testClientID = "11111111-aaaa-bbbb-cccc-000000000002"
	testScope    = "https://monitor.azure.com/.default"
	jwtBearer    = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// fakeClock is the time of the token cache, the authority's expiries and
// the receiver's checks: the real time plus an offset the test advances, so
// that a test steps through token lifetimes without waiting.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// tokenBook records the tokens the fakes issued and when each expires.
type tokenBook struct {
	clock *fakeClock
	// lifetime of issued tokens. Below the 5 minutes for which MSAL (under
	// azidentity) keeps a token in its own cache, so that every GetToken
	// reaches the authority and the test sees exactly the requests that
	// this package's cache makes.
	lifetime time.Duration

	mu       sync.Mutex
	expiries map[string]time.Time
	issued   []string
}

func newTokenBook(clock *fakeClock) *tokenBook {
	return &tokenBook{clock: clock, lifetime: time.Minute, expiries: map[string]time.Time{}}
}

// issue mints a token valid for the book's lifetime.
func (b *tokenBook) issue() (token string, expires time.Time) {
	buf := make([]byte, 24)
	_, _ = rand.Read(buf)
	token = "at-" + hex.EncodeToString(buf)
	expires = b.clock.now().Add(b.lifetime)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expiries[token] = expires
	b.issued = append(b.issued, token)
	return token, expires
}

// valid reports whether token was issued here and has not expired.
func (b *tokenBook) valid(token string) (ok bool, why string) {
	b.mu.Lock()
	exp, known := b.expiries[token]
	b.mu.Unlock()
	switch {
	case !known:
		return false, "unknown token"
	case !b.clock.now().Before(exp):
		return false, fmt.Sprintf("token expired %v ago", b.clock.now().Sub(exp))
	}
	return true, ""
}

func (b *tokenBook) tokens() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.issued...)
}

// authority is a fake Microsoft Entra ID authority on 127.0.0.1 over HTTPS
// with a test CA. It serves the OpenID configuration MSAL reads and the
// token endpoint of one tenant, checks the client ID, the scope and the
// credential, and issues short-lived tokens into book.
type authority struct {
	t      *testing.T
	srv    *httptest.Server
	book   *tokenBook
	client *http.Client // trusts the test CA

	// The credential to require; exactly one is set.
	secret    string            // client_secret
	cert      *x509.Certificate // a client assertion signed by its key
	federated string            // client_assertion as given

	mu sync.Mutex
	// override answers token requests instead of the normal flow when set.
	override      func(w http.ResponseWriter, r *http.Request, form url.Values)
	tokenRequests int
	rejected      []string // why token requests were refused
	assertions    []string // client assertions received
	unexpected    []string // requests for paths MSAL should not ask for
}

func newAuthority(t *testing.T, book *tokenBook) *authority {
	t.Helper()
	certs := testcert.New(t)
	a := &authority{t: t, book: book}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.handle))
	a.srv.TLS = &tls.Config{Certificates: []tls.Certificate{certs.Server}, MinVersion: tls.VersionTLS12}
	a.srv.StartTLS()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.CAPool, MinVersion: tls.VersionTLS12}}
	a.client = &http.Client{Transport: tr}
	t.Cleanup(func() {
		a.srv.Close()
		tr.CloseIdleConnections()
		a.mu.Lock()
		defer a.mu.Unlock()
		if len(a.unexpected) > 0 {
			t.Errorf("authority: unexpected requests: %v", a.unexpected)
		}
	})
	return a
}

// URL is the authority host, as Config.AuthorityHost takes it.
func (a *authority) URL() string { return a.srv.URL + "/" }

func (a *authority) tokenEndpoint() string {
	return a.srv.URL + "/" + testTenant + "/oauth2/v2.0/token"
}

// setSecret changes the client secret the authority accepts, as a
// rotation in the app registration does.
func (a *authority) setSecret(secret string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.secret = secret
}

func (a *authority) setOverride(f func(w http.ResponseWriter, r *http.Request, form url.Values)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.override = f
}

func (a *authority) stats() (requests int, rejected []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tokenRequests, append([]string(nil), a.rejected...)
}

func (a *authority) seenAssertions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.assertions...)
}

func (a *authority) handle(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/"+testTenant+"/v2.0/.well-known/openid-configuration":
		base := a.srv.URL + "/{tenant}"
		writeJSON(w, http.StatusOK, map[string]any{
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"issuer":                 a.srv.URL + "/{tenant}/v2.0",
		})
	case r.Method == http.MethodPost && r.URL.Path == "/"+testTenant+"/oauth2/v2.0/token":
		a.token(w, r)
	default:
		a.mu.Lock()
		a.unexpected = append(a.unexpected, r.Method+" "+r.URL.Path)
		a.mu.Unlock()
		http.NotFound(w, r)
	}
}

func (a *authority) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	form := r.PostForm
	a.mu.Lock()
	a.tokenRequests++
	if as := form.Get("client_assertion"); as != "" {
		a.assertions = append(a.assertions, as)
	}
	override := a.override
	a.mu.Unlock()
	if override != nil {
		override(w, r, form)
		return
	}
	if problem := a.check(form); problem != "" {
		a.mu.Lock()
		a.rejected = append(a.rejected, problem)
		a.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"error":             "invalid_client",
			"error_description": "AADSTS7000215: " + problem,
			"error_codes":       []int{7000215},
		})
		return
	}
	token, expires := a.book.issue()
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"access_token":   token,
		"expires_in":     int(a.book.lifetime.Seconds()),
		"ext_expires_in": int(a.book.lifetime.Seconds()),
		// Entra ID answers expires_in only, which MSAL adds to the real
		// time. The absolute expires_on (which MSAL prefers) puts the
		// expiry on the test's clock instead, so that the token cache,
		// the authority and the receiver agree on when a token expires.
		"expires_on": expires.Unix(),
	})
}

// check returns why a token request must be refused, or "".
func (a *authority) check(form url.Values) string {
	switch {
	case form.Get("grant_type") != "client_credentials":
		return fmt.Sprintf("grant_type %q", form.Get("grant_type"))
	case form.Get("client_id") != testClientID:
		return fmt.Sprintf("client_id %q", form.Get("client_id"))
	case !scopeOK(form.Get("scope")):
		return fmt.Sprintf("scope %q", form.Get("scope"))
	}
	a.mu.Lock()
	secret := a.secret
	a.mu.Unlock()
	switch {
	case secret != "":
		if form.Has("client_assertion") {
			return "a client assertion where a secret was expected"
		}
		if form.Get("client_secret") != secret {
			return "wrong client secret"
		}
	case a.cert != nil:
		if form.Has("client_secret") {
			return "a client secret where an assertion was expected"
		}
		if form.Get("client_assertion_type") != jwtBearer {
			return fmt.Sprintf("client_assertion_type %q", form.Get("client_assertion_type"))
		}
		if err := verifyAssertion(form.Get("client_assertion"), a.cert, a.tokenEndpoint(), testClientID); err != nil {
			return "client assertion: " + err.Error()
		}
	case a.federated != "":
		if form.Get("client_assertion_type") != jwtBearer {
			return fmt.Sprintf("client_assertion_type %q", form.Get("client_assertion_type"))
		}
		if form.Get("client_assertion") != a.federated {
			return "client assertion is not the federated token"
		}
	default:
		return "the fake authority was given no credential to expect"
	}
	return ""
}

// scopeOK wants the Azure Monitor scope and nothing else but the OpenID
// scopes MSAL adds to every request (Entra ID ignores them for client
// credentials).
func scopeOK(scope string) bool {
	found := false
	for _, s := range strings.Fields(scope) {
		switch s {
		case testScope:
			found = true
		case "openid", "offline_access", "profile":
		default:
			return false
		}
	}
	return found
}

// verifyAssertion checks a client assertion as Entra ID does: a PS256 JWT
// signed by the certificate's key, naming the certificate by its SHA-256
// thumbprint, for the token endpoint, from and about the client, in date.
func verifyAssertion(assertion string, cert *x509.Certificate, aud, clientID string) error {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT (%d parts)", len(parts))
	}
	var header struct {
		Alg  string `json:"alg"`
		Typ  string `json:"typ"`
		X5t2 string `json:"x5t#S256"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return fmt.Errorf("header: %v", err)
	}
	thumb := sha256.Sum256(cert.Raw)
	switch {
	case header.Alg != "PS256":
		return fmt.Errorf("alg %q, want PS256", header.Alg)
	case header.X5t2 != base64.StdEncoding.EncodeToString(thumb[:]):
		return fmt.Errorf("x5t#S256 does not name the certificate")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("certificate key is %T", cert.PublicKey)
	}
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}); err != nil {
		return fmt.Errorf("signature does not verify with the certificate's key: %v", err)
	}
	var claims struct {
		Aud string      `json:"aud"`
		Iss string      `json:"iss"`
		Sub string      `json:"sub"`
		Exp json.Number `json:"exp"`
		Nbf json.Number `json:"nbf"`
		Jti string      `json:"jti"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return fmt.Errorf("claims: %v", err)
	}
	exp, _ := claims.Exp.Int64()
	nbf, _ := claims.Nbf.Int64()
	// MSAL dates assertions by the real clock.
	now := time.Now().Unix()
	switch {
	case claims.Aud != aud:
		return fmt.Errorf("aud %q, want %q", claims.Aud, aud)
	case claims.Iss != clientID || claims.Sub != clientID:
		return fmt.Errorf("iss %q / sub %q, want the client ID", claims.Iss, claims.Sub)
	case exp <= now:
		return fmt.Errorf("expired")
	case nbf > now+60:
		return fmt.Errorf("not yet valid")
	case claims.Jti == "":
		return fmt.Errorf("no jti")
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// managedIdentityEndpoint is a fake App Service managed identity endpoint
// (IDENTITY_ENDPOINT and IDENTITY_HEADER) on 127.0.0.1: azidentity's
// managed identity credential reaches it when those variables are set,
// whereas IMDS has a fixed address (169.254.169.254) a test cannot use.
type managedIdentityEndpoint struct {
	srv    *httptest.Server
	book   *tokenBook
	header string // X-IDENTITY-HEADER to require
	// clientID to require for a user-assigned identity; "" for system-assigned.
	clientID string

	mu       sync.Mutex
	requests int
	rejected []string
}

func newManagedIdentityEndpoint(t *testing.T, book *tokenBook, clientID string) *managedIdentityEndpoint {
	t.Helper()
	m := &managedIdentityEndpoint{book: book, header: "idh-" + randomHex(16), clientID: clientID}
	m.srv = httptest.NewServer(http.HandlerFunc(m.handle))
	t.Cleanup(m.srv.Close)
	t.Setenv("IDENTITY_ENDPOINT", m.srv.URL+"/msi/token")
	t.Setenv("IDENTITY_HEADER", m.header)
	return m
}

func (m *managedIdentityEndpoint) handle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var problem string
	switch {
	case r.Method != http.MethodGet || r.URL.Path != "/msi/token":
		problem = r.Method + " " + r.URL.Path
	case r.Header.Get("X-IDENTITY-HEADER") != m.header:
		problem = "wrong X-IDENTITY-HEADER"
	case q.Get("api-version") != "2019-08-01":
		problem = "api-version " + q.Get("api-version")
	case q.Get("resource") != strings.TrimSuffix(testScope, "/.default"):
		problem = "resource " + q.Get("resource")
	case q.Get("client_id") != m.clientID:
		problem = fmt.Sprintf("client_id %q, want %q", q.Get("client_id"), m.clientID)
	}
	m.mu.Lock()
	m.requests++
	if problem != "" {
		m.rejected = append(m.rejected, problem)
	}
	m.mu.Unlock()
	if problem != "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "message": problem})
		return
	}
	token, expires := m.book.issue()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"expires_on":   strconv.FormatInt(expires.Unix(), 10),
		"resource":     q.Get("resource"),
		"token_type":   "Bearer",
		"client_id":    m.clientID,
	})
}

func (m *managedIdentityEndpoint) stats() (requests int, rejected []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests, append([]string(nil), m.rejected...)
}

// receiver is a remote-write receiver that, like Azure Monitor, accepts
// only a currently valid token from the fake authority; accepted requests
// go on to a prwmetrictest server, which decodes them.
type receiver struct {
	*prwmetrictest.Server
	front *httptest.Server
	book  *tokenBook
	mu    sync.Mutex
	// echo makes the receiver refuse every request, quoting its
	// Authorization header in the answer, as a careless receiver might.
	echo bool
	// redirectTo, when set, answers accepted requests with a 307 to it.
	redirectTo string
	accepted   []string // the token of each accepted request
	refused    []string // why requests were refused
}

func newReceiver(t *testing.T, book *tokenBook) *receiver {
	t.Helper()
	rv := &receiver{Server: prwmetrictest.NewServer(), book: book}
	target, err := url.Parse(rv.Server.URL())
	if err != nil {
		t.Fatal(err)
	}
	target.Path = ""
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	rv.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		why := "no bearer token"
		if ok {
			ok, why = book.valid(token)
		}
		rv.mu.Lock()
		echo, redirectTo := rv.echo, rv.redirectTo
		if echo {
			ok, why = false, "refusing everything"
		}
		if ok {
			rv.accepted = append(rv.accepted, token)
		} else {
			rv.refused = append(rv.refused, why)
		}
		rv.mu.Unlock()
		switch {
		case echo:
			http.Error(w, "InvalidToken: "+why+" (got Authorization: "+auth+")", http.StatusUnauthorized)
		case !ok:
			http.Error(w, "InvalidToken: "+why, http.StatusUnauthorized)
		case redirectTo != "":
			http.Redirect(w, r, redirectTo, http.StatusTemporaryRedirect)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(func() {
		rv.front.Close()
		rv.Server.Close()
	})
	return rv
}

func (rv *receiver) set(echo bool, redirectTo string) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.echo, rv.redirectTo = echo, redirectTo
}

// URL is the write URL the exporter is given.
func (rv *receiver) URL() string { return rv.front.URL + prwmetrictest.DefaultPath }

func (rv *receiver) log() (accepted, refused []string) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]string(nil), rv.accepted...), append([]string(nil), rv.refused...)
}

// clientCert is a self-signed RSA certificate and key for an app
// registration, as one PEM file. testcert makes ECDSA keys, which Entra ID
// (and MSAL) do not take for client certificates.
type clientCert struct {
	cert *x509.Certificate
	file string
	pem  []byte
}

var (
	rsaKeyOnce sync.Once
	rsaKey     *rsa.PrivateKey
)

func newClientCert(t *testing.T) clientCert {
	t.Helper()
	rsaKeyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "prwmetric azuread test client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rsaKey.PublicKey, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	file := writeFile(t, "client.pem", string(data))
	return clientCert{cert: cert, file: file, pem: data}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fakeJWT returns a JWT-shaped federated token, as Kubernetes projects into
// AZURE_FEDERATED_TOKEN_FILE; the fake authority compares it as given.
func fakeJWT() string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","kid":"k1"}`)) + "." +
		enc([]byte(`{"iss":"https://oidc.example/","sub":"system:serviceaccount:monitoring:app","aud":"api://AzureADTokenExchange","jti":"`+randomHex(8)+`"}`)) + "." +
		enc([]byte(randomHex(32)))
}

// logBuffer captures the exporter's slog output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// stuck answers nothing until the client gives up or the test ends.
func stuck(done <-chan struct{}) func(w http.ResponseWriter, r *http.Request, form url.Values) {
	return func(w http.ResponseWriter, r *http.Request, form url.Values) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
}

// ecdsaPEM writes testcert's client certificate and ECDSA key as one PEM
// file: a certificate Entra ID does not take.
func ecdsaPEM(t *testing.T) string {
	t.Helper()
	c := testcert.New(t)
	cert, err := os.ReadFile(c.ClientCertFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(c.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "ecdsa.pem", string(cert)+string(key))
}
