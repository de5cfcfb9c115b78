package azuread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// TokenError is the error of a request for which no Entra ID token could be
// obtained; the export fails with it (inside a *prwmetric.WriteError). Its
// text names the credential and what the authority answered, and never
// carries a secret, a client assertion or a token: the Azure SDK's own
// error, which quotes the authority's answer in full, is not kept.
type TokenError struct {
	// Credential names the credential: its kind, tenant, client and scope.
	Credential string
	// StatusCode is the authority's (or the managed identity endpoint's)
	// HTTP status; 0 when it did not answer.
	StatusCode int
	// Code is the OAuth error code the authority answered, such as
	// "invalid_client"; empty when there was none.
	Code string
	// AADSTS are the Entra ID error numbers of the answer (AADSTS7000215
	// is 7000215), to look up at https://login.microsoftonline.com/error.
	AADSTS []int

	detail string
	ctxErr error
}

// Error names the credential and what the authority answered, without any
// secret.
func (e *TokenError) Error() string {
	return fmt.Sprintf("azuread: no Entra ID token (%s): %s", e.Credential, e.detail)
}

// Unwrap returns context.DeadlineExceeded or context.Canceled when the
// request's context ended the wait, so that errors.Is works; nil otherwise.
func (e *TokenError) Unwrap() error { return e.ctxErr }

// aadstsHints explains the Entra ID errors a misconfigured exporter meets.
var aadstsHints = map[int]string{
	7000215: "the client secret is wrong: use the secret's value, not its ID",
	7000222: "the client secret has expired: create a new one",
	700016:  "no such application in the tenant: check ClientID and TenantID (and Cloud)",
	90002:   "no such tenant: check TenantID (and Cloud)",
	900023:  "the tenant ID is malformed: check TenantID",
	700027:  "the client assertion's signature is invalid: is this certificate uploaded to the app registration?",
	700024:  "the client assertion is outside its validity period: check this machine's clock",
	70021:   "no federated identity credential matches the assertion: check the issuer, subject and audience of the app's federated credential",
	700211:  "no federated identity credential matches the assertion's issuer",
	700213:  "no federated identity credential matches the assertion's subject",
	7000112: "the application is disabled",
	500011:  "the scope's resource does not exist in the tenant: check Scope and Cloud",
	50049:   "unknown or invalid authority: check Cloud and AuthorityHost",
}

// newTokenError summarises err, from the Azure SDK, without its secrets.
func newTokenError(what string, err error, secrets func() []string) *TokenError {
	e := &TokenError{Credential: what}
	var note string
	var re *reloadError
	if errors.As(err, &re) {
		note = " (the file's current content was not used: " + clean(re.reload.Error(), secrets) + ")"
		err = re.err
	}
	var afe *azidentity.AuthenticationFailedError
	switch {
	case isContextError(err):
		e.ctxErr = context.DeadlineExceeded
		if errors.Is(err, context.Canceled) {
			e.ctxErr = context.Canceled
		}
		e.detail = "no answer from the authority within the export's timeout: " + e.ctxErr.Error()
	case errors.As(err, &afe) && afe.RawResponse != nil:
		e.describeResponse(afe.RawResponse)
	default:
		e.detail = clean(err.Error(), secrets)
	}
	e.detail += note
	return e
}

// describeResponse reads the authority's error answer for its structured
// parts only: status, OAuth error code, AADSTS numbers and trace IDs. The
// free text is left out, as an authority may echo the request (the client
// secret or assertion) in it.
func (e *TokenError) describeResponse(resp *http.Response) {
	e.StatusCode = resp.StatusCode
	var b strings.Builder
	if resp.Request != nil && resp.Request.URL != nil {
		u := resp.Request.URL
		fmt.Fprintf(&b, "%s %s://%s%s answered ", resp.Request.Method, u.Scheme, u.Host, u.EscapedPath())
	} else {
		b.WriteString("the authority answered ")
	}
	b.WriteString(strconv.Itoa(resp.StatusCode))
	if text := http.StatusText(resp.StatusCode); text != "" {
		b.WriteString(" " + text)
	}

	var body struct {
		Error            any    `json:"error"`
		ErrorCodes       []int  `json:"error_codes"`
		ErrorDescription string `json:"error_description"`
		TraceID          string `json:"trace_id"`
		CorrelationID    string `json:"correlation_id"`
	}
	if payload, err := runtime.Payload(resp); err == nil && json.Unmarshal(payload, &body) == nil {
		if code, ok := body.Error.(string); ok && oauthCode.MatchString(code) {
			e.Code = code
		}
		e.AADSTS = append(e.AADSTS, body.ErrorCodes...)
		for _, m := range aadstsPattern.FindAllStringSubmatch(body.ErrorDescription, -1) {
			if n, err := strconv.Atoi(m[1]); err == nil && !slices.Contains(e.AADSTS, n) {
				e.AADSTS = append(e.AADSTS, n)
			}
		}
		if e.Code != "" {
			b.WriteString(": " + e.Code)
		}
		for _, n := range e.AADSTS {
			fmt.Fprintf(&b, ", AADSTS%d", n)
			if hint, ok := aadstsHints[n]; ok {
				b.WriteString(" (" + hint + ")")
			}
		}
		if guid.MatchString(body.TraceID) {
			b.WriteString(", trace ID " + body.TraceID)
		}
		if guid.MatchString(body.CorrelationID) {
			b.WriteString(", correlation ID " + body.CorrelationID)
		}
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		b.WriteString("; the authority is unavailable, the next export tries again")
	case len(e.AADSTS) > 0:
		b.WriteString("; see https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.AADSTS[0]))
	}
	e.detail = b.String()
}

var (
	oauthCode     = regexp.MustCompile(`^[a-z_]{1,64}$`)
	aadstsPattern = regexp.MustCompile(`AADSTS(\d{1,9})`)
	guid          = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

	// jwtPattern matches JSON Web Tokens: client assertions, federated
	// tokens and most access tokens.
	jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*`)
	// fieldPattern matches secret-bearing fields of a form or JSON body an
	// answer may quote.
	fieldPattern = regexp.MustCompile(`(?i)((?:client_secret|client_assertion|assertion|access_token|refresh_token|password|x-identity-header)["']?\s*[=:]\s*["']?)[^&\s"',}]+`)
)

const (
	redacted = "[REDACTED]"
	// maxDetail bounds the text kept from an error.
	maxDetail = 512
)

// clean removes secrets from an error text of the Azure SDK: known secret
// values (and their URL-encoded forms), JSON Web Tokens and secret fields.
// A secret too short to remove safely withholds the whole text.
func clean(s string, secrets func() []string) string {
	var known []string
	if secrets != nil {
		known = secrets()
	}
	for _, sec := range known {
		if sec == "" {
			continue
		}
		forms := []string{sec, url.QueryEscape(sec), url.PathEscape(sec)}
		if len(sec) < 8 {
			for _, f := range forms {
				if strings.Contains(s, f) {
					return "(details withheld: they contain a secret)"
				}
			}
			continue
		}
		for _, f := range forms {
			s = strings.ReplaceAll(s, f, redacted)
		}
	}
	s = jwtPattern.ReplaceAllString(s, redacted)
	s = fieldPattern.ReplaceAllString(s, "${1}"+redacted)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDetail {
		s = strings.ToValidUTF8(s[:maxDetail], "") + "…"
	}
	return s
}
