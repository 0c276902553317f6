package runtime

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
)

// l1Cache is a Cache with a near cache on its own client (so that two of
// them are two processes as far as Redis can tell), closed with the test.
func l1Cache(t *testing.T, b *redistest.Backend, opts ...Option) *Cache {
	t.Helper()
	var cl redis.UniversalClient
	if b.Cluster {
		cl = redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs})
	} else {
		cl = redis.NewClient(&redis.Options{Addr: b.Addrs[0]})
	}
	c := quietCache(&redistest.Backend{Client: cl, Namespace: b.Namespace, Cluster: b.Cluster},
		append([]Option{WithL1(), WithStoreWait(time.Second)}, opts...)...)
	t.Cleanup(func() { _ = c.Close(); _ = cl.Close() })
	return c
}

// waitWatched waits until the near cache may serve: Redis has confirmed
// its invalidation stream on every master.
func waitWatched(t *testing.T, c *Cache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !c.l1.watched(time.Now().UnixNano()) {
		if time.Now().After(deadline) {
			t.Fatal("the near cache's invalidation stream was not confirmed in 10 s")
		}
		time.Sleep(5 * time.Millisecond) // polling the server's confirmation
	}
}

// l1Events counts hits served from memory.
type l1Events struct{ l1, redis atomic.Int64 }

func (e *l1Events) Observe(ev Event) {
	if ev.Op == OpHit {
		if ev.L1 {
			e.l1.Add(1)
		} else {
			e.redis.Add(1)
		}
	}
}

// getV reads key through c, loading v, and then waits until c has heard
// of every change Redis made until then (the read's own store included), so
// that what the near cache holds next is certain.
func getV(t *testing.T, c *Cache, key string, v *atomic.Int64) int64 {
	t.Helper()
	got, err := GetCached(context.Background(), c, key, func(context.Context) (int64, error) { return v.Load(), nil },
		TTL(time.Minute), Tags("t:"+key))
	if err != nil {
		t.Fatal(err)
	}
	syncL1(t, c)
	return got
}

func syncL1(t *testing.T, c *Cache) {
	t.Helper()
	if !c.l1.watched(time.Now().UnixNano()) {
		return // no stream to wait for (a server without CLIENT TRACKING)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.track.sync(ctx); err != nil {
		t.Fatalf("near cache sync: %v", err)
	}
}

// TestL1ServesFromMemory: the second read of a key (the first hit) fills
// the near cache, and the reads after it make no round trip.
func TestL1ServesFromMemory(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		ev := &l1Events{}
		c := l1Cache(t, b, WithMetrics(ev))
		waitWatched(t, c)
		var db atomic.Int64
		db.Store(7)
		for range 5 {
			if got := getV(t, c, "k", &db); got != 7 {
				t.Fatalf("got %d, want 7", got)
			}
		}
		if ev.redis.Load() != 1 || ev.l1.Load() != 3 {
			t.Fatalf("hits from Redis %d, from memory %d; want 1 and 3", ev.redis.Load(), ev.l1.Load())
		}
		s, _ := c.Stats(context.Background())
		if !s.L1.Enabled || !s.L1.Watched || s.L1.Entries != 1 || s.L1.Hits != 3 || s.L1.Bytes <= 0 {
			t.Fatalf("L1 stats %+v", s.L1)
		}
	})
}

// TestL1WriterReadsItsWrites: in the writing process a read after an
// acknowledged invalidation, Set or Put never comes from memory, without
// waiting for Redis's notice.
func TestL1WriterReadsItsWrites(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		// No skew: on a cluster a load within the skew after an
		// invalidation is not stored, and each step reads the key back.
		c := l1Cache(t, b, WithClockSkew(0))
		waitWatched(t, c)
		ctx := context.Background()
		var db atomic.Int64
		for i, write := range []func() error{
			func() error { return c.Invalidate(ctx, "k") },
			func() error { return c.InvalidateTags(ctx, "t:k") },
			func() error { return Set(ctx, c, "k", db.Load(), TTL(time.Minute)) },
			func() error { Put(ctx, c, "k", db.Load(), TTL(time.Minute), Tags("t:k")); return nil },
			func() error { c.AfterWrite(ctx, nil, []string{"t:k"}); return nil },
		} {
			db.Store(int64(100 * i))
			getV(t, c, "k", &db)
			getV(t, c, "k", &db) // held in memory now
			if e, _ := c.l1.size(); e != 1 {
				t.Fatalf("write %d: %d entries held before the write, want 1", i, e)
			}
			db.Add(1)
			if err := write(); err != nil {
				t.Fatal(err)
			}
			if got := getV(t, c, "k", &db); got != db.Load() {
				t.Fatalf("write %d: read after it got %d, want %d", i, got, db.Load())
			}
		}
	})
}

// TestL1OtherProcessSeesWrite: a write through another Cache (another
// process) drops this one's entry when Redis's notice arrives.
func TestL1OtherProcessSeesWrite(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		reader, writer := l1Cache(t, b), l1Cache(t, b)
		waitWatched(t, reader)
		ctx := context.Background()
		var db atomic.Int64
		db.Store(1)
		getV(t, reader, "k", &db)
		getV(t, reader, "k", &db)
		db.Store(2)
		if err := writer.InvalidateTags(ctx, "t:k"); err != nil {
			t.Fatal(err)
		}
		// Redis writes its notices on the reader's stream before the
		// answer to a ping sent after the write: once that answer is in,
		// the notice has been handled.
		syncL1(t, reader)
		if got := getV(t, reader, "k", &db); got != 2 {
			t.Fatalf("the reader serves %d after the write and its notice, want 2", got)
		}
	})
}

// TestL1NoticeObserved: a Redis notice is observed (OpL1Invalidate) once
// its entry is gone, for the cache's keys and its own records alike, and a
// flush (OpL1Flush) with the entries it dropped.
func TestL1NoticeObserved(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		events := make(chan Event, 64)
		var rp atomic.Pointer[Cache] // events may come before l1Cache returns
		// No skew: on a cluster a load within the skew after an
		// invalidation is not stored, and the test reads the key back.
		reader := l1Cache(t, b, WithClockSkew(0), WithMetrics(MetricsFunc(func(e Event) {
			if reader := rp.Load(); reader != nil && e.Op == OpL1Invalidate && e.Key == "k" && reader.l1.get(reader.prefix+"k", time.Now().UnixNano()) != nil {
				t.Error("OpL1Invalidate observed while the entry is still held")
			}
			if e.Op == OpL1Invalidate || e.Op == OpL1Flush {
				select {
				case events <- e:
				default:
					t.Error("more near-cache events than the test expects")
				}
			}
		})))
		rp.Store(reader)
		writer := l1Cache(t, b)
		waitWatched(t, reader)
		ctx := context.Background()
		var db atomic.Int64
		getV(t, reader, "k", &db)
		getV(t, reader, "k", &db) // held in memory now
		drain := func() (out []Event) {
			for {
				select {
				case e := <-events:
					out = append(out, e)
				default:
					return out
				}
			}
		}
		drain() // the notices of the first read's own store
		if err := writer.InvalidateTags(ctx, "t:k"); err != nil {
			t.Fatal(err)
		}
		syncL1(t, reader) // the notices travel ahead of the ping's answer
		var dropped, records int
		for _, e := range drain() {
			switch {
			case e.Op == OpL1Invalidate && e.Key == "k" && e.Count == 1:
				dropped++
			case e.Op == OpL1Invalidate && strings.HasPrefix(e.Key, "#") && e.Count == 0:
				records++
			default:
				t.Errorf("unexpected event after the other process's InvalidateTags: %+v", e)
			}
		}
		if dropped != 1 || records == 0 {
			t.Fatalf("after the other process's InvalidateTags: %d drops of k observed (want 1), %d notices of records (want some)", dropped, records)
		}

		getV(t, reader, "k", &db)
		getV(t, reader, "k", &db)
		drain()
		if _, err := reader.InvalidatePattern(ctx, "nothing-matches-*"); err != nil {
			t.Fatal(err)
		}
		got := drain()
		if len(got) != 1 || got[0].Op != OpL1Flush || got[0].Count != 1 {
			t.Fatalf("InvalidatePattern observed %+v; want one OpL1Flush of 1 entry", got)
		}
	})
}

// TestL1FlushObservedWithoutLocks: OpL1Flush reaches Metrics once no lock
// is held. A flush runs inside go-redis's dial (the watcher's OnConnect,
// under its pub/sub lock) and under the tracker's lock; a callback called
// there would hold them, and one that called the Cache would deadlock.
func TestL1FlushObservedWithoutLocks(t *testing.T) {
	b := redistest.Standalone(t)
	b.RequireReal(t)
	flushes := make(chan int, 16)
	var rp atomic.Pointer[Cache] // events may come before l1Cache returns
	reader := l1Cache(t, b, WithMetrics(MetricsFunc(func(e Event) {
		reader := rp.Load()
		if e.Op != OpL1Flush || reader == nil {
			return
		}
		if !reader.track.mu.TryLock() {
			t.Error("OpL1Flush observed with the tracker's lock held")
		} else {
			reader.track.mu.Unlock()
		}
		// The watcher's pub/sub lock: a ping takes it.
		reader.track.mu.Lock()
		w := reader.track.watchers[""]
		reader.track.mu.Unlock()
		if w == nil {
			return // Close stopped it
		}
		pinged := make(chan struct{})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = w.ps.Ping(ctx, "flush-check")
			close(pinged)
		}()
		select {
		case <-pinged:
		case <-time.After(time.Second):
			t.Error("OpL1Flush observed with the watcher's pub/sub lock held (inside its dial)")
		}
		select {
		case flushes <- e.Count:
		default:
		}
	})))
	rp.Store(reader)
	waitWatched(t, reader)
	var db atomic.Int64
	getV(t, reader, "k", &db)
	getV(t, reader, "k", &db)  // held in memory now
	killTracking(t, b, reader) // the reconnect flushes in OnConnect too
	deadline := time.After(10 * time.Second)
	for dropped := 0; dropped != 1; { // the first connection's flushes dropped nothing
		select {
		case dropped = <-flushes:
			if dropped > 1 {
				t.Fatalf("a flush dropped %d entries, want 1", dropped)
			}
		case <-deadline:
			t.Fatal("no OpL1Flush of the held entry within 10 s of the tracking connection's loss")
		}
	}
	waitWatched(t, reader)
	if err := reader.Close(); err != nil { // its flush is observed too
		t.Fatal(err)
	}
}

// TestL1ReplyAndInvalidationCross forces the classic near-cache race: the
// GET has returned the old value, and the invalidation of its key arrives
// before the value is kept. It must not be kept.
func TestL1ReplyAndInvalidationCross(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		reader, writer := l1Cache(t, b), l1Cache(t, b)
		waitWatched(t, reader)
		ctx := context.Background()
		var db atomic.Int64
		db.Store(1)
		getV(t, reader, "k", &db) // stored in Redis
		fetched, resume := make(chan struct{}), make(chan struct{})
		var once sync.Once
		reader.l1Fetched = func() { once.Do(func() { close(fetched); <-resume }) }
		got := make(chan int64, 1)
		go func() { got <- getV(t, reader, "k", &db) }()
		<-fetched // the GET returned 1
		db.Store(2)
		before := reader.l1.dropped.Load() + int64(reader.l1.shard(reader.prefix+"k").gen.Load())
		if err := writer.InvalidateTags(ctx, "t:k"); err != nil {
			t.Fatal(err)
		}
		// The reader has heard of it once its stream answers a ping sent
		// after the write (Redis writes the notice first).
		syncL1(t, reader)
		if reader.l1.dropped.Load()+int64(reader.l1.shard(reader.prefix+"k").gen.Load()) == before {
			t.Fatal("no invalidation reached the reader before its ping's answer")
		}
		close(resume)
		if v := <-got; v != 1 {
			t.Fatalf("the crossing read got %d, want the 1 its GET returned", v)
		}
		if e, _ := reader.l1.size(); e != 0 {
			t.Fatal("the value read before the invalidation was kept in memory")
		}
		if v := getV(t, reader, "k", &db); v != 2 {
			t.Fatalf("the next read got %d, want 2", v)
		}
	})
}

// TestL1FlushedWhenStreamLost: when the invalidation stream breaks, the
// near cache is emptied, and serves again only once a new stream is
// confirmed; a write made while it was down is then seen.
func TestL1FlushedWhenStreamLost(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		reader := l1Cache(t, b)
		waitWatched(t, reader)
		ctx := context.Background()
		var db atomic.Int64
		db.Store(1)
		getV(t, reader, "k", &db)
		getV(t, reader, "k", &db)
		if e, _ := reader.l1.size(); e != 1 {
			t.Fatalf("%d entries held, want 1", e)
		}
		// Hold the watcher's next connection until the write is done, so
		// that no stream tells the reader about it.
		reconnecting, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		hold := func() {
			once.Do(func() {
				close(reconnecting)
				<-release
			})
		}
		reader.track.connecting.Store(&hold)
		var released sync.Once
		unhold := func() { released.Do(func() { close(release) }) }
		defer unhold() // also when the test fails: Close waits for the watcher
		killTracking(t, b, reader)
		<-reconnecting
		if e, _ := reader.l1.size(); e != 0 {
			t.Fatalf("%d entries held while no stream watches the master", e)
		}
		db.Store(2)
		if err := b.Client.Set(ctx, reader.prefix+"k", "not a frame", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		unhold()
		waitWatched(t, reader)
		if v := getV(t, reader, "k", &db); v != 2 {
			t.Fatalf("after the stream came back the read got %d, want 2 (the entry is undecodable, so a reload)", v)
		}
		s, _ := reader.Stats(ctx)
		if s.L1.Lost == 0 {
			t.Fatalf("L1 stats %+v: no stream counted lost", s.L1)
		}
	})
}

// killTracking kills the near cache's tracking connections with CLIENT
// KILL, on every master.
func killTracking(t *testing.T, b *redistest.Backend, c *Cache) {
	t.Helper()
	ctx := context.Background()
	var killed atomic.Int64
	err := forEachMaster(ctx, b.Client, func(ctx context.Context, m *redis.Client) error {
		list, err := m.ClientList(ctx).Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(list, "\n") {
			if !strings.Contains(line, " name="+c.track.name+" ") {
				continue
			}
			for _, f := range strings.Fields(line) {
				if id, ok := strings.CutPrefix(f, "id="); ok {
					if err := m.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
						killed.Add(1)
					}
				}
			}
		}
		return nil
	})
	if err != nil || killed.Load() == 0 {
		t.Fatalf("killed %d tracking connections: %v", killed.Load(), err)
	}
}

// TestL1OffWithoutTracking: on a server without CLIENT TRACKING (the
// embedded miniredis) the near cache never serves, and reads work.
func TestL1OffWithoutTracking(t *testing.T) {
	b := redistest.Standalone(t)
	if !b.Embedded {
		t.Skip("needs the embedded server, which lacks CLIENT TRACKING")
	}
	c := l1Cache(t, b)
	var db atomic.Int64
	db.Store(3)
	for range 3 {
		if got := getV(t, c, "k", &db); got != 3 {
			t.Fatalf("got %d", got)
		}
	}
	if s, _ := c.Stats(context.Background()); s.L1.Watched || s.L1.Hits != 0 {
		t.Fatalf("L1 stats %+v on a server without tracking", s.L1)
	}
}

// privateBackend is a redis-server of the test's own (extra are its
// flags), for tests that flush or cripple it.
func privateBackend(t *testing.T, extra ...string) *redistest.Backend {
	t.Helper()
	addr := redistest.StartServer(t, extra...)
	cl := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = cl.Close() })
	return &redistest.Backend{Name: "private", Client: cl, Namespace: "l1p", Addrs: []string{addr}}
}

// TestL1ServesAgainAfterFlushDB (review): a FLUSHDB, of any database of
// the server, flushes the tier; the stream is intact, so it serves again.
func TestL1ServesAgainAfterFlushDB(t *testing.T) {
	b := privateBackend(t)
	c := l1Cache(t, b)
	waitWatched(t, c)
	flushes := c.l1.flushes.Load()
	if err := b.Client.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	syncL1(t, c) // the flush's notice is in
	if c.l1.flushes.Load() == flushes {
		t.Fatal("FLUSHDB did not flush the near cache")
	}
	waitWatched(t, c)
}

// TestL1CloseDuringReconnect (review): Close while a tracking connection
// is being dialled must not deadlock with the dial's OnConnect.
func TestL1CloseDuringReconnect(t *testing.T) {
	b := privateBackend(t)
	addr := b.Addrs[0]
	var hold atomic.Bool
	entered, release := make(chan struct{}, 10), make(chan struct{})
	dialer := func(ctx context.Context, network, _ string) (net.Conn, error) {
		if hold.Load() {
			entered <- struct{}{}
			<-release
			// A dial that had connected when Close cancelled it.
			var d net.Dialer
			return d.Dial(network, addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	cl := redis.NewClient(&redis.Options{Addr: addr, Dialer: dialer})
	t.Cleanup(func() { _ = cl.Close() })
	c := quietCache(&redistest.Backend{Client: cl, Namespace: b.Namespace}, WithL1())
	waitWatched(t, c)
	hold.Store(true)
	killTracking(t, b, c)
	<-entered // the watcher's reconnect is dialling, in go-redis's pub/sub lock
	stopping := make(chan struct{})
	var once sync.Once
	onStop := func() { once.Do(func() { close(stopping) }) }
	c.track.stopping.Store(&onStop)
	closed := make(chan struct{})
	go func() { _ = c.Close(); close(closed) }()
	// Close has reached the watcher's pub/sub Close, which waits for the
	// dial; the dial's OnConnect must then find nothing of Close's held.
	<-stopping
	hold.Store(false)
	close(release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close deadlocked with a reconnecting tracking connection")
	}
}

// TestL1NeverOutlivesTheKey (review): an entry is kept no longer than its
// key's remaining TTL in Redis, which notices an expiry only when it gets
// round to deleting the key.
func TestL1NeverOutlivesTheKey(t *testing.T) {
	b := redistest.Standalone(t)
	b.RequireReal(t)
	c := l1Cache(t, b)
	waitWatched(t, c)
	ctx := context.Background()
	if err := Set(ctx, c, "k", int64(1), TTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Make the key's TTL short behind the cache's back.
	if err := b.Client.PExpire(ctx, c.prefix+"k", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	syncL1(t, c) // PEXPIRE's own notice is in
	var db atomic.Int64
	db.Store(2)
	getV(t, c, "k", &db) // from Redis, kept
	sh := c.l1.shard(c.prefix + "k")
	sh.mu.RLock()
	it := sh.m[c.prefix+"k"]
	sh.mu.RUnlock()
	if it == nil {
		t.Fatal("the value read from Redis was not kept")
	}
	if left := time.Until(time.Unix(0, it.expires)); left > 300*time.Millisecond {
		t.Fatalf("kept for %v more, past the key's TTL of at most 300ms", left)
	}
}

// TestL1NoDialStormWithoutTracking (review): against a server that refuses
// CLIENT, the tracking connection is retried with a backoff, not dialled
// ten times a second.
func TestL1NoDialStormWithoutTracking(t *testing.T) {
	addr := redistest.StartServer(t, "--rename-command", "CLIENT", "")
	var dials atomic.Int64
	cl := redis.NewClient(&redis.Options{Addr: addr, Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}})
	t.Cleanup(func() { _ = cl.Close() })
	c := quietCache(&redistest.Backend{Client: cl, Namespace: "l1p"}, WithL1())
	defer c.Close()
	time.Sleep(2 * time.Second) // let the backoff grow
	before := dials.Load()
	time.Sleep(2 * time.Second) // the window in which dials are counted
	if n := dials.Load() - before; n > 6 {
		t.Fatalf("%d dials in 2 s against a server without CLIENT TRACKING (%d in the 2 s before)", n, before)
	}
}

// TestL1KeepsNothingFromAnUnwatchedMaster: on a cluster, a value read from a
// master that the near cache does not watch yet (the tracker finds new
// masters once a second) is not kept: that master's notices would reach
// nobody, while the tier, watching every master it knows, still serves.
func TestL1KeepsNothingFromAnUnwatchedMaster(t *testing.T) {
	b := redistest.Cluster(t)
	b.RequireReal(t)
	ctx := context.Background()
	ev := &l1Events{}
	c := l1Cache(t, b, WithMetrics(ev))
	waitWatched(t, c)
	m, err := c.cluster.MasterForKey(ctx, c.RedisKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	// As if the master were new: the tracker has no watcher for it.
	c.track.mu.Lock()
	w := c.track.remove(m.Options().Addr)
	c.track.mu.Unlock()
	w.stop()
	if !c.l1.watched(time.Now().UnixNano()) {
		t.Fatal("the tier stopped serving: the test needs it serving on the other masters")
	}
	var db atomic.Int64
	db.Store(1)
	for range 3 {
		if _, err := GetCached(ctx, c, "k", func(context.Context) (int64, error) { return db.Load(), nil }, TTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := ev.l1.Load(); n != 0 {
		t.Fatalf("%d hits from memory of a key whose master nobody watches", n)
	}
}
