package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/codec"
	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

type workspace struct {
	ID        string
	Name      string
	Plan      string
	Secret    string `json:"-"`
	UpdatedAt time.Time
	Members   []int64
}

// workspaceV2 is a later layout of workspace: entries of the old layout must
// be misses for it.
type workspaceV2 struct {
	ID        string
	Name      string
	Plan      string
	Secret    string `json:"-"`
	UpdatedAt time.Time
	Members   []int64
	Region    string
}

// loader counts its calls and returns the workspace for id.
type loader struct {
	calls atomic.Int64
	err   error
}

func (l *loader) load(id string) func(context.Context) (workspace, error) {
	return func(context.Context) (workspace, error) {
		l.calls.Add(1)
		if l.err != nil {
			return workspace{}, l.err
		}
		return workspace{ID: id, Name: "ws " + id, Plan: "pro", Secret: "s3cr3t",
			UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Members: []int64{1, 2}}, nil
	}
}

func newCache(b *redistest.Backend, opts ...runtime.Option) *runtime.Cache {
	return runtime.New(b.Client, append([]runtime.Option{runtime.WithNamespace(b.Namespace), runtime.WithLogger(discard)}, opts...)...)
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func TestHitAndMiss(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		var l loader
		want, _ := l.load("42")(ctx)
		l.calls.Store(0)
		for i := range 3 {
			got, err := runtime.GetCached(ctx, c, "workspace:42", l.load("42"), runtime.TTL(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, timeEqual); diff != "" {
				t.Fatalf("call %d (-want +got):\n%s", i, diff)
			}
			// The store after a miss runs in the background.
			if err := c.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n := l.calls.Load(); n != 1 {
			t.Fatalf("loader called %d times, want 1 (one miss, then hits)", n)
		}
		s, err := c.Stats(ctx)
		if err != nil && !b.Embedded {
			t.Fatal(err)
		}
		if s.Hits != 2 || s.Misses != 1 || s.Loads != 1 || s.Sets != 1 {
			t.Fatalf("stats = %+v, want 2 hits, 1 miss, 1 load, 1 set", s)
		}
		// The key is readable as written: <namespace>:<key>.
		if n, err := b.Client.Exists(ctx, b.Namespace+":workspace:42").Result(); err != nil || n != 1 {
			t.Fatalf("EXISTS %s:workspace:42 = %d, %v", b.Namespace, n, err)
		}
	})
}

func TestLoaderErrorsAreReturnedAndNotCached(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		sentinel := errors.New("db down")
		l := loader{err: fmt.Errorf("find: %w", sentinel)}
		for range 2 {
			_, err := runtime.GetCached(ctx, c, "ws:1", l.load("1"), runtime.TTL(time.Minute))
			if err != l.err {
				t.Fatalf("err = %v, want the loader's error value unchanged", err)
			}
		}
		if n := l.calls.Load(); n != 2 {
			t.Fatalf("loader called %d times, want 2: errors are not cached", n)
		}
	})
}

func TestNilPointerIsNotCached(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	c := newCache(b)
	var calls int
	load := func(context.Context) (*workspace, error) { calls++; return nil, nil }
	for range 2 {
		v, err := runtime.GetCached(ctx, c, "ws:nil", load, runtime.TTL(time.Minute))
		if err != nil || v != nil {
			t.Fatalf("got %v, %v", v, err)
		}
	}
	if calls != 2 {
		t.Fatalf("loader called %d times, want 2: a nil pointer is not-found and not cached", calls)
	}
}

func TestMisuseIsAnError(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	c := newCache(b)
	var l loader
	cases := []struct {
		key  string
		opts []runtime.CallOption
		want error
	}{
		{"k", nil, runtime.ErrNoTTL},
		{"k", []runtime.CallOption{runtime.TTL(-time.Second)}, runtime.ErrNoTTL},
		{"", []runtime.CallOption{runtime.TTL(time.Second)}, runtime.ErrInvalidKey},
		{"#tag:x", []runtime.CallOption{runtime.TTL(time.Second)}, runtime.ErrInvalidKey},
		{"k", []runtime.CallOption{runtime.TTL(time.Second), runtime.Tags("")}, runtime.ErrInvalidKey},
		{"k", []runtime.CallOption{runtime.TTL(time.Second), runtime.Lock(runtime.LockMode(9))}, runtime.ErrUnsupported},
	}
	for _, tc := range cases {
		if _, err := runtime.GetCached(ctx, c, tc.key, l.load("1"), tc.opts...); !errors.Is(err, tc.want) {
			t.Errorf("GetCached(%q, %d opts) err = %v, want %v", tc.key, len(tc.opts), err, tc.want)
		}
		if err := runtime.Set(ctx, c, tc.key, workspace{}, tc.opts...); !errors.Is(err, tc.want) {
			t.Errorf("Set(%q, %d opts) err = %v, want %v", tc.key, len(tc.opts), err, tc.want)
		}
	}
	if l.calls.Load() != 0 {
		t.Fatal("loader called on misuse")
	}
	keys, _ := b.Keys(ctx)
	if len(keys) != 0 {
		t.Fatalf("misuse wrote keys: %v", keys)
	}
}

func TestEveryKeyHasATTL(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		var l loader
		for i := range 20 {
			id := fmt.Sprint(i)
			if _, err := runtime.GetCached(ctx, c, "ws:"+id, l.load(id), runtime.TTL(time.Minute),
				runtime.Tags("ws:"+id, "all", "shard:"+fmt.Sprint(i%3))); err != nil {
				t.Fatal(err)
			}
			if err := runtime.Set(ctx, c, "list:"+id, []string{id}, runtime.TTL(time.Hour), runtime.Jitter(time.Minute), runtime.Tags("all")); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		keys, err := b.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var tagSets int
		for _, k := range keys {
			if strings.Contains(k, ":#tag:") {
				tagSets++
			}
			ttl, err := b.Client.PTTL(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if ttl <= 0 {
				t.Errorf("key %s has no expiry (PTTL %v)", k, ttl)
			}
		}
		if want := 40 + 20 + 1 + 3; len(keys) != want || tagSets != 24 {
			t.Fatalf("found %d keys (%d tag sets), want %d (24 tag sets): %v", len(keys), tagSets, want, keys)
		}
		// A tag set lives exactly as long as its longest-lived member.
		ttl, _ := b.Client.PTTL(ctx, b.Namespace+":#tag:{all}").Result()
		if ttl < time.Hour || ttl > time.Hour+time.Minute+2*time.Second {
			t.Fatalf("tag set TTL %v, want the longest member's (1h + jitter + margin)", ttl)
		}
	})
}

func TestJitterBounds(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	c := newCache(b)
	const ttl, jitter = 10 * time.Second, 5 * time.Second
	seen := map[time.Duration]bool{}
	for i := range 50 {
		key := fmt.Sprint("j:", i)
		if err := runtime.Set(ctx, c, key, i, runtime.TTL(ttl), runtime.Jitter(jitter)); err != nil {
			t.Fatal(err)
		}
		got, err := b.Client.PTTL(ctx, c.RedisKey(key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		// PTTL counts down from the moment of the SET: allow for the
		// round trip, not for anything past ttl+jitter.
		if got > ttl+jitter || got < ttl-time.Second {
			t.Fatalf("PTTL %v outside [ttl, ttl+jitter) = [%v, %v)", got, ttl, ttl+jitter)
		}
		seen[got.Round(100*time.Millisecond)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 jittered TTLs took only %d distinct values: jitter is not applied", len(seen))
	}
}

func TestTagsInvalidateExactlyTheirKeys(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		set := func(key string, tags ...string) {
			t.Helper()
			if err := runtime.Set(ctx, c, key, key, runtime.TTL(time.Minute), runtime.Tags(tags...)); err != nil {
				t.Fatal(err)
			}
		}
		set("a", "t1")
		set("b", "t1", "t2")
		set("c", "t2")
		set("d")
		set("e", "t1:x") // a tag that extends another must not be hit by it
		if err := c.InvalidateTags(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		assertKeys(t, b, c, map[string]bool{"a": false, "b": false, "c": true, "d": true, "e": true})
		// Invalidating an empty or unknown tag is not an error.
		if err := c.InvalidateTags(ctx, "t1", "never-used"); err != nil {
			t.Fatal(err)
		}
		// Tags are reusable after invalidation.
		set("a", "t1")
		if err := c.InvalidateTags(ctx, "t2", "t1"); err != nil {
			t.Fatal(err)
		}
		assertKeys(t, b, c, map[string]bool{"a": false, "c": false, "d": true, "e": true})
		if err := c.Invalidate(ctx, "d", "e", "missing"); err != nil {
			t.Fatal(err)
		}
		assertKeys(t, b, c, map[string]bool{"d": false, "e": false})
		// No drain keys are left behind: what remains is the tag set of "t1:x"
		// and, for each invalidated tag, a set that only remembers when it was
		// invalidated, for a minute.
		keys, _ := b.Keys(ctx)
		for _, k := range keys {
			members := b.Client.ZRange(ctx, k, 0, -1).Val()
			ttl := b.Client.PTTL(ctx, k).Val()
			switch {
			case strings.HasSuffix(k, "#tag:{t1:x}"):
				if len(members) != 1 {
					t.Errorf("%s holds %v", k, members)
				}
			case strings.Contains(k, ":#tag:{") && !strings.Contains(k, "drain"):
				if len(members) != 1 || members[0] != "#v" || ttl <= 0 || ttl > time.Minute {
					t.Errorf("%s holds %v with TTL %v, want only the invalidation marker", k, members, ttl)
				}
			default:
				t.Errorf("leftover key %s", k)
			}
		}
	})
}

func assertKeys(t *testing.T, b *redistest.Backend, c *runtime.Cache, want map[string]bool) {
	t.Helper()
	for k, exists := range want {
		n, err := b.Client.Exists(context.Background(), c.RedisKey(k)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if (n == 1) != exists {
			t.Errorf("key %q exists=%v, want %v", k, n == 1, exists)
		}
	}
}

func TestInvalidatePattern(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		for i := range 30 {
			for _, p := range []string{"user", "other"} {
				if err := runtime.Set(ctx, c, runtime.Key(p, fmt.Sprint(i)), i, runtime.TTL(time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
		}
		// A key of another namespace that matches the pattern's tail.
		other := b.Namespace + "x:user:1"
		b.Client.Set(ctx, other, "1", time.Minute)
		defer b.Client.Del(ctx, other)
		n, err := c.InvalidatePattern(ctx, "user:*")
		if err != nil || n != 30 {
			t.Fatalf("InvalidatePattern = %d, %v; want 30", n, err)
		}
		keys, _ := b.Keys(ctx)
		if len(keys) != 30 {
			t.Fatalf("%d keys left, want the 30 other:*", len(keys))
		}
		if b.Client.Exists(ctx, other).Val() != 1 {
			t.Fatal("a key outside the namespace was deleted")
		}
	})
}

func TestUndecodableEntriesAreMisses(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		var logs bytes.Buffer
		c := runtime.New(b.Client, runtime.WithNamespace(b.Namespace), runtime.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		jsonCache := runtime.New(b.Client, runtime.WithNamespace(b.Namespace), runtime.WithCodec(codec.JSON{}), runtime.WithLogger(discard))
		var l loader
		want, _ := l.load("7")(ctx)

		old := workspaceV2{ID: "7", Name: "older layout"}
		cases := map[string]func(key string){
			"garbage":      func(key string) { b.Client.Set(ctx, c.RedisKey(key), "\x00not a frame", time.Minute) },
			"raw json":     func(key string) { b.Client.Set(ctx, c.RedisKey(key), `{"ID":"7","Name":"x"}`, time.Minute) },
			"other codec":  func(key string) { _ = runtime.Set(ctx, jsonCache, key, want, runtime.TTL(time.Minute)) },
			"other layout": func(key string) { _ = runtime.Set(ctx, c, key, old, runtime.TTL(time.Minute)) },
			"truncated": func(key string) {
				_ = runtime.Set(ctx, c, key, want, runtime.TTL(time.Minute))
				raw, _ := b.Client.Get(ctx, c.RedisKey(key)).Bytes()
				b.Client.Set(ctx, c.RedisKey(key), raw[:len(raw)-3], time.Minute)
			},
		}
		i := 0
		for name, write := range cases {
			key := fmt.Sprint("bad:", i)
			i++
			write(key)
			before := l.calls.Load()
			got, err := runtime.GetCached(ctx, c, key, l.load("7"), runtime.TTL(time.Minute))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if diff := cmp.Diff(want, got, timeEqual); diff != "" {
				t.Fatalf("%s: (-want +got):\n%s", name, diff)
			}
			if l.calls.Load() != before+1 {
				t.Fatalf("%s: loader not called: the foreign entry was served", name)
			}
			// The entry was replaced: the next read is a hit.
			if _, err := runtime.GetCached(ctx, c, key, l.load("7"), runtime.TTL(time.Minute)); err != nil || l.calls.Load() != before+1 {
				t.Fatalf("%s: entry not replaced (%d loads, %v)", name, l.calls.Load()-before, err)
			}
		}
		s, _ := c.Stats(ctx)
		if s.DecodeErrors != int64(len(cases)) {
			t.Fatalf("DecodeErrors = %d, want %d", s.DecodeErrors, len(cases))
		}
		if !strings.Contains(logs.String(), "undecodable cache entry deleted") {
			t.Fatalf("decode errors not logged: %s", logs.String())
		}
	})
}

func TestRedisDownFailsOpen(t *testing.T) {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer client.Close()
	var logs bytes.Buffer
	var events []runtime.Event
	var mu sync.Mutex
	c := runtime.New(client, runtime.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		runtime.WithMetrics(runtime.MetricsFunc(func(e runtime.Event) { mu.Lock(); events = append(events, e); mu.Unlock() })))
	var l loader
	want, _ := l.load("1")(ctx)
	l.calls.Store(0)
	for range 3 {
		got, err := runtime.GetCached(ctx, c, "ws:1", l.load("1"), runtime.TTL(time.Minute), runtime.Tags("t"))
		if err != nil {
			t.Fatalf("a Redis error reached the caller: %v", err)
		}
		if diff := cmp.Diff(want, got, timeEqual); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
	}
	if l.calls.Load() != 3 {
		t.Fatalf("loader called %d times, want 3", l.calls.Load())
	}
	s, err := c.Stats(ctx)
	if err == nil {
		t.Fatal("Stats with Redis down returned no error")
	}
	if s.Errors != 3 || s.Misses != 3 || s.Sets != 0 {
		t.Fatalf("stats = %+v; want 3 errors, 3 misses and no store attempt", s)
	}
	if got := strings.Count(logs.String(), "redis error"); got != 1 {
		t.Fatalf("%d log lines for 3 errors in a second, want 1 (rate limited):\n%s", got, logs.String())
	}
	var errorEvents int
	for _, e := range events {
		if e.Op == runtime.OpError && e.Err != nil {
			errorEvents++
		}
	}
	if errorEvents != 3 {
		t.Fatalf("%d error events, want 3", errorEvents)
	}
	// Writes and invalidations report the failure: the caller decides.
	if err := runtime.Set(ctx, c, "k", 1, runtime.TTL(time.Minute)); err == nil {
		t.Fatal("Set with Redis down returned no error")
	}
	if err := c.InvalidateTags(ctx, "t"); err == nil {
		t.Fatal("InvalidateTags with Redis down returned no error")
	}
	if err := c.Invalidate(ctx, "k"); err == nil {
		t.Fatal("Invalidate with Redis down returned no error")
	}
}

func TestCanceledContext(t *testing.T) {
	b := redistest.Standalone(t)
	c := newCache(b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var l loader
	if _, err := runtime.GetCached(ctx, c, "k", l.load("1"), runtime.TTL(time.Minute)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if l.calls.Load() != 0 {
		t.Fatal("loader called with a canceled context")
	}
}

// TestValueStoredAfterCallerLeft: the caller's context ends while its
// value loads; the value, already paid for, is still stored.
func TestValueStoredAfterCallerLeft(t *testing.T) {
	b := redistest.Standalone(t)
	c := newCache(b)
	ctx, cancel := context.WithCancel(context.Background())
	v, err := runtime.GetCached(ctx, c, "k", func(context.Context) (string, error) {
		cancel() // the client hangs up while the database answers
		return "v", nil
	}, runtime.TTL(time.Minute))
	if err != nil || v != "v" {
		t.Fatalf("got %q, %v", v, err)
	}
	if b.Client.Exists(context.Background(), c.RedisKey("k")).Val() != 1 {
		t.Fatal("the loaded value was not stored after the caller's context ended")
	}
}

// TestDatabaseIdentitySeparatesCaches (issue 11, item 10): two services on
// different databases that share a namespace must not read each other's
// rows.
func TestDatabaseIdentitySeparatesCaches(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	a := newCache(b, runtime.WithDatabase("postgres://db1/app"))
	other := newCache(b, runtime.WithDatabase("postgres://db2/app"))
	if err := runtime.Set(ctx, a, "user:1", "ann of db1", runtime.TTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	v, err := runtime.GetCached(ctx, other, "user:1", func(context.Context) (string, error) { return "bob of db2", nil }, runtime.TTL(time.Minute))
	if err != nil || v != "bob of db2" {
		t.Fatalf("the second database's cache read %q, %v: it served the first database's row", v, err)
	}
	if got, want := a.RedisKey("k"), b.Namespace+":@postgres://db1/app:k"; got != want {
		t.Errorf("RedisKey = %q, want %q", got, want)
	}
}
