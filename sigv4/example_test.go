package sigv4_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/prwmetric/prwmetric"
	"github.com/prwmetric/prwmetric/prwmetrictest"
	"github.com/prwmetric/prwmetric/sigv4"
)

// Example signs for Amazon Managed Service for Prometheus. A local receiver
// stands in for the workspace here, and the keys are AWS's documentation
// example; in production leave them out, so that the AWS SDK's default
// chain (environment, profile, IRSA, ECS or EC2 role) provides them.
func Example() {
	workspace := prwmetrictest.NewServer(prwmetrictest.WithPath("/workspaces/ws-example/api/v1/remote_write"))
	defer workspace.Close()

	exp, err := prwmetric.New(
		// In production: "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/<id>/api/v1/remote_write".
		prwmetric.WithEndpoint(workspace.URL()),
		sigv4.WithSigV4(sigv4.Config{
			Region:    "us-east-1",
			AccessKey: "AKIDEXAMPLE",
			SecretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	orders, _ := provider.Meter("shop").Int64Counter("orders")
	orders.Add(context.Background(), 3)
	if err := provider.Shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}

	// What the workspace received: a SigV4 Authorization for the "aps"
	// service, covering the remote-write headers and the body's length.
	auth := strings.FieldsFunc(workspace.Requests()[0].Header.Get("Authorization"), func(r rune) bool { return r == ' ' || r == ',' })
	scope := strings.SplitN(strings.TrimPrefix(auth[1], "Credential="), "/", 3)
	fmt.Println(auth[0])
	fmt.Println("key:", scope[0], "scope:", scope[2])
	fmt.Println(auth[2])
	// Output:
	// AWS4-HMAC-SHA256
	// key: AKIDEXAMPLE scope: us-east-1/aps/aws4_request
	// SignedHeaders=content-encoding;content-length;content-type;host;x-amz-date;x-prometheus-remote-write-version
}

// ExampleWithSigV4 assumes a role, for example one in the workspace's
// account, with credentials from the default chain.
func ExampleWithSigV4() {
	exp, err := prwmetric.New(
		prwmetric.WithEndpoint("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123abcd/api/v1/remote_write"),
		sigv4.WithSigV4(sigv4.Config{
			Region:     "eu-west-1",
			RoleARN:    "arn:aws:iam::123456789012:role/prometheus-writer",
			ExternalID: "metrics-pipeline",
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
}
