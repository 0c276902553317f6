package runtime

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
)

// Tags known before a load are tagged in the lease's round trip
// (tryLease). These tests hold that to the rules of the later
// tagging it replaces.

// TestNoStaleSetAfterStaticTagInvalidation: a tag invalidated while the
// load runs finds the key in its set and deletes the placeholder, so the
// old value is not stored.
func TestNoStaleSetAfterStaticTagInvalidation(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b)
		var db atomic.Int64
		db.Store(1)
		release, done := heldRead(ctx, c, "row:1", func() row { return row{1, int(db.Load())} }, TTL(time.Minute), Tags("item:1"))
		db.Store(2)
		if err := c.InvalidateTags(ctx, "item:1"); err != nil {
			t.Fatal(err)
		}
		release()
		<-done
		got, _ := GetCached(ctx, c, "row:1", func(context.Context) (row, error) { return row{1, int(db.Load())}, nil }, TTL(time.Minute), Tags("item:1"))
		if got.Version != 2 {
			t.Fatalf("read after the tag's invalidation = %+v: the row loaded before it was stored", got)
		}
	})
}

// TestLeaseAfterTagging: the taggings go before the lease in its pipeline.
// Replication keeps that order, so a replica promoted with the placeholder
// also lists the key in its tags' sets; the other order could lose a
// member while the placeholder survives, and an invalidation on the new
// master would miss the key.
func TestLeaseAfterTagging(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	c := quietCache(b)
	var pipes [][]string
	b.Client.AddHook(pipeRecorder(func(cmds []redis.Cmder) {
		var names []string
		for _, cmd := range cmds {
			if args := cmd.Args(); len(args) > 1 && cmd.Name() == "evalsha" {
				names = append(names, args[1].(string))
			}
		}
		if names != nil { // not the connection's handshake
			pipes = append(pipes, names)
		}
	}))
	if _, err := GetCached(ctx, c, "k", func(context.Context) (int, error) { return 1, nil }, TTL(time.Minute), Tags("a", "b")); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if len(pipes) == 0 {
		t.Fatal("no pipeline: the lease was not sent with the taggings")
	}
	want := []string{tagAddScript.Hash(), tagAddScript.Hash(), leaseScript.Hash()}
	if got := pipes[0]; !slices.Equal(got, want) {
		t.Fatalf("the lease's pipeline runs %v, want the taggings then the lease %v", got, want)
	}
}

// pipeRecorder is a go-redis hook that passes each pipeline to f before
// it is sent.
type pipeRecorder func([]redis.Cmder)

func (f pipeRecorder) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (f pipeRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f pipeRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { f(cmds); return next(ctx, cmds) }
}

// TestTagMemberOutlivesItsKey: a member tagged with the lease is scored
// from the lease's time, but its key expires from the store's: the member
// must not expire first, or the key would escape its tag's invalidation.
func TestTagMemberOutlivesItsKey(t *testing.T) {
	b := redistest.Standalone(t)
	b.RequireReal(t)
	ctx := context.Background()
	const lease = 1500 * time.Millisecond
	c := quietCache(b, WithLockTTL(lease))
	if _, err := GetCached(ctx, c, "k", func(context.Context) (int, error) {
		time.Sleep(lease * 9 / 10) // a load that ends just inside its lease
		return 1, nil
	}, TTL(10*time.Second), Tags("t")); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	full := c.RedisKey("k")
	now, err := b.Client.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	pttl := b.Client.PTTL(ctx, full).Val()
	if pttl <= 0 {
		t.Fatalf("key not stored (PTTL %v)", pttl)
	}
	score, err := b.Client.ZScore(ctx, c.tagKey("t"), full).Result()
	if err != nil {
		t.Fatal(err)
	}
	if keyEnd := float64(now.Add(pttl).UnixMilli()); score < keyEnd {
		t.Fatalf("the member expires at %.0f, %.0f ms before its key", score, keyEnd-score)
	}
}

// TestTaggedMissRoundTrips: a miss with tags known before the load takes
// three round trips (GET; the lease with the tagging; the compare-and-set),
// one without tags three as well, and a hit one.
func TestTaggedMissRoundTrips(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	// A client of its own: a hook is not added to one in use.
	cl := redistest.NewClient(t, b)
	var trips atomic.Int64 // commands and pipelines sent
	cl.AddHook(beforeSend(func([]redis.Cmder) { trips.Add(1) }))
	c := New(cl, WithNamespace(b.Namespace), WithLogger(quietCache(b).log))
	// Load the scripts of both misses first: a NOSCRIPT retry is a round
	// trip of its own (the test failed when run without the tests that
	// load them before it).
	for _, opts := range [][]CallOption{{TTL(time.Minute), Tags("w")}, {TTL(time.Minute)}} {
		if _, err := GetCached(ctx, c, fmt.Sprint("warm", len(opts)), func(context.Context) (int, error) { return 1, nil }, opts...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		opts []CallOption
		want int64
	}{
		{"tagged", []CallOption{TTL(time.Minute), Tags("a", "b")}, 3},
		{"plain", []CallOption{TTL(time.Minute)}, 3},
		{"tagged", []CallOption{TTL(time.Minute), Tags("a", "b")}, 1}, // now a hit
	} {
		trips.Store(0)
		if _, err := GetCached(ctx, c, tc.key, func(context.Context) (int, error) { return 1, nil }, tc.opts...); err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if got := trips.Load(); got != tc.want {
			t.Errorf("GetCached(%q) took %d round trips, want %d", tc.key, got, tc.want)
		}
	}
}
