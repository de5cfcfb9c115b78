package azuread_test

import (
	"context"
	"fmt"
	"log"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/azuread"
)

// A program on an Azure VM, scale set or AKS node pool sends to an Azure
// Monitor workspace with its user-assigned managed identity, which holds
// "Monitoring Metrics Publisher" on the workspace's data collection rule.
func Example() {
	exp, err := prwmetric.New(
		// The workspace's "Metrics ingestion endpoint".
		prwmetric.WithEndpoint("https://amw-0a1b.westeurope-1.metrics.ingest.monitor.azure.com/dataCollectionRules/dcr-0123456789abcdef0123456789abcdef/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"),
		azuread.WithAzureAD(azuread.Config{
			ManagedIdentity: true,
			ClientID:        "00000000-0000-0000-0000-000000000000", // the identity's client ID
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	defer func() {
		if err := provider.Shutdown(context.Background()); err != nil {
			log.Print(err)
		}
	}()
	otel.SetMeterProvider(provider)
	// … instrument the program with otel.Meter(…).
}

// An app registration outside Azure authenticates with a client secret
// kept in a file (a Kubernetes secret volume, say), re-read when rotated.
func ExampleConfig_clientSecretFile() {
	opt := azuread.WithAzureAD(azuread.Config{
		TenantID:         "00000000-0000-0000-0000-000000000001",
		ClientID:         "00000000-0000-0000-0000-000000000002",
		ClientSecretFile: "/var/run/secrets/azure/client-secret",
	})
	_ = opt // pass to prwmetric.New with WithEndpoint
}

// Configuration mistakes fail New, which names the fields and the fix.
func ExampleWithAzureAD_configurationError() {
	_, err := prwmetric.New(
		prwmetric.WithEndpoint("https://amw-0a1b.westeurope-1.metrics.ingest.monitor.azure.com/dataCollectionRules/dcr-0123/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"),
		azuread.WithAzureAD(azuread.Config{
			ManagedIdentity:  true,
			WorkloadIdentity: true,
		}),
	)
	fmt.Println(err)
	// Output:
	// prwmetric: azuread.WithAzureAD: more than one credential chosen (Config.ManagedIdentity, Config.WorkloadIdentity): choose exactly one
}
