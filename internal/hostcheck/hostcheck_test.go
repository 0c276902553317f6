// Package hostcheck proves that a service which imports repocache's runtime
// (what generated decorators import) keeps the versions of everything else
// it requires: the runtime's module requires go-redis, msgpack and the
// test harness's miniredis, not GORM, its drivers or golang.org/x/tools,
// which live in modules of their own (runtime/orm, cachegen, examples).
package hostcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The host pins older versions of modules that repocache's other modules
// use at newer ones, and a go line below 1.24 (where vet's printf check
// grew stricter), as the Git forge of issue 14 did.
var pinned = map[string]string{
	"gorm.io/gorm":            "v1.25.0",
	"github.com/jackc/pgx/v5": "v5.4.0",
	"golang.org/x/tools":      "v0.13.0",
}

func TestHostRequirementsUnchanged(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads modules; skipped with -short")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	var req strings.Builder
	for m, v := range pinned {
		req.WriteString("\t" + m + " " + v + "\n")
	}
	gomod := "module example.com/host\n\ngo 1.23.0\n\nrequire (\n" + req.String() +
		"\tgithub.com/repocache/repocache v0.0.0\n)\n\nreplace github.com/repocache/repocache => " + repo + "\n"
	main := `package main

import (
	_ "github.com/jackc/pgx/v5"
	_ "golang.org/x/tools/go/ast/astutil"
	_ "gorm.io/gorm"

	_ "github.com/repocache/repocache/runtime"
)

func main() {}
`
	for name, body := range map[string]string{"go.mod": gomod, "main.go": main} {
		if err := os.WriteFile(filepath.Join(host, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = host
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	for _, line := range strings.Split(run("list", "-m", "all"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if want, ok := pinned[f[0]]; ok && f[1] != want {
			t.Errorf("importing repocache's runtime moved the host's %s from %s to %s", f[0], want, f[1])
		}
	}
	b, err := os.ReadFile(filepath.Join(host, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\ngo 1.23.0\n") {
		t.Errorf("the host's go line moved:\n%s", b)
	}
	for _, heavy := range []string{"gorm.io/driver", "glebarez", "dave/jennifer", "go.uber.org/mock"} {
		if strings.Contains(string(b), heavy) {
			t.Errorf("the host's go.mod now requires %s, which the runtime does not use:\n%s", heavy, b)
		}
	}
}
