package prwmetric

import (
	"strings"
	"testing"
)

// TestErrorBodyNeverEndsInPartOfASecret: a body that repeats a long secret
// past the read limit shows no start of it where it is cut, even though
// redaction shortens the text and moves the cut.
func TestErrorBodyNeverEndsInPartOfASecret(t *testing.T) {
	key := strings.Repeat("K", 60) + "-S3CRET-" + strings.Repeat("k", 32)
	c := &client{secrets: &secrets{}}
	c.secrets.set("key", key)
	body := []byte(strings.Repeat("bad key "+key+"; ", 40))
	limit := maxErrorBody + c.secrets.longest()
	got := c.errorBody(body[:limit], true)
	if len(got) > maxErrorBody {
		t.Errorf("body is %d bytes, want at most %d", len(got), maxErrorBody)
	}
	for n := 4; n <= len(key); n++ {
		if strings.HasSuffix(got, key[:n]) || strings.Contains(got, key[:n]) && n > 8 {
			t.Fatalf("body ends with or holds %d bytes of the key: …%q", n, got[max(0, len(got)-40):])
		}
	}
}

// TestSecretsKeepTheValueBefore: a rotated secret is still redacted, since a
// request under way may carry the value before.
func TestSecretsKeepTheValueBefore(t *testing.T) {
	var s secrets
	s.set("file", "old-token-1")
	s.set("file", "new-token-2")
	if got := s.redact("saw old-token-1 and new-token-2"); strings.Contains(got, "token") {
		t.Errorf("redact = %q, want both tokens gone", got)
	}
}

func TestSafeURLStringHidesCredentialsAndQuery(t *testing.T) {
	for _, tt := range []struct{ give, want string }{
		{give: "https://host/write?email=a@b.com&key=SECRETKEY", want: "https://host/write?email=xxxxx&key=xxxxx"},
		{give: "host:9090/write?mail=a@b&key=SECRETKEY", want: "host:9090/write?xxxxx"},
		{give: "user@host:9090/write", want: "xxxxx@host:9090/write"},
		{give: "http://u:p@h/x", want: "http://xxxxx@h/x"},
		// Passwords that hold what ends an authority (base64 holds '/'):
		// nothing after the scheme can be told apart from them.
		{give: "https://123456:glc_S3cr/etTok+en=@prometheus.example/api/prom/push", want: "https://xxxxx"},
		{give: "https://alice:p@ss/w0rdS3CRET@mimir.example/api/v1/push", want: "https://xxxxx"},
		{give: "https://alice:S3CRETpre?fix@mimir.example/api/v1/push", want: "https://xxxxx"},
		{give: "https://tok?en@host/api", want: "https://xxxxx"},
		{give: "https://tok#en@host/api", want: "https://xxxxx"},
		{give: "u:S3/CRET@host:9090/write", want: "xxxxx"},
	} {
		if got := safeURLString(tt.give); got != tt.want {
			t.Errorf("safeURLString(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
