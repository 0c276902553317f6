package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemo runs the main job as `make demo` does (embedded defaults unless
// REDIS_URL or DATABASE_URL are set) and checks its report.
func TestDemo(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("DATABASE_URL", "")
	var out bytes.Buffer
	if err := run(context.Background(), nil, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"same read: a hit", "write-through", "invalidated  project:", "the cached not-found, no query", "429  a fourth", "retry after"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	m := regexp.MustCompile(`summary: (\d+) hits, (\d+) misses, (\d+) loads`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no summary:\n%s", got)
	}
	hits, _ := strconv.Atoi(m[1])
	loads, _ := strconv.Atoi(m[3])
	if hits < 15 || loads == 0 || loads >= hits {
		t.Fatalf("summary %q: want mostly hits", m[0])
	}
}
