package cacheprometheus_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/extra/cacheprometheus"
	"github.com/repocache/repocache/internal/cachemetrics/cachemetricstest"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
)

// TestFailingStatsDoNotFailTheScrape: a Cache whose Redis refuses
// connections is reported with stats_ok 0 and its local families (breaker,
// pool), without the INFO ones; a healthy Cache next to it is unaffected.
func TestFailingStatsDoNotFailTheScrape(t *testing.T) {
	col := cacheprometheus.New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	healthy := newCache(t, col)

	down := cachemetricstest.Down(t, "cacheprometheus-test:down")
	if err := col.Watch(down); err != nil {
		t.Fatal(err)
	}

	got := scrape(t, reg)
	n := func(name, ns string) string { return key("repocache_"+name, "namespace", ns) }
	if v, ok := got[n("stats_ok", down.Namespace())]; !ok || v != 0 {
		t.Errorf("stats_ok of the failing Cache: %v (reported %v), want 0", v, ok)
	}
	for _, name := range []string{"breaker_open", "pool_connections", "invalidation_retries_pending"} {
		if _, ok := got[n(name, down.Namespace())]; !ok {
			t.Errorf("%s of the failing Cache missing", name)
		}
	}
	for _, name := range []string{"redis_used_memory_bytes", "redis_masters", "redis_evicted_keys_total", "evicting_tag_sets"} {
		if v, ok := got[n(name, down.Namespace())]; ok {
			t.Errorf("%s of the failing Cache reported (%v): it needs INFO", name, v)
		}
	}
	if got[n("stats_ok", healthy.Namespace())] != 1 || got[n("redis_masters", healthy.Namespace())] != 1 {
		t.Errorf("healthy Cache: stats_ok %v, redis_masters %v, want 1 and 1",
			got[n("stats_ok", healthy.Namespace())], got[n("redis_masters", healthy.Namespace())])
	}
}

// TestHungStatsAreBounded: a Redis that accepts connections and never
// answers holds a scrape no longer than WithStatsTimeout; the Cache is then
// reported with stats_ok 0 alone, and a second scrape shares the Stats call
// still in flight instead of starting another (one connection dialled).
func TestHungStatsAreBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			t.Cleanup(func() { conn.Close() })
		}
	}()
	t.Cleanup(func() { l.Close() })
	client := redis.NewClient(&redis.Options{Addr: l.Addr().String(), MaxRetries: -1, ReadTimeout: 3 * time.Second, Protocol: 2})
	t.Cleanup(func() { client.Close() })
	hung := runtime.New(client, runtime.WithNamespace("cacheprometheus-test:hung"), runtime.WithLogger(discard))

	col := cacheprometheus.New(cacheprometheus.WithStatsTimeout(100 * time.Millisecond))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	if err := col.Watch(hung); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		start := time.Now()
		got := scrape(t, reg)
		if d := time.Since(start); d > time.Second {
			t.Errorf("scrape %d took %v with a 100ms stats timeout", i, d)
		}
		if len(got) != 1 || got[key("repocache_stats_ok", "namespace", hung.Namespace())] != 0 {
			t.Errorf("scrape %d: %v, want stats_ok 0 alone", i, got)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections dialled by two scrapes, want 1 (the second shares the first's Stats)", n)
	}
}

// TestWatch: watching a Cache twice is a no-op; a second Cache with the
// same namespace is refused, since their series would collide; Unwatch
// removes it.
func TestWatch(t *testing.T) {
	col := cacheprometheus.New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	c := newCache(t, col)
	if err := col.Watch(c); err != nil {
		t.Errorf("second Watch of the same Cache: %v", err)
	}
	twin := runtime.New(c.Client(), runtime.WithNamespace(c.Namespace()), runtime.WithLogger(discard))
	if err := col.Watch(twin); err == nil {
		t.Error("Watch of a second Cache with the same namespace: no error")
	}
	if err := col.Watch(nil); err == nil {
		t.Error("Watch(nil): no error")
	}
	if got := scrape(t, reg); got[key("repocache_stats_ok", "namespace", c.Namespace())] != 1 {
		t.Errorf("stats_ok %v, want 1", got[key("repocache_stats_ok", "namespace", c.Namespace())])
	}
	col.Unwatch(c)
	if got := scrape(t, reg); len(got) != 0 {
		t.Errorf("after Unwatch, with no events: %v, want nothing", got)
	}
}

// TestL1Families: a Cache with a near cache (runtime.WithL1) reports its
// size and state, and counts its hits apart; one without reports none of
// it (see TestScrapeAfterWorkload).
func TestL1Families(t *testing.T) {
	col := cacheprometheus.New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	kit := cachetest.New(t)
	if kit.Embedded {
		t.Skip("the near cache never serves on miniredis (no CLIENT TRACKING)")
	}
	var l1Hits atomic.Int64
	c := runtime.New(kit.Client(), runtime.WithNamespace(kit.Namespace()), runtime.WithLogger(discard),
		runtime.WithStoreWait(time.Second), runtime.WithL1(),
		runtime.WithMetrics(col.Metrics(kit.Namespace())),
		runtime.WithMetrics(runtime.MetricsFunc(func(e runtime.Event) {
			if e.Op == runtime.OpHit && e.L1 {
				l1Hits.Add(1)
			}
		})))
	t.Cleanup(func() { cachemetricstest.Wait(t, c); c.Close() })
	if err := col.Watch(c); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Read until a hit comes from memory: the near cache serves once its
	// invalidation stream is live and a hit has filled it.
	deadline := time.Now().Add(5 * time.Second)
	for l1Hits.Load() == 0 && time.Now().Before(deadline) {
		if _, err := runtime.GetCached(ctx, c, "k", func(context.Context) (string, error) { return "v", nil },
			runtime.TTL(time.Minute), runtime.Method("Repo.Get")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if l1Hits.Load() == 0 {
		t.Fatal("no hit from the near cache in 5s")
	}
	got := scrape(t, reg)
	n := func(name string) string { return key("repocache_"+name, "namespace", c.Namespace()) }
	if v := got[key("repocache_l1_hits_total", "namespace", c.Namespace(), "method", "Repo.Get")]; v != float64(l1Hits.Load()) {
		t.Errorf("l1_hits_total %v, want %d", v, l1Hits.Load())
	}
	for name, want := range map[string]float64{"l1_watched": 1, "l1_entries": 1, "l1_streams_lost_total": 0} {
		if v, ok := got[n(name)]; !ok || v != want {
			t.Errorf("%s = %v (reported %v), want %v", name, v, ok, want)
		}
	}
	if got[n("l1_memory_bytes")] <= 0 {
		t.Errorf("l1_memory_bytes %v, want > 0", got[n("l1_memory_bytes")])
	}
	for _, name := range []string{"l1_dropped_total", "l1_flushes_total"} {
		if _, ok := got[n(name)]; !ok {
			t.Errorf("%s missing", name)
		}
	}
}
