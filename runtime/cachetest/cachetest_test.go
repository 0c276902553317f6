package cachetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
)

func TestMain(m *testing.M) { cachetest.Main(m) }

func get(t *testing.T, c *cachetest.Cache, key string, load func(context.Context) (string, error), opts ...runtime.CallOption) string {
	t.Helper()
	v, err := runtime.GetCached(context.Background(), c.Cache, key, load, append([]runtime.CallOption{runtime.TTL(time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCounts(t *testing.T) {
	c := cachetest.New(t)
	ctx := context.Background()
	load := func(context.Context) (string, error) { return "v", nil }
	get(t, c, "a", load, runtime.Tags("t"))
	get(t, c, "a", load, runtime.Tags("t"))
	c.AssertCounts(t, cachetest.Counts{Hits: 1, Misses: 1, Loads: 1, Sets: 1})
	if c.Hits() != 1 || c.Misses() != 1 || c.Loads() != 1 || c.Invalidated() != 0 {
		t.Errorf("getters: %v", c.Counts())
	}
	if got, want := c.Keys(), []string{"#tag:{t}", "a"}; !slices.Equal(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}

	c.Reset()
	if err := c.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	get(t, c, "a", load)
	c.AssertCounts(t, cachetest.Counts{Invalidated: 1, Misses: 1, Loads: 1, Sets: 1})

	c.Reset()
	boom := errors.New("boom")
	if _, err := runtime.GetCached(ctx, c.Cache, "b", func(context.Context) (string, error) { return "", boom }, runtime.TTL(time.Minute)); err != boom {
		t.Fatalf("err = %v", err)
	}
	c.AssertCounts(t, cachetest.Counts{Misses: 1, Loads: 1, LoadErrors: 1})
}

// TestWaitCountsBackgroundStores: without the kit's store wait, the store
// after a load finishes in the background; Wait sees it done.
func TestWaitCountsBackgroundStores(t *testing.T) {
	c := cachetest.New(t, runtime.WithStoreWait(0))
	load := func(context.Context) (string, error) { return "v", nil }
	get(t, c, "k", load)
	c.Wait()
	if n := c.Counts().Sets; n != 1 {
		t.Fatalf("sets after Wait = %d, want 1", n)
	}
	if v, err := c.Client().Exists(context.Background(), c.RedisKey("k")).Result(); err != nil || v != 1 {
		t.Fatalf("key after Wait: %d, %v", v, err)
	}
}

// fakeTB records what AssertCounts reports.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func TestAssertCountsReportsEveryField(t *testing.T) {
	c := cachetest.New(t)
	get(t, c, "a", func(context.Context) (string, error) { return "v", nil })
	f := &fakeTB{TB: t}
	c.AssertCounts(f, cachetest.Counts{Misses: 1, Loads: 1}) // Sets left out: must be 0
	want := "cachetest: counts are {misses 1, loads 1, sets 1}, want {misses 1, loads 1}"
	if len(f.errs) != 1 || f.errs[0] != want {
		t.Fatalf("reported %q, want %q", f.errs, want)
	}
}

// TestCleanupDeletesOnlyItsNamespace: a subtest's keys are gone after it,
// while a key outside its namespace, even under a namespace passed in opts,
// stays.
func TestCleanupDeletesOnlyItsNamespace(t *testing.T) {
	outer := cachetest.New(t)
	ctx := context.Background()
	raw := outer.Client()
	foreign := "cachetest-foreign:" + outer.Namespace()
	if err := raw.Set(ctx, foreign, "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Del(ctx, foreign) })
	var inner []string
	for _, name := range []string{"one", "two"} {
		t.Run(name, func(t *testing.T) {
			c := cachetest.New(t, runtime.WithNamespace("cachetest-foreign"))
			if !strings.HasPrefix(c.Namespace(), "cachetest:TestCleanupDeletesOnlyItsNamespace_"+name+":") {
				t.Errorf("namespace %q", c.Namespace())
			}
			get(t, c, "k", func(context.Context) (string, error) { return "v", nil }, runtime.Tags("t"))
			inner = append(inner, c.RedisKey("k"), c.RedisKey("#tag:{t}"))
		})
	}
	if inner[0] == inner[2] {
		t.Fatalf("two tests shared a namespace: %q", inner[0])
	}
	for _, k := range inner {
		if n, err := raw.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Errorf("%s after its test: exists=%d, %v", k, n, err)
		}
	}
	if n, err := raw.Exists(ctx, foreign).Result(); err != nil || n != 1 {
		t.Errorf("foreign key after the subtests: exists=%d, %v", n, err)
	}
}

// TestFallback runs this test binary again without REDIS_URL and without
// redis-server on PATH: the embedded miniredis is announced once and used;
// under CI=true it is refused.
func TestFallback(t *testing.T) {
	if os.Getenv("CACHETEST_CHILD") != "" {
		a, b := cachetest.New(t), cachetest.New(t)
		get(t, a, "k", func(context.Context) (string, error) { return "v", nil })
		get(t, b, "k", func(context.Context) (string, error) { return "v", nil })
		fmt.Printf("embedded=%v hits=%d\n", a.Embedded && b.Embedded, a.Hits()+b.Hits())
		return
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFallback$", "-test.count=1", "-test.v")
		cmd.Env = append(withoutEnv("REDIS_URL", "CI", "PATH"), "CACHETEST_CHILD=1", "PATH="+t.TempDir(), "CI="+ci)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		switch ci {
		case "":
			if err != nil || !strings.Contains(string(out), "embedded=true hits=0") {
				t.Errorf("without redis-server: %v\n%s\n%s", err, out, stderr.String())
			}
			if n := strings.Count(stderr.String(), "using the embedded miniredis"); n != 1 {
				t.Errorf("announced %d times on stderr, want once:\n%s", n, stderr.String())
			}
		default:
			if err == nil || !strings.Contains(string(out), "embedded fallback is refused under CI=true") {
				t.Errorf("under CI: %v\n%s", err, out)
			}
		}
	}
}

func withoutEnv(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			env = append(env, kv)
		}
	}
	return env
}
