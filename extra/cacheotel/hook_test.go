package cacheotel_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/repocache/repocache/extra/cacheotel"
	"github.com/repocache/repocache/internal/cachemetrics/cachemetricstest"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
)

// TestHitSpansWhenAsked: WithSpans(OpHit) makes a span per hit, with its
// result and, under WithKeys, its key; by default hits make none.
func TestHitSpansWhenAsked(t *testing.T) {
	k := newKit(t, cacheotel.WithSpans(runtime.OpHit, runtime.OpInvalidate), cacheotel.WithKeys())
	m := k.rec.Metrics("ns")
	m.Observe(runtime.Event{Op: runtime.OpHit, Key: "project:1", Method: "Repo.Find", Duration: time.Millisecond, L1: true})
	m.Observe(runtime.Event{Op: runtime.OpMiss, Key: "project:2", Method: "Repo.Find"})
	m.Observe(runtime.Event{Op: runtime.OpInvalidate, Key: "t:a", Tag: true, Count: 7, Method: "Repo.Delete"})
	spans := k.spans.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2 (a hit, an invalidation; no miss)", len(spans))
	}
	want := []map[attribute.Key]string{
		{cacheotel.ResultKey: "hit", cacheotel.KeyKey: "project:1", cacheotel.MethodKey: "Repo.Find", cacheotel.L1Key: "true"},
		{cacheotel.KindKey: "tag", cacheotel.KeyKey: "t:a", cacheotel.MethodKey: "Repo.Delete", cacheotel.InvalidatedKeysKey: "7"},
	}
	for i, sp := range spans {
		got := map[attribute.Key]string{}
		for _, kv := range sp.Attributes() {
			got[kv.Key] = kv.Value.Emit()
		}
		for key, v := range want[i] {
			if got[key] != v {
				t.Errorf("span %s: %s = %q, want %q", sp.Name(), key, got[key], v)
			}
		}
	}
	if d := spans[0].EndTime().Sub(spans[0].StartTime()); d != time.Millisecond {
		t.Errorf("hit span lasts %v, want the event's 1ms", d)
	}

	none := newKit(t, cacheotel.WithSpans())
	none.rec.Metrics("ns").Observe(runtime.Event{Op: runtime.OpLoad, Err: errors.New("boom")})
	if n := len(none.spans.Ended()); n != 0 {
		t.Errorf("WithSpans(): %d spans, want none", n)
	}
}

// TestMethodValueIsBounded: past WithMaxMethods distinct methods, events are
// recorded under "other".
func TestMethodValueIsBounded(t *testing.T) {
	k := newKit(t, cacheotel.WithMaxMethods(2))
	m := k.rec.Metrics("ns")
	for i := range 20 {
		m.Observe(runtime.Event{Op: runtime.OpSet, Method: "id:" + strconv.Itoa(i)})
	}
	m.Observe(runtime.Event{Op: runtime.OpSet, Method: "id:0"})
	got := k.collect(t)
	sets := func(method string) string {
		return key("repocache.sets", "repocache.namespace", "ns", "repocache.method", method)
	}
	if got[sets("id:0")] != 2 || got[sets("id:1")] != 1 || got[sets("other")] != 18 || len(got) != 3 {
		t.Errorf("sets: %v, want id:0 2, id:1 1, other 18", got)
	}
}

// TestFailingStats: a Cache whose Redis refuses connections is reported
// with repocache.stats.ok 0 and its local instruments, without the INFO
// ones; the collection does not fail.
func TestFailingStats(t *testing.T) {
	k := newKit(t, cacheotel.WithStatsTimeout(time.Second))
	down := cachemetricstest.Down(t, "cacheotel-test:down")
	if err := k.rec.Watch(down); err != nil {
		t.Fatal(err)
	}
	if err := k.rec.Watch(runtime.New(down.Client(), runtime.WithNamespace("cacheotel-test:down"))); err == nil {
		t.Error("Watch of a second Cache with the same namespace: no error")
	}
	got := k.collect(t)
	n := func(name string) string { return key(name, "repocache.namespace", down.Namespace()) }
	if v, ok := got[n("repocache.stats.ok")]; !ok || v != 0 {
		t.Errorf("stats.ok: %v (reported %v), want 0", v, ok)
	}
	if _, ok := got[n("repocache.breaker.open")]; !ok {
		t.Error("breaker.open missing")
	}
	if _, ok := got[n("repocache.redis.used_memory")]; ok {
		t.Error("redis.used_memory reported without INFO")
	}
	k.rec.Unwatch(down)
	if got := k.collect(t); len(got) != 0 {
		t.Errorf("after Unwatch: %v", got)
	}
}

// TestConcurrentObserve: events from many goroutines, with new methods
// appearing while the reader collects, all end up counted (run with -race).
func TestConcurrentObserve(t *testing.T) {
	k := newKit(t)
	const workers, events = 8, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := k.rec.Metrics("ns" + strconv.Itoa(w%2))
			for i := range events {
				m.Observe(runtime.Event{Op: runtime.OpHit, Method: "M" + strconv.Itoa(i%10), Duration: time.Microsecond})
				if i%200 == 0 {
					k.collect(t)
				}
			}
		}()
	}
	wg.Wait()
	var total float64
	for name, v := range k.collect(t) {
		if len(name) > len("repocache.hits{") && name[:len("repocache.hits{")] == "repocache.hits{" {
			total += v
		}
	}
	if total != workers*events {
		t.Errorf("%v hits, want %d", total, workers*events)
	}
}

// TestNames: the instrument names, with no duplicate, and New works on the
// no-op providers.
func TestNames(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range cacheotel.InstrumentNames() {
		if seen[n] {
			t.Errorf("duplicate instrument %s", n)
		}
		seen[n] = true
	}
	if !seen["repocache.hits"] || !seen["repocache.hit.duration"] || !seen["repocache.stats.ok"] {
		t.Errorf("names: %v", cacheotel.InstrumentNames())
	}
	rec, err := cacheotel.New(cacheotel.WithMeterProvider(noop.NewMeterProvider()), cacheotel.WithTracerProvider(tracenoop.NewTracerProvider()))
	if err != nil {
		t.Fatal(err)
	}
	rec.Metrics("ns").Observe(runtime.Event{Op: runtime.OpLoad, Err: context.Canceled})
}

// TestL1Instruments: a Cache with a near cache (runtime.WithL1) reports its
// size and state, and its hits from memory apart.
func TestL1Instruments(t *testing.T) {
	k := newKit(t)
	kit := cachetest.New(t)
	if kit.Embedded {
		t.Skip("the near cache never serves on miniredis (no CLIENT TRACKING)")
	}
	var l1Hits atomic.Int64
	c := runtime.New(kit.Client(), runtime.WithNamespace(kit.Namespace()), runtime.WithLogger(discard),
		runtime.WithStoreWait(time.Second), runtime.WithL1(),
		runtime.WithMetrics(k.rec.Metrics(kit.Namespace())),
		runtime.WithMetrics(runtime.MetricsFunc(func(e runtime.Event) {
			if e.Op == runtime.OpHit && e.L1 {
				l1Hits.Add(1)
			}
		})))
	t.Cleanup(func() { cachemetricstest.Wait(t, c); c.Close() })
	if err := k.rec.Watch(c); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l1Hits.Load() == 0 && time.Now().Before(deadline) {
		if _, err := runtime.GetCached(context.Background(), c, "k", func(context.Context) (string, error) { return "v", nil },
			runtime.TTL(time.Minute), runtime.Method("Repo.Get")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if l1Hits.Load() == 0 {
		t.Fatal("no hit from the near cache in 5s")
	}
	got := k.collect(t)
	n := func(name string) string { return key("repocache."+name, "repocache.namespace", c.Namespace()) }
	if v := got[key("repocache.l1.hits", "repocache.namespace", c.Namespace(), "repocache.method", "Repo.Get")]; v != float64(l1Hits.Load()) {
		t.Errorf("l1.hits %v, want %d", v, l1Hits.Load())
	}
	if got[n("l1.watched")] != 1 || got[n("l1.entries")] != 1 || got[n("l1.memory")] <= 0 {
		t.Errorf("l1.watched %v, l1.entries %v, l1.memory %v: want 1, 1, > 0", got[n("l1.watched")], got[n("l1.entries")], got[n("l1.memory")])
	}
	for _, name := range []string{"l1.dropped", "l1.flushes", "l1.streams_lost"} {
		if _, ok := got[n(name)]; !ok {
			t.Errorf("%s missing", name)
		}
	}
}
