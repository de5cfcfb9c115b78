package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// variants is a table of one benchmark whose sub-benchmarks are variants
// of prwmetric's export of W, each against the first (the plain export).
type variants struct {
	// bench is the benchmark's name with a slash: its sub-benchmarks are
	// the variants.
	bench, title string
	// intro says what the variants are, before the rounds.
	intro []string
	// first heads the variant column; count heads the column of the
	// per-export count of what the variants add, reported as unit; plain
	// names the first variant in the ratio's heading.
	first, count, unit, plain string
}

// churn is BenchmarkChurn; its sub-benchmarks are the share of W's
// attribute sets replaced before each export ("0%", "1%", "10%").
var churn = variants{
	bench: "BenchmarkChurn/", title: "Churn: attribute sets that come and go",
	intro: []string{
		"prwmetric's export of W, whose 500 attribute sets carry one more attribute, `churn.generation`, while some of the sets are replaced before each export ",
		"by new ones (the next sets in turn get a new generation, in every metric), as when pods restart or a label takes new values; the replacement is outside the timer. ",
		"Each replaced set makes 88 new series and ends as many with staleness markers; the exporter has seen every set replaced once before the measurement. ",
	},
	first: "Sets replaced per export", count: "new series per export", unit: "new-series/op", plain: "without churn",
}

// exemplars is BenchmarkExemplars: W without exemplars ("none") and with
// a traced service's ("every_bucket").
var exemplars = variants{
	bench: "BenchmarkExemplars/", title: "Exemplars",
	intro: []string{
		"prwmetric's export of W without exemplars, and with those of a traced service whose every measurement is sampled, as the SDK's default reservoirs keep them: ",
		"an exemplar on every histogram bucket that counted and on every counter point, with a trace and a span id of its own, each export anew. ",
	},
	first: "Exemplars", count: "exemplars per export", unit: "exemplars/op", plain: "without exemplars",
}

// write writes the table of v's benchmark, if it ran: each variant's
// export of W against the first.
func (v variants) write(w io.Writer, r *results) {
	var names []string
	for _, name := range r.names {
		if variant, ok := strings.CutPrefix(name, v.bench); ok {
			names = append(names, variant)
		}
	}
	if len(names) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	plain, _ := r.median(v.bench+names[0], "ns/op")
	runs := len(r.values[v.bench+names[0]]["ns/op"])
	p("## %s\n\n", v.title)
	for _, s := range v.intro {
		p("%s", s)
	}
	p("CPU is the exporter's process's per export; medians of %d rounds.\n\n", runs)
	p("| %s | %s | ms/export | fastest–slowest round | ÷ %s | CPU ms | allocs/series | B/series | bytes on the wire | requests |\n", v.first, v.count, v.plain)
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, variant := range names {
		name := v.bench + variant
		ns, ok := r.median(name, "ns/op")
		if !ok {
			continue
		}
		all := r.values[name]["ns/op"]
		get := func(unit string, scale float64) string {
			v, ok := r.median(name, unit)
			if !ok {
				return "—"
			}
			return sig(v/scale, 3)
		}
		ratio := "—"
		if plain > 0 {
			ratio = sig(ns/plain, 3) + "×"
		}
		count, _ := r.median(name, v.unit)
		allocS, _ := r.perSeries(name, "allocs/op")
		bS, _ := r.perSeries(name, "B/op")
		wire, _ := r.median(name, "wire-B/op")
		p("| %s | %s | %s | %s–%s | %s | %s | %s | %s | %s | %s |\n", variant, thousands(count), sig(ns/1e6, 3),
			sig(slices.Min(all)/1e6, 3), sig(slices.Max(all)/1e6, 3), ratio, get("cpu-ns/op", 1e6),
			sig(allocS, 3), sig(bS, 3), thousands(wire), get("requests/op", 1))
	}
	p("\n")
}
