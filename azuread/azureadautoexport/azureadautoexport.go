// Package azureadautoexport registers prwmetric with Entra ID
// authentication (azuread.WithAzureAD) with
// go.opentelemetry.io/contrib/exporters/autoexport under the name
// "prometheusremotewrite_azuread", so that operators can send to Azure
// Monitor managed service for Prometheus without code changes:
//
//	OTEL_METRICS_EXPORTER=prometheusremotewrite_azuread
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_ENDPOINT=https://<dce>.<region>-1.metrics.ingest.monitor.azure.com/dataCollectionRules/<dcr-id>/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_MANAGED_IDENTITY=true
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_CLIENT_ID=<user-assigned identity's client ID>
//
// in a program that builds its pipeline with autoexport.NewMetricReader and
// imports this package for its side effect:
//
//	import _ "github.com/prwmetric/prwmetric/azuread/azureadautoexport"
//
// The variables fill azuread.Config; all are optional, and with none set
// the Azure SDK's default credential chain is used:
//
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_CLOUD                    Config.Cloud: AzurePublic, AzureChina or AzureGovernment
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_CLIENT_ID                Config.ClientID
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_TENANT_ID                Config.TenantID
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_CLIENT_SECRET_FILE       Config.ClientSecretFile
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_CLIENT_CERTIFICATE_FILE  Config.ClientCertificateFile
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_MANAGED_IDENTITY         Config.ManagedIdentity: true or false
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_WORKLOAD_IDENTITY        Config.WorkloadIdentity: true or false
//	OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_SCOPE                    Config.Scope
//
// A client secret is taken from a file only, never from a variable's
// value. The other OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_* variables
// (endpoint, timeout, headers, TLS) apply as for prwmetric; the Azure SDK's
// own variables (AZURE_AUTHORITY_HOST, and those of workload and managed
// identity) apply as for azuread. OTEL_METRICS_PRODUCERS adds metric
// producers as package github.com/prwmetric/prwmetric/prwautoexport describes.
//
// The reader is built by prwautoexport.NewReader, so importing this package
// also registers prwautoexport's "prometheusremotewrite"; a program must not
// register that name itself.
package azureadautoexport

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric/azuread"
	"github.com/prwmetric/prwmetric/prwautoexport"
)

// Name is the OTEL_METRICS_EXPORTER value that selects prwmetric with
// Entra ID authentication.
const Name = "prometheusremotewrite_azuread"

// The variables read by NewMetricReader.
const (
	envPrefix                = "OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_"
	EnvCloud                 = envPrefix + "CLOUD"
	EnvClientID              = envPrefix + "CLIENT_ID"
	EnvTenantID              = envPrefix + "TENANT_ID"
	EnvClientSecretFile      = envPrefix + "CLIENT_SECRET_FILE"
	EnvClientCertificateFile = envPrefix + "CLIENT_CERTIFICATE_FILE"
	EnvManagedIdentity       = envPrefix + "MANAGED_IDENTITY"
	EnvWorkloadIdentity      = envPrefix + "WORKLOAD_IDENTITY"
	EnvScope                 = envPrefix + "SCOPE"
	// envClientSecret is refused: a secret belongs in a file.
	envClientSecret = envPrefix + "CLIENT_SECRET"
)

func init() {
	autoexport.RegisterMetricReader(Name, NewMetricReader)
}

// httpClient reaches the authority; nil is the Azure SDK's client. Tests
// set it to trust their authority's certificate.
var httpClient *http.Client

// NewMetricReader returns a sdkmetric.PeriodicReader around a prwmetric
// exporter configured from the OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_* and
// OTEL_EXPORTER_PROMETHEUS_REMOTE_WRITE_AZUREAD_* variables, with the
// producers OTEL_METRICS_PRODUCERS names (prwautoexport.NewReader). The
// reader honours OTEL_METRIC_EXPORT_INTERVAL and OTEL_METRIC_EXPORT_TIMEOUT,
// as the SDK does for every periodic reader.
func NewMetricReader(ctx context.Context) (sdkmetric.Reader, error) {
	cfg, err := configFromEnvironment(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	cfg.HTTPClient = httpClient
	return prwautoexport.NewReader(ctx, azuread.WithAzureAD(cfg))
}

// configFromEnvironment reads the AZUREAD variables; lookup is
// os.LookupEnv. Errors name the variable and never echo a value that may be
// secret.
func configFromEnvironment(lookup func(string) (string, bool)) (azuread.Config, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	var problems []string
	flag := func(name string) bool {
		v := get(name)
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: want true or false", name, v))
		}
		return b
	}
	cfg := azuread.Config{
		Cloud:                 azuread.Cloud(get(EnvCloud)),
		ClientID:              get(EnvClientID),
		TenantID:              get(EnvTenantID),
		ClientSecretFile:      get(EnvClientSecretFile),
		ClientCertificateFile: get(EnvClientCertificateFile),
		ManagedIdentity:       flag(EnvManagedIdentity),
		WorkloadIdentity:      flag(EnvWorkloadIdentity),
		Scope:                 get(EnvScope),
	}
	if _, set := lookup(envClientSecret); set {
		problems = append(problems, fmt.Sprintf("%s is not read: a secret does not belong in a variable; write it into a file and set %s", envClientSecret, EnvClientSecretFile))
	}
	if len(problems) > 0 {
		return cfg, fmt.Errorf("azureadautoexport: %s", strings.Join(problems, "; "))
	}
	return cfg, nil
}
