package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/repocache/repocache/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestEndToEnd copies testdata/e2e into a temporary module that requires
// this repository's two modules, the runtime's and cachegen's (replace
// directives, their go.sums; go mod tidy
// fetches what the module cache lacks through the module proxy, as on a
// fresh machine),
// runs go generate there (the case says //go:generate go tool cachegen),
// checks the output against the golden file, vets the module and runs the
// case's behaviour tests against a real Redis, whose address and namespace
// it passes in RC_REDIS_ADDR and RC_NAMESPACE.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a module; skipped with -short")
	}
	b := redistest.Standalone(t)
	gen, err := filepath.Abs(".") // the cachegen module
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Dir(gen) // the runtime's module
	src := filepath.Join(gen, "testdata", "e2e")
	mod := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), "want.") {
			continue
		}
		copyFile(t, filepath.Join(src, e.Name()), filepath.Join(mod, e.Name()))
	}
	var sums []byte
	for _, dir := range []string{repo, gen} {
		b, err := os.ReadFile(filepath.Join(dir, "go.sum"))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, b...)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	gomod := "module example.com/e2e\n\ngo 1.26.0\n\n" +
		"require (\n\tgithub.com/repocache/repocache v0.0.0\n\tgithub.com/repocache/repocache/cachegen v0.0.0\n)\n\n" +
		"replace github.com/repocache/repocache => " + repo + "\n\n" +
		"replace github.com/repocache/repocache/cachegen => " + gen + "\n\n" +
		"tool github.com/repocache/repocache/cachegen\n"
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off", "GOTOOLCHAIN=local",
		"RC_REDIS_ADDR="+b.Addrs[0], "RC_NAMESPACE="+b.Namespace)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = mod, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("go %s:\n%s", strings.Join(args, " "), out)
	}

	run("mod", "tidy")
	run("generate", "./...")
	out := filepath.Join(mod, "cache_gen.go")
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(src, "want.go"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("go generate output differs from testdata/e2e/want.go (-want +got):\n%s", diff)
	}
	// A second run leaves the unchanged file alone.
	old := time.Unix(1, 0)
	if err := os.Chtimes(out, old, old); err != nil {
		t.Fatal(err)
	}
	run("generate", "./...")
	if fi, err := os.Stat(out); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("second go generate rewrote the unchanged file (%v)", err)
	}

	run("vet", "./...")
	run("test", "-count=1", "-v", "./...")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, bytes.Clone(b), 0o644); err != nil {
		t.Fatal(err)
	}
}
