package sigv4

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/prwmetric/prwmetric"
)

// DefaultService is the SigV4 service name of Amazon Managed Service for
// Prometheus, used when Config.Service is empty.
const DefaultService = "aps"

// Environment variables read by ConfigFromEnvironment. Credentials have no
// variables of their own: they come from the AWS SDK's default chain, so
// AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE and the rest
// work as they do for every AWS tool.
const (
	EnvRegion     = "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_REGION"
	EnvService    = "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_SERVICE"
	EnvProfile    = "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_PROFILE"
	EnvRoleARN    = "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_ROLE_ARN"
	EnvExternalID = "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_EXTERNAL_ID"
)

// optionName is the name New's errors use for this option.
const optionName = "sigv4.WithSigV4"

// regionFix ends the errors of a missing region with what to set.
const regionFix = "set Config.Region (" + EnvRegion + "), AWS_REGION, or region in the profile, to the region of the workspace, e.g. \"us-east-1\""

// sdkTimeout bounds each call the AWS SDK makes for credentials (STS, the
// instance metadata service). The export's deadline stops the wait sooner;
// this one ends the SDK's call itself, which the credential cache runs
// detached from the export.
const sdkTimeout = 30 * time.Second

// expiryWindow is how long before temporary credentials expire they are
// refreshed, so that no request is signed with credentials about to lapse.
const expiryWindow = time.Minute

// Config says how to sign. Every field is optional: the zero Config signs
// for Amazon Managed Service for Prometheus with the region and credentials
// of the AWS SDK's default chain.
type Config struct {
	// Region is the AWS region of the workspace, e.g. "us-east-1". Default:
	// the region an AMP endpoint's host names
	// (aps-workspaces.<region>.amazonaws.com), else the chain's
	// (AWS_REGION, AWS_DEFAULT_REGION, the profile's region), which also
	// serves STS. With none of them, New fails only when the credentials
	// come from STS (RoleARN, a web identity token, a profile's role_arn),
	// which needs a region; otherwise each request to a host that names no
	// region fails, saying so.
	Region string
	// Service is the SigV4 service name. Default: DefaultService ("aps").
	Service string

	// AccessKey and SecretKey are static credentials; set both or neither.
	// Default: the chain's (environment variables, shared config and
	// credentials files, web identity token file as with IRSA, ECS and
	// EC2 roles). They cannot be combined with Profile.
	AccessKey string
	// SecretKey is the secret of AccessKey.
	SecretKey string
	// SessionToken goes with temporary static credentials; it needs
	// AccessKey and SecretKey.
	SessionToken string
	// Profile selects a profile of the shared config files instead of
	// AWS_PROFILE. New fails when it does not exist.
	Profile string

	// RoleARN, when set, assumes this IAM role through STS with the
	// credentials above (static, profile or chain), and signs with the
	// role's temporary credentials, refreshed before they expire. Its shape
	// is "arn:aws:iam::123456789012:role/name".
	RoleARN string
	// ExternalID is passed to AssumeRole when the role's trust policy asks
	// for one; it needs RoleARN.
	ExternalID string
}

// String returns the fields of c as %+v would, with SecretKey and
// SessionToken replaced by "[REDACTED]" when they are set, so that a Config
// can be logged.
func (c Config) String() string {
	return fmt.Sprintf("{Region:%s Service:%s AccessKey:%s SecretKey:%s SessionToken:%s Profile:%s RoleARN:%s ExternalID:%s}",
		c.Region, c.Service, c.AccessKey, hideSecret(c.SecretKey), hideSecret(c.SessionToken), c.Profile, c.RoleARN, c.ExternalID)
}

// GoString returns c as Go syntax, as %#v would, with SecretKey and
// SessionToken replaced by "[REDACTED]" when they are set.
func (c Config) GoString() string {
	return fmt.Sprintf("sigv4.Config{Region:%q, Service:%q, AccessKey:%q, SecretKey:%q, SessionToken:%q, Profile:%q, RoleARN:%q, ExternalID:%q}",
		c.Region, c.Service, c.AccessKey, hideSecret(c.SecretKey), hideSecret(c.SessionToken), c.Profile, c.RoleARN, c.ExternalID)
}

// hideSecret returns redacted for a secret that is set, "" for one that is
// not, so that a printed Config still shows which secrets are configured.
func hideSecret(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// ConfigFromEnvironment returns the Config that the
// OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_* variables describe (EnvRegion,
// EnvService, EnvProfile, EnvRoleARN, EnvExternalID); unset variables leave
// their field empty, that is, to the AWS SDK's default chain.
func ConfigFromEnvironment() Config {
	get := func(name string) string { return strings.TrimSpace(os.Getenv(name)) }
	return Config{
		Region:     get(EnvRegion),
		Service:    get(EnvService),
		Profile:    get(EnvProfile),
		RoleARN:    get(EnvRoleARN),
		ExternalID: get(EnvExternalID),
	}
}

// WithSigV4 signs every request with AWS Signature Version 4, as Amazon
// Managed Service for Prometheus requires. New resolves the region and
// the credentials' source (see Config) and fails with the fix when the
// configuration cannot work; credentials themselves are fetched at the
// first export and cached until shortly before they expire. A failure to
// get them fails that export, within its deadline; the request never left
// (prwmetric.NotSent), so WithRetry does not repeat it.
//
// Each request is signed as it is sent, retries and redirects included,
// over its method, URL, headers (custom ones from WithHeaders too) and the
// SHA-256 of its body. A redirect to another host is followed unsigned, so
// that no session token leaves the endpoint's origin. WithSigV4 sets the
// request's Authorization: it cannot be combined with WithBasicAuth,
// WithBearerToken or an Authorization header.
func WithSigV4(cfg Config) prwmetric.Option {
	return prwmetric.WithAuthenticator(optionName, func(next http.RoundTripper) (http.RoundTripper, error) {
		return newTransport(cfg, next)
	})
}

func (c Config) validate() error {
	var errs []string
	if (c.AccessKey == "") != (c.SecretKey == "") {
		if c.AccessKey == "" {
			errs = append(errs, "SecretKey is set without AccessKey: set both, or neither to use the AWS default credential chain")
		} else {
			errs = append(errs, "AccessKey is set without SecretKey: set both, or neither to use the AWS default credential chain")
		}
	}
	if c.SessionToken != "" && (c.AccessKey == "" || c.SecretKey == "") {
		errs = append(errs, "SessionToken is set without AccessKey and SecretKey: it belongs to temporary static credentials; set all three, or none")
	}
	if c.AccessKey != "" && c.Profile != "" {
		errs = append(errs, fmt.Sprintf("AccessKey and Profile %q are both set: credentials come from one source, keep one", c.Profile))
	}
	if c.RoleARN != "" {
		a, err := arn.Parse(c.RoleARN)
		if err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "role/") || len(a.Resource) == len("role/") {
			errs = append(errs, fmt.Sprintf("RoleARN %q is not an IAM role ARN: want e.g. \"arn:aws:iam::123456789012:role/prometheus-writer\"", c.RoleARN))
		}
	} else if c.ExternalID != "" {
		errs = append(errs, "ExternalID is set without RoleARN: it is passed when assuming a role; set RoleARN too")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// newTransport resolves cfg into a signing transport around next.
func newTransport(cfg Config, next http.RoundTripper) (*transport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cacheOptions := func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = expiryWindow }
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(sdkTimeout)),
		config.WithCredentialsCacheOptions(cacheOptions),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	envSecrets, tokenFiles := environmentSecrets()
	// Loading reads files and the environment only; the bound is a guard.
	ctx, cancel := context.WithTimeout(context.Background(), sdkTimeout)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var notExist config.SharedConfigProfileNotExistError
		if errors.As(err, &notExist) {
			return nil, fmt.Errorf("AWS profile %q not found in the shared config files %s: check Profile (or AWS_PROFILE), AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE",
				notExist.Profile, strings.Join(notExist.Filename, ", "))
		}
		return nil, fmt.Errorf("loading the AWS configuration: %s", redact(err.Error(), append([]string{cfg.SecretKey, cfg.SessionToken}, envSecrets...)...))
	}
	// Without a region, each request is signed for the one its host names
	// (see transport.regionFor); STS has no such host to go by, and would
	// fail every export with "Missing Region".
	if awsCfg.Region == "" {
		switch {
		case cfg.RoleARN != "":
			return nil, errors.New("no AWS region for STS: RoleARN is assumed through STS, which needs the region: " + regionFix)
		case viaSTS(awsCfg.Credentials):
			return nil, errors.New("no AWS region for STS: the AWS chain's credentials come from STS (a web identity token, as with IRSA, or a profile's role_arn), which needs the region: " + regionFix)
		}
	}
	if awsCfg.Credentials == nil {
		return nil, errors.New("no AWS credentials source: set AccessKey and SecretKey, a profile, or the AWS_* credential variables")
	}
	provider := awsCfg.Credentials
	// The default chain ends with the instance role: when it is the
	// chain's only source, nothing else was configured, and its failure
	// alone ("no EC2 IMDS role found") would not say what to set.
	fallback := slices.Equal(providerSources(awsCfg.Credentials), []aws.CredentialSource{aws.CredentialSourceIMDS})
	var source *recordingProvider
	if cfg.RoleARN != "" {
		// The source's credentials sign only the call to STS: record
		// them, so that an echo of their session token is redacted.
		source = &recordingProvider{CredentialsProvider: awsCfg.Credentials}
		awsCfg.Credentials = source
		provider = stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			// Shows in CloudTrail which program assumed the role.
			o.RoleSessionName = "prwmetric-" + strconv.FormatInt(time.Now().UnixNano(), 10)
			if cfg.ExternalID != "" {
				o.ExternalID = aws.String(cfg.ExternalID)
			}
		})
	}
	if _, ok := provider.(*aws.CredentialsCache); !ok {
		provider = aws.NewCredentialsCache(provider, cacheOptions)
	}
	service := cfg.Service
	if service == "" {
		service = DefaultService
	}
	return &transport{
		next:        next,
		creds:       provider,
		signer:      v4.NewSigner(),
		region:      awsCfg.Region,
		regionGiven: cfg.Region != "",
		service:     service,
		static:      append([]string{cfg.SecretKey, cfg.SessionToken}, envSecrets...),
		source:      source,
		files:       tokenFiles,
		fallback:    fallback,
	}, nil
}

// viaSTS reports whether p gets its credentials from STS, as the SDK
// records it.
func viaSTS(p aws.CredentialsProvider) bool {
	return slices.ContainsFunc(providerSources(p), func(s aws.CredentialSource) bool {
		switch s {
		case aws.CredentialSourceEnvVarsSTSWebIDToken, aws.CredentialSourceProfileSTSWebIDToken,
			aws.CredentialSourceSTSAssumeRole, aws.CredentialSourceSTSAssumeRoleSaml, aws.CredentialSourceSTSAssumeRoleWebID,
			aws.CredentialSourceSTSFederationToken, aws.CredentialSourceSTSSessionToken:
			return true
		}
		return false
	})
}

// providerSources returns where p gets its credentials, as the SDK
// records it; nil when p does not say.
func providerSources(p aws.CredentialsProvider) []aws.CredentialSource {
	if s, ok := p.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}
