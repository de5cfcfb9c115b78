package prwmetric

import (
	"context"
	"testing"

	"github.com/prwmetric/prwmetric/prwmetrictest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// TestOTLPProfilesKeepPointIdentityAttributes: the Collector's exporter and
// Prometheus' OTLP receiver set instance only when the resource has
// service.instance.id, and job only when it has service.name
// (createAttributes: "if haveInstanceID"), so a point's own instance or job
// attribute stays. Under the profiles that reproduce them, points told
// apart by instance lost it (the SDK's default resource has no
// service.instance.id) and then collided, the second dropped as "sent
// twice". The default profile follows the OpenTelemetry specification: an
// empty instance, which drops the attribute, with a warning.
func TestOTLPProfilesKeepPointIdentityAttributes(t *testing.T) {
	points := func(key string) metricdata.Metrics {
		return metricdata.Metrics{Name: "db.up", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{
			{Attributes: attribute.NewSet(attribute.String(key, "db-a")), Time: convTime, Value: 1},
			{Attributes: attribute.NewSet(attribute.String(key, "db-b")), Time: convTime, Value: 0},
		}}}
	}
	for _, tc := range []struct {
		name string
		prof Compatibility
		res  *resource.Resource
		key  string // the attribute that tells the points apart
		want []map[string]string
	}{
		{"collector instance", CompatibilityCollector, resource.NewSchemaless(attribute.String("service.name", "svc")), "instance",
			[]map[string]string{{"job": "svc", "instance": "db-a"}, {"job": "svc", "instance": "db-b"}}},
		{"prometheus-otlp instance", CompatibilityPrometheusOTLP, resource.NewSchemaless(attribute.String("service.name", "svc")), "instance",
			[]map[string]string{{"job": "svc", "instance": "db-a"}, {"job": "svc", "instance": "db-b"}}},
		{"collector job", CompatibilityCollector, resource.NewSchemaless(attribute.String("service.instance.id", "pod-1")), "job",
			[]map[string]string{{"job": "db-a", "instance": "pod-1"}, {"job": "db-b", "instance": "pod-1"}}},
		{"collector, both from the resource", CompatibilityCollector,
			resource.NewSchemaless(attribute.String("service.name", "svc"), attribute.String("service.instance.id", "pod-1")), "instance",
			nil}, // the resource's instance wins: the points collide
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := prwmetrictest.NewServer()
			defer srv.Close()
			exp := newTestExporter(t, srv, WithCompatibility(tc.prof), WithoutStaleMarkers())
			rm := &metricdata.ResourceMetrics{Resource: tc.res, ScopeMetrics: []metricdata.ScopeMetrics{{
				Scope: instrumentation.Scope{Name: "s"}, Metrics: []metricdata.Metrics{points(tc.key)}}}}
			err := exp.Export(context.Background(), rm)
			if tc.want == nil {
				if err == nil {
					t.Error("Export succeeded; want the attribute dropped, reported")
				}
				return
			}
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			for i, match := range tc.want {
				if got, err := srv.Latest("db_up", match); err != nil || got.Value != float64(1-i) {
					t.Errorf("db_up%v = %v, %v; want %d", match, got, err, 1-i)
				}
			}
		})
	}
}
