package prwmetric

import (
	"fmt"
	"maps"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by New, in the style of OTEL_EXPORTER_OTLP_*.
// Options given in code win over them.
const (
	envPrefix            = "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_"
	envEndpoint          = envPrefix + "ENDPOINT"
	envHeaders           = envPrefix + "HEADERS"
	envTimeout           = envPrefix + "TIMEOUT"
	envCertificate       = envPrefix + "CERTIFICATE"
	envClientCertificate = envPrefix + "CLIENT_CERTIFICATE"
	envClientKey         = envPrefix + "CLIENT_KEY"
	envBasicAuthUsername = envPrefix + "BASIC_AUTH_USERNAME"
	envBasicAuthPassword = envPrefix + "BASIC_AUTH_PASSWORD_FILE"
	envBearerTokenFile   = envPrefix + "BEARER_TOKEN_FILE"
	envProtocol          = envPrefix + "PROTOCOL"
	envCompression       = envPrefix + "COMPRESSION"
	envCompatibility     = envPrefix + "COMPATIBILITY"
)

// fromEnvironment returns the options the environment asks for; lookup is
// os.LookupEnv. Errors name the variable but never echo a value
// that may be secret.
func fromEnvironment(lookup func(string) (string, bool)) ([]Option, error) {
	var opts []Option
	var errs []string
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}

	if v := get(envEndpoint); v != "" {
		opts = append(opts, optionFunc(func(c config) config { c.endpoint, c.endpointFrom = v, envEndpoint; return c }))
	}
	if v := get(envHeaders); v != "" {
		h, err := parseHeaders(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", envHeaders, err))
		} else {
			opts = append(opts, optionFunc(func(c config) config {
				c.headers = merge(c.headers, h)
				c.headersFrom = maps.Clone(c.headersFrom)
				if c.headersFrom == nil {
					c.headersFrom = make(map[string]string, len(h))
				}
				for name := range h {
					c.headersFrom[name] = envHeaders
				}
				return c
			}))
		}
	}
	if v := get(envProtocol); v != "" {
		p, err := parseProtocol(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", envProtocol, err))
		} else {
			opts = append(opts, optionFunc(func(c config) config { c.protocol, c.protocolFrom = p, envProtocol; return c }))
		}
	}
	if v := get(envCompression); v != "" {
		c, err := parseCompression(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", envCompression, err))
		} else {
			opts = append(opts, optionFunc(func(cfg config) config { cfg.compression, cfg.compressionFrom = c, envCompression; return cfg }))
		}
	}
	if v := get(envCompatibility); v != "" {
		c, err := parseCompatibility(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", envCompatibility, err))
		} else {
			opts = append(opts, WithCompatibility(c))
		}
	}
	if v := get(envTimeout); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 || ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
			errs = append(errs, fmt.Sprintf("%s=%q: want a positive whole number of milliseconds, e.g. 30000", envTimeout, v))
		} else {
			d := time.Duration(ms) * time.Millisecond
			opts = append(opts, optionFunc(func(c config) config { c.timeout, c.timeoutFrom = d, envTimeout; return c }))
		}
	}
	tlsCfg := TLSConfig{CAFile: get(envCertificate), CertFile: get(envClientCertificate), KeyFile: get(envClientKey)}
	if tlsCfg != (TLSConfig{}) {
		opts = append(opts, optionFunc(func(c config) config { c.tls, c.tlsNames = &tlsCfg, tlsEnvironmentNames; return c }))
	}

	user, passFile, tokenFile := get(envBasicAuthUsername), get(envBasicAuthPassword), get(envBearerTokenFile)
	switch {
	case user != "" && tokenFile != "":
		errs = append(errs, fmt.Sprintf("%s and %s are both set: a request carries one Authorization header, unset one", envBasicAuthUsername, envBearerTokenFile))
	case user != "" && passFile == "":
		errs = append(errs, fmt.Sprintf("%s is set without %s: set the password file too", envBasicAuthUsername, envBasicAuthPassword))
	case user == "" && passFile != "":
		errs = append(errs, fmt.Sprintf("%s is set without %s: set the username too", envBasicAuthPassword, envBasicAuthUsername))
	case user != "":
		opts = append(opts, WithBasicAuthPasswordFile(user, passFile), optionFunc(func(c config) config { c.basicAuthFrom = envBasicAuthUsername; return c }))
	case tokenFile != "":
		opts = append(opts, WithBearerTokenFile(tokenFile), optionFunc(func(c config) config { c.bearerFrom = envBearerTokenFile; return c }))
	}
	oauth2Opt, oauth2Errs := oauth2FromEnvironment(get)
	if errs = append(errs, oauth2Errs...); oauth2Opt != nil {
		opts = append(opts, oauth2Opt)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("prwmetric: environment: %s", strings.Join(errs, "; "))
	}
	return opts, nil
}

// parseHeaders reads "k1=v1,k2=v2" with URL-encoded values, like
// OTEL_EXPORTER_OTLP_HEADERS. Values are never quoted in errors: they are
// often tokens.
func parseHeaders(s string) (map[string]string, error) {
	h := make(map[string]string)
	for i, entry := range strings.Split(s, ",") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		k, v, ok := strings.Cut(entry, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		key, err := url.PathUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("entry %d: the key is not URL-encoded correctly", i+1)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			// A line pasted with ':' has its value in the key: only the
			// part a header name may hold is named.
			return nil, fmt.Errorf("the value of %q is not URL-encoded correctly", headerNamePrefix(key))
		}
		name := textproto.CanonicalMIMEHeaderKey(key)
		if _, ok := h[name]; ok {
			return nil, fmt.Errorf("entry %d names header %q again: HTTP compares names without regard to case, keep one", i+1, headerNamePrefix(name))
		}
		h[name] = val
	}
	return h, nil
}

// Environment variables of WithOAuth2; the secret comes from a file only.
const (
	envOAuth2ClientID         = envPrefix + "OAUTH2_CLIENT_ID"
	envOAuth2ClientSecretFile = envPrefix + "OAUTH2_CLIENT_SECRET_FILE"
	envOAuth2TokenURL         = envPrefix + "OAUTH2_TOKEN_URL"
	envOAuth2Scopes           = envPrefix + "OAUTH2_SCOPES"
)

// oauth2FromEnvironment returns the WithOAuth2 option the environment asks
// for (nil when none) and its problems, in fromEnvironment's style; get
// returns a variable's trimmed value.
func oauth2FromEnvironment(get func(string) string) (Option, []string) {
	id, secretFile, tokenURL, scopes := get(envOAuth2ClientID), get(envOAuth2ClientSecretFile), get(envOAuth2TokenURL), get(envOAuth2Scopes)
	var set string
	for _, v := range []struct{ name, value string }{{envOAuth2ClientID, id}, {envOAuth2ClientSecretFile, secretFile}, {envOAuth2TokenURL, tokenURL}, {envOAuth2Scopes, scopes}} {
		if v.value != "" {
			set = v.name
			break
		}
	}
	if set == "" {
		return nil, nil
	}
	var errs []string
	for _, v := range []struct{ name, value string }{{envOAuth2ClientID, id}, {envOAuth2ClientSecretFile, secretFile}, {envOAuth2TokenURL, tokenURL}} {
		if v.value == "" {
			errs = append(errs, fmt.Sprintf("%s is set without %s: set it too", set, v.name))
		}
	}
	for _, other := range []string{envBasicAuthUsername, envBasicAuthPassword, envBearerTokenFile} {
		if get(other) != "" {
			errs = append(errs, fmt.Sprintf("%s and %s are both set: a request carries one Authorization header, unset one", set, other))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	cfg := OAuth2Config{ClientID: id, ClientSecretFile: secretFile, TokenURL: tokenURL}
	for _, s := range strings.Split(scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Scopes = append(cfg.Scopes, s)
		}
	}
	return optionFunc(func(c config) config { c.oauth2, c.oauth2From = &cfg, envOAuth2ClientID; return c }), nil
}
