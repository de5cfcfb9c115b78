package benchmarks

import (
	"testing"
	"time"

	"github.com/prwmetric/prwmetric"
)

// latencyLinks are the network paths of BenchmarkLatency, emulated by a
// DelayProxy in the receiver process. The first is the proxy without delay,
// so that every link pays the same proxy hop.
var latencyLinks = []Link{
	{},
	{RTT: 10 * time.Millisecond},
	{RTT: 50 * time.Millisecond},
	{RTT: 10 * time.Millisecond, Bandwidth: 100_000_000},
}

// latencyShapes are the workloads of BenchmarkLatency.
var latencyShapes = []*Shape{ShapeW, ShapeMillion}

// A latencyVariant is one prwmetric configuration BenchmarkLatency runs on
// every workload and link.
type latencyVariant struct {
	// name is the sub-benchmark: "default", or what differs from it as
	// option=value pairs, comma-separated (gentable reads them).
	name string
	opts []prwmetric.Option
	// out is what the receiver must see: outRemoteWriteZstd for zstd
	// (measurePush fails on a fallback to snappy), else outRemoteWrite.
	out output
}

// latencyVariants are the configurations BenchmarkLatency compares;
// gen-table.sh makes a table row of each. "default" is 128 concurrent
// requests (WithMaxConcurrentRequests) and snappy.
var latencyVariants = []latencyVariant{
	{name: "concurrency=1", opts: []prwmetric.Option{prwmetric.WithMaxConcurrentRequests(1)}},
	{name: "concurrency=2", opts: []prwmetric.Option{prwmetric.WithMaxConcurrentRequests(2)}},
	{name: "concurrency=4", opts: []prwmetric.Option{prwmetric.WithMaxConcurrentRequests(4)}},
	{name: "concurrency=8", opts: []prwmetric.Option{prwmetric.WithMaxConcurrentRequests(8)}},
	{name: "concurrency=16", opts: []prwmetric.Option{prwmetric.WithMaxConcurrentRequests(16)}},
	{name: "concurrency=32", opts: []prwmetric.Option{prwmetric.WithMaxConcurrentRequests(32)}},
	{name: "concurrency=64", opts: []prwmetric.Option{prwmetric.WithMaxConcurrentRequests(64)}},
	{name: "default"},
	{name: "compression=zstd", opts: []prwmetric.Option{prwmetric.WithCompression(prwmetric.CompressionZstd)}, out: outRemoteWriteZstd},
}

// peer is the variant as measurePush runs it: an export that fails if the
// exporter warned (a failed request, a fallback).
func (v latencyVariant) peer() peer {
	return peer{name: "prwmetric " + v.name, out: v.out, push: func(tb testing.TB, fx *fixture, url string) exportFunc {
		return pushWarnless(tb, fx, url, v.opts...)
	}}
}

// BenchmarkLatency is prwmetric's export time through slow networks:
// BenchmarkLatency/<workload>/<configuration>/<link>, each export of the
// workload sent through a DelayProxy that adds the link's RTT (and limits
// its bandwidth) in front of the receiver process. Run it with a small
// -benchtime such as 3x: at 50 ms, a million series take seconds per export.
func BenchmarkLatency(b *testing.B) {
	rcv := receiver(b)
	for _, s := range latencyShapes {
		b.Run(s.Key, func(b *testing.B) {
			fx := shapeFixture(s)
			for _, v := range latencyVariants {
				b.Run(v.name, func(b *testing.B) {
					p := v.peer()
					for _, link := range latencyLinks {
						b.Run(link.String(), func(b *testing.B) {
							base, err := rcv.Delayed(link)
							if err != nil {
								b.Fatal(err)
							}
							measurePush(b, fx, p, base)
						})
					}
				})
			}
		})
	}
}
