package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/repocache/repocache/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestQuickstart(t *testing.T) {
	b := redistest.Standalone(t)
	if !b.Embedded {
		t.Setenv("REDIS_URL", "redis://"+b.Addrs[0])
	}
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"hits 51, misses 5, database queries 6",
		"invalidated project:2", "2 key(s) dropped",
		`-> "renamed"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
