// Package azuread authenticates prwmetric's remote-write requests with
// Microsoft Entra ID (Azure AD) tokens, for Azure Monitor managed service
// for Prometheus. It is a module of its own, so that prwmetric itself does
// not depend on the Azure SDK.
//
// # Azure Monitor
//
// An Azure Monitor workspace receives remote writes on the metrics
// ingestion endpoint of its data collection endpoint (DCE), through its
// data collection rule (DCR). The URL, shown as "Metrics ingestion
// endpoint" on the workspace's Overview page, has the shape
//
//	https://<dce-name>.<region>-1.metrics.ingest.monitor.azure.com/dataCollectionRules/<dcr-immutable-id>/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24
//
// The identity that sends must hold the role "Monitoring Metrics
// Publisher" on that data collection rule (Access control (IAM) on the
// DCR, or az role assignment create --role "Monitoring Metrics Publisher"
// --assignee <client-id> --scope <dcr-resource-id>).
//
// # Use
//
//	exp, err := prwmetric.New(
//		prwmetric.WithEndpoint(ingestionURL),
//		azuread.WithAzureAD(azuread.Config{ManagedIdentity: true, ClientID: identityClientID}),
//	)
//
// Config chooses the credential: a managed identity (system- or
// user-assigned), AKS workload identity, an app registration with a client
// secret (inline or, better, from a file) or a certificate, or the Azure
// SDK's default chain when none is chosen. Cloud chooses the authority and
// the token scope:
//
//	Cloud              authority                           scope
//	CloudPublic        https://login.microsoftonline.com/  https://monitor.azure.com/.default
//	CloudChina         https://login.chinacloudapi.cn/     https://monitor.azure.cn/.default
//	CloudUSGovernment  https://login.microsoftonline.us/   https://monitor.azure.us/.default
//
// Scope and AuthorityHost override them, for private clouds; for
// CloudPublic the AZURE_AUTHORITY_HOST variable does too.
//
// # Tokens
//
// Tokens come from github.com/Azure/azure-sdk-for-go/sdk/azidentity and are
// cached by this package: a token is reused until less than 5 minutes
// remain before it expires (less than half its lifetime for tokens issued
// for under 10 minutes), or until the refresh time the authority gives,
// whichever is first. A failed (or unanswered) refresh keeps using the old
// token while it is valid for at least 30 more seconds (a quarter of its
// lifetime for short ones), so short outages of Entra ID lose nothing;
// after that the export fails with a *TokenError; the request never left
// (prwmetric.NotSent), so WithRetry does not repeat it and no bytes count
// as sent. Getting a token is bounded by the export's timeout. Errors and
// the exporter's warnings never carry the client
// secret, the files' contents, client assertions or tokens: the token is
// removed, as it is and base64-encoded, from every answer of the endpoint
// that is not a success (redirects included) before the exporter quotes
// it. A refused AuthorityHost or AZURE_AUTHORITY_HOST is shown by its
// scheme and host only, and Config's String and GoString methods print
// ClientSecret, and AuthorityHost's user info, query and fragment, as
// [REDACTED].
//
// # Configuration from the environment
//
// The package azureadautoexport registers the exporter with
// go.opentelemetry.io/contrib/exporters/autoexport as
// OTEL_METRICS_EXPORTER=prometheusremotewrite_azuread, configured from
// OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_* variables.
package azuread
