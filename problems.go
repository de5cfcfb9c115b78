package prwmetric

import (
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// problems collects what was dropped while converting one subject (a metric,
// the resource, a scope), so that it is reported in one warning.
type problems struct {
	reasons []string
	counts  map[string]int
}

func (p *problems) add(format string, args ...any) {
	p.addReason(fmt.Sprintf(format, args...), 1)
}

// addReason records reason n times.
func (p *problems) addReason(reason string, n int) {
	if p.counts == nil {
		p.counts = map[string]int{}
	}
	if p.counts[reason] == 0 {
		p.reasons = append(p.reasons, reason)
	}
	p.counts[reason] += n
}

// saved returns what p holds in a form that addAll replays: the series
// cache keeps the problems of labels it built once and replays them into
// every export that uses those labels, so that each export warns as if
// it had built them.
func (p *problems) saved() []savedProblem {
	if len(p.reasons) == 0 {
		return nil
	}
	out := make([]savedProblem, len(p.reasons))
	for i, r := range p.reasons {
		out[i] = savedProblem{reason: r, n: p.counts[r]}
	}
	return out
}

// addAll adds saved problems to p.
func (p *problems) addAll(saved []savedProblem) {
	for _, s := range saved {
		p.addReason(s.reason, s.n)
	}
}

// savedProblem is one reason and how often it occurred.
type savedProblem struct {
	reason string
	n      int
}

// maxReasons bounds the reasons listed per subject, so that one metric with
// many bad attributes cannot flood the log line and the error.
const maxReasons = 5

func (p *problems) String() string {
	var parts []string
	for i, r := range p.reasons {
		if i == maxReasons {
			parts = append(parts, fmt.Sprintf("and %d more", len(p.reasons)-maxReasons))
			break
		}
		if n := p.counts[r]; n > 1 {
			r = fmt.Sprintf("%s (%d times)", r, n)
		}
		parts = append(parts, r)
	}
	return strings.Join(parts, "; ")
}

// exportState is the bookkeeping of one export's conversion that the
// conversion through the cache and the reference conversion of the tests
// share: what was dropped, the newest sample, the
// resource's labels and the label scratch space.
type exportState struct {
	rules *rules

	// low are the labels every series starts from (resource attributes
	// copied by WithResourceAsLabels); data point attributes override them.
	low map[string]string
	// job and instance come from the resource (SPEC §3).
	job, instance string

	newest    int64
	hasNewest bool

	dropped []string

	// scratch is reused by pointLabels: a first export builds the labels
	// of every data point, and fresh maps and slices for each would more
	// than double the heap that export needs.
	scratch labelScratch
}

// labelScratch is the reusable space of exportState.pointLabels.
type labelScratch struct {
	m      map[string]string
	names  map[attribute.Key]string
	kvs    []attribute.KeyValue
	labels []prompb.Label
}

// report logs one warning for subject if anything was dropped and
// remembers it for the error convert returns.
func (es *exportState) report(subject string, p *problems, logAttrs ...any) {
	if len(p.reasons) == 0 {
		return
	}
	detail := p.String()
	es.rules.logger.Warn("prwmetric: dropped data that Prometheus cannot accept", append(logAttrs, "dropped", detail)...)
	es.dropped = append(es.dropped, subject+": "+detail)
}

func (es *exportState) err() error {
	if len(es.dropped) == 0 {
		return nil
	}
	return fmt.Errorf("prwmetric: dropped data that Prometheus cannot accept (the rest was converted): %s", strings.Join(es.dropped, "; "))
}

// reportResource reports the problems of the resource attributes copied by
// WithResourceAsLabels.
func (es *exportState) reportResource(p *problems) {
	if es.rules.resourceAsLabels != nil {
		es.report("resource attributes (WithResourceAsLabels)", p, "subject", "resource")
	}
}

// reportScope reports the problems of scope's attributes.
func (es *exportState) reportScope(scope instrumentation.Scope, p *problems) {
	es.report(fmt.Sprintf("scope %q attributes", scope.Name), p, "scope", scope.Name)
}

// pointLabels returns the sorted labels of a data point without __name__:
// resource labels (WithResourceAsLabels), then the point's attributes, then
// the scope's labels, each overriding the ones before; empty values dropped.
// A label named reserved (le for histograms, quantile for summaries) is
// dropped and reported: the pull exporter refuses such points, and on _sum
// and _count it would be a label that means something else.
// The result is only valid until the next call: callers copy it (withLabels).
func (es *exportState) pointLabels(attrs attribute.Set, high map[string]string, p *problems, reserved string) []prompb.Label {
	sc := &es.scratch
	if sc.m == nil {
		sc.m = make(map[string]string, len(es.low)+attrs.Len()+len(high))
	}
	m := sc.m
	clear(m)
	for k, v := range es.low {
		m[k] = v
	}
	sc.kvs = sc.kvs[:0]
	for it := attrs.Iter(); it.Next(); {
		sc.kvs = append(sc.kvs, it.Attribute())
	}
	if sc.names == nil {
		sc.names = map[attribute.Key]string{}
	}
	es.rules.addAttrsNamed(m, sc.kvs, "", p, sc.names)
	for _, kv := range sc.kvs {
		// job and instance name the target, as in Prometheus: they come
		// from the resource (or WithExternalLabels) and win.
		if name := sc.names[kv.Key]; (name == labelJob || name == labelInstance) && kv.Value.Emit() != "" {
			if _, ok := high[name]; ok {
				p.add("attribute %q dropped: the %s label comes from the resource (service.name, service.namespace, service.instance.id) or WithExternalLabels and wins; rename the attribute", kv.Key, name)
			}
		}
	}
	clear(sc.kvs) // no references to attribute values outlive the call
	for k, v := range high {
		m[k] = v
	}
	if _, ok := m[reserved]; ok && reserved != "" {
		p.add("label %q dropped: Prometheus reserves it for histogram buckets and summary quantiles", reserved)
		delete(m, reserved)
	}
	sc.labels = appendSortedLabels(sc.labels[:0], m)
	return sc.labels
}

func (es *exportState) observeTime(ms int64) {
	if !es.hasNewest || ms > es.newest {
		es.newest, es.hasNewest = ms, true
	}
}

// metricCtx is what a metric's conversion needs besides its data.
type metricCtx struct {
	m    metricdata.Metrics
	high map[string]string
	p    problems
}
