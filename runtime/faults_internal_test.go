package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/faultproxy"
	"github.com/repocache/repocache/internal/redistest"
)

// proxied is a Cache whose client reaches b's server through a fault
// proxy (see faultproxy.NewClient).
type proxied struct {
	*faultproxy.Client
	c *Cache
}

func newProxied(t *testing.T, b *redistest.Backend, retries int, opts ...Option) *proxied {
	t.Helper()
	b.RequireReal(t)
	if b.Cluster {
		t.Fatal("newProxied: standalone only")
	}
	fc := faultproxy.NewClient(t, b.Addrs[0], retries,
		leaseScript, casStoreScript, casStoreTaggedScript, releaseScript, tagAddScript, tagDropScript, refreshLockScript, keepaliveScript)
	return &proxied{Client: fc, c: quietCache(&redistest.Backend{Client: fc.Client, Namespace: b.Namespace}, opts...)}
}

// lateReply and onScript, for the tests of this file.
func (px *proxied) lateReply(script *redis.Script)          { px.LateReply(script) }
func (px *proxied) onScript(script *redis.Script, f func()) { px.OnScript(script, f) }

func storeTagged(t *testing.T, c *Cache, key, tag string) {
	t.Helper()
	if err := Set(context.Background(), c, key, "old", TTL(time.Minute), Tags(tag)); err != nil {
		t.Fatal(err)
	}
}

func assertGone(t *testing.T, b *redistest.Backend, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if n, err := b.Client.Exists(context.Background(), b.Key(k)).Result(); err != nil || n != 0 {
			t.Errorf("key %q still there after the invalidation returned (exists=%d, %v): readers get the old value", k, n, err)
		}
	}
}

// TestRetriedTagDropLosesNothing (issue 10, defect 1): the tag drop's
// reply is lost to a timeout after the server ran it, and go-redis runs it
// again. The invalidation must still delete the tagged key before it
// returns nil.
func TestRetriedTagDropLosesNothing(t *testing.T) {
	b := redistest.Standalone(t)
	px := newProxied(t, b, 2)
	storeTagged(t, quietCache(b), "item:1", "group")
	px.lateReply(tagDropScript)
	start := time.Now()
	if err := px.c.InvalidateTags(context.Background(), "group"); err != nil {
		t.Fatalf("InvalidateTags: %v", err)
	}
	// The first run's reply came after the read timeout: the call waited
	// for it, then ran the script again.
	if took := time.Since(start); took < px.Options().ReadTimeout {
		t.Fatalf("InvalidateTags took %v, less than the read timeout (%v): no reply was late, nothing was forced", took, px.Options().ReadTimeout)
	}
	assertGone(t, b, "item:1")
}

// TestTimedOutTagDropIsFinishedLater (issue 10, defect 1, retries off): the
// timed-out drop returns its error; the next invalidation of the tag must
// finish what the first one moved aside.
func TestTimedOutTagDropIsFinishedLater(t *testing.T) {
	b := redistest.Standalone(t)
	px := newProxied(t, b, -1)
	storeTagged(t, quietCache(b), "item:1", "group")
	px.lateReply(tagDropScript)
	if err := px.c.InvalidateTags(context.Background(), "group"); err == nil {
		t.Fatal("the late reply did not time out the drop: nothing was forced")
	}
	if err := px.c.InvalidateTags(context.Background(), "group"); err != nil {
		t.Fatalf("second InvalidateTags: %v", err)
	}
	assertGone(t, b, "item:1")
}

// TestRetriedLeaseIsTheCallersOwn (issue 10, defect 2): the lease script's
// reply is lost after the server wrote the placeholder; the retry must
// recognise the caller's own token instead of waiting for it to expire.
func TestRetriedLeaseIsTheCallersOwn(t *testing.T) {
	for _, mode := range []LockMode{LockDistributed, LockLocal} {
		t.Run(map[LockMode]string{LockDistributed: "distributed", LockLocal: "local"}[mode], func(t *testing.T) {
			b := redistest.Standalone(t)
			px := newProxied(t, b, 2)
			px.lateReply(leaseScript)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second) // the lease lives 3 s
			defer cancel()
			var loads atomic.Int64
			v, err := GetCached(ctx, px.c, "k", func(context.Context) (string, error) { loads.Add(1); return "v", nil },
				TTL(time.Minute), Lock(mode))
			if err != nil || v != "v" {
				t.Fatalf("GetCached = %q, %v; want the loaded value (the caller waited on its own lease)", v, err)
			}
			if err := px.c.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, err := b.Client.Get(context.Background(), b.Key("k")).Result()
			if err != nil || parseEntry(got).kind != kindValue {
				t.Fatalf("after the load the key holds %q (%v), want the stored value: the retried lease left an orphan placeholder", got, err)
			}
		})
	}
}

// TestStoreDoesNotDelayTheCaller (issue 10, defect 3): Redis hangs after
// the load, at the store's compare-and-set (with tags on a single master,
// the tagged one); the caller must get its value before its deadline.
func TestStoreDoesNotDelayTheCaller(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store *redis.Script
		opts  []CallOption
	}{
		{"untagged", casStoreScript, nil},
		{"tagged", casStoreTaggedScript, []CallOption{Tags("t")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := redistest.Standalone(t)
			px := newProxied(t, b, 2)
			var held atomic.Bool
			px.onScript(tc.store, func() { held.Store(true); px.Proxy.Hold() })
			defer px.Proxy.Release()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			v, err := GetCached(ctx, px.c, "k", func(context.Context) (string, error) { return "v", nil }, append(tc.opts, TTL(time.Minute))...)
			if err != nil || v != "v" {
				t.Fatalf("GetCached = %q, %v", v, err)
			}
			if ctx.Err() != nil {
				t.Fatalf("GetCached returned after the caller's 300 ms deadline: the store ran on the caller's time")
			}
			px.Proxy.Release()
			if err := px.c.Wait(context.Background()); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			if !held.Load() {
				t.Fatal("the store's compare-and-set never ran: Redis was not held, nothing was forced")
			}
		})
	}
}

// eventually polls cond until it holds or the bound passes; it is for
// state that changes in another process (Redis) or a background loop that
// has no signal to wait on.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > bound {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestRedisDownFailsFast (issue 10, defect 4): with Redis refusing
// connections, after a few failures reads skip Redis (the breaker opens)
// and the loader answers at once; once Redis answers again the cache is
// used again within a second.
func TestRedisDownFailsFast(t *testing.T) {
	b := redistest.Standalone(t)
	px := newProxied(t, b, 2)
	ctx := context.Background()
	px.Proxy.Refuse(true, true)
	var loads atomic.Int64
	load := func(context.Context) (string, error) { loads.Add(1); return "v", nil }
	for i := range 10 {
		if v, err := GetCached(ctx, px.c, "k", load, TTL(time.Minute)); err != nil || v != "v" {
			t.Fatalf("read %d with Redis down = %q, %v; want the loader's answer", i, v, err)
		}
		// Each read meets one connection failure: the breaker opens
		// at the breakerThreshold-th.
		if open := px.c.br.open.Load(); open != (i+1 >= breakerThreshold) {
			t.Fatalf("breaker open = %v after %d reads with Redis down; want it open from read %d on", open, i+1, breakerThreshold)
		}
	}
	s, _ := px.c.Stats(ctx)
	if !s.BreakerOpen || s.BreakerSkips < 5 {
		t.Fatalf("BreakerOpen = %v, skips = %d after 10 reads with Redis down; want open, most reads skipped", s.BreakerOpen, s.BreakerSkips)
	}
	// While open, a read does not touch Redis: the proxy sees no command.
	before := px.Proxy.Replies()
	if _, err := GetCached(ctx, px.c, "k", load, TTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if px.Proxy.Replies() != before {
		t.Fatal("a read went to Redis while the breaker was open")
	}
	px.Proxy.Refuse(false, false)
	took := eventually(t, 2*time.Second, "breaker closed after Redis came back", func() bool {
		s, _ := px.c.Stats(ctx)
		return !s.BreakerOpen
	})
	t.Logf("recovery noticed after %v", took)
	if took > time.Second {
		t.Errorf("recovery took %v, want within 1 s", took)
	}
}

// TestFailedInvalidationIsRetried (issue 10, item 2): an invalidation that
// fails while Redis is unreachable is counted, returned, and retried in the
// background until it lands once Redis is back.
func TestFailedInvalidationIsRetried(t *testing.T) {
	b := redistest.Standalone(t)
	px := newProxied(t, b, 0)
	ctx := context.Background()
	direct := quietCache(b)
	storeTagged(t, direct, "item:1", "group")
	if err := Set(ctx, direct, "item:2", "old", TTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	px.Proxy.Refuse(true, true)
	if err := px.c.InvalidateTags(ctx, "group"); err == nil {
		t.Fatal("InvalidateTags with Redis down returned nil")
	}
	if err := px.c.Invalidate(ctx, "item:2"); err == nil {
		t.Fatal("Invalidate with Redis down returned nil")
	}
	s, _ := px.c.Stats(ctx)
	if s.InvalidationFailures != 2 || s.InvalidationRetries != 2 || s.Errors != 0 {
		t.Fatalf("InvalidationFailures = %d, pending retries = %d, read Errors = %d; want 2, 2, 0",
			s.InvalidationFailures, s.InvalidationRetries, s.Errors)
	}
	px.Proxy.Refuse(false, false)
	wait, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := px.c.Wait(wait); err != nil {
		t.Fatalf("the retries did not land: %v", err)
	}
	t.Logf("retried invalidations landed %v after Redis came back", time.Since(start))
	assertGone(t, b, "item:1", "item:2")
	if s, _ := px.c.Stats(ctx); s.InvalidationRetries != 0 || s.RetriesSucceeded == 0 {
		t.Fatalf("after recovery: pending %d, succeeded %d", s.InvalidationRetries, s.RetriesSucceeded)
	}
}

// TestHungRedisLeavesTheLoaderTime (issue 10, defect 4): Redis hangs and
// the caller's deadline is shorter than the client's read timeout; the
// caller must be served by the loader, not fail with its deadline.
func TestHungRedisLeavesTheLoaderTime(t *testing.T) {
	b := redistest.Standalone(t)
	px := newProxied(t, b, 2)
	px.Proxy.Hold()
	defer px.Proxy.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond) // the read timeout is 200 ms
	defer cancel()
	v, err := GetCached(ctx, px.c, "k", func(context.Context) (string, error) { return "v", nil }, TTL(time.Minute))
	if err != nil || v != "v" {
		t.Fatalf("GetCached with Redis hung = %q, %v; want the loader's answer within the deadline", v, err)
	}
}

// TestRetriedScriptsEndWell: each remaining single-command script of the
// read path has its reply delayed past the timeout once, so that go-redis
// runs it a second time; the operation must still end as it should.
func TestRetriedScriptsEndWell(t *testing.T) {
	ctx := context.Background()
	t.Run("refresh lock", func(t *testing.T) {
		b := redistest.Standalone(t)
		px := newProxied(t, b, 2)
		writeStale(t, px.c, "k", "old")
		px.lateReply(refreshLockScript)
		v, err := GetCached(ctx, px.c, "k", func(context.Context) (string, error) { return "new", nil }, TTL(time.Minute), SWR(time.Minute))
		if err != nil || v != "old" {
			t.Fatalf("stale read = %q, %v; want the stale value at once", v, err)
		}
		if err := px.c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		v, _ = GetCached(ctx, px.c, "k", func(context.Context) (string, error) { return "newer", nil }, TTL(time.Minute), SWR(time.Minute))
		if v != "new" {
			t.Fatalf("after the refresh the key serves %q, want %q: the retried refresh lock took itself for another refresher", v, "new")
		}
	})
	t.Run("keepalive", func(t *testing.T) {
		b := redistest.Standalone(t)
		px := newProxied(t, b, 2, WithLockTTL(300*time.Millisecond))
		px.lateReply(keepaliveScript)
		v, err := GetCached(ctx, px.c, "k", func(context.Context) (string, error) {
			time.Sleep(700 * time.Millisecond) // a load that needs its lease kept alive
			return "v", nil
		}, TTL(time.Minute))
		if err != nil || v != "v" {
			t.Fatal(v, err)
		}
		if err := px.c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.Client.Get(ctx, b.Key("k")).Result(); parseEntry(got).kind != kindValue {
			t.Fatalf("the long load was not stored (key holds %q): its lease lapsed", got)
		}
	})
	t.Run("release", func(t *testing.T) {
		b := redistest.Standalone(t)
		px := newProxied(t, b, 2)
		px.lateReply(releaseScript)
		if _, err := GetCached(ctx, px.c, "k", func(context.Context) (string, error) { return "", errors.New("boom") }, TTL(time.Minute)); err == nil {
			t.Fatal("no error")
		}
		if err := px.c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if n := b.Client.Exists(ctx, b.Key("k")).Val(); n != 0 {
			t.Fatal("the failed load's placeholder is still there after a retried release")
		}
	})
}
