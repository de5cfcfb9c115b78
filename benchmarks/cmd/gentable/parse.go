package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// results are the parsed benchmark lines: for each benchmark (its name
// without the GOMAXPROCS suffix) and unit, every value seen, in order.
type results struct {
	header map[string]string // goos, goarch, pkg, cpu
	values map[string]map[string][]float64
	names  []string // in the order first seen
	procs  string
}

// parse reads `go test -bench` output.
func parse(r io.Reader) (*results, error) {
	res := &results{header: map[string]string{}, values: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.Contains(k, " ") && !strings.HasPrefix(k, "Benchmark") {
			res.header[k] = strings.TrimSpace(v)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a name alone on its line, or a failure message
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				res.procs = name[i+1:]
				name = name[:i]
			}
		}
		m := res.values[name]
		if m == nil {
			m = map[string][]float64{}
			res.values[name] = m
			res.names = append(res.names, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: value %q: %w", line, f[i], err)
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(res.values) == 0 {
		return nil, errors.New("no benchmark results in the output")
	}
	return res, nil
}

// median returns the median of the values of unit for benchmark name, and
// whether there were any.
func (r *results) median(name, unit string) (float64, bool) {
	return medianOf(r.values[name][unit])
}

// medianOf returns the median of vs, and whether there were any.
func medianOf(vs []float64) (float64, bool) {
	vs = slices.Clone(vs)
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}

// own returns, for each run of benchmark name, the time the library itself
// took per export: ns/op less the receiver's decoding (rcv-decode-ns/op)
// where the benchmark reports it, since the sender waits for it (2.0).
func (r *results) own(name string) []float64 {
	ns, dec := r.values[name]["ns/op"], r.values[name]["rcv-decode-ns/op"]
	if len(dec) != len(ns) {
		return ns
	}
	out := make([]float64, len(ns))
	for i := range ns {
		out[i] = ns[i] - dec[i]
	}
	return out
}

func (r *results) runs(name string) int { return len(r.values[name]["ns/op"]) }

// perSeries returns the median of unit divided by the benchmark's
// series/op: the same workload, hence the same divisor, for every library.
func (r *results) perSeries(name, unit string) (float64, bool) {
	v, ok := r.median(name, unit)
	s, ok2 := r.median(name, "series/op")
	if !ok || !ok2 || s == 0 {
		return 0, false
	}
	return v / s, true
}
