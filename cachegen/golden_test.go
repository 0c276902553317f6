package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/repocache/repocache/cachegen/internal/gen/cli"
	"github.com/repocache/repocache/cachegen/internal/gen/diag"
)

var update = flag.Bool("update", false, "rewrite the golden files (want.go, want.stderr) of testdata/")

// TestGolden runs the generator on each case under testdata/, from the
// case's directory as go generate would. A case holds a package, an
// optional args file (the flags, on one line), and either want.go, the
// expected output, or want.stderr, the expected diagnostics. Every output
// has been type-checked with its package by the generator itself.
func TestGolden(t *testing.T) {
	root, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			// In parallel: each case loads and type-checks a package, which
			// under -race takes seconds. So no Chdir: the case's paths are
			// made absolute, as go generate's working directory would make
			// them.
			t.Parallel()
			var args []string
			if b, err := os.ReadFile(filepath.Join(dir, "args")); err == nil {
				args = strings.Fields(string(b))
			}
			cfg, err := cli.Configure(args, dir)
			if err != nil {
				t.Fatal(err)
			}
			if !filepath.IsAbs(cfg.Dir) {
				cfg.Dir = filepath.Join(dir, cfg.Dir)
			}
			if !filepath.IsAbs(cfg.Out) {
				cfg.Out = filepath.Join(dir, cfg.Out)
			}
			var diags diag.List
			src, err := cli.Generate(cfg, &diags)
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			diags.Print(&stderr, dir)
			wantFile, got := filepath.Join(dir, "want.go"), src
			if diags.Len() > 0 {
				wantFile, got = filepath.Join(dir, "want.stderr"), stderr.Bytes()
			}
			if *update {
				for _, f := range []string{filepath.Join(dir, "want.go"), filepath.Join(dir, "want.stderr")} {
					if f != wantFile {
						os.Remove(f)
					}
				}
				if err := os.WriteFile(wantFile, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v\n(got %s:)\n%s", err, wantFile, got)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", wantFile, diff)
			}
		})
	}
}
