package prwautoexport_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goBlock matches a fenced Go code block of a Markdown file.
var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

// TestReadmeSnippetsCompile compiles (go vet) every Go snippet of the
// repository's README, each a whole program, so that what users copy
// works. It lives in this module because this module's dependencies cover
// every snippet: the exporter, the SDK, semconv and contrib's autoexport.
func TestReadmeSnippetsCompile(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlock.FindAllSubmatch(readme, -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d Go snippets in README.md, want the quick start, authentication and autoexport ones at least", len(blocks))
	}
	// A directory the go command's ./... patterns ignore (leading "_"),
	// inside this module so the snippets resolve its dependencies.
	dir, err := os.MkdirTemp(".", "_readme")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var pkgs []string
	for i, b := range blocks {
		src := string(b[1])
		if !strings.HasPrefix(src, "package ") {
			t.Errorf("README snippet %d is not a whole program (it must start with a package clause):\n%s", i+1, src)
			continue
		}
		pkg := filepath.Join(dir, fmt.Sprintf("snippet%d", i+1))
		if err := os.Mkdir(pkg, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, "./"+filepath.ToSlash(pkg))
	}
	cmd := exec.Command("go", append([]string{"vet"}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("README snippets do not compile (snippetN is the Nth Go block of README.md):\n%s", out)
	}
}
