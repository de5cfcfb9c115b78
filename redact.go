package prwmetric

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// redactedText stands for a secret in error texts and logs.
const redactedText = "[REDACTED]"

// secrets holds the credentials the exporter sends (passwords, tokens, the
// contents of secret files, secret header values, the endpoint's query
// values), so that they are taken out of every text a peer may echo them in:
// response bodies and transport errors, before those reach an error or a log
// line. Secrets read from files change at run time: each source keeps its
// latest values and those before them, which a request still under way may
// have carried.
type secrets struct {
	mu sync.RWMutex
	// bySource and before are the secrets of each source, with their
	// encoded forms: the latest, and those they replaced (the last one,
	// or more: keep).
	bySource map[string][]string
	before   map[string][][]string
	// keep is how many replaced sets a source keeps (default 1): a header
	// function may give each request of an export its own key, and up to
	// WithMaxConcurrentRequests of them are under way at once.
	keep map[string]int
	// given are the values each source was last given: files are read,
	// and set, at each request, mostly with what they held before.
	given map[string][]string
	// all are those of every source, longest first, so that a secret is
	// replaced before any shorter one inside it.
	all []string
}

// set makes values (and the forms a peer may echo them in: see forms) the
// secrets of source, replacing what source had.
func (s *secrets) set(source string, values ...string) {
	s.mu.RLock()
	same := slices.Equal(s.given[source], values)
	s.mu.RUnlock()
	if same {
		return
	}
	var all []string
	for _, v := range values {
		if v != "" {
			all = append(all, forms(v)...)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySource == nil {
		s.bySource, s.before, s.given = map[string][]string{}, map[string][][]string{}, map[string][]string{}
	}
	s.given[source] = slices.Clone(values)
	if slices.Equal(s.bySource[source], all) {
		return
	}
	keep := max(1, s.keep[source])
	before := append(s.before[source], s.bySource[source])
	if len(before) > keep {
		before = slices.Delete(before, 0, len(before)-keep)
	}
	s.before[source] = before
	s.bySource[source] = all
	s.all = s.all[:0]
	for _, f := range s.bySource {
		s.all = append(s.all, f...)
	}
	for _, sets := range s.before {
		for _, f := range sets {
			s.all = append(s.all, f...)
		}
	}
	slices.SortFunc(s.all, func(a, b string) int { return len(b) - len(a) })
	s.all = slices.Compact(s.all)
}

// keepReplaced makes source keep its last n replaced sets of secrets.
func (s *secrets) keepReplaced(source string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keep == nil {
		s.keep = map[string]int{}
	}
	s.keep[source] = n
}

// forms are v and the encodings a peer may echo it in: base64 (an
// Authorization header carries it so), URL escaping with upper- and
// lower-case hex, and JSON string escaping, Go's (\u0026 for '&') and
// with '/' escaped as many encoders do.
func forms(v string) []string {
	out := []string{v,
		base64.StdEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)),
		base64.RawURLEncoding.EncodeToString([]byte(v)),
	}
	escaped := url.QueryEscape(v)
	out = append(out, escaped, lowerHex(escaped), url.PathEscape(v))
	if b, err := json.Marshal(v); err == nil {
		quoted := string(b[1 : len(b)-1])
		out = append(out, quoted, strings.ReplaceAll(quoted, "/", `\/`))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// lowerHex is the URL escaping s with its hex digits in lower case.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerHexDigit(b[i+1]), lowerHexDigit(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerHexDigit(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// longest is the length of the longest secret form.
func (s *secrets) longest() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.all) == 0 {
		return 0
	}
	return len(s.all[0])
}

// trimPartial cuts from text, which was cut short, a tail that is the start
// of a secret: the rest of it was cut off, and the start alone must not
// escape either.
func (s *secrets) trimPartial(text string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, secret := range s.all {
		for n := min(len(secret)-1, len(text)); n > 0; n-- {
			if strings.HasSuffix(text, secret[:n]) {
				text = text[:len(text)-n]
				break
			}
		}
	}
	return text
}

// redact returns text with every known secret replaced by redactedText.
func (s *secrets) redact(text string) string {
	if s == nil || text == "" {
		return text
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, secret := range s.all {
		if strings.Contains(text, secret) {
			text = strings.ReplaceAll(text, secret, redactedText)
		}
	}
	return text
}

// redactErr returns err with its text redacted, or err itself when its text
// holds no secret. The original stays reachable through errors.Is and
// errors.As.
func (s *secrets) redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := s.redact(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Unwrap() error { return e.err }

// safeURL renders the URL u for errors and logs: the password of its
// userinfo and every query value (an API key, often) hidden.
func safeURL(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		q := c.Query()
		for k, vs := range q {
			for i := range vs {
				vs[i] = "xxxxx"
			}
			q[k] = vs
		}
		c.RawQuery = q.Encode()
	}
	c.Fragment, c.RawFragment = "", ""
	if c.User != nil {
		// The user name may be a key too.
		c.User = url.User("xxxxx")
	}
	return c.String()
}

// safeURLString is safeURL for a string that may not parse as a URL, or
// parse as something else than meant: "admin:PASS@host:9090/api/v1/write"
// is a URL of scheme "admin", and a password may hold '/', '?', '#' or '@'
// (base64 tokens hold '/'), which end the authority early. Userinfo (up to
// the last '@') and the query are hidden; when an '@' comes after a '/',
// '?' or '#' anywhere but in the query of a URL with a path, the string
// cannot tell a password from a path, and all after the scheme is hidden.
func safeURLString(raw string) string {
	prefix, rest := "", raw
	if i := strings.Index(rest, "://"); i >= 0 {
		prefix, rest = rest[:i+3], rest[i+3:]
	}
	sep, at := strings.IndexAny(rest, "/?#"), strings.LastIndex(rest, "@")
	switch {
	case at < 0:
	case sep < 0 || at < sep:
		rest = "xxxxx" + rest[at:]
	default:
		path := rest
		if q := strings.IndexAny(rest, "?#"); q >= 0 {
			path = rest[:q]
		}
		if rest[sep] != '/' || strings.Contains(path, "@") {
			return prefix + "xxxxx"
		}
		// An '@' in the query only ("?email=a@b"): safeURL hides it.
	}
	if u, err := url.Parse(prefix + rest); err == nil && u.Host != "" && u.Opaque == "" {
		return safeURL(u)
	}
	if q := strings.IndexAny(rest, "?#"); q >= 0 {
		rest = rest[:q] + "?xxxxx"
	}
	return prefix + rest
}

// queryValues are the values of u's query string that may be secrets (API
// keys travel there): those of 6 characters or more; shorter ones are none,
// and redacting them would garble every message. Each is taken decoded and
// as written in the URL, which a peer echoes as it got it (escaped in its
// own way, or in a pair with ';' that decoding drops).
func queryValues(u *url.URL) []string {
	var out []string
	for _, vs := range u.Query() {
		out = append(out, longValues(vs)...)
	}
	for _, pair := range strings.FieldsFunc(u.RawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
		if _, v, ok := strings.Cut(pair, "="); ok {
			out = append(out, longValues([]string{v})...)
			if d, err := url.QueryUnescape(v); err == nil {
				out = append(out, longValues([]string{d})...)
			}
		}
	}
	return out
}
