package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
)

// scanPause is a go-redis hook that, once armed, blocks after the n-th
// SCAN reply until resume is closed.
type scanPause struct {
	n      int64
	calls  atomic.Int64
	paused chan struct{}
	resume chan struct{}
}

func (h *scanPause) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scanPause) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "scan" && h.calls.Add(1) == h.n {
			close(h.paused)
			<-h.resume
		}
		return err
	}
}
func (h *scanPause) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// scanBatches returns, for each key of the namespace, the index of the SCAN
// call (COUNT tagBatch, as InvalidatePattern) that returns it.
func scanBatches(ctx context.Context, t *testing.T, cl *redis.Client, match string) map[string]int {
	out := map[string]int{}
	var cursor uint64
	for i := 0; ; i++ {
		keys, next, err := cl.Scan(ctx, cursor, match, tagBatch).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			out[k] = i
		}
		if cursor = next; cursor == 0 {
			return out
		}
	}
}

// patternRace is a Cache on a server of its own whose keyspace makes
// InvalidatePattern's SCAN take several calls, with a key that SCAN returns
// (in call kb) at least two calls before a tag's set (tk, of tag).
type patternRace struct {
	c            *Cache
	client       *redis.Client
	key, tag, tk string
	kb           int
}

func newPatternRace(t *testing.T) patternRace {
	t.Helper()
	addr := redistest.StartServer(t)
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	c := New(client, WithNamespace("rv"), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	pipe := client.Pipeline()
	for i := range 3000 {
		pipe.Set(ctx, fmt.Sprint("rv:fill:", i), "x", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var cands, tks []string
	for j := range 64 {
		cands = append(cands, c.RedisKey(fmt.Sprint("row:", j)))
		tks = append(tks, c.tagKey(fmt.Sprint("t", j)))
	}
	all := append(append([]string(nil), cands...), tks...)
	for _, k := range all {
		client.Set(ctx, k, "x", 0)
	}
	batch := scanBatches(ctx, t, client, "rv:*")
	client.Del(ctx, all...)
	r := patternRace{c: c, client: client, kb: 1 << 30}
	for j, k := range cands {
		if batch[k] < r.kb {
			r.key, r.kb = fmt.Sprint("row:", j), batch[k]
		}
	}
	tb := -1
	for j, k := range tks {
		if batch[k] > tb {
			r.tag, r.tk, tb = fmt.Sprint("t", j), k, batch[k]
		}
	}
	if r.kb+2 > tb {
		t.Skip("no key scanned well before a tag set")
	}
	return r
}

// TestLostTagSetLosesEarlyMember: a tagged miss on a single master tags
// its key with the lease, before its load. If the tag's set is lost while
// it loads (evicted; before this session InvalidatePattern deleted sets as
// it scanned, which is how a review first forced this), an InvalidateTags
// acknowledged after that misses the key, and the store (which skipped the
// tagging and its "#v" check, l.tagged) would put back the value loaded
// before the write. The store's compare-and-set requires its member in each
// set (casStoreTaggedScript). This test forced the loss through
// InvalidatePattern until that stopped deleting tag sets, after which it
// skipped every run; it now deletes the set itself.
func TestLostTagSetLosesEarlyMember(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	c := quietCache(b)
	var db atomic.Int64
	db.Store(1)
	release, done := heldRead(ctx, c, "row", db.Load, TTL(time.Minute), Tags("t")) // leased and tagged
	if n, err := b.Client.Del(ctx, c.tagKey("t")).Result(); err != nil || n != 1 {
		t.Fatalf("the tag's set was not there to lose (%d, %v): nothing forced", n, err)
	}
	db.Store(2)
	if err := c.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	release()
	<-done
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := GetCached(ctx, c, "row", func(context.Context) (int64, error) { return db.Load(), nil }, TTL(time.Minute), Tags("t"))
	if err != nil {
		t.Fatal(err)
	}
	if got != 2 {
		t.Fatalf("read after the acknowledged InvalidateTags = %d, want 2: the load from before it was stored", got)
	}
}

// TestPatternDropLosesStoredMember is what TestFaults' failover scenario
// met under load, where the namespace drop after a master was replaced
// (InvalidatePattern "*", run by several checks at once) raced with
// stores: a value stored and tagged after SCAN passed its key, whose tag
// set SCAN reaches afterwards, loses its only member and stays; an
// InvalidateTags acknowledged after that does not find it, and every read
// gets the value from before the write (41 such reads of one row in that
// run, until its TTL). The pattern must not delete what tells a tag's
// invalidation where its values are.
func TestPatternDropLosesStoredMember(t *testing.T) {
	ctx := context.Background()
	r := newPatternRace(t)
	c, client, key, kb, tag, tk := r.c, r.client, r.key, r.kb, r.tag, r.tk
	var db atomic.Int64
	db.Store(1)
	read := func() int64 {
		t.Helper()
		v, err := GetCached(ctx, c, key, func(context.Context) (int64, error) { return db.Load(), nil }, TTL(time.Minute), Tags(tag))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	h := &scanPause{n: int64(kb + 1), paused: make(chan struct{}), resume: make(chan struct{})}
	client.AddHook(h)
	patternDone := make(chan error, 1)
	go func() { _, err := c.InvalidatePattern(ctx, "*"); patternDone <- err }()
	<-h.paused // SCAN has passed the key's position
	read()     // a miss, stored and tagged
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	close(h.resume)
	if err := <-patternDone; err != nil {
		t.Fatal(err)
	}
	if n, _ := client.Exists(ctx, c.RedisKey(key)).Result(); n != 1 {
		t.Fatal("the value stored behind SCAN is gone: nothing forced")
	}

	db.Store(2)
	if err := c.InvalidateTags(ctx, tag); err != nil {
		t.Fatal(err)
	}
	if v := read(); v != 2 {
		t.Fatalf("read after the acknowledged InvalidateTags = %d, want 2: the pattern deleted the tag set %s and left its value", v, tk)
	}
}
