package sigv4test

import (
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The AWS Signature Version 4 test suite's credentials, date and scope.
const (
	suiteAccessKey = "AKIDEXAMPLE"
	suiteSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	suiteDate      = "20150830T123600Z"
	suiteCred      = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
	// suiteToken is the suite's example session token (post-sts-token).
	suiteToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)

// vector is one case of the published test suite: the request (.req), its
// Authorization (.authz) and, where given, the canonical request (.creq)
// and the hash ending the string to sign (.sts).
type vector struct {
	name     string
	method   string
	target   string
	header   map[string]string
	body     string
	token    string
	authz    string
	creq     string
	stsHash  string
	tampered string // another body, which must fail
}

var suite = []vector{
	{
		name:    "get-vanilla",
		method:  "GET",
		target:  "/",
		authz:   suiteCred + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		creq:    "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		stsHash: "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
	},
	{
		name:   "post-vanilla",
		method: "POST",
		target: "/",
		authz:  suiteCred + "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
	},
	{
		name:    "post-x-www-form-urlencoded",
		method:  "POST",
		target:  "/",
		header:  map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		body:    "Param1=value1",
		authz:   suiteCred + "SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
		creq:    "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
		stsHash: "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
	},
	{
		name:   "get-vanilla-query-order-key-case",
		method: "GET",
		target: "/?Param2=value2&Param1=value1",
		authz:  suiteCred + "SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
	},
	{
		name:   "get-header-value-trim",
		method: "GET",
		target: "/",
		header: map[string]string{"My-Header1": " value1", "My-Header2": `"a   b   c"`},
		authz:  suiteCred + "SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
	},
	{
		name:    "post-sts-header-before",
		method:  "POST",
		target:  "/",
		token:   suiteToken,
		authz:   suiteCred + "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
		stsHash: "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
	},
}

func (vec vector) request(body, authz string) *http.Request {
	r := httptest.NewRequest(vec.method, "http://example.amazonaws.com"+vec.target, strings.NewReader(body))
	r.Header.Set("X-Amz-Date", suiteDate)
	for k, v := range vec.header {
		r.Header.Set(k, v)
	}
	if vec.token != "" {
		r.Header.Set("X-Amz-Security-Token", vec.token)
	}
	r.Header.Set("Authorization", authz)
	return r
}

func suiteVerifier(secret, token string) *Verifier {
	at, _ := time.Parse(timeFormat, suiteDate)
	return &Verifier{
		Region:      "us-east-1",
		Service:     "service",
		Credentials: []Credentials{{AccessKey: suiteAccessKey, SecretKey: secret, SessionToken: token}},
		Now:         func() time.Time { return at },
	}
}

// TestVerifierAcceptsTestSuite proves the verifier right: it accepts the
// published signatures and rebuilds the published intermediate strings.
func TestVerifierAcceptsTestSuite(t *testing.T) {
	for _, vec := range suite {
		t.Run(vec.name, func(t *testing.T) {
			res, err := suiteVerifier(suiteSecret, vec.token).Verify(vec.request(vec.body, vec.authz), []byte(vec.body))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if vec.creq != "" && res.CanonicalRequest != vec.creq {
				t.Errorf("canonical request:\n%s\nwant:\n%s", res.CanonicalRequest, vec.creq)
			}
			if vec.stsHash != "" {
				want := "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n" + vec.stsHash
				if res.StringToSign != want {
					t.Errorf("string to sign:\n%s\nwant:\n%s", res.StringToSign, want)
				}
			}
		})
	}
}

// TestVerifierRejectsTampering checks that each published request, changed
// in one way after signing, no longer verifies.
func TestVerifierRejectsTampering(t *testing.T) {
	flip := func(authz string) string {
		last := authz[len(authz)-1]
		if last == '0' {
			return authz[:len(authz)-1] + "1"
		}
		return authz[:len(authz)-1] + "0"
	}
	for _, vec := range suite {
		cases := []struct {
			name     string
			verifier *Verifier
			req      *http.Request
			body     string
		}{
			{name: "body changed", verifier: suiteVerifier(suiteSecret, vec.token), req: vec.request(vec.body+"x", vec.authz), body: vec.body + "x"},
			{name: "wrong secret", verifier: suiteVerifier("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", vec.token), req: vec.request(vec.body, vec.authz), body: vec.body},
			{name: "signature changed", verifier: suiteVerifier(suiteSecret, vec.token), req: vec.request(vec.body, flip(vec.authz)), body: vec.body},
			{name: "method changed", verifier: suiteVerifier(suiteSecret, vec.token), req: func() *http.Request {
				r := vec.request(vec.body, vec.authz)
				r.Method = map[string]string{"GET": "POST", "POST": "GET"}[r.Method]
				return r
			}(), body: vec.body},
			{name: "date changed", verifier: suiteVerifier(suiteSecret, vec.token), req: func() *http.Request {
				r := vec.request(vec.body, vec.authz)
				r.Header.Set("X-Amz-Date", "20150830T123601Z")
				return r
			}(), body: vec.body},
			{name: "too old", verifier: func() *Verifier {
				v := suiteVerifier(suiteSecret, vec.token)
				v.Now = func() time.Time { return time.Date(2015, 8, 30, 12, 42, 0, 0, time.UTC) }
				return v
			}(), req: vec.request(vec.body, vec.authz), body: vec.body},
			{name: "other region", verifier: func() *Verifier {
				v := suiteVerifier(suiteSecret, vec.token)
				v.Region = "eu-west-1"
				return v
			}(), req: vec.request(vec.body, vec.authz), body: vec.body},
			{name: "required header unsigned", verifier: func() *Verifier {
				v := suiteVerifier(suiteSecret, vec.token)
				v.Require = []string{"content-encoding"}
				return v
			}(), req: vec.request(vec.body, vec.authz), body: vec.body},
			{name: "session token expected", verifier: suiteVerifier(suiteSecret, vec.token+"other"), req: vec.request(vec.body, vec.authz), body: vec.body},
		}
		for _, tc := range cases {
			t.Run(vec.name+"/"+tc.name, func(t *testing.T) {
				if _, err := tc.verifier.Verify(tc.req, []byte(tc.body)); err == nil {
					t.Fatal("Verify accepted a tampered request")
				}
			})
		}
	}
}

// TestSigningKey checks the key derivation against the example of AWS's
// SigV4 documentation (IAM, 2015-08-30, us-east-1).
func TestSigningKey(t *testing.T) {
	got := hex.EncodeToString(SigningKey(suiteSecret, "20150830", "us-east-1", "iam"))
	if want := "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"; got != want {
		t.Errorf("signing key = %s, want %s", got, want)
	}
}
