package sigv4_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/sigv4"
	"github.com/prwmetric/prwmetric/sigv4/internal/sigv4test"
)

// Secrets of the credential sources, which the SDK sends to get
// credentials but never signs a remote-write request with.
const (
	sourceAccessKey = "ASIASOURCEKEY0000001"
	sourceSecret    = "sOuRcE/sEcReT+0000000000000000000000000000"
	sourceSession   = "SoUrCeSeSsIoN//////////000000000000000000000SOURCESESSION=="
	containerToken  = "cOnTaInEr-AuThOrIzAtIoN-tOkEn-0000000000000"
)

// echoingSTS starts an STS, found through AWS_ENDPOINT_URL_STS, that
// refuses every call and quotes the session token that signed it.
func echoingSTS(t *testing.T) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>session token %s may not assume the role</Message></Error><RequestId>fake</RequestId></ErrorResponse>`,
			r.Header.Get("X-Amz-Security-Token"))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
}

// echoingContainerEndpoint starts an ECS / EKS Pod Identity credentials
// endpoint, found through AWS_CONTAINER_CREDENTIALS_FULL_URI, that refuses
// every call and quotes the authorization token it was sent.
func echoingContainerEndpoint(t *testing.T) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"code":"AccessDenied","message":"token %s is not valid"}`, r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/creds")
}

// TestCredentialSourceSecretsRedacted checks that the secrets the SDK sends
// to get credentials (the session token of the credentials that assume
// RoleARN, the container authorization token) are redacted when STS or the
// container credentials endpoint quotes them in its refusal, although the
// remote-write requests are never signed with them.
func TestCredentialSourceSecretsRedacted(t *testing.T) {
	cases := []struct {
		name string
		// setup starts the echoing server, sets the environment and files,
		// and returns the Config.
		setup func(t *testing.T, credentialsFile string) sigv4.Config
	}{
		{
			name: "role assumed with keys from the environment",
			setup: func(t *testing.T, _ string) sigv4.Config {
				echoingSTS(t)
				t.Setenv("AWS_ACCESS_KEY_ID", sourceAccessKey)
				t.Setenv("AWS_SECRET_ACCESS_KEY", sourceSecret)
				t.Setenv("AWS_SESSION_TOKEN", sourceSession)
				return sigv4.Config{Region: region, RoleARN: roleARN}
			},
		},
		{
			// Only the credentials the source provider returned know this
			// session token: it is in no variable and no Config field.
			name: "role assumed with keys from the shared credentials file",
			setup: func(t *testing.T, credentialsFile string) sigv4.Config {
				echoingSTS(t)
				writeFile(t, credentialsFile, "[default]\naws_access_key_id = "+sourceAccessKey+"\naws_secret_access_key = "+sourceSecret+"\naws_session_token = "+sourceSession+"\n")
				return sigv4.Config{Region: region, RoleARN: roleARN}
			},
		},
		{
			name: "container endpoint with AWS_CONTAINER_AUTHORIZATION_TOKEN",
			setup: func(t *testing.T, _ string) sigv4.Config {
				echoingContainerEndpoint(t)
				t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", containerToken)
				return sigv4.Config{Region: region}
			},
		},
		{
			name: "container endpoint with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
			setup: func(t *testing.T, _ string) sigv4.Config {
				echoingContainerEndpoint(t)
				path := filepath.Join(t.TempDir(), "eks-pod-identity-token")
				writeFile(t, path, containerToken)
				t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path)
				return sigv4.Config{Region: region}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, credentialsFile := sigv4test.Isolate(t)
			cfg := tc.setup(t, credentialsFile)
			recv := newReceiver(t, temporary)
			p := mustPipeline(t, prwmetric.WithEndpoint(recv.URL()), prwmetric.WithTimeout(10*time.Second), sigv4.WithSigV4(cfg))

			err := p.export(t)
			if err == nil {
				t.Fatal("export succeeded, want the refusal to give credentials")
			}
			// The refusal is quoted, with the echoed secret replaced.
			for _, w := range []string{"sigv4: getting AWS credentials", "AccessDenied", "[REDACTED]"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for what, text := range map[string]string{"error": err.Error(), "log": p.logs.String()} {
				for _, s := range []string{sourceSecret, sourceSession, containerToken} {
					if strings.Contains(text, s) {
						t.Errorf("%s contains the credential source's secret %.12s…: %s", what, s, text)
					}
				}
			}
		})
	}
}

// TestConfigFormatting checks that a Config printed with fmt, by value, by
// pointer or inside another struct, shows its fields except the secrets:
// a SecretKey or SessionToken that is set shows as [REDACTED].
func TestConfigFormatting(t *testing.T) {
	full := sigv4.Config{Region: region, Service: "aps", AccessKey: accessKey, SecretKey: secretKey, SessionToken: sessionToken, RoleARN: roleARN, ExternalID: "ext-42"}
	fullText := "{Region:eu-west-1 Service:aps AccessKey:" + accessKey + " SecretKey:[REDACTED] SessionToken:[REDACTED] Profile: RoleARN:" + roleARN + " ExternalID:ext-42}"
	fullGo := `sigv4.Config{Region:"eu-west-1", Service:"aps", AccessKey:"` + accessKey + `", SecretKey:"[REDACTED]", SessionToken:"[REDACTED]", Profile:"", RoleARN:"` + roleARN + `", ExternalID:"ext-42"}`
	cases := []struct {
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
		{name: "inside a struct %+v", format: "%+v", give: struct{ Sign sigv4.Config }{full}, want: "{Sign:" + fullText + "}"},
		{name: "unset secrets stay empty", format: "%v", give: sigv4.Config{Region: region, Profile: "writer"}, want: "{Region:eu-west-1 Service: AccessKey: SecretKey: SessionToken: Profile:writer RoleARN: ExternalID:}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fmt.Sprintf(tc.format, tc.give)
			if got != tc.want {
				t.Errorf("Sprintf(%q) =\n%s\nwant\n%s", tc.format, got, tc.want)
			}
			checkNoSecrets(t, "Sprintf("+tc.format+")", got)
		})
	}
}
