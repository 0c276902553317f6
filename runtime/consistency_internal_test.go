package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/codec"
	"github.com/repocache/repocache/internal/redistest"
)

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }

func quietCache(b *redistest.Backend, opts ...Option) *Cache {
	return New(b.Client, append([]Option{WithNamespace(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)...)
}

// row is a database row with a version that every write increments.
type row struct {
	ID      int
	Version int
}

// heldRead starts a GetCached of key in the background whose loader reads
// load() and then waits. It returns once the loader has read: release lets
// the loader return, and result then gives what GetCached returned.
func heldRead[T any](ctx context.Context, c *Cache, key string, load func() T, opts ...CallOption) (release func(), result <-chan T) {
	loading, released := make(chan struct{}), make(chan struct{})
	done := make(chan T, 1)
	go func() {
		v, _ := GetCached(ctx, c, key, func(context.Context) (T, error) {
			v := load()
			close(loading)
			<-released
			return v, nil
		}, opts...)
		done <- v
	}()
	<-loading
	return func() { close(released) }, done
}

// TestNoStaleSetAfterKeyInvalidation forces the classic race: a reader
// misses and loads the old row; a writer updates the row and invalidates
// the key; then the reader tries to store the old row. It must not stick.
func TestNoStaleSetAfterKeyInvalidation(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b)
		var db atomic.Int64 // the row's version
		db.Store(1)
		release, readerDone := heldRead(ctx, c, "row:1", func() row { return row{1, int(db.Load())} }, TTL(time.Minute)) // reads version 1
		db.Store(2)
		if err := c.Invalidate(ctx, "row:1"); err != nil { // the writer's acknowledged invalidation
			t.Fatal(err)
		}
		release()
		if v := <-readerDone; v.Version != 1 {
			t.Fatalf("reader got %+v", v)
		}
		got, err := GetCached(ctx, c, "row:1", func(context.Context) (row, error) { return row{1, int(db.Load())}, nil }, TTL(time.Minute))
		if err != nil || got.Version != 2 {
			t.Fatalf("read after the invalidation = %+v, %v; want version 2 (the old row was stored)", got, err)
		}
		if s, _ := c.Stats(ctx); s.StaleSetsPrevented != 1 {
			t.Fatalf("StaleSetsPrevented = %d, want 1", s.StaleSetsPrevented)
		}
	})
}

// TestNoStaleSetAfterResultTagInvalidation: the same race on a list whose
// tags come from its result, so that the key is in no tag set while it
// loads; the tag's invalidation time stops the store.
func TestNoStaleSetAfterResultTagInvalidation(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b)
		var name atomic.Value
		name.Store("old")
		list := func() []string { return []string{"a", name.Load().(string)} }
		tags := ResultTags(func([]string) []string { return []string{"item:7"} })
		release, done := heldRead(ctx, c, "list", list, TTL(time.Minute), tags)
		name.Store("new")
		if err := c.InvalidateTags(ctx, "item:7"); err != nil {
			t.Fatal(err)
		}
		release()
		<-done
		got, _ := GetCached(ctx, c, "list", func(context.Context) ([]string, error) { return list(), nil }, TTL(time.Minute), tags)
		if got[1] != "new" {
			t.Fatalf("list after the tag's invalidation = %v: the stale list was stored", got)
		}
	})
}

// TestStoreAfterOldInvalidation: an invalidation well before the lease does
// not stop the store.
func TestStoreAfterOldInvalidation(t *testing.T) {
	b := redistest.Standalone(t)
	b.RequireReal(t)
	ctx := context.Background()
	c := quietCache(b)
	if err := c.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	// Age the invalidation record by a second, as if it were older.
	tk := c.tagKey("t")
	score := b.Client.ZScore(ctx, tk, versionMember).Val()
	b.Client.ZAdd(ctx, tk, redisZ(score-1000, versionMember))
	if _, err := GetCached(ctx, c, "k", func(context.Context) (int, error) { return 1, nil }, TTL(time.Minute), Tags("t")); err != nil {
		t.Fatal(err)
	}
	if n := b.Client.Exists(ctx, c.RedisKey("k")).Val(); n != 1 {
		t.Fatal("value not stored after an old invalidation")
	}
}

// TestDistributedStampede: 128 concurrent misses over 4 clients (as 4
// processes would) with a 300 ms loader make exactly one load.
func TestDistributedStampede(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		ctx := context.Background()
		var caches []*Cache
		for range 4 {
			cl := redistest.NewClient(t, b)
			caches = append(caches, New(cl, WithNamespace(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))))
		}
		var loads atomic.Int64
		load := func(context.Context) (string, error) {
			loads.Add(1)
			time.Sleep(300 * time.Millisecond) // the database's cost, not synchronisation
			return "v", nil
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 128)
		for i := range 128 {
			c := caches[i%4]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v, err := GetCached(ctx, c, "hot", load, TTL(time.Minute), Lock(LockDistributed))
				if err == nil && v != "v" {
					err = fmt.Errorf("got %q", v)
				}
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := loads.Load(); n != 1 {
			t.Fatalf("%d loads for 128 concurrent misses over 4 clients, want 1", n)
		}
	})
}

// TestDistributedTakeoverWhenHolderFails: the holder's load fails; a waiter
// in another process takes over at once and loads itself.
func TestDistributedTakeoverWhenHolderFails(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		holder, waiter := quietCache(b), quietCache(b)
		waiting := make(chan struct{})
		var once sync.Once
		waiter.waiting = func() { once.Do(func() { close(waiting) }) }
		holderErr := errors.New("db timeout")
		holderDone := make(chan error)
		holderIn := make(chan struct{})
		go func() {
			_, err := GetCached(ctx, holder, "k", func(context.Context) (string, error) {
				close(holderIn)
				<-waiting
				return "", holderErr
			}, TTL(time.Minute), Lock(LockDistributed))
			holderDone <- err
		}()
		<-holderIn
		v, err := GetCached(ctx, waiter, "k", func(context.Context) (string, error) { return "from waiter", nil }, TTL(time.Minute), Lock(LockDistributed))
		if err != nil || v != "from waiter" {
			t.Fatalf("waiter got %q, %v", v, err)
		}
		if err := <-holderDone; err != holderErr {
			t.Fatalf("holder err = %v", err)
		}
	})
}

// TestDistributedTakeoverWhenHolderDies: a holder that never comes back
// (its placeholder written, then nothing) is taken over when its lease
// expires.
func TestDistributedTakeoverWhenHolderDies(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t) // miniredis expires keys only when told to
		ctx := context.Background()
		dead := quietCache(b, WithLockTTL(200*time.Millisecond))
		if st, _, _, _, err := dead.tryLease(ctx, dead.RedisKey("k"), 0, nil); err != nil || st != leaseGranted {
			t.Fatalf("lease: %v %v", st, err)
		}
		c := quietCache(b)
		v, err := GetCached(ctx, c, "k", func(context.Context) (string, error) { return "taken over", nil }, TTL(time.Minute), Lock(LockDistributed))
		if err != nil || v != "taken over" {
			t.Fatalf("got %q, %v", v, err)
		}
	})
}

// TestLongLoadKeepsItsLease: a load three times longer than the lease TTL
// is not taken over, because the holder keeps the lease alive.
func TestLongLoadKeepsItsLease(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t) // miniredis expires keys only when told to
		ctx := context.Background()
		const lease = 150 * time.Millisecond
		holder, waiter := quietCache(b, WithLockTTL(lease)), quietCache(b, WithLockTTL(lease))
		holderIn := make(chan struct{})
		go func() {
			_, _ = GetCached(ctx, holder, "k", func(context.Context) (string, error) {
				close(holderIn)
				time.Sleep(3 * lease) // a long load
				return "holder", nil
			}, TTL(time.Minute), Lock(LockDistributed))
		}()
		<-holderIn
		v, err := GetCached(ctx, waiter, "k", func(context.Context) (string, error) { return "waiter", nil }, TTL(time.Minute), Lock(LockDistributed))
		if err != nil || v != "holder" {
			t.Fatalf("waiter got %q, %v; want the holder's value", v, err)
		}
	})
}

// TestWaiterRespectsContext: a distributed waiter returns when its context
// ends.
func TestWaiterRespectsContext(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		holder := quietCache(b)
		if st, _, _, _, err := holder.tryLease(context.Background(), holder.RedisKey("k"), 0, nil); err != nil || st != leaseGranted {
			t.Fatalf("lease: %v %v", st, err)
		}
		c := quietCache(b)
		ctx, cancel := context.WithCancel(context.Background())
		c.waiting = cancel
		_, err := GetCached(ctx, c, "k", func(context.Context) (string, error) {
			t.Error("waiter loaded while the lease was held")
			return "", nil
		}, TTL(time.Minute), Lock(LockDistributed))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestStaleWhileRevalidate: a stale value is served at once, one refresh
// runs for many concurrent readers, and the next read gets the new value.
// A failed refresh keeps the stale value.
func TestStaleWhileRevalidate(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		stored := make(chan struct{}, 1)
		c := quietCache(b, WithMetrics(MetricsFunc(func(e Event) {
			if e.Op == OpSet {
				stored <- struct{}{}
			}
		})))
		writeStale(t, c, "k", "old")
		var loads atomic.Int64
		allRead := make(chan struct{})
		load := func(context.Context) (string, error) {
			loads.Add(1)
			<-allRead // the refresh finishes only after every reader was served
			return "new", nil
		}
		for range 10 {
			v, err := GetCached(ctx, c, "k", load, TTL(time.Minute), SWR(time.Minute))
			if err != nil || v != "old" {
				t.Fatalf("stale read = %q, %v; want the stale value at once", v, err)
			}
		}
		close(allRead)
		<-stored
		if n := loads.Load(); n != 1 {
			t.Fatalf("%d refreshes for 10 stale reads, want 1", n)
		}
		v, _ := GetCached(ctx, c, "k", load, TTL(time.Minute), SWR(time.Minute))
		if v != "new" {
			t.Fatalf("after the refresh got %q", v)
		}
		s, _ := c.Stats(ctx)
		if s.StaleServes != 10 {
			t.Fatalf("StaleServes = %d", s.StaleServes)
		}

		// Grace: a failing refresh keeps the stale value.
		writeStale(t, c, "g", "old")
		failed := make(chan struct{})
		failing := func(context.Context) (string, error) { defer close(failed); return "", errors.New("db down") }
		if v, _ := GetCached(ctx, c, "g", failing, TTL(time.Minute), SWR(time.Minute)); v != "old" {
			t.Fatalf("got %q", v)
		}
		<-failed
		if v, _ := GetCached(ctx, c, "g", load, TTL(time.Minute), SWR(time.Minute)); v != "old" {
			t.Fatalf("after a failed refresh got %q, want the stale value", v)
		}
	})
}

// writeStale stores v under key as an SWR envelope whose freshness ended a
// second ago, with a minute of window left.
func writeStale(t *testing.T, c *Cache, key, v string) {
	t.Helper()
	frame, err := codec.Marshal(c.codec, v)
	if err != nil {
		t.Fatal(err)
	}
	env := makeEnvelope(0, time.Now().Add(-time.Second), frame)
	if err := c.client.Set(context.Background(), c.RedisKey(key), env, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestNegativeCaching(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b)
		var loads atomic.Int64
		notFound := fmt.Errorf("user 7: %w", ErrNotFound)
		exists := atomic.Bool{}
		load := func(context.Context) (*row, error) {
			loads.Add(1)
			if exists.Load() {
				return &row{ID: 7}, nil
			}
			return nil, notFound
		}
		opts := []CallOption{TTL(time.Minute), Negative(time.Minute), Tags("user:7")}
		if _, err := GetCached(ctx, c, "user:7", load, opts...); err != notFound {
			t.Fatalf("first err = %v, want the loader's error unchanged", err)
		}
		_, err := GetCached(ctx, c, "user:7", load, opts...)
		if !errors.Is(err, ErrNotFound) || loads.Load() != 1 {
			t.Fatalf("second read: err %v, %d loads; want the cached not-found", err, loads.Load())
		}
		// Creating the user invalidates its tag, and with it the cached
		// not-found answer.
		exists.Store(true)
		Put(ctx, c, "user:7", &row{ID: 7}, TTL(time.Minute), Tags("user:7"))
		v, err := GetCached(ctx, c, "user:7", load, opts...)
		if err != nil || v == nil || v.ID != 7 {
			t.Fatalf("after create: %v, %v", v, err)
		}
		// A nil result is cached as nil with Negative.
		var nilLoads atomic.Int64
		nilLoad := func(context.Context) (*row, error) { nilLoads.Add(1); return nil, nil }
		for range 2 {
			if v, err := GetCached(ctx, c, "nil", nilLoad, TTL(time.Minute), Negative(time.Minute)); v != nil || err != nil {
				t.Fatalf("nil read = %v, %v", v, err)
			}
		}
		if nilLoads.Load() != 1 {
			t.Fatalf("%d loads of a nil result with Negative, want 1", nilLoads.Load())
		}
	})
}

// fakeTx collects after-commit functions.
type fakeTx struct{ fns []func() }

func (f *fakeTx) AfterCommit(fn func()) { f.fns = append(f.fns, fn) }
func (f *fakeTx) commit() {
	for _, fn := range f.fns {
		fn()
	}
}

func TestTransactions(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		c := quietCache(b)
		bg := context.Background()
		if err := Set(bg, c, "ws:1", "committed", TTL(time.Minute), Tags("ws:1")); err != nil {
			t.Fatal(err)
		}
		tx := &fakeTx{}
		ctx := WithTx(bg, tx)
		// Inside the transaction: the cache is neither read nor filled.
		v, _ := GetCached(ctx, c, "ws:1", func(context.Context) (string, error) { return "uncommitted", nil }, TTL(time.Minute))
		if v != "uncommitted" {
			t.Fatalf("a read inside a transaction was served from the cache: %q", v)
		}
		if _, err := GetCached(ctx, c, "ws:2", func(context.Context) (string, error) { return "x", nil }, TTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		Put(ctx, c, "ws:1", "uncommitted", TTL(time.Minute), Tags("ws:1"))
		c.AfterWrite(ctx, []string{"ws:3"}, nil)
		if n := b.Client.Exists(bg, c.RedisKey("ws:2")).Val(); n != 0 {
			t.Fatal("a read inside a transaction filled the cache")
		}
		got, _ := GetCached(bg, c, "ws:1", func(context.Context) (string, error) { return "db", nil }, TTL(time.Minute))
		if got != "committed" {
			t.Fatalf("a write inside a transaction reached the cache before the commit: %q", got)
		}
		if len(tx.fns) != 2 {
			t.Fatalf("%d after-commit functions, want 2 (put and invalidate)", len(tx.fns))
		}
		// A rollback never runs them; a commit does.
		tx.commit()
		got, _ = GetCached(bg, c, "ws:1", func(context.Context) (string, error) { return "db", nil }, TTL(time.Minute))
		if got != "uncommitted" {
			t.Fatalf("after the commit got %q, want the written-through value", got)
		}
	})
}

// TestNoStaleSetInBatch: a batch load races with an invalidation of one of
// its elements; that element is returned but not stored, the others are.
// A placeholder of another loader found by the batch is left alone.
func TestNoStaleSetInBatch(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b, WithClockSkew(0))
		other := quietCache(b)
		// Another loader holds the lease of id 3.
		if st, _, _, _, err := other.tryLease(ctx, other.RedisKey("p:3"), 0, nil); err != nil || st != leaseGranted {
			t.Fatalf("lease: %v %v", st, err)
		}
		key := func(id int) string { return fmt.Sprint("p:", id) }
		idOf := func(r row) int { return r.ID }
		tags := ResultTags(func(r row) []string { return []string{key(r.ID)} })
		loading, release := make(chan struct{}), make(chan struct{})
		done := make(chan []row)
		go func() {
			rows, err := GetBatch(ctx, c, []int{1, 2, 3}, key, idOf, func(_ context.Context, ids []int) ([]row, error) {
				close(loading)
				<-release
				var out []row
				for _, id := range ids {
					out = append(out, row{id, 1})
				}
				return out, nil
			}, TTL(time.Minute), tags)
			if err != nil {
				t.Error(err)
			}
			done <- rows
		}()
		<-loading
		if err := c.InvalidateTags(ctx, "p:2"); err != nil {
			t.Fatal(err)
		}
		close(release)
		if rows := <-done; len(rows) != 3 {
			t.Fatalf("batch returned %v", rows)
		}
		// The stores and releases run in the background, and GetBatch
		// waits for them only a few milliseconds: under load, element 2
		// could still hold its placeholder here.
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		stored := func(id int) bool {
			raw, _ := b.Client.Get(ctx, c.RedisKey(key(id))).Result()
			return parseEntry(raw).kind == kindValue
		}
		raw, _ := b.Client.Get(ctx, c.RedisKey("p:3")).Result()
		switch {
		case !stored(1):
			t.Error("element 1 was not stored")
		case stored(2):
			t.Error("element 2 was stored although its tag was invalidated while it loaded")
		case parseEntry(raw).kind != kindPlaceholder:
			t.Error("the other loader's placeholder for element 3 was replaced or deleted")
		}
	})
}
