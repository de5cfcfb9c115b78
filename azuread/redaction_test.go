package azuread

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prwmetric/prwmetric"
)

// TestRedirectAnswerLosesToken checks end to end that a 302 whose page
// quotes the request's Authorization fails the export without the token in
// the error or the log.
func TestRedirectAnswerLosesToken(t *testing.T) {
	f := newFixture(t)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Location", "https://login.example/?from="+r.URL.Path)
		w.WriteHeader(http.StatusFound)
		fmt.Fprintf(w, "Found. Redirecting; you sent Authorization: %s", r.Header.Get("Authorization"))
	}))
	t.Cleanup(redirecting.Close)
	p := f.pipeline(t, f.secretConfig("s3cret-"+randomHex(16)), prwmetric.WithEndpoint(redirecting.URL+"/api/v1/write"))
	err := p.export(t)
	if err == nil {
		t.Fatal("export succeeded, want the 302 as a failure")
	}
	if len(f.book.tokens()) == 0 {
		t.Fatal("no token was issued")
	}
	if want := "302 Found: Found. Redirecting; you sent Authorization: Bearer " + redacted; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	checkNoSecrets(t, "error", err.Error(), f.book.tokens()...)
	checkNoSecrets(t, "log", f.logs.String(), f.book.tokens()...)
}

// TestAuthorityHostNotQuoted checks that New refuses an authority URL with
// user info, a query or a fragment, saying which, and shows only its scheme
// and host, whether Config.AuthorityHost or AZURE_AUTHORITY_HOST set it.
func TestAuthorityHostNotQuoted(t *testing.T) {
	clearAzureEnv(t)
	const secret = "AuthorityP4ss-S3CRET"
	tests := []struct {
		name string
		cfg  Config
		env  string
		want string
	}{
		{name: "Config.AuthorityHost with user info", cfg: Config{ManagedIdentity: true, AuthorityHost: "https://admin:" + secret + "@login.example/"},
			want: `Config.AuthorityHost "https://login.example": it has user info (user:password@), not shown here: keep only the authority's base URL`},
		{name: "Config.AuthorityHost with a query", cfg: Config{ManagedIdentity: true, AuthorityHost: "https://login.example/?code=" + secret},
			want: `Config.AuthorityHost "https://login.example": it has a query (?…), not shown here: keep only`},
		{name: "Config.AuthorityHost with a fragment", cfg: Config{ManagedIdentity: true, AuthorityHost: "https://login.example/#access_token=" + secret},
			want: `Config.AuthorityHost "https://login.example": it has a fragment (#…), not shown here`},
		{name: "Config.AuthorityHost over http with user info", cfg: Config{ManagedIdentity: true, AuthorityHost: "http://admin:" + secret + "@login.example/"},
			want: `Config.AuthorityHost "http://login.example": the authority must be https, it has user info (user:password@)`},
		{name: "Config.AuthorityHost that is no URL", cfg: Config{ManagedIdentity: true, AuthorityHost: "https://admin:" + secret + "/@login.example%zz/"},
			want: `Config.AuthorityHost is not a URL: want e.g. "https://login.microsoftonline.com/"`},
		{name: "AZURE_AUTHORITY_HOST with user info and a query", cfg: Config{ManagedIdentity: true}, env: "https://admin:" + secret + "@login.example/?key=" + secret,
			want: `AZURE_AUTHORITY_HOST "https://login.example": it has user info (user:password@) and a query (?…), not shown here`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("AZURE_AUTHORITY_HOST", tt.env)
			}
			exp, err := prwmetric.New(prwmetric.WithEndpoint("https://dce.example/api/v1/write"), prwmetric.WithoutEnvironment(), WithAzureAD(tt.cfg))
			if err == nil {
				_ = exp.Shutdown(context.Background())
				t.Fatal("New accepted the configuration")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
			checkNoSecrets(t, "New error", err.Error(), secret, "admin")
		})
	}
}

// TestConfigFormatting checks that a Config printed with fmt, by value, by
// pointer or inside another struct, shows its fields but not its secrets:
// a ClientSecret that is set shows as [REDACTED], and so do the user info,
// query and fragment of AuthorityHost.
func TestConfigFormatting(t *testing.T) {
	const secret = "client-S3CRET-0123456789"
	full := Config{Cloud: CloudChina, ClientID: testClientID, TenantID: testTenant, ClientSecret: secret, Scope: testScope,
		AuthorityHost: "https://admin:" + secret + "@login.example/adfs?key=" + secret + "#" + secret}
	fullText := "{Cloud:AzureChina ClientID:" + testClientID + " ClientSecret:[REDACTED] ClientSecretFile: ClientCertificateFile: TenantID:" + testTenant +
		" ManagedIdentity:false WorkloadIdentity:false Scope:" + testScope + " AuthorityHost:https://[REDACTED]@login.example/adfs?[REDACTED]#[REDACTED] HTTPClient:<nil>}"
	fullGo := `azuread.Config{Cloud:"AzureChina", ClientID:"` + testClientID + `", ClientSecret:"[REDACTED]", ClientSecretFile:"", ClientCertificateFile:"", TenantID:"` + testTenant +
		`", ManagedIdentity:false, WorkloadIdentity:false, Scope:"` + testScope + `", AuthorityHost:"https://[REDACTED]@login.example/adfs?[REDACTED]#[REDACTED]", HTTPClient:(*http.Client)(nil)}`
	client := &http.Client{}
	tests := []struct {
		name   string
		format string
		give   any
		want   string
	}{
		{name: "%v", format: "%v", give: full, want: fullText},
		{name: "%+v", format: "%+v", give: full, want: fullText},
		{name: "%s", format: "%s", give: full, want: fullText},
		{name: "%#v", format: "%#v", give: full, want: fullGo},
		{name: "pointer %+v", format: "%+v", give: &full, want: fullText},
		{name: "pointer %#v", format: "%#v", give: &full, want: fullGo},
		{name: "inside a struct %+v", format: "%+v", give: struct{ Auth Config }{full}, want: "{Auth:" + fullText + "}"},
		{name: "unset secret stays empty, plain authority as given", format: "%v",
			give: Config{ManagedIdentity: true, AuthorityHost: "https://login.example/", HTTPClient: client},
			want: fmt.Sprintf("{Cloud: ClientID: ClientSecret: ClientSecretFile: ClientCertificateFile: TenantID: ManagedIdentity:true WorkloadIdentity:false Scope: AuthorityHost:https://login.example/ HTTPClient:%p}", client)},
		{name: "authority that is no URL", format: "%#v", give: Config{AuthorityHost: "https://admin:" + secret + "/@login.example%zz/"},
			want: `azuread.Config{Cloud:"", ClientID:"", ClientSecret:"", ClientSecretFile:"", ClientCertificateFile:"", TenantID:"", ManagedIdentity:false, WorkloadIdentity:false, Scope:"", AuthorityHost:"[REDACTED]", HTTPClient:(*http.Client)(nil)}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fmt.Sprintf(tt.format, tt.give)
			if got != tt.want {
				t.Errorf("Sprintf(%q) =\n%s\nwant\n%s", tt.format, got, tt.want)
			}
			checkNoSecrets(t, "Sprintf("+tt.format+")", got, secret)
		})
	}
}
