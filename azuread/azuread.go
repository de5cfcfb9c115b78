package azuread

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/prwmetric/prwmetric"
)

// optionName is how New's errors name this option.
const optionName = "azuread.WithAzureAD"

// Cloud is an Azure cloud: it chooses the Entra ID authority that issues
// tokens and the Azure Monitor scope they are issued for. The values are the
// ones Prometheus' azuread configuration uses.
type Cloud string

const (
	// CloudPublic is global Azure: authority https://login.microsoftonline.com/,
	// scope https://monitor.azure.com/.default. It is the default.
	CloudPublic Cloud = "AzurePublic"
	// CloudChina is Azure operated by 21Vianet: authority
	// https://login.chinacloudapi.cn/, scope https://monitor.azure.cn/.default.
	CloudChina Cloud = "AzureChina"
	// CloudUSGovernment is Azure Government: authority
	// https://login.microsoftonline.us/, scope https://monitor.azure.us/.default.
	CloudUSGovernment Cloud = "AzureGovernment"
)

// clouds maps each known cloud to its authority and Azure Monitor scope.
var clouds = map[Cloud]struct{ authority, scope string }{
	CloudPublic:       {cloud.AzurePublic.ActiveDirectoryAuthorityHost, "https://monitor.azure.com/.default"},
	CloudChina:        {cloud.AzureChina.ActiveDirectoryAuthorityHost, "https://monitor.azure.cn/.default"},
	CloudUSGovernment: {cloud.AzureGovernment.ActiveDirectoryAuthorityHost, "https://monitor.azure.us/.default"},
}

// parseCloud accepts the constants' values in any case; "" is CloudPublic.
func parseCloud(c Cloud) (Cloud, bool) {
	if c == "" {
		return CloudPublic, true
	}
	for known := range clouds {
		if strings.EqualFold(string(c), string(known)) {
			return known, true
		}
	}
	return "", false
}

// Config chooses how WithAzureAD obtains Entra ID tokens. Exactly one kind
// of credential is chosen:
//
//   - managed identity: ManagedIdentity, with ClientID for a user-assigned
//     identity (system-assigned without it);
//   - workload identity (AKS): WorkloadIdentity; the federated token file,
//     client and tenant come from AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID
//     and AZURE_TENANT_ID as the workload identity webhook sets them, and
//     ClientID or TenantID, when set, win over the variables;
//   - an app registration with a client secret: ClientID, TenantID and
//     ClientSecret or ClientSecretFile;
//   - an app registration with a certificate: ClientID, TenantID and
//     ClientCertificateFile;
//   - the Azure SDK's default chain (environment variables, workload
//     identity, managed identity, Azure CLI, Azure Developer CLI): none of the
//     fields above set.
//
// Anything else (two kinds, or a ClientID or TenantID with no kind) fails
// at New with an error that names the fields.
type Config struct {
	// Cloud is the Azure cloud; default CloudPublic.
	Cloud Cloud
	// ClientID is the application (client) ID of the app registration, or
	// of the user-assigned managed identity, or the workload identity's
	// client ID overriding AZURE_CLIENT_ID.
	ClientID string
	// ClientSecret is the app registration's client secret. Prefer
	// ClientSecretFile, which keeps the secret out of the program and is
	// re-read when it changes.
	ClientSecret string
	// ClientSecretFile holds the client secret (trailing newline ignored),
	// at most 16 KiB. It is read at New, to fail early, and again before
	// each token request, so a rotated secret takes effect without a
	// restart. It cannot be combined with ClientSecret.
	ClientSecretFile string
	// ClientCertificateFile holds the app registration's certificate and
	// its unencrypted RSA private key, PEM-encoded (or PKCS #12 without a
	// password), at most 1 MiB. Like ClientSecretFile it is read at New and
	// re-read before each token request.
	ClientCertificateFile string
	// TenantID is the Entra ID tenant (directory) ID of the app
	// registration, or the workload identity's tenant overriding
	// AZURE_TENANT_ID.
	TenantID string
	// ManagedIdentity chooses the managed identity of the Azure resource the
	// program runs on (VM, scale set, App Service, Container Apps, Arc).
	ManagedIdentity bool
	// WorkloadIdentity chooses Microsoft Entra Workload ID (AKS).
	WorkloadIdentity bool
	// Scope is the scope tokens are requested for; default the Cloud's
	// Azure Monitor scope. It must end in "/.default".
	Scope string
	// AuthorityHost is the Entra ID authority, e.g.
	// "https://login.microsoftonline.com/", for private clouds (Azure
	// Stack) and tests. Default: the Cloud's; for CloudPublic, the
	// AZURE_AUTHORITY_HOST variable when set. An authority given here or
	// in AZURE_AUTHORITY_HOST is trusted as configured: Entra ID instance
	// discovery, which validates unknown authorities against
	// login.microsoftonline.com, is skipped for it. It must be https.
	AuthorityHost string
	// HTTPClient sends the requests to the authority and to the managed
	// identity endpoint. Default: the Azure SDK's client (proxy from the
	// environment, system roots). The exporter's own transport (WithTLS,
	// WithProxyURL) is not used for them: its CA is the receiver's.
	HTTPClient *http.Client
}

// String returns the fields of c as %+v would, with ClientSecret replaced
// by "[REDACTED]" when it is set and AuthorityHost without its user info,
// query and fragment, so that a Config can be logged.
func (c Config) String() string {
	return fmt.Sprintf("{Cloud:%s ClientID:%s ClientSecret:%s ClientSecretFile:%s ClientCertificateFile:%s TenantID:%s ManagedIdentity:%t WorkloadIdentity:%t Scope:%s AuthorityHost:%s HTTPClient:%s}",
		c.Cloud, c.ClientID, hideSecret(c.ClientSecret), c.ClientSecretFile, c.ClientCertificateFile, c.TenantID,
		c.ManagedIdentity, c.WorkloadIdentity, c.Scope, redactURL(c.AuthorityHost), pointer(c.HTTPClient, "<nil>"))
}

// GoString returns c as Go syntax, as %#v would, with ClientSecret and
// AuthorityHost redacted as by String.
func (c Config) GoString() string {
	return fmt.Sprintf("azuread.Config{Cloud:%q, ClientID:%q, ClientSecret:%q, ClientSecretFile:%q, ClientCertificateFile:%q, TenantID:%q, ManagedIdentity:%t, WorkloadIdentity:%t, Scope:%q, AuthorityHost:%q, HTTPClient:(*http.Client)(%s)}",
		c.Cloud, c.ClientID, hideSecret(c.ClientSecret), c.ClientSecretFile, c.ClientCertificateFile, c.TenantID,
		c.ManagedIdentity, c.WorkloadIdentity, c.Scope, redactURL(c.AuthorityHost), pointer(c.HTTPClient, "nil"))
}

// hideSecret returns redacted for a secret that is set, "" for one that is
// not, so that a printed Config still shows whether it is configured.
func hideSecret(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// redactURL returns raw with its user info, query and fragment replaced by
// redacted, and redacted alone when it is no URL whose parts can be told
// apart.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Opaque != "":
		return redacted
	case u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "":
		return raw
	}
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme + ":")
	}
	if u.Scheme != "" || u.Host != "" || u.User != nil {
		b.WriteString("//")
	}
	if u.User != nil {
		b.WriteString(redacted + "@")
	}
	b.WriteString(u.Host + u.EscapedPath())
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?" + redacted)
	}
	if u.Fragment != "" {
		b.WriteString("#" + redacted)
	}
	return b.String()
}

// pointer formats p as %p would, or as none when it is nil.
func pointer(p *http.Client, none string) string {
	if p == nil {
		return none
	}
	return fmt.Sprintf("%p", p)
}

// WithAzureAD authenticates every remote-write request with an Entra ID
// (Azure AD) access token, as Azure Monitor managed service for Prometheus
// requires: it sets "Authorization: Bearer <token>" on the final request.
// cfg chooses the credential; see Config.
//
// Tokens are obtained with the Azure SDK (azidentity) and cached. A token is
// reused until its refresh point: when less than 5 minutes remain before it
// expires, or less than half of its lifetime for tokens issued for under 10
// minutes, or earlier when the authority asks for an earlier refresh. While
// the old token is still valid (at least 30 seconds, or a quarter of its
// lifetime, from expiry), a refresh that fails, or that the authority does
// not answer within half of the request's time, does not hold the request:
// the old token is sent, and the next export tries again, so a short outage
// of Entra ID loses nothing; after that the export fails with the error.
//
// Getting a token is bounded by the export's context (WithTimeout): a
// failing or silent authority fails the export in time, never hangs it.
// Token requests are not retried by the Azure SDK, nor by WithRetry: a
// request without a token never left (prwmetric.NotSent), and the next
// export asks again. Errors never carry a secret, a client
// assertion or a token, even when a server echoes them back. The token is
// sent only to the endpoint's origin (not after a redirect to another host)
// and only over https, or http to a loopback address.
//
// WithAzureAD cannot be combined with WithBasicAuth, WithBearerToken or an
// Authorization header; a later WithAuthenticator replaces it. Every
// configuration error is reported by New.
func WithAzureAD(cfg Config) prwmetric.Option {
	return withAzureAD(cfg, time.Now)
}

// withAzureAD is WithAzureAD with the clock the token cache uses, so that
// tests can step through token lifetimes without waiting.
func withAzureAD(cfg Config, now func() time.Time) prwmetric.Option {
	return prwmetric.WithAuthenticator(optionName, func(next http.RoundTripper) (http.RoundTripper, error) {
		p, err := newProvider(cfg, now)
		if err != nil {
			return nil, err
		}
		return &transport{next: next, tokens: p}, nil
	})
}

// Size limits of the files WithAzureAD reads.
const (
	maxSecretFile      = 16 << 10
	maxCertificateFile = 1 << 20
)

// kind is the credential a Config chooses.
type kind int

const (
	kindDefault kind = iota
	kindManagedIdentity
	kindWorkloadIdentity
	kindSecret
	kindCertificate
)

func (k kind) String() string {
	switch k {
	case kindManagedIdentity:
		return "managed identity"
	case kindWorkloadIdentity:
		return "workload identity"
	case kindSecret:
		return "client secret"
	case kindCertificate:
		return "client certificate"
	}
	return "default credential chain"
}

// settings is a validated Config.
type settings struct {
	kind         kind
	cfg          Config
	scope        string
	authority    string
	trusted      bool // authority configured by the user: skip instance discovery
	workloadFile string
}

// validate checks cfg and resolves the authority and scope. getenv is
// os.Getenv. Every problem is reported at once; no message carries a value
// that may be secret.
func validate(cfg Config, getenv func(string) string) (settings, error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	s := settings{cfg: cfg}
	s.cfg.ClientID = strings.TrimSpace(cfg.ClientID)
	s.cfg.TenantID = strings.TrimSpace(cfg.TenantID)

	// Which kinds were chosen, by which fields.
	var chosen []string
	var kinds []kind
	if cfg.ManagedIdentity {
		chosen, kinds = append(chosen, "ManagedIdentity"), append(kinds, kindManagedIdentity)
	}
	if cfg.WorkloadIdentity {
		chosen, kinds = append(chosen, "WorkloadIdentity"), append(kinds, kindWorkloadIdentity)
	}
	switch {
	case cfg.ClientSecret != "" && cfg.ClientSecretFile != "":
		add("Config.ClientSecret and Config.ClientSecretFile both set: keep one (the file keeps the secret out of the program)")
		chosen, kinds = append(chosen, "ClientSecret/ClientSecretFile"), append(kinds, kindSecret)
	case cfg.ClientSecret != "":
		chosen, kinds = append(chosen, "ClientSecret"), append(kinds, kindSecret)
	case cfg.ClientSecretFile != "":
		chosen, kinds = append(chosen, "ClientSecretFile"), append(kinds, kindSecret)
	}
	if cfg.ClientCertificateFile != "" {
		chosen, kinds = append(chosen, "ClientCertificateFile"), append(kinds, kindCertificate)
	}
	switch len(kinds) {
	case 0:
		if s.cfg.ClientID != "" || s.cfg.TenantID != "" {
			add("Config.ClientID or Config.TenantID set without a credential: add ClientSecretFile (or ClientSecret) or ClientCertificateFile for an app registration, ManagedIdentity: true for a managed identity, or WorkloadIdentity: true for AKS workload identity; leave all of them empty for the Azure SDK's default chain")
		}
		s.kind = kindDefault
	case 1:
		s.kind = kinds[0]
	default:
		add("more than one credential chosen (Config.%s): choose exactly one", strings.Join(chosen, ", Config."))
		s.kind = kinds[0]
	}

	switch s.kind {
	case kindManagedIdentity:
		if s.cfg.TenantID != "" {
			add("Config.TenantID is not used with ManagedIdentity (the identity's tenant is the resource's): remove it")
		}
	case kindWorkloadIdentity:
		s.workloadFile = strings.TrimSpace(getenv("AZURE_FEDERATED_TOKEN_FILE"))
		if s.workloadFile == "" {
			add("WorkloadIdentity: AZURE_FEDERATED_TOKEN_FILE is not set: label the pod azure.workload.identity/use: \"true\" and give it a service account annotated with the identity's client ID, so that the workload identity webhook sets it")
		}
		if s.cfg.ClientID == "" && strings.TrimSpace(getenv("AZURE_CLIENT_ID")) == "" {
			add("WorkloadIdentity: no client ID: set Config.ClientID or AZURE_CLIENT_ID")
		}
		if s.cfg.TenantID == "" && strings.TrimSpace(getenv("AZURE_TENANT_ID")) == "" {
			add("WorkloadIdentity: no tenant ID: set Config.TenantID or AZURE_TENANT_ID")
		}
	case kindSecret, kindCertificate:
		field := "ClientSecret"
		if s.kind == kindCertificate {
			field = "ClientCertificateFile"
		} else if cfg.ClientSecretFile != "" {
			field = "ClientSecretFile"
		}
		if s.cfg.ClientID == "" {
			add("Config.%s needs Config.ClientID: the application (client) ID of the app registration", field)
		}
		if s.cfg.TenantID == "" {
			add("Config.%s needs Config.TenantID: the directory (tenant) ID of the app registration", field)
		}
	}
	if s.cfg.TenantID != "" && !validTenantID(s.cfg.TenantID) {
		add("Config.TenantID %q: not a tenant ID: want a GUID or a domain such as contoso.onmicrosoft.com", s.cfg.TenantID)
	}
	if cfg.ClientSecret != "" && strings.TrimSpace(cfg.ClientSecret) == "" {
		add("Config.ClientSecret is blank: pass the secret's value")
	}

	c, ok := parseCloud(cfg.Cloud)
	if !ok {
		add("Config.Cloud %q: unknown cloud: use azuread.CloudPublic (%q, the default), CloudChina (%q) or CloudUSGovernment (%q); for another cloud set AuthorityHost and Scope", cfg.Cloud, CloudPublic, CloudChina, CloudUSGovernment)
		c = CloudPublic
	}
	s.cfg.Cloud = c
	s.scope = clouds[c].scope
	if sc := strings.TrimSpace(cfg.Scope); sc != "" {
		s.scope = sc
		if !strings.HasSuffix(sc, "/.default") || strings.ContainsAny(sc, " \t\r\n") {
			add("Config.Scope %q: want a resource's \"/.default\" scope, e.g. %q", cfg.Scope, clouds[c].scope)
		}
	}

	s.authority = clouds[c].authority
	switch {
	case strings.TrimSpace(cfg.AuthorityHost) != "":
		s.authority, s.trusted = strings.TrimSpace(cfg.AuthorityHost), true
		if err := checkAuthority("Config.AuthorityHost", s.authority); err != nil {
			add("%v", err)
		}
	case c == CloudPublic && strings.TrimSpace(getenv("AZURE_AUTHORITY_HOST")) != "":
		s.authority, s.trusted = strings.TrimSpace(getenv("AZURE_AUTHORITY_HOST")), true
		if err := checkAuthority("AZURE_AUTHORITY_HOST", s.authority); err != nil {
			add("%v", err)
		}
	}

	if len(problems) > 0 {
		return s, errors.New(strings.Join(problems, "; "))
	}
	return s, nil
}

// checkAuthority returns what is wrong with raw, the authority URL that
// field sets, or nil. The error shows only the URL's scheme and host: a URL
// is refused for carrying user info, a query or a fragment, which may hold
// a password or a key.
func checkAuthority(field, raw string) error {
	const example = `want e.g. "https://login.microsoftonline.com/"`
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the whole URL.
		return fmt.Errorf("%s is not a URL: %s", field, example)
	}
	var problems []string
	if u.Scheme != "https" {
		problems = append(problems, "the authority must be https")
	}
	if u.Host == "" {
		problems = append(problems, "no host: "+example)
	}
	var extras []string
	if u.User != nil {
		extras = append(extras, "user info (user:password@)")
	}
	if u.RawQuery != "" || u.ForceQuery {
		extras = append(extras, "a query (?…)")
	}
	if u.Fragment != "" {
		extras = append(extras, "a fragment (#…)")
	}
	if len(extras) > 0 {
		problems = append(problems, "it has "+strings.Join(extras, " and ")+", not shown here: keep only the authority's base URL, e.g. \"https://login.microsoftonline.com/\"")
	}
	if len(problems) == 0 {
		return nil
	}
	shown := field
	if u.Scheme != "" || u.Host != "" {
		shown = fmt.Sprintf("%s %q", field, u.Scheme+"://"+u.Host)
	}
	return fmt.Errorf("%s: %s", shown, strings.Join(problems, ", "))
}

// validTenantID is azidentity's rule: letters, digits, '.' and '-'.
func validTenantID(id string) bool {
	for _, r := range id {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r == '.' || r == '-') {
			return false
		}
	}
	return id != ""
}

// clientOptions are the Azure SDK options every credential gets.
func (s settings) clientOptions() azcore.ClientOptions {
	o := azcore.ClientOptions{
		Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: s.authority},
		// No retries of token requests: a failure fails the request
		// before it leaves (NotSent), which WithRetry does not repeat;
		// the SDK's own retries would spend the export's timeout and
		// hide the authority's answer behind a deadline error.
		Retry: policy.RetryOptions{MaxRetries: -1},
	}
	if s.cfg.HTTPClient != nil {
		o.Transport = s.cfg.HTTPClient
	}
	return o
}
