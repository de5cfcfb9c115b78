// Package sigv4 signs prwmetric's requests with AWS Signature Version 4, for
// Amazon Managed Service for Prometheus (AMP) and other remote-write
// receivers behind AWS IAM.
//
// It is a module of its own, so that prwmetric itself does not depend on
// the AWS SDK. Add the option to the exporter:
//
//	exp, err := prwmetric.New(
//		prwmetric.WithEndpoint("https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-0123abcd-4567-89ef-0123-456789abcdef/api/v1/remote_write"),
//		sigv4.WithSigV4(sigv4.Config{Region: "us-east-1"}),
//	)
//	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
//
// # Endpoint and permission
//
// An AMP workspace receives remote write at
//
//	https://aps-workspaces.<region>.amazonaws.com/workspaces/<workspace-id>/api/v1/remote_write
//
// The identity that signs needs the IAM permission aps:RemoteWrite on the
// workspace (the managed policy AmazonPrometheusRemoteWriteAccess grants
// it). Requests are signed for the workspace's region: Config.Region, or
// else the one the endpoint's host names, which wins over the AWS chain's
// (on EKS, IRSA sets AWS_REGION to the cluster's, which may differ). So an
// AMP endpoint needs no region configured, even where the chain has none
// (on EC2, the SDK does not read it from the instance metadata service);
// another endpoint then fails each export with the fix. Credentials from
// STS (Config.RoleARN, a web identity token, a profile's role_arn) need
// Config.Region or the chain's.
//
// # Credentials
//
// With an empty Config, the region and the credentials come from the AWS
// SDK's default chain, as for the AWS CLI: the AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN variables; AWS_PROFILE and
// the shared config and credentials files; a web identity token file
// (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, which EKS sets for IAM
// roles for service accounts); the ECS task role; the EC2 instance role.
// Config.AccessKey and Config.SecretKey give static credentials instead,
// Config.Profile a named profile, and Config.RoleARN a role to assume
// through STS on top of any of them, with Config.ExternalID when the role's
// trust policy asks for one. Credentials are cached and refreshed before
// they expire.
//
// prwmetric.New reports configuration mistakes with their fix: no region
// for STS, half of a static key pair, a malformed role ARN, a profile that
// does not exist, or another Authorization (WithBasicAuth, WithBearerToken,
// an Authorization header). Failures to get credentials at run time (STS
// refusing the role, no instance role) fail that export with the SDK's
// reason, within the export's deadline; the request never left, so
// WithRetry does not repeat it and no bytes count as sent (the next export
// tries again, and the SDK retries its own calls); when the default chain
// found no credentials at all, the error names what to set. Secret keys, session
// tokens, web identity tokens and container authorization tokens never
// appear in errors or logs, even when a server quotes them back: those of
// Config, of the AWS_* variables and token files, of the credentials that
// assume Config.RoleARN and of the credentials that sign. Config's String and
// GoString methods print a set secret as [REDACTED].
//
// # Signing
//
// Every request is signed as it is sent, retries and redirects included:
// method, path, query, headers (protocol headers and WithHeaders' too)
// and the SHA-256 of the compressed body, with X-Amz-Date and, for
// temporary credentials, X-Amz-Security-Token. A redirect to another
// origin is followed without a signature, so the session token stays with
// the endpoint's host.
//
// # What AMP does not accept
//
// AMP does not accept native histograms. Keep the SDK's default
// explicit-bucket histograms, which prwmetric sends as classic _bucket,
// _sum and _count series: leave prwmetric.WithAggregationSelector at its
// default (sdkmetric.DefaultAggregationSelector), do not select
// sdkmetric.AggregationBase2ExponentialHistogram in a view or a selector
// (exponential histograms become native histograms), and do not use
// prwmetric.WithNativeHistogramsForExplicitBuckets. AMP speaks Remote
// Write 1.0, prwmetric's default protocol.
//
// # Environment
//
// For programs configured by the environment, the package sigv4autoexport
// registers the OTEL_METRICS_EXPORTER value "prometheusremotewrite_sigv4"
// with go.opentelemetry.io/contrib/exporters/autoexport. It reads the
// endpoint and the rest from prwmetric's OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_*
// variables and the signing settings from
// OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_SIGV4_REGION, _SERVICE, _PROFILE,
// _ROLE_ARN and _EXTERNAL_ID (see ConfigFromEnvironment); credentials from
// the AWS variables above.
package sigv4
