package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
)

// heldGets is a client whose GET of one key, after Redis has answered it,
// waits until release is closed; answered is closed as that reply arrives.
type heldGets struct {
	redis.UniversalClient
	key      string
	answered chan struct{}
	release  chan struct{}
	once     sync.Once
}

func (h *heldGets) Get(ctx context.Context, key string) *redis.StringCmd {
	cmd := h.UniversalClient.Get(ctx, key)
	if key == h.key {
		h.once.Do(func() {
			close(h.answered)
			<-h.release
		})
	}
	return cmd
}

// countJoins makes the pipe count the readers that join its waiting batch,
// and returns a function that waits until n have.
func countJoins(p *hitPipe) func(t *testing.T, n int) {
	joins := make(chan struct{}, 64)
	p.joined = func() { joins <- struct{}{} }
	return func(t *testing.T, n int) {
		t.Helper()
		for range n {
			select {
			case <-joins:
			case <-time.After(10 * time.Second):
				t.Fatalf("fewer than %d readers joined the waiting batch", n)
			}
		}
	}
}

// sameMaster returns n keys (besides first) whose master is first's on a
// cluster; any n keys elsewhere.
func sameMaster(t *testing.T, c *Cache, first string, n int) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprint("k", i)
		if c.cluster != nil {
			a, err1 := c.cluster.MasterForKey(ctx, c.prefix+first)
			b, err2 := c.cluster.MasterForKey(ctx, c.prefix+k)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if a.Options().Addr != b.Options().Addr {
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

// TestHitPipelining holds the only round trip a Cache may have in flight
// (WithHitPipelining(1)) and checks that the hits arriving meanwhile go
// out together as one pipeline when it returns, two readers of one key
// sharing one GET, and that each reader gets its own key's value.
func TestHitPipelining(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b, WithHitPipelining(1))
		others := sameMaster(t, c, "held", 3)
		keys := append([]string{"held"}, others...)
		for _, k := range keys {
			if err := Set(ctx, c, k, "value of "+k, TTL(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		p := c.hitPipeFor(c.nodeBreakerOf(ctx, c.prefix+"held"))
		held := &heldGets{UniversalClient: b.Client, key: c.prefix + "held", answered: make(chan struct{}), release: make(chan struct{})}
		p.client = held
		var (
			mu    sync.Mutex
			trips [][]string
		)
		p.sending = func(keys []string) {
			mu.Lock()
			trips = append(trips, slices.Clone(keys))
			mu.Unlock()
		}
		loads := atomic.Int64{}
		read := func(k string) (string, error) {
			return GetCached(ctx, c, k, func(context.Context) (string, error) {
				loads.Add(1)
				return "loaded " + k, nil
			}, TTL(time.Minute))
		}
		waitJoins := countJoins(p)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := read("held"); err != nil || v != "value of held" {
				t.Errorf("held: %q, %v", v, err)
			}
		}()
		<-held.answered
		for _, k := range append(others, others[0]) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v, err := read(k); err != nil || v != "value of "+k {
					t.Errorf("%s: %q, %v", k, v, err)
				}
			}()
		}
		waitJoins(t, 4)
		close(held.release)
		wg.Wait()
		if n := loads.Load(); n != 0 {
			t.Errorf("%d loads, want 0: every key was a hit", n)
		}
		mu.Lock()
		defer mu.Unlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(trips) != 2 {
			t.Fatalf("round trips %q, want the held GET and one pipeline", trips)
		}
		got := slices.Clone(trips[1])
		slices.Sort(got)
		want := []string{c.prefix + others[0], c.prefix + others[1], c.prefix + others[2]}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("the pipeline sent %q, want %q (one GET per key)", got, want)
		}
		if p.busy != 0 {
			t.Fatalf("%d round trips still counted in flight after all returned", p.busy)
		}
	})
}

// TestHitPipeliningSharesNoSentGet: a read that begins after an
// acknowledged invalidation must not get the value from before it, even
// while a GET of the same key, sent before the invalidation and answered
// with the old value, is still in flight. Sharing that GET (as a
// singleflight of GETs would) fails here with "version 1".
func TestHitPipeliningSharesNoSentGet(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b, WithHitPipelining(1))
		var db atomic.Int64
		db.Store(1)
		load := func(context.Context) (int64, error) { return db.Load(), nil }
		if _, err := GetCached(ctx, c, "row", load, TTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		_ = c.Wait(ctx)
		held := &heldGets{UniversalClient: b.Client, key: c.prefix + "row", answered: make(chan struct{}), release: make(chan struct{})}
		p := c.hitPipeFor(c.nodeBreakerOf(ctx, c.prefix+"row"))
		p.client = held
		first := make(chan int64, 1)
		go func() {
			v, _ := GetCached(ctx, c, "row", load, TTL(time.Minute))
			first <- v
		}()
		<-held.answered // version 1 is on its way back to the first reader
		db.Store(2)
		if err := c.Invalidate(ctx, "row"); err != nil {
			t.Fatal(err)
		}
		waitJoins := countJoins(p)
		second := make(chan int64, 1)
		go func() {
			v, _ := GetCached(ctx, c, "row", load, TTL(time.Minute))
			second <- v
		}()
		waitJoins(t, 1)
		close(held.release)
		if v := <-first; v != 1 {
			t.Fatalf("the first read got version %d, want 1 (it began before the write)", v)
		}
		if v := <-second; v != 2 {
			t.Fatalf("a read that began after the acknowledged invalidation got version %d, want 2", v)
		}
	})
}

// TestHitPipeliningReaderKeepsItsDeadline: a hit waiting for a round trip
// to end leaves at its own deadline and is served by its loader, and the
// pipe is not left wedged by readers that left.
func TestHitPipeliningReaderKeepsItsDeadline(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b, WithHitPipelining(1))
		k := sameMaster(t, c, "held", 1)[0]
		if err := Set(ctx, c, k, "cached", TTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		held := &heldGets{UniversalClient: b.Client, key: c.prefix + "held", answered: make(chan struct{}), release: make(chan struct{})}
		p := c.hitPipeFor(c.nodeBreakerOf(ctx, c.prefix+"held"))
		p.client = held
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = GetCached(ctx, c, "held", func(context.Context) (string, error) { return "x", nil }, TTL(time.Minute))
		}()
		<-held.answered
		dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		v, err := GetCached(dctx, c, k, func(context.Context) (string, error) { return "loaded", nil }, TTL(time.Minute))
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if err == nil && v != "loaded" {
			t.Fatalf("got %q while the only round trip was held, want the loader's answer", v)
		}
		select {
		case <-done:
			t.Fatal("the held read returned before its release")
		default:
		}
		close(held.release)
		<-done
		_ = c.Wait(ctx)
		// The batch the reader left went out; the pipe takes GETs again.
		v, err = GetCached(ctx, c, k, func(context.Context) (string, error) { return "loaded again", nil }, TTL(time.Minute))
		if err != nil || (v != "cached" && v != "loaded") {
			t.Fatalf("after the held trip: %q, %v", v, err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.busy != 0 || p.next != nil {
			t.Fatalf("busy %d, batch waiting %v: the pipe is wedged", p.busy, p.next != nil)
		}
	})
}

// TestHitPipelineHoldsOnlyItsMaster: on a cluster, a master whose round
// trip hangs holds the hits of its own keys only. With one pipe for the
// whole client, a read of another master's key waited behind it (go-redis's
// cluster pipeline waits for every node it writes to; found by a review).
func TestHitPipelineHoldsOnlyItsMaster(t *testing.T) {
	b := redistest.Cluster(t)
	ctx := context.Background()
	c := quietCache(b, WithHitPipelining(1))
	other := ""
	for i := 0; other == ""; i++ {
		k := fmt.Sprint("o", i)
		a, _ := c.cluster.MasterForKey(ctx, c.prefix+"held")
		o, _ := c.cluster.MasterForKey(ctx, c.prefix+k)
		if a != nil && o != nil && a.Options().Addr != o.Options().Addr {
			other = k
		}
	}
	for _, k := range []string{"held", other} {
		if err := Set(ctx, c, k, "v", TTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	held := &heldGets{UniversalClient: b.Client, key: c.prefix + "held", answered: make(chan struct{}), release: make(chan struct{})}
	c.hitPipeFor(c.nodeBreakerOf(ctx, c.prefix+"held")).client = held
	load := func(context.Context) (string, error) { return "loaded", nil }
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = GetCached(ctx, c, "held", load, TTL(time.Minute))
	}()
	<-held.answered
	got := make(chan string, 1)
	go func() {
		v, _ := GetCached(ctx, c, other, load, TTL(time.Minute))
		got <- v
	}()
	select {
	case v := <-got:
		if v != "v" {
			t.Fatalf("read of the other master's key = %q, want the cached v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a read of another master's key waited for the held round trip")
	}
	close(held.release)
	<-done
}
