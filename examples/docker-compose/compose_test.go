// Package compose holds the checks of the docker-compose demo. Docker cannot
// run in CI, so these tests validate the files instead: the compose file's
// structure, the Grafana provisioning and dashboard, and that the
// Dockerfile builds the binary with the same `go build` command.
package compose

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The series the five instruments of examples/basic arrive under; the
// dashboard must chart every one.
var demoMetrics = []string{
	"demo_requests_total",
	"demo_queue_length",
	"demo_cpu_utilization_ratio",
	"demo_request_duration_seconds_bucket",
	"demo_payload_size_bytes",
}

const repoRoot = "../.."

func TestComposeFile(t *testing.T) {
	doc := parseYAMLFile(t, "docker-compose.yml")
	services := get[map[string]any](t, doc, "services")
	for _, name := range []string{"app", "prometheus", "grafana"} {
		if _, ok := services[name]; !ok {
			t.Fatalf("service %q missing; services: %v", name, keys(services))
		}
	}

	t.Run("app", func(t *testing.T) {
		ctx := get[string](t, doc, "services", "app", "build", "context")
		dockerfile := get[string](t, doc, "services", "app", "build", "dockerfile")
		abs := func(p string) string { a, _ := filepath.Abs(p); return a }
		if abs(filepath.Join(ctx)) != abs(repoRoot) {
			t.Errorf("build context %q is not the repository root", ctx)
		}
		if abs(filepath.Join(ctx, dockerfile)) != abs("Dockerfile") {
			t.Errorf("build dockerfile %q (from context %q) is not this directory's Dockerfile", dockerfile, ctx)
		}
		cmd := strs(t, get[[]any](t, doc, "services", "app", "command"))
		i := slices.Index(cmd, "-endpoint")
		if i < 0 || i+1 >= len(cmd) {
			t.Fatalf("app command %q has no -endpoint", cmd)
		}
		if want := "http://prometheus:9090/api/v1/write"; cmd[i+1] != want {
			t.Errorf("app sends to %q, want %q", cmd[i+1], want)
		}
		// Every flag in the command must be one the demo defines.
		src, err := os.ReadFile(filepath.Join(repoRoot, "examples/basic/main.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, arg := range cmd {
			if name, ok := strings.CutPrefix(arg, "-"); ok && !strings.Contains(string(src), strconv.Quote(name)) {
				t.Errorf("app command uses flag %s, which examples/basic does not define", arg)
			}
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		cmd := strs(t, get[[]any](t, doc, "services", "prometheus", "command"))
		if !slices.Contains(cmd, "--web.enable-remote-write-receiver") {
			t.Errorf("prometheus command %q lacks --web.enable-remote-write-receiver", cmd)
		}
		features := ""
		for _, c := range cmd {
			if f, ok := strings.CutPrefix(c, "--enable-feature="); ok {
				features += f + ","
			}
		}
		if !slices.Contains(strings.Split(features, ","), "native-histograms") {
			t.Errorf("prometheus command %q does not enable native-histograms", cmd)
		}
		if ports := strs(t, get[[]any](t, doc, "services", "prometheus", "ports")); !slices.Contains(ports, "9090:9090") {
			t.Errorf("prometheus ports %q lack 9090:9090", ports)
		}
	})

	t.Run("grafana", func(t *testing.T) {
		if ports := strs(t, get[[]any](t, doc, "services", "grafana", "ports")); !slices.Contains(ports, "3000:3000") {
			t.Errorf("grafana ports %q lack 3000:3000", ports)
		}
		env := get[map[string]any](t, doc, "services", "grafana", "environment")
		if env["GF_AUTH_ANONYMOUS_ENABLED"] != "true" {
			t.Errorf("anonymous access not enabled: a login would be needed")
		}
		mounts := map[string]string{} // container path → host path
		for _, v := range strs(t, get[[]any](t, doc, "services", "grafana", "volumes")) {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Fatalf("volume %q is not host:container", v)
			}
			if _, err := os.Stat(parts[0]); err != nil {
				t.Errorf("volume %q: host path missing: %v", v, err)
			}
			mounts[parts[1]] = parts[0]
		}
		for _, dir := range []string{"/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards"} {
			if mounts[dir] == "" {
				t.Errorf("nothing mounted at %s", dir)
			}
		}
		// The home dashboard must be a file inside a mounted directory.
		home, _ := env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].(string)
		host := mounts[filepath.Dir(home)]
		if host == "" {
			t.Fatalf("home dashboard %q is not in a mounted directory", home)
		}
		if _, err := os.Stat(filepath.Join(host, filepath.Base(home))); err != nil {
			t.Errorf("home dashboard: %v", err)
		}
	})
}

// Grafana reads provisioning files as YAML; ours are written in JSON
// syntax (valid YAML) so that they can be parsed exactly here.
func TestGrafanaProvisioning(t *testing.T) {
	compose := parseYAMLFile(t, "docker-compose.yml")
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name, Type, UID, Access, URL string
			IsDefault                    bool `json:"isDefault"`
		} `json:"datasources"`
	}
	readJSON(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources file: %+v", ds)
	}
	d := ds.Datasources[0]
	if d.Type != "prometheus" || d.URL != "http://prometheus:9090" || !d.IsDefault || d.UID == "" {
		t.Errorf("datasource = %+v, want the default prometheus at http://prometheus:9090 with a uid", d)
	}

	var prov struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct{ Path string }
		} `json:"providers"`
	}
	readJSON(t, "grafana/provisioning/dashboards/dashboards.yml", &prov)
	if prov.APIVersion != 1 || len(prov.Providers) != 1 || prov.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers file: %+v", prov)
	}
	// The provider's path must be where compose mounts the dashboards.
	mounted := false
	for _, v := range strs(t, get[[]any](t, compose, "services", "grafana", "volumes")) {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == prov.Providers[0].Options.Path {
			mounted = true
			var files []string
			entries, err := os.ReadDir(parts[0])
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				files = append(files, e.Name())
			}
			if !slices.Contains(files, "prwmetric-demo.json") {
				t.Errorf("%s holds %q, not the demo dashboard", parts[0], files)
			}
		}
	}
	if !mounted {
		t.Errorf("dashboard provider path %q is not mounted in the grafana service", prov.Providers[0].Options.Path)
	}

	t.Run("dashboard", func(t *testing.T) {
		type ref struct{ Type, UID string }
		var dash struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				ID         int    `json:"id"`
				Title      string `json:"title"`
				Datasource ref    `json:"datasource"`
				Targets    []struct {
					Expr       string `json:"expr"`
					Datasource ref    `json:"datasource"`
				} `json:"targets"`
			} `json:"panels"`
		}
		readJSON(t, "grafana/dashboards/prwmetric-demo.json", &dash)
		if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
			t.Fatalf("dashboard lacks uid, title or panels: %+v", dash)
		}
		ids := map[int]bool{}
		var exprs []string
		for _, p := range dash.Panels {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Datasource.UID != d.UID {
				t.Errorf("panel %q uses datasource uid %q, provisioned is %q", p.Title, p.Datasource.UID, d.UID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Datasource.UID != d.UID {
					t.Errorf("query %q uses datasource uid %q, provisioned is %q", tg.Expr, tg.Datasource.UID, d.UID)
				}
				if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
					t.Errorf("query %q has unbalanced parentheses", tg.Expr)
				}
				exprs = append(exprs, tg.Expr)
			}
		}
		all := strings.Join(exprs, "\n")
		for _, m := range demoMetrics {
			if !regexp.MustCompile(`\b` + m + `\b`).MatchString(all) {
				t.Errorf("no panel charts %s", m)
			}
		}
	})
}

// TestDockerfileBuild runs the Dockerfile's `go build` command here, from
// the repository root, so the image builds the binary the way `go build`
// does; and checks the Go image is new enough for go.mod.
func TestDockerfileBuild(t *testing.T) {
	lines := dockerfileLines(t)
	var build []string
	var goImage string
	for _, l := range lines {
		fields := strings.Fields(l)
		switch {
		case len(fields) >= 2 && fields[0] == "FROM" && strings.HasPrefix(fields[1], "golang:"):
			goImage = strings.TrimPrefix(fields[1], "golang:")
		case len(fields) >= 2 && fields[0] == "RUN" && slices.Contains(fields, "build") && slices.Contains(fields, "go"):
			build = fields[1:]
		}
	}
	if build == nil {
		t.Fatal("Dockerfile has no RUN … go build line")
	}
	if pkg := build[len(build)-1]; pkg != "./examples/basic" {
		t.Fatalf("Dockerfile builds %q, want ./examples/basic", pkg)
	}

	t.Run("image matches go.mod", func(t *testing.T) {
		mod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(mod))
		img := regexp.MustCompile(`^(\d+)\.(\d+)`).FindStringSubmatch(goImage)
		if m == nil || img == nil {
			t.Fatalf("cannot compare go.mod's go directive with image golang:%s", goImage)
		}
		if atoi(img[1]) < atoi(m[1]) || atoi(img[1]) == atoi(m[1]) && atoi(img[2]) < atoi(m[2]) {
			t.Errorf("image golang:%s is older than go.mod's go %s.%s", goImage, m[1], m[2])
		}
	})

	t.Run("go build", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds the demo binary")
		}
		// Leading VAR=value words are the environment, the rest the command.
		var env, args []string
		for _, f := range build {
			if len(args) == 0 && strings.Contains(f, "=") {
				env = append(env, f)
				continue
			}
			args = append(args, f)
		}
		if len(args) < 2 || args[0] != "go" || args[1] != "build" {
			t.Fatalf("unexpected build line %q", build)
		}
		out := filepath.Join(t.TempDir(), "basic")
		for i := range args {
			if args[i] == "-o" && i+1 < len(args) {
				args[i+1] = out
			}
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(build, " "), err, b)
		}
		if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
			t.Fatalf("no binary at %s: %v", out, err)
		}
	})
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func dockerfileLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// get walks nested mappings and returns the value at path as T.
func get[T any](t *testing.T, doc any, path ...string) T {
	t.Helper()
	cur := doc
	for i, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s is not a mapping", strings.Join(path[:i], "."))
		}
		if cur, ok = m[p]; !ok {
			t.Fatalf("%s missing", strings.Join(path[:i+1], "."))
		}
	}
	v, ok := cur.(T)
	if !ok {
		var zero T
		t.Fatalf("%s is %T, want %T", strings.Join(path, "."), cur, zero)
	}
	return v
}

func strs(t *testing.T, list []any) []string {
	t.Helper()
	out := make([]string, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("item %d of %v is %T, want a string", i, list, v)
		}
		out[i] = s
	}
	return out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The main module has no YAML parser, so the compose file is read by this
// small reader of the YAML subset it uses: block mappings and sequences by
// indentation, flow sequences on one line, plain and quoted scalars, and
// comments. Anything else is an error, so the file can't drift into YAML
// this test doesn't check.

type yamlLine struct {
	n      int // 1-based line number
	indent int
	text   string
}

func parseYAMLFile(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseYAML(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func parseYAML(src string) (any, error) {
	var lines []yamlLine
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		if strings.Contains(raw, "\t") {
			return nil, fmt.Errorf("line %d: tab in indentation or content", n)
		}
		text := strings.TrimRight(stripComment(raw), " ")
		if strings.TrimSpace(text) == "" {
			continue
		}
		trimmed := strings.TrimLeft(text, " ")
		lines = append(lines, yamlLine{n: n, indent: len(text) - len(trimmed), text: trimmed})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	p := &yamlParser{lines: lines}
	v, err := p.block(0)
	if err == nil && p.pos < len(p.lines) {
		err = fmt.Errorf("line %d: unexpected indentation", p.lines[p.pos].n)
	}
	return v, err
}

// stripComment removes a # comment that is not inside quotes.
func stripComment(s string) string {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' '):
			return s[:i]
		}
	}
	return s
}

type yamlParser struct {
	lines []yamlLine
	pos   int
}

// block parses the mapping or sequence whose lines start at indent.
func (p *yamlParser) block(indent int) (any, error) {
	if p.pos >= len(p.lines) {
		return nil, fmt.Errorf("unexpected end of file")
	}
	first := p.lines[p.pos]
	if first.indent != indent {
		return nil, fmt.Errorf("line %d: indentation %d, want %d", first.n, first.indent, indent)
	}
	if strings.HasPrefix(first.text, "- ") || first.text == "-" {
		var seq []any
		for p.pos < len(p.lines) && p.lines[p.pos].indent == indent && strings.HasPrefix(p.lines[p.pos].text, "-") {
			l := p.lines[p.pos]
			item := strings.TrimSpace(strings.TrimPrefix(l.text, "-"))
			if item == "" || isMapEntry(item) {
				return nil, fmt.Errorf("line %d: only scalar sequence items are supported", l.n)
			}
			v, err := scalar(item, l.n)
			if err != nil {
				return nil, err
			}
			seq = append(seq, v)
			p.pos++
		}
		return seq, nil
	}
	m := map[string]any{}
	for p.pos < len(p.lines) && p.lines[p.pos].indent == indent {
		l := p.lines[p.pos]
		key, rest, ok := strings.Cut(l.text, ":")
		if !ok || key == "" || (rest != "" && rest[0] != ' ') {
			return nil, fmt.Errorf("line %d: want key: value, got %q", l.n, l.text)
		}
		key, _ = unquote(key)
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: key %q repeated", l.n, key)
		}
		p.pos++
		rest = strings.TrimSpace(rest)
		if rest != "" {
			v, err := scalarOrFlow(rest, l.n)
			if err != nil {
				return nil, err
			}
			m[key] = v
			continue
		}
		if p.pos >= len(p.lines) || p.lines[p.pos].indent <= indent {
			m[key] = nil
			continue
		}
		v, err := p.block(p.lines[p.pos].indent)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
	return m, nil
}

func isMapEntry(s string) bool {
	if s[0] == '"' || s[0] == '\'' {
		return false
	}
	k, _, ok := strings.Cut(s, ": ")
	return ok && !strings.ContainsAny(k, " ") || strings.HasSuffix(s, ":")
}

func scalarOrFlow(s string, n int) (any, error) {
	if !strings.HasPrefix(s, "[") {
		return scalar(s, n)
	}
	if !strings.HasSuffix(s, "]") {
		return nil, fmt.Errorf("line %d: flow sequence must close on the same line", n)
	}
	inner := strings.TrimSpace(s[1 : len(s)-1])
	var out []any
	if inner == "" {
		return out, nil
	}
	for _, item := range splitFlow(inner) {
		v, err := scalar(strings.TrimSpace(item), n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// splitFlow splits a flow sequence's content on commas outside quotes.
func splitFlow(s string) []string {
	var parts []string
	var quote rune
	start := 0
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == ',':
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func scalar(s string, n int) (any, error) {
	if strings.ContainsAny(s[:1], "{[&*!|>%@`") {
		return nil, fmt.Errorf("line %d: unsupported YAML %q", n, s)
	}
	v, err := unquote(s)
	if err != nil {
		return nil, fmt.Errorf("line %d: %v", n, err)
	}
	return v, nil
}

func unquote(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		return strconv.Unquote(s)
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return "", fmt.Errorf("unterminated quote in %s", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	default:
		return s, nil
	}
}

// TestYAMLReader keeps the reader honest on the constructs it claims.
func TestYAMLReader(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    string // fmt of the result
		wantErr string
	}{
		{name: "nested", give: "a:\n  b: c # comment\n  d:\n    - \"x:y\"\n    - 'z'\ne: [\"1\", two]\n",
			want: "map[a:map[b:c d:[x:y z]] e:[1 two]]"},
		{name: "bad indent", give: "a:\n  b: c\n   d: e\n", wantErr: "unexpected indentation"},
		{name: "repeated key", give: "a: 1\na: 2\n", wantErr: `key "a" repeated`},
		{name: "map in sequence", give: "a:\n  - b: c\n", wantErr: "only scalar sequence items"},
		{name: "anchor", give: "a: &x b\n", wantErr: "unsupported YAML"},
		{name: "tab", give: "a:\n\tb: c\n", wantErr: "tab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseYAML(tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if s := fmt.Sprint(got); s != tt.want {
				t.Errorf("got %s, want %s", s, tt.want)
			}
		})
	}
}
