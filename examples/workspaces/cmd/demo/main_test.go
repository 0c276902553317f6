package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/orm"
)

// demo runs the main job as `make demo` does, on the embedded defaults,
// and returns its report.
func demo(t *testing.T, args ...string) string {
	t.Helper()
	t.Setenv("REDIS_URL", "")
	t.Setenv("DATABASE_URL", "")
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return out.String()
}

// speedLine parses the report's comparison of the same reads through the
// cache and straight from the database.
var speedLine = regexp.MustCompile(`speed: same (\d+) reads, median of (\d+) rounds: (\S+) through the cache \(([^)]*)\), (\S+) straight from the database, ([\d.]+)x (faster|slower through the cache)`)

// parseSpeed returns the two medians and the ratio the report printed,
// checking that they are positive and agree with each other.
func parseSpeed(t *testing.T, report string) (cached, direct time.Duration, ratio float64) {
	t.Helper()
	m := speedLine.FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("no speed line:\n%s", report)
	}
	cached, err1 := time.ParseDuration(m[3])
	direct, err2 := time.ParseDuration(m[5])
	ratio, err3 := strconv.ParseFloat(m[6], 64)
	if err := errors.Join(err1, err2, err3); err != nil || cached <= 0 || direct <= 0 || ratio <= 0 {
		t.Fatalf("speed line %q: %v", m[0], err)
	}
	if want := float64(direct) / float64(cached); math.Abs(want-ratio) > 0.05+0.005*want {
		t.Errorf("speed line %q: ratio %.2f, but its times give %.2f", m[0], ratio, want)
	}
	if m[4] != "all hits" {
		t.Errorf("speed line %q: the timed reads through the cache were not all hits", m[0])
	}
	if (ratio >= 1) != (m[7] == "faster") {
		t.Errorf("speed line %q: says %q at %.1fx", m[0], m[7], ratio)
	}
	return cached, direct, ratio
}

// TestDemo checks the report of the scripted workload: X-Cache on each
// request, one MGET line and one load line for a batch, the key or tag of
// each invalidation, a readable missing ID, the speed comparison and what
// the cache saved.
func TestDemo(t *testing.T) {
	got := demo(t)
	for _, want := range []string{
		"200 miss    first read", "200 hit     same read: a hit", "404 hit     again: the cached not-found",
		"/projects/999999 ", "429 bypass  a fourth", "retry after",
		"\nwhere to look: the API stopped with the demo; make demo DEMOFLAGS=-serve keeps it up", "\nlive page: /debug/cache ",
		"\nmetrics:   /metrics ", "\nstats:     /stats ", "\nhealth:    /healthz ", "\notel:      off: make demo DEMOFLAGS=-otel ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(got, "1099511627776") {
		t.Error("the missing project's ID is 1<<40 again")
	}

	// The first batch: one MGET line with its one latency and the key it
	// hit, one load line naming the two keys it loaded.
	batch := regexp.MustCompile(`(?m)^GET +/projects\?ids=(\d+),(\d+),(\d+) +200 miss .*\n +mget +project:(\d+) project:(\d+) project:(\d+) +(\S+)  hit: project:(\d+)\n +db load +project:(\d+) project:(\d+) +(\S+)  one query\n +stored +project:\d+ project:\d+\n\n`)
	m := batch.FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no batch block of one mget, one load and one store:\n%s", got)
	}
	if m[1] != m[4] || m[2] != m[5] || m[3] != m[6] || m[8] != m[2] || m[9] != m[1] || m[10] != m[3] {
		t.Errorf("batch block names the wrong keys: %q", m[0])
	}
	for _, d := range []string{m[7], m[11]} {
		if v, err := time.ParseDuration(d); err != nil || v <= 0 {
			t.Errorf("batch block latency %q: %v", d, err)
		}
	}
	again := regexp.MustCompile(`(?m)^GET +/projects\?ids=\S+ +200 hit .*\n +mget +project:\d+ project:\d+ project:\d+ +\S+  hit: all 3\n\n`)
	if !again.MatchString(got) {
		t.Errorf("the second batch is not one mget line that hit all 3:\n%s", got)
	}

	// Invalidations name their key or tag.
	for _, re := range []string{
		`(?m)^PATCH +/projects/(\d+) +200 bypass .*\n +dropped +2 keys by tag project:(\d+)\n +stored +project:\d+\n`,
		`(?m)^POST +/workspaces/(\d+)/projects +201 bypass .*\n +dropped +nothing by tag project:\d+ \(no cached key carried it\)\n +dropped +1 key by tag workspace:(\d+):projects\n`,
		`(?m)^DELETE +/workspaces/(\d+)/projects/(\d+) +204 bypass .*\n +dropped +project:(\d+) \(the key\)\n +dropped +1 key by tag project:(\d+)\n +dropped +nothing by tag workspace:(\d+):projects`,
	} {
		m := regexp.MustCompile(re).FindStringSubmatch(got)
		if m == nil {
			t.Errorf("no block matching %s:\n%s", re, got)
			continue
		}
		for i := 2; i < len(m); i++ { // each names the IDs of its path
			if m[i] != m[1] && (len(m) < 4 || m[i] != m[2]) {
				t.Errorf("block %q names another ID (%s)", m[0], m[i])
			}
		}
	}

	parseSpeed(t, got)
	m = regexp.MustCompile(`summary: (\d+) requests; (\d+) hits, (\d+) misses, (\d+) loads`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no summary:\n%s", got)
	}
	hits, _ := strconv.Atoi(m[2])
	loads, _ := strconv.Atoi(m[4])
	if hits < 15 || loads == 0 || loads >= hits {
		t.Fatalf("summary %q: want mostly hits", m[0])
	}
	m = regexp.MustCompile(`saved: +(\d+) of (\d+) reads through the cache ran no database query \(X-Cache: hit\); (\d+) did \(miss\)\n +at the speeds measured above, (about (\S+) of database time saved|no time saved: about (\S+) more)`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no saved line:\n%s", got)
	}
	hit, _ := strconv.Atoi(m[1])
	reads, _ := strconv.Atoi(m[2])
	miss, _ := strconv.Atoi(m[3])
	if hit == 0 || hit+miss != reads || miss != loads {
		t.Errorf("saved %q: want hits, and one miss per load (%d loads)", m[0], loads)
	}
}

// TestDemoDBLatency: with a millisecond before every statement, 20 hits
// must beat 20 queries, and the report says so.
func TestDemoDBLatency(t *testing.T) {
	got := demo(t, "-dblatency=2ms")
	if !strings.Contains(got, "database: 2ms added before every statement (-dblatency)") {
		t.Errorf("report does not say the latency is simulated:\n%s", got)
	}
	_, direct, ratio := parseSpeed(t, got)
	if direct < 20*2*time.Millisecond || ratio <= 1 {
		t.Errorf("20 reads at 2ms a statement took %s straight from the database, %.1fx", direct, ratio)
	}
	if !strings.Contains(got, "of database time saved") {
		t.Errorf("no time saved reported:\n%s", got)
	}
}

// TestHelp: -h prints the usage and is not an error (the command exits 0).
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out); err != nil {
		t.Fatalf("run -h = %v, want nil", err)
	}
	if !strings.Contains(out.String(), "-dblatency") {
		t.Errorf("-h printed no usage:\n%s", out.String())
	}
	if err := run(context.Background(), []string{"-nosuchflag"}, &out); err == nil {
		t.Error("an unknown flag is not an error")
	}
	if err := run(context.Background(), []string{"-otel-out", "x"}, &out); err == nil || !strings.Contains(err.Error(), "-otel") {
		t.Errorf("-otel-out without -otel: %v, want an error", err)
	}
}

// watcher is a report writer a test can wait on.
type watcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return w.buf.Write(p)
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor returns the first match of re in what was written, waiting for
// writes until it appears (or failing after a minute).
func (w *watcher) waitFor(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		if m := rx.FindStringSubmatch(w.String()); m != nil {
			return m
		}
		select {
		case <-w.wrote:
		case <-timeout.C:
			t.Fatalf("no %s in:\n%s", re, w.String())
		}
	}
}

// TestServe: after the script, -serve prints each request with its cache
// events until the context ends.
func TestServe(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("DATABASE_URL", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &watcher{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-serve"}, w) }()
	m := w.waitFor(t, `try: curl -i (http://\S+)/workspaces/(\d+)/projects`)
	base, ws := m[1], m[2]
	for range 2 {
		resp, err := http.Get(fmt.Sprintf("%s/workspaces/%s/projects", base, ws))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if xc := resp.Header.Get("X-Cache"); resp.StatusCode != 200 || (xc != "hit" && xc != "miss") {
			t.Fatalf("GET: %d, X-Cache %q", resp.StatusCode, xc)
		}
	}
	line := fmt.Sprintf(`GET +/workspaces/%s/projects +200 hit\n +hit +workspace:%s:projects +\S+\n`, ws, ws)
	w.waitFor(t, `(?s)until interrupted.*`+line)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(w.String(), "stopped\n") {
		t.Errorf("-serve did not stop on the context's end:\n%s", w.String())
	}
}

// TestReportLines checks the lines of a batch and of an invalidation from
// events as the runtime emits them, latencies included.
func TestReportLines(t *testing.T) {
	us := time.Microsecond
	batch := lines(request{"GET", "/projects"}, []runtime.Event{
		{Op: runtime.OpMiss, Key: "project:1", Duration: 40 * us},
		{Op: runtime.OpHit, Key: "project:2", Duration: 55 * us},
		{Op: runtime.OpMiss, Key: "project:3", Duration: 61 * us},
		{Op: runtime.OpLoad, Key: "project:1", Duration: 146 * us},
		{Op: runtime.OpSet, Key: "project:1"},
		{Op: runtime.OpSet, Key: "project:3"},
	})
	want := []string{
		"mget     project:1 project:2 project:3            61µs  hit: project:2",
		"db load  project:1 project:3                     146µs  one query",
		"stored   project:1 project:3",
	}
	if strings.Join(batch, "\n") != strings.Join(want, "\n") {
		t.Errorf("batch:\n%s\nwant:\n%s", strings.Join(batch, "\n"), strings.Join(want, "\n"))
	}

	del := lines(request{"DELETE", "/workspaces/1/projects/7"}, []runtime.Event{
		{Op: runtime.OpInvalidate, Key: "project:7", Count: 1},
		{Op: runtime.OpInvalidate, Key: "project:7", Count: 2},
		{Op: runtime.OpInvalidate, Key: "workspace:1:projects"},
	})
	want = []string{
		"dropped  project:7 (the key)",
		"dropped  2 keys by tag project:7",
		"dropped  nothing by tag workspace:1:projects (no cached key carried it)",
	}
	if strings.Join(del, "\n") != strings.Join(want, "\n") {
		t.Errorf("delete:\n%s\nwant:\n%s", strings.Join(del, "\n"), strings.Join(want, "\n"))
	}

	// Outside a batch, a single read: its own lines; a not-found load says so.
	one := lines(request{"GET", "/projects/9"}, []runtime.Event{
		{Op: runtime.OpMiss, Key: "project:9", Duration: 50 * us},
		{Op: runtime.OpLoad, Key: "project:9", Duration: 95 * us, Err: orm.ErrNotFound},
		{Op: runtime.OpSet, Key: "project:9"},
	})
	want = []string{
		"miss     project:9                                50µs",
		"db load  project:9                                95µs  not found",
		"stored   project:9",
	}
	if strings.Join(one, "\n") != strings.Join(want, "\n") {
		t.Errorf("single read:\n%s\nwant:\n%s", strings.Join(one, "\n"), strings.Join(want, "\n"))
	}
}
