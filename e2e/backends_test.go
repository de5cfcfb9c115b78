package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promServer is a running Prometheus with the Remote Write receiver on.
type promServer struct {
	name    string
	baseURL string       // scheme://127.0.0.1:port
	client  *http.Client // for queries; carries TLS for secured servers
	user    string       // basic auth for queries, when the server wants it
	pass    string
}

func (s *promServer) writeURL() string { return s.baseURL + "/api/v1/write" }

// promConfig varies how Prometheus is started.
type promConfig struct {
	// webConfig is the content of a --web.config.file (TLS, basic auth);
	// empty for plain HTTP without auth.
	webConfig string
	// scheme is "https" when webConfig turns TLS on.
	scheme string
	// client reaches the server through its TLS and auth; nil for plain HTTP.
	client     *http.Client
	user, pass string
	// extraArgs are appended to the command line, e.g. more
	// --enable-feature flags (Prometheus accepts the flag repeatedly).
	extraArgs []string
	// config is the content of --config.file; empty means
	// minimalPromConfig.
	config string
}

// minimalPromConfig is a Prometheus configuration that scrapes nothing: the
// tests only push.
const minimalPromConfig = "global:\n  scrape_interval: 1m\n"

// startPrometheus2 starts the Debian Prometheus 2.42 with the Remote Write
// receiver, native histograms and exemplar storage.
func startPrometheus2(t *testing.T, cfg promConfig) *promServer {
	t.Helper()
	return startPrometheus(t, "Prometheus 2.42", prometheus2Bin.path(t), cfg,
		append(prometheus2Consoles(t), "--enable-feature=native-histograms,exemplar-storage")...)
}

// startPrometheus2WithoutNativeHistograms starts the Debian Prometheus 2.42
// with the Remote Write receiver and no feature flag, as most 2.x servers
// run: it answers a request carrying a native histogram with 500 "native
// histograms are disabled" and stores nothing of it.
func startPrometheus2WithoutNativeHistograms(t *testing.T) *promServer {
	t.Helper()
	return startPrometheus(t, "Prometheus 2.42 (no native histograms)", prometheus2Bin.path(t), promConfig{},
		prometheus2Consoles(t)...)
}

// prometheus2Consoles replaces the Debian defaults, which point into /etc
// and /usr/share; the tests need neither the UI nor consoles.
func prometheus2Consoles(t *testing.T) []string {
	return []string{
		"--web.console.templates=" + t.TempDir(),
		"--web.console.libraries=" + t.TempDir(),
	}
}

// startPrometheus3 starts Prometheus 3 built from the module proxy, accepting
// both Remote Write 1.0 and 2.0 messages. Native histograms need no feature
// flag in 3.x.
func startPrometheus3(t *testing.T, cfg promConfig) *promServer {
	t.Helper()
	return startPrometheus(t, "Prometheus 3 ("+prometheus3Version+")", prometheus3Bin.path(t), cfg,
		"--enable-feature=exemplar-storage",
		"--web.remote-write-receiver.accepted-protobuf-messages=prometheus.WriteRequest",
		"--web.remote-write-receiver.accepted-protobuf-messages=io.prometheus.write.v2.Request",
	)
}

// startPrometheus3Stock starts Prometheus 3 with the Remote Write receiver
// and nothing else: no feature flag, the default accepted messages. It
// stores native histograms all the same.
func startPrometheus3Stock(t *testing.T) *promServer {
	t.Helper()
	return startPrometheus(t, "Prometheus 3 ("+prometheus3Version+", stock)", prometheus3Bin.path(t), promConfig{})
}

func startPrometheus(t *testing.T, name, bin string, cfg promConfig, extra ...string) *promServer {
	t.Helper()
	dir := t.TempDir()
	configFile := filepath.Join(dir, "prometheus.yml")
	config := cfg.config
	if config == "" {
		config = minimalPromConfig
	}
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{
		"--config.file=" + configFile,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.enable-remote-write-receiver",
		"--log.level=info",
	}
	if cfg.webConfig != "" {
		webConfigFile := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(webConfigFile, []byte(cfg.webConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		common = append(common, "--web.config.file="+webConfigFile)
	}
	scheme := cfg.scheme
	if scheme == "" {
		scheme = "http"
	}
	client := cfg.client
	if client == nil {
		client = &http.Client{}
	}
	readyClient := client
	if cfg.user != "" {
		readyClient = &http.Client{Transport: basicAuthTransport{user: cfg.user, pass: cfg.pass, next: transportOf(client)}}
	}
	p := startServer(t, serverSpec{
		name: name,
		bin:  bin,
		args: func(port int) []string {
			args := append([]string{fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port)}, common...)
			return append(append(args, extra...), cfg.extraArgs...)
		},
		readyURL: func(port int) string { return fmt.Sprintf("%s://127.0.0.1:%d/-/ready", scheme, port) },
		client:   readyClient,
	})
	return &promServer{
		name:    name,
		baseURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, p.port),
		client:  client,
		user:    cfg.user,
		pass:    cfg.pass,
	}
}

// basicAuthTransport adds basic auth to the test's own query requests.
type basicAuthTransport struct {
	user, pass string
	next       http.RoundTripper
}

func (b basicAuthTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(r)
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

// get calls a Prometheus HTTP API endpoint and returns its data.
func (s *promServer) get(t *testing.T, path string, params url.Values) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := s.baseURL + path + "?" + params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.user != "" {
		req.SetBasicAuth(s.user, s.pass)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s: GET %s: %v", s.name, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read %s: %v", s.name, u, err)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("%s: GET %s: %s: %s (decode: %v)", s.name, u, resp.Status, body, err)
	}
	return r.Data
}

// sample is one float sample as a backend returns it.
type sample struct {
	T int64 // milliseconds since the epoch
	V float64
}

// nativeHistogram is one native-histogram sample as the Prometheus API
// returns it.
type nativeHistogram struct {
	T       int64
	Count   float64
	Sum     float64
	Buckets []nativeBucket
}

// nativeBucket is one bucket of a native histogram: boundaries, which of
// them are inclusive (Prometheus' boundary rule), and its (non-cumulative)
// count.
type nativeBucket struct {
	Rule         int // 0: (l,u]  1: [l,u)  2: (l,u)  3: [l,u]
	Lower, Upper float64
	Count        float64
}

// stored is what a backend holds for a set of series, keyed by labelKey.
type stored struct {
	Floats     map[string][]sample
	Histograms map[string][]nativeHistogram
}

// labelKey renders a label set canonically: name first, then the labels in
// byte order, values quoted.
func labelKey(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for n := range ls {
		if n != "__name__" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(ls["__name__"])
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(ls[n]))
	}
	b.WriteByte('}')
	return b.String()
}

// readRange returns every raw sample of the series matching selector in
// (at-window, at], read through an instant query of a range selector, which
// returns stored samples with their own timestamps.
func (s *promServer) readRange(t *testing.T, selector string, at time.Time, window time.Duration) stored {
	t.Helper()
	data := s.get(t, "/api/v1/query", url.Values{
		"query": {fmt.Sprintf("%s[%dms]", selector, window.Milliseconds())},
		"time":  {promTime(at)},
	})
	var res struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric     map[string]string    `json:"metric"`
			Values     [][2]json.RawMessage `json:"values"`
			Histograms [][2]json.RawMessage `json:"histograms"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%s: decode matrix: %v\n%s", s.name, err, data)
	}
	if res.ResultType != "matrix" {
		t.Fatalf("%s: query %s: got result type %q, want matrix", s.name, selector, res.ResultType)
	}
	out := stored{Floats: map[string][]sample{}, Histograms: map[string][]nativeHistogram{}}
	for _, r := range res.Result {
		k := labelKey(r.Metric)
		for _, v := range r.Values {
			out.Floats[k] = append(out.Floats[k], sample{T: parseTime(t, v[0]), V: parseValue(t, v[1])})
		}
		for _, h := range r.Histograms {
			out.Histograms[k] = append(out.Histograms[k], parseHistogram(t, h[0], h[1]))
		}
	}
	return out
}

// queryVector runs an instant query and returns each result's value by
// label key.
func (s *promServer) queryVector(t *testing.T, query string, at time.Time) map[string]float64 {
	t.Helper()
	data := s.get(t, "/api/v1/query", url.Values{"query": {query}, "time": {promTime(at)}})
	var res struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string  `json:"metric"`
			Value  [2]json.RawMessage `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%s: decode vector: %v\n%s", s.name, err, data)
	}
	if res.ResultType != "vector" {
		t.Fatalf("%s: query %s: got result type %q, want vector", s.name, query, res.ResultType)
	}
	out := map[string]float64{}
	for _, r := range res.Result {
		out[labelKey(r.Metric)] = parseValue(t, r.Value[1])
	}
	return out
}

// exemplar is one exemplar as the Prometheus API returns it.
type exemplar struct {
	Labels map[string]string
	Value  float64
	T      int64
}

// queryExemplars returns the exemplars of the series matching query in
// [start, end], by series label key.
func (s *promServer) queryExemplars(t *testing.T, query string, start, end time.Time) map[string][]exemplar {
	t.Helper()
	data := s.get(t, "/api/v1/query_exemplars", url.Values{
		"query": {query},
		"start": {promTime(start)},
		"end":   {promTime(end)},
	})
	var res []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels    map[string]string `json:"labels"`
			Value     json.RawMessage   `json:"value"`
			Timestamp json.RawMessage   `json:"timestamp"`
		} `json:"exemplars"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("%s: decode exemplars: %v\n%s", s.name, err, data)
	}
	out := map[string][]exemplar{}
	for _, r := range res {
		k := labelKey(r.SeriesLabels)
		for _, e := range r.Exemplars {
			out[k] = append(out[k], exemplar{Labels: e.Labels, Value: parseValue(t, e.Value), T: parseTime(t, e.Timestamp)})
		}
	}
	return out
}

// promTime formats t the way the Prometheus API takes it: seconds with
// millisecond decimals.
func promTime(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// parseTime turns an API timestamp (JSON number of seconds with up to three
// decimals) into exact milliseconds, without going through float64.
func parseTime(t *testing.T, raw json.RawMessage) int64 {
	t.Helper()
	s := string(raw)
	sec, frac, _ := strings.Cut(s, ".")
	if len(frac) > 3 {
		t.Fatalf("timestamp %s has sub-millisecond digits", s)
	}
	frac += strings.Repeat("0", 3-len(frac))
	secs, err1 := strconv.ParseInt(sec, 10, 64)
	ms, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("timestamp %s: not seconds.millis", s)
	}
	return secs*1000 + ms
}

// parseValue decodes a sample value: the API sends it as a JSON string
// ("1.5", "NaN", "+Inf"); exemplars and VictoriaMetrics may send numbers.
func parseValue(t *testing.T, raw json.RawMessage) float64 {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("value %s: %v", raw, err)
	}
	return v
}

func parseHistogram(t *testing.T, ts, raw json.RawMessage) nativeHistogram {
	t.Helper()
	var h struct {
		Count   json.RawMessage     `json:"count"`
		Sum     json.RawMessage     `json:"sum"`
		Buckets [][]json.RawMessage `json:"buckets"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("decode histogram %s: %v", raw, err)
	}
	out := nativeHistogram{T: parseTime(t, ts), Count: parseValue(t, h.Count), Sum: parseValue(t, h.Sum)}
	for _, b := range h.Buckets {
		if len(b) != 4 {
			t.Fatalf("histogram bucket %v: want [rule, lower, upper, count]", b)
		}
		var rule int
		if err := json.Unmarshal(b[0], &rule); err != nil {
			t.Fatalf("bucket rule %s: %v", b[0], err)
		}
		out.Buckets = append(out.Buckets, nativeBucket{
			Rule:  rule,
			Lower: parseValue(t, b[1]),
			Upper: parseValue(t, b[2]),
			Count: parseValue(t, b[3]),
		})
	}
	return out
}

// vmServer is a running VictoriaMetrics single-node server.
type vmServer struct {
	name    string
	baseURL string
}

func (s *vmServer) writeURL() string { return s.baseURL + "/api/v1/write" }

// startVictoriaMetrics starts the Debian VictoriaMetrics 1.79 with its data
// in a temporary directory. It reads a zstd body as snappy and refuses it.
func startVictoriaMetrics(t *testing.T) *vmServer {
	t.Helper()
	return startVM(t, "VictoriaMetrics 1.79", victoriaMetricsBin.path(t))
}

// startVictoriaMetricsNew starts VictoriaMetrics built from the module proxy
// (victoriaMetricsNewVersion). It takes the VictoriaMetrics remote write
// protocol (zstd bodies) as well as snappy, and stores a native histogram
// as float series: _count, _sum, and a _bucket series per non-empty bucket
// with a vmrange label instead of le.
func startVictoriaMetricsNew(t *testing.T) *vmServer {
	t.Helper()
	return startVM(t, "VictoriaMetrics "+strings.TrimPrefix(victoriaMetricsNewVersion, "v"), victoriaMetricsNewBin.path(t))
}

func startVM(t *testing.T, name, bin string) *vmServer {
	t.Helper()
	dir := t.TempDir()
	p := startServer(t, serverSpec{
		name: name,
		bin:  bin,
		args: func(port int) []string {
			return []string{
				fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", port),
				"-storageDataPath=" + dir,
				"-retentionPeriod=1d",
				// Samples the tests write are at most hours old; the
				// default offset would hide the newest 30s from queries.
				"-search.latencyOffset=0s",
			}
		},
		readyURL: func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/health", port) },
	})
	return &vmServer{name: name, baseURL: fmt.Sprintf("http://127.0.0.1:%d", p.port)}
}

// export flushes VictoriaMetrics' in-memory buffers and returns every sample
// of the series matching selector between start and end.
func (s *vmServer) export(t *testing.T, selector string, start, end time.Time) map[string][]sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s.do(t, ctx, "/internal/force_flush", nil).Close()
	body := s.do(t, ctx, "/api/v1/export", url.Values{
		"match[]": {selector},
		"start":   {promTime(start)},
		"end":     {promTime(end)},
	})
	defer body.Close()
	out := map[string][]sample{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []json.RawMessage `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s export line %q: %v", s.name, sc.Text(), err)
		}
		if len(line.Values) != len(line.Timestamps) {
			t.Fatalf("%s export line %q: %d values, %d timestamps", s.name, sc.Text(), len(line.Values), len(line.Timestamps))
		}
		k := labelKey(line.Metric)
		for i, v := range line.Values {
			out[k] = append(out[k], sample{T: line.Timestamps[i], V: parseValue(t, v)})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s export: %v", s.name, err)
	}
	// VictoriaMetrics may return a series in several blocks; order each
	// series' samples by time like Prometheus does.
	for _, ss := range out {
		sort.Slice(ss, func(i, j int) bool { return ss[i].T < ss[j].T })
	}
	return out
}

func (s *vmServer) do(t *testing.T, ctx context.Context, path string, params url.Values) io.ReadCloser {
	t.Helper()
	u := s.baseURL + path
	if params != nil {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: GET %s: %v", s.name, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		t.Fatalf("%s: GET %s: %s: %s", s.name, u, resp.Status, b)
	}
	return resp.Body
}

// nearlyEqual compares bucket boundaries that Prometheus computes with its
// own bound tables, which may differ from math.Pow in the last bit.
func nearlyEqual(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}
