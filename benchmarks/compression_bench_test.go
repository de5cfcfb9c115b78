package benchmarks

import "testing"

// compressionPeers are the request compressions BenchmarkCompression
// compares: prwmetric's default, snappy, and zstd (the VictoriaMetrics
// protocol), both Remote Write 1.0 with every other option at its default.
var compressionPeers = []peer{
	{name: "snappy", out: outRemoteWrite, push: pushWarnlessDefault},
	{name: "zstd", out: outRemoteWriteZstd, push: pushZstd},
}

// pushWarnlessDefault: prwmetric with its defaults, failing if it warned.
func pushWarnlessDefault(tb testing.TB, fx *fixture, url string) exportFunc {
	return pushWarnless(tb, fx, url)
}

// BenchmarkCompression is prwmetric's whole export with snappy and with
// zstd bodies, on every shape: BenchmarkCompression/<shape>/<snappy|zstd>,
// the two one after the other in the same run. Besides the time per export
// it reports the bytes on the wire and the CPU time of the exporter's
// process per export (cpu-ns/op), which with several requests in flight
// can exceed the wall time; the receiver, in its own process, accepts zstd
// only as the VictoriaMetrics protocol and counts what it gets, and the
// zstd run fails if a request fell back to snappy. Run the 1M shape with
// -benchtime=1x.
func BenchmarkCompression(b *testing.B) {
	rcv := receiver(b)
	for _, s := range Shapes {
		b.Run(s.Key, func(b *testing.B) {
			fx := shapeFixture(s)
			for _, p := range compressionPeers {
				b.Run(p.name, func(b *testing.B) { measurePush(b, fx, p, rcv.URL) })
			}
		})
	}
}
