package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// benchChurn is BenchmarkChurn; its sub-benchmarks are the share of W's
// attribute sets replaced before each export ("0%", "1%", "10%").
const benchChurn = "BenchmarkChurn/"

// writeChurn writes the table of BenchmarkChurn, if it ran: each rate's
// export of W against the one without churn.
func writeChurn(w io.Writer, r *results) {
	var rates []string
	for _, name := range r.names {
		if rate, ok := strings.CutPrefix(name, benchChurn); ok {
			rates = append(rates, rate)
		}
	}
	if len(rates) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	steady, _ := r.median(benchChurn+"0%", "ns/op")
	runs := len(r.values[benchChurn+rates[0]]["ns/op"])
	p("## Churn: attribute sets that come and go\n\n")
	p("prwmetric's export of W, whose 500 attribute sets carry one more attribute, `churn.generation`, while some of the sets are replaced before each export ")
	p("by new ones (the next sets in turn get a new generation, in every metric), as when pods restart or a label takes new values; the replacement is outside the timer. ")
	p("Each replaced set makes 88 new series and ends as many with staleness markers; the exporter has seen every set replaced once before the measurement. ")
	p("CPU is the exporter's process's per export; medians of %d rounds.\n\n", runs)
	p("| Sets replaced per export | new series per export | ms/export | fastest–slowest round | ÷ without churn | CPU ms | allocs/series | B/series | bytes on the wire | requests |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, rate := range rates {
		name := benchChurn + rate
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
		if steady > 0 {
			ratio = sig(ns/steady, 3) + "×"
		}
		newSeries, _ := r.median(name, "new-series/op")
		allocS, _ := r.perSeries(name, "allocs/op")
		bS, _ := r.perSeries(name, "B/op")
		wire, _ := r.median(name, "wire-B/op")
		p("| %s | %s | %s | %s–%s | %s | %s | %s | %s | %s | %s |\n", rate, thousands(newSeries), sig(ns/1e6, 3),
			sig(slices.Min(all)/1e6, 3), sig(slices.Max(all)/1e6, 3), ratio, get("cpu-ns/op", 1e6),
			sig(allocS, 3), sig(bS, 3), thousands(wire), get("requests/op", 1))
	}
	p("\n")
}
