package benchmarks

import (
	"testing"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
)

// BenchmarkExport exports workload W once per iteration with every library,
// in the same run. Sub-benchmark names are what gen-table.sh reports.
func BenchmarkExport(b *testing.B) {
	fx := fixtureW()
	b.Run("prwmetric", func(b *testing.B) { benchPrwmetric(b, fx) })
	b.Run("prwmetric_v2", func(b *testing.B) { benchPrwmetricV2(b, fx) })
	b.Run("otlpmetrichttp", func(b *testing.B) { benchOTLP(b, fx, otlpmetrichttp.NoCompression) })
	b.Run("otlpmetrichttp_gzip", func(b *testing.B) { benchOTLP(b, fx, otlpmetrichttp.GzipCompression) })
	b.Run("collector_prw", func(b *testing.B) { benchCollector(b, fx) })
	b.Run("otelprom_scrape", func(b *testing.B) { benchPull(b, fx) })
	b.Run("snappy_floor", func(b *testing.B) { benchSnappyFloor(b, fx) })
	b.Run("s2_snappy", func(b *testing.B) { benchS2(b, fx) })
}
