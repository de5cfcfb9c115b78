package benchmarks

import "testing"

// The shape benchmarks export one workload once per iteration with every
// library (peers), in the same run; see Shapes. Sub-benchmark names are what
// gen-table.sh reports.

// BenchmarkExport exports workload W.
func BenchmarkExport(b *testing.B) { benchShape(b, ShapeW) }

// BenchmarkExportCounterHeavy exports W with more counters, fewer gauges.
func BenchmarkExportCounterHeavy(b *testing.B) { benchShape(b, ShapeCounterHeavy) }

// BenchmarkExportCounters exports counters with 10 long labels.
func BenchmarkExportCounters(b *testing.B) { benchShape(b, ShapeCounters) }

// BenchmarkExportHistograms exports explicit-bucket (30 bounds) and
// exponential histograms.
func BenchmarkExportHistograms(b *testing.B) { benchShape(b, ShapeHistograms) }

// BenchmarkExportManyMetrics exports 2 000 metrics of 20 points each.
func BenchmarkExportManyMetrics(b *testing.B) { benchShape(b, ShapeManyMetrics) }

// BenchmarkExportMillion exports 1 000 000 series with every library; run
// it with -benchtime=1x. BenchmarkLargeExport measures prwmetric's heap on
// the same workload.
func BenchmarkExportMillion(b *testing.B) { benchShape(b, ShapeMillion) }
