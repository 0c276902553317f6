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

// TestPatternDropLosesEarlyMember: InvalidatePattern ("an
// administrative tool, for a deploy hook") deletes the tag sets it meets
// along with the values. A tagged miss whose lease comes after SCAN passed
// its key, and whose tagging comes before SCAN reaches the tag set, loses
// its member but keeps its placeholder. An InvalidateTags acknowledged
// after that misses the key, and the store (which skipped the tagging and
// its "#v" check, l.tagged) puts back the value loaded before the write.
// Before the change the store's own tagging read the "#v" record.
func TestPatternDropLosesEarlyMember(t *testing.T) {
	addr := redistest.StartServer(t)
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	c := New(client, WithNamespace("rv"), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	// Fill the keyspace so that SCAN takes several calls.
	pipe := client.Pipeline()
	for i := range 3000 {
		pipe.Set(ctx, fmt.Sprint("rv:fill:", i), "x", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// Find a key that SCAN returns at least two calls before a tag's set.
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
	key, kb, tag, tk := "", 1<<30, "", ""
	for j, k := range cands {
		if batch[k] < kb {
			key, kb = fmt.Sprint("row:", j), batch[k]
		}
	}
	tb := -1
	for j, k := range tks {
		if batch[k] > tb {
			tag, tk, tb = fmt.Sprint("t", j), k, batch[k]
		}
	}
	if kb+2 > tb {
		t.Skip("no key scanned well before a tag set")
	}

	h := &scanPause{n: int64(kb + 1), paused: make(chan struct{}), resume: make(chan struct{})}
	client.AddHook(h)
	patternDone := make(chan error, 1)
	go func() { _, err := c.InvalidatePattern(ctx, "*"); patternDone <- err }()
	<-h.paused // SCAN has passed the key's position

	var db atomic.Int64
	db.Store(1)
	loading, release := make(chan struct{}), make(chan struct{})
	done := make(chan int64)
	go func() {
		v, _ := GetCached(ctx, c, key, func(context.Context) (int64, error) {
			v := db.Load()
			close(loading)
			<-release
			return v, nil
		}, TTL(time.Minute), Tags(tag))
		done <- v
	}()
	<-loading
	close(h.resume)
	if err := <-patternDone; err != nil {
		t.Fatal(err)
	}
	if n, _ := client.Exists(ctx, c.RedisKey(key)).Result(); n != 1 {
		t.Skip("the pattern deleted the placeholder: nothing forced")
	}
	if n, _ := client.Exists(ctx, tk).Result(); n != 0 {
		t.Skip("the pattern did not reach the tag set: nothing forced")
	}

	db.Store(2)
	if err := c.InvalidateTags(ctx, tag); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := GetCached(ctx, c, key, func(context.Context) (int64, error) { return db.Load(), nil }, TTL(time.Minute), Tags(tag))
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
	addr := redistest.StartServer(t)
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	c := New(client, WithNamespace("rs"), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	pipe := client.Pipeline()
	for i := range 3000 {
		pipe.Set(ctx, fmt.Sprint("rs:fill:", i), "x", 0)
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
	batch := scanBatches(ctx, t, client, "rs:*")
	client.Del(ctx, all...)
	key, kb, tag, tk := "", 1<<30, "", ""
	for j, k := range cands {
		if batch[k] < kb {
			key, kb = fmt.Sprint("row:", j), batch[k]
		}
	}
	tb := -1
	for j, k := range tks {
		if batch[k] > tb {
			tag, tk, tb = fmt.Sprint("t", j), k, batch[k]
		}
	}
	if kb+2 > tb {
		t.Skip("no key scanned well before a tag set")
	}
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
