package runtime_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

type project struct {
	ID   int64
	Name string
}

func TestGetBatch(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		db := map[int64]project{}
		for i := range int64(200) {
			db[i] = project{ID: i, Name: "p" + strconv.FormatInt(i, 10)}
		}
		var calls atomic.Int64
		var asked [][]int64
		load := func(_ context.Context, ids []int64) ([]*project, error) {
			calls.Add(1)
			asked = append(asked, slices.Clone(ids))
			var out []*project
			for _, id := range ids {
				if p, ok := db[id]; ok {
					out = append(out, &p)
				}
			}
			return out, nil
		}
		key := func(id int64) string { return "project:" + strconv.FormatInt(id, 10) }
		idOf := func(p *project) int64 { return p.ID }
		get := func(ids ...int64) []int64 {
			t.Helper()
			got, err := runtime.GetBatch(ctx, c, ids, key, idOf, load, runtime.TTL(time.Minute),
				runtime.ResultTags(func(p *project) []string { return []string{"project:" + strconv.FormatInt(p.ID, 10)} }))
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, p := range got {
				if p.Name != db[p.ID].Name {
					t.Fatalf("element %d = %+v", p.ID, p)
				}
				out = append(out, p.ID)
			}
			return out
		}
		if got := get(3, 1, 2, 1, 999); !slices.Equal(got, []int64{3, 1, 2}) {
			t.Fatalf("got %v, want ids order kept, each element once, unknown absent", got)
		}
		if !slices.Equal(asked[0], []int64{3, 1, 2, 999}) {
			t.Fatalf("load asked %v, want each missing id once", asked[0])
		}
		// Now 1, 2, 3 are hits (once their background store has
		// landed): only the new ids are loaded.
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if got := get(1, 2, 3, 4, 5); !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
			t.Fatalf("got %v", got)
		}
		if !slices.Equal(asked[1], []int64{4, 5}) {
			t.Fatalf("second load asked %v, want only the misses [4 5]", asked[1])
		}
		// All hits: no load at all.
		before := calls.Load()
		ids := []int64{1, 2, 3, 4, 5}
		if got := get(ids...); !slices.Equal(got, ids) || calls.Load() != before {
			t.Fatalf("all-hit batch loaded (%d calls) or got %v", calls.Load()-before, got)
		}
		// Each element carries its own tag.
		if err := c.InvalidateTags(ctx, "project:2"); err != nil {
			t.Fatal(err)
		}
		get(1, 2, 3)
		if !slices.Equal(asked[len(asked)-1], []int64{2}) {
			t.Fatalf("after dropping project:2, load asked %v, want [2]", asked[len(asked)-1])
		}
		// Many ids across many slots on a cluster.
		many := make([]int64, 150)
		for i := range many {
			many[i] = int64(i)
		}
		if got := get(many...); len(got) != 150 {
			t.Fatalf("got %d of 150", len(got))
		}
		if got := get(many...); len(got) != 150 {
			t.Fatalf("got %d of 150 on the all-hit pass", len(got))
		}
		if empty, err := runtime.GetBatch(ctx, c, nil, key, idOf, load, runtime.TTL(time.Minute)); err != nil || len(empty) != 0 {
			t.Fatalf("empty batch = %v, %v", empty, err)
		}
	})
}

func TestPutAndAfterWrite(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		// A list that holds project 7, tagged by its members.
		list := []project{{ID: 7, Name: "old"}, {ID: 8}}
		if err := runtime.Set(ctx, c, "projects:ws1", list, runtime.TTL(time.Minute),
			runtime.ResultTags(func(ps []project) []string {
				var tags []string
				for _, p := range ps {
					tags = append(tags, fmt.Sprint("project:", p.ID))
				}
				return tags
			})); err != nil {
			t.Fatal(err)
		}
		if err := runtime.Set(ctx, c, "stats:ws1", 1, runtime.TTL(time.Minute), runtime.Tags("ws:1")); err != nil {
			t.Fatal(err)
		}
		// Renaming project 7 writes it through and drops the list.
		runtime.Put(ctx, c, "project:7", project{ID: 7, Name: "new"}, runtime.TTL(time.Minute),
			runtime.Tags("project:7"), runtime.AlsoInvalidate("ws:1"))
		assertKeys(t, b, c, map[string]bool{"projects:ws1": false, "stats:ws1": false, "project:7": true})
		got, err := runtime.GetCached(ctx, c, "project:7", func(context.Context) (project, error) {
			t.Fatal("loader called after a write-through")
			return project{}, nil
		}, runtime.TTL(time.Minute))
		if err != nil || got.Name != "new" {
			t.Fatalf("got %+v, %v", got, err)
		}
		// A second Put drops the first one's value through its tag.
		c.AfterWrite(ctx, []string{"missing"}, []string{"project:7"})
		assertKeys(t, b, c, map[string]bool{"project:7": false})
	})
}

func TestBypassIsCounted(t *testing.T) {
	b := redistest.Standalone(t)
	c := newCache(b)
	c.Bypass("Repo.Find", "in is nil")
	s, _ := c.Stats(context.Background())
	if s.Bypasses != 1 {
		t.Fatalf("Bypasses = %d", s.Bypasses)
	}
}

// TestGetBatchInTransaction: inside a transaction the cache is bypassed,
// but the result is what a batch get promises: the wrapped method is asked
// each id once, in first order, and the result keeps the order of ids,
// each found element once, whatever order the method answers in.
func TestGetBatchInTransaction(t *testing.T) {
	b := redistest.Standalone(t)
	c := newCache(b)
	ctx := runtime.WithTx(context.Background(), &runtime.FakeTx{}) // never committed
	var asked []int64
	load := func(_ context.Context, ids []int64) ([]*project, error) {
		asked = slices.Clone(ids)
		var out []*project
		for _, id := range slices.Backward(ids) { // the database's own order
			if id != 999 {
				out = append(out, &project{ID: id, Name: "tx"})
			}
		}
		return out, nil
	}
	got, err := runtime.GetBatch(ctx, c, []int64{3, 1, 2, 1, 999}, func(id int64) string { return "project:" + strconv.FormatInt(id, 10) },
		func(p *project) int64 { return p.ID }, load, runtime.TTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, p := range got {
		ids = append(ids, p.ID)
	}
	if !slices.Equal(ids, []int64{3, 1, 2}) {
		t.Errorf("got %v, want [3 1 2]: the order of ids, each element once, the unknown absent", ids)
	}
	if !slices.Equal(asked, []int64{3, 1, 2, 999}) {
		t.Errorf("the wrapped method was asked %v, want each id once: [3 1 2 999]", asked)
	}
	if n := b.Client.Exists(context.Background(), c.RedisKey("project:3")).Val(); n != 0 {
		t.Error("a batch read inside a transaction filled the cache")
	}
}

// TestAfterUnrenderedWrite: a write whose keys and tags could not be
// rendered drops every value of the namespace; in a transaction, after
// the commit.
func TestAfterUnrenderedWrite(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		for _, k := range []string{"project:1", "projects:ws1"} {
			if err := runtime.Set(ctx, c, k, 1, runtime.TTL(time.Minute), runtime.Tags("ws:1")); err != nil {
				t.Fatal(err)
			}
		}
		tx := &runtime.FakeTx{}
		c.AfterUnrenderedWrite(runtime.WithTx(ctx, tx))
		assertKeys(t, b, c, map[string]bool{"project:1": true, "projects:ws1": true})
		runtime.CommitTx(tx)
		assertKeys(t, b, c, map[string]bool{"project:1": false, "projects:ws1": false})
	})
}

// TestAfterUnrenderedWriteFailsLoudly: a namespace drop that Redis refuses
// is counted as a failed invalidation and queued for the background retry.
func TestAfterUnrenderedWriteFailsLoudly(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	c := runtime.New(client, runtime.WithLogger(discard))
	c.AfterUnrenderedWrite(runtime.WithMethod(context.Background(), "Repo.Merge"))
	s, _ := c.Stats(context.Background())
	if s.InvalidationFailures != 1 || s.InvalidationRetries != 1 {
		t.Fatalf("after a refused namespace drop: %d failures, %d queued for retry; want 1 and 1", s.InvalidationFailures, s.InvalidationRetries)
	}
}
