package prwmetric

import (
	"encoding/base64"
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
	// encoded forms: the latest, and those they replaced.
	bySource, before map[string][]string
	// all are those of every source, longest first, so that a secret is
	// replaced before any shorter one inside it.
	all []string
}

// set makes values (and their base64 forms, in which an Authorization
// header carries them) the secrets of source, replacing what source had.
func (s *secrets) set(source string, values ...string) {
	var forms []string
	for _, v := range values {
		if v == "" {
			continue
		}
		forms = append(forms, v,
			base64.StdEncoding.EncodeToString([]byte(v)),
			base64.RawStdEncoding.EncodeToString([]byte(v)),
			base64.URLEncoding.EncodeToString([]byte(v)),
			base64.RawURLEncoding.EncodeToString([]byte(v)),
			url.QueryEscape(v))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(s.bySource[source], forms) {
		return
	}
	if s.bySource == nil {
		s.bySource, s.before = map[string][]string{}, map[string][]string{}
	}
	s.before[source] = s.bySource[source]
	s.bySource[source] = forms
	s.all = s.all[:0]
	for _, m := range []map[string][]string{s.bySource, s.before} {
		for _, f := range m {
			s.all = append(s.all, f...)
		}
	}
	slices.SortFunc(s.all, func(a, b string) int { return len(b) - len(a) })
	s.all = slices.Compact(s.all)
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
// is a URL of scheme "admin". Userinfo (up to the last "@" before the path)
// and the query are hidden.
func safeURLString(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" && u.Opaque == "" {
		return safeURL(u)
	}
	rest, query := raw, ""
	if q := strings.IndexAny(raw, "?#"); q >= 0 {
		rest, query = raw[:q], "?xxxxx"
	}
	prefix := ""
	if i := strings.Index(rest, "://"); i >= 0 {
		prefix, rest = rest[:i+3], rest[i+3:]
	}
	authority := rest
	if slash := strings.Index(rest, "/"); slash >= 0 {
		authority = rest[:slash]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		rest = "xxxxx" + rest[at:]
	}
	return prefix + rest + query
}

// queryValues are the values of u's query string that may be secrets (API
// keys travel there): those of 6 characters or more; shorter ones are none,
// and redacting them would garble every message.
func queryValues(u *url.URL) []string {
	var out []string
	for _, vs := range u.Query() {
		out = append(out, longValues(vs)...)
	}
	return out
}
