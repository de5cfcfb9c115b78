// Package sigv4test holds the test doubles of package sigv4's tests: a
// SigV4 verifier written from the specification (it shares no code with the
// AWS SDK's signer, so it can catch the signer being used wrongly), a
// remote-write receiver that enforces it, and a fake STS.
package sigv4test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm  = "AWS4-HMAC-SHA256"
	timeFormat = "20060102T150405Z"
	terminator = "aws4_request"
)

// Credentials are a key pair the verifier accepts, with the session token
// that temporary credentials must present.
type Credentials struct {
	AccessKey    string
	SecretKey    string
	SessionToken string
}

// Verifier checks SigV4 Authorization headers the way an AWS service does.
type Verifier struct {
	Region  string
	Service string
	// Credentials are the accepted keys, looked up by access key.
	Credentials []Credentials
	// Require lists lower-case header names that must be signed besides
	// host and x-amz-date.
	Require []string
	// Now is the verifier's clock; nil means time.Now.
	Now func() time.Time
}

// Result is what a verified request was signed with, and the intermediate
// strings, to compare with published test vectors.
type Result struct {
	AccessKey        string
	SessionToken     string
	SignedHeaders    []string
	CanonicalRequest string
	StringToSign     string
}

// maxSkew is how far X-Amz-Date may be from the verifier's clock, as AWS
// allows.
const maxSkew = 5 * time.Minute

// Verify checks r, whose body is body, and returns what it was signed with.
// The payload hash is computed from body, so a body changed after signing
// fails.
func (v *Verifier) Verify(r *http.Request, body []byte) (Result, error) {
	var res Result
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, algorithm+" ")
	if !ok {
		return res, errors.New("no AWS4-HMAC-SHA256 Authorization header")
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return res, fmt.Errorf("malformed Authorization part %q", part)
		}
		fields[k] = val
	}
	credential, signedList, signature := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if credential == "" || signedList == "" || signature == "" {
		return res, errors.New("Authorization lacks Credential, SignedHeaders or Signature")
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 {
		return res, fmt.Errorf("credential %q is not key/date/region/service/aws4_request", credential)
	}
	res.AccessKey = scope[0]
	creds, ok := v.lookup(scope[0])
	if !ok {
		return res, fmt.Errorf("unknown access key %q", scope[0])
	}
	if scope[2] != v.Region || scope[3] != v.Service || scope[4] != terminator {
		return res, fmt.Errorf("scope %s/%s/%s, want %s/%s/%s", scope[2], scope[3], scope[4], v.Region, v.Service, terminator)
	}

	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse(timeFormat, amzDate)
	if err != nil {
		return res, fmt.Errorf("X-Amz-Date %q is not yyyymmddThhmmssZ", amzDate)
	}
	if scope[1] != amzDate[:8] {
		return res, fmt.Errorf("scope date %s is not the date of X-Amz-Date %s", scope[1], amzDate)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if d := now().Sub(signedAt); d > maxSkew || d < -maxSkew {
		return res, fmt.Errorf("X-Amz-Date %s is %v away from now", amzDate, d)
	}

	signed := strings.Split(signedList, ";")
	for i, name := range signed {
		if name == "" || name != strings.ToLower(name) || (i > 0 && name <= signed[i-1]) {
			return res, fmt.Errorf("SignedHeaders %q are not lower-case, sorted and unique", signedList)
		}
	}
	res.SignedHeaders = signed
	for _, name := range append([]string{"host", "x-amz-date"}, v.Require...) {
		if !slices.Contains(signed, name) {
			return res, fmt.Errorf("header %q is not signed (SignedHeaders=%s)", name, signedList)
		}
	}
	token := r.Header.Get("X-Amz-Security-Token")
	res.SessionToken = token
	switch {
	case creds.SessionToken == "" && token != "":
		return res, errors.New("X-Amz-Security-Token sent with long-term credentials")
	case creds.SessionToken != "" && token == "":
		return res, errors.New("temporary credentials without X-Amz-Security-Token")
	case token != "" && !slices.Contains(signed, "x-amz-security-token"):
		return res, errors.New("X-Amz-Security-Token is not signed")
	case subtleDiffer(token, creds.SessionToken):
		return res, errors.New("X-Amz-Security-Token does not belong to the access key")
	}

	payload := sha256Hex(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return res, errors.New("X-Amz-Content-Sha256 does not match the body")
	}
	headers, err := canonicalHeaders(r, signed)
	if err != nil {
		return res, err
	}
	res.CanonicalRequest = strings.Join([]string{
		r.Method,
		canonicalURI(r.URL.EscapedPath()),
		canonicalQuery(r.URL.RawQuery),
		headers,
		signedList,
		payload,
	}, "\n")
	res.StringToSign = strings.Join([]string{algorithm, amzDate, strings.Join(scope[1:], "/"), sha256Hex([]byte(res.CanonicalRequest))}, "\n")
	want := hex.EncodeToString(hmacSHA256(SigningKey(creds.SecretKey, scope[1], v.Region, v.Service), res.StringToSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return res, errors.New("signature does not match")
	}
	return res, nil
}

func (v *Verifier) lookup(accessKey string) (Credentials, bool) {
	for _, c := range v.Credentials {
		if c.AccessKey == accessKey {
			return c, true
		}
	}
	return Credentials{}, false
}

func subtleDiffer(a, b string) bool { return !hmac.Equal([]byte(a), []byte(b)) }

// SigningKey derives the SigV4 key of a day, region and service.
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// canonicalHeaders returns "name:value\n" for each signed header, values
// trimmed, inner runs of spaces collapsed and repeated headers joined by
// commas.
func canonicalHeaders(r *http.Request, signed []string) (string, error) {
	var b strings.Builder
	for _, name := range signed {
		var values []string
		switch name {
		case "host":
			host := r.Host
			if host == "" {
				host = r.URL.Host
			}
			values = []string{host}
		case "content-length":
			values = r.Header.Values("Content-Length")
			if len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		default:
			values = r.Header.Values(name)
		}
		if len(values) == 0 {
			return "", fmt.Errorf("signed header %q is not in the request", name)
		}
		for i, v := range values {
			values[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(name + ":" + strings.Join(values, ",") + "\n")
	}
	return b.String(), nil
}

// canonicalURI encodes the path as services other than S3 expect: each
// byte of the path as sent, except unreserved characters and "/", is
// percent-encoded again.
func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	return uriEncode(path, false)
}

// canonicalQuery sorts the decoded parameters by name, then value, and
// encodes both strictly.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		pairs = append(pairs, pair{uriEncode(unescape(k), true), uriEncode(unescape(v), true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// unescape decodes %XX sequences (and "+" as a space, as form encoding has
// it); a malformed escape is kept as it is.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '%' && i+2 < len(s):
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
			b.WriteByte(s[i])
		case s[i] == '+':
			b.WriteByte(' ')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// uriEncode percent-encodes every byte but the unreserved ones
// (A-Z a-z 0-9 - _ . ~), and "/" too when encodeSlash is set.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
