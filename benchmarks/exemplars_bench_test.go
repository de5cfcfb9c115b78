package benchmarks

import "testing"

// exemplarVariants are W without exemplars and with a traced service's
// (AddExemplars).
var exemplarVariants = []struct {
	name string
	add  bool
}{{"none", false}, {"every_bucket", true}}

// BenchmarkExemplars is prwmetric's export of W with its defaults (Remote
// Write 1.0) without exemplars and with those of a traced service whose
// every measurement is sampled: an exemplar on every histogram bucket that
// counted and on every counter point (AddExemplars), each export anew.
// BenchmarkExemplars/<none|every_bucket>; it reports exemplars/op.
func BenchmarkExemplars(b *testing.B) {
	rcv := receiver(b)
	for _, v := range exemplarVariants {
		b.Run(v.name, func(b *testing.B) {
			fx := shapeFixture(ShapeW)
			n := 0
			if v.add {
				n = AddExemplars(fx.rm)
			}
			measurePush(b, fx, peer{name: "prwmetric", out: outRemoteWrite, push: pushWarnlessDefault}, rcv.URL)
			b.ReportMetric(float64(n), "exemplars/op")
		})
	}
}
