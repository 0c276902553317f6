package main

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/repocache/repocache/cachegen/internal/gen/cli"
)

// TestHelpDirectivesIsGoDoc: what cachegen -help-directives prints (from the
// doc.go that the command embeds) is what go doc shows for the package, so
// that the reference has one text.
func TestHelpDirectivesIsGoDoc(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go doc; skipped with -short")
	}
	old := cli.Doc
	t.Cleanup(func() { cli.Doc = old })
	cli.Doc = doc
	var stdout, stderr bytes.Buffer
	if code := cli.Run([]string{"-help-directives"}, &stdout, &stderr); code != 0 || stderr.Len() > 0 {
		t.Fatalf("cachegen -help-directives = %d\n%s", code, stderr.String())
	}
	cmd := exec.Command("go", "doc", ".")
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("go doc: %v", err)
	}
	if diff := cmp.Diff(string(want), stdout.String()); diff != "" {
		t.Errorf("cachegen -help-directives differs from go doc (-go doc +flag):\n%s", diff)
	}
}
