package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
)

// cmdRecorder records, for every command sent, its name, its argument count
// and the longest round trip seen.
type cmdRecorder struct {
	mu      sync.Mutex
	maxArgs map[string]int
	slowest time.Duration
	slowCmd string
}

func (r *cmdRecorder) record(cmd redis.Cmder, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := strings.ToLower(cmd.Name())
	n := len(cmd.Args()) - 1
	switch name {
	case "zrem": // the drain key, then its members
		n--
	case "zrange":
		start, _ := cmd.Args()[2].(int64)
		stop, _ := cmd.Args()[3].(int64)
		n = int(stop - start + 1)
	}
	if n > r.maxArgs[name] {
		r.maxArgs[name] = n
	}
	if d > r.slowest {
		r.slowest, r.slowCmd = d, name
	}
}

func (r *cmdRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *cmdRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		r.record(cmd, time.Since(start))
		return err
	}
}
func (r *cmdRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		d := time.Since(start)
		for _, c := range cmds {
			r.record(c, d)
		}
		return err
	}
}

// fillTag stores n small values, all tagged with tag, in pipelines of 1000.
func fillTag(t *testing.T, c *Cache, tag string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += 1000 {
		var batch []entry
		for j := i; j < min(i+1000, n); j++ {
			k := fmt.Sprint("item:", j)
			batch = append(batch, entry{key: k, full: c.prefix + k, data: []byte("x"), ttl: time.Hour, tags: []string{tag}})
		}
		if err := c.storeMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
}

func testLargeTag(t *testing.T, b *redistest.Backend, n int) {
	ctx := context.Background()
	c := New(b.Client, WithNamespace(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	fillTag(t, c, "big", n)
	if card := b.Client.ZCard(ctx, c.tagKey("big")).Val(); card != int64(n) {
		t.Fatalf("tag set holds %d members, want %d", card, n)
	}
	rec := &cmdRecorder{maxArgs: map[string]int{}}
	b.Client.AddHook(rec)
	start := time.Now()
	if err := c.InvalidateTags(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	keys, err := b.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != c.tagKey("big") {
		t.Fatalf("%d keys left after invalidating the tag, e.g. %v; want only the tag's invalidation marker", len(keys), keys[:min(3, len(keys))])
	}
	if m := b.Client.ZRange(ctx, keys[0], 0, -1).Val(); len(m) != 1 || m[0] != versionMember {
		t.Fatalf("tag set after invalidation holds %v", m)
	}
	s, _ := c.Stats(ctx)
	if s.Invalidated != int64(n) {
		t.Fatalf("Invalidated = %d, want %d", s.Invalidated, n)
	}
	// The bound that matters: no command carries more than tagBatch keys.
	for name, max := range rec.maxArgs {
		if max > tagBatch {
			t.Errorf("%s carried %d keys, want at most %d per command", name, max, tagBatch)
		}
	}
	t.Logf("%d members invalidated in %v; commands %v; slowest round trip %v (%s)", n, took, rec.maxArgs, rec.slowest, rec.slowCmd)
}

func TestInvalidateTagWith100kMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	b := redistest.Standalone(t)
	b.RequireReal(t)
	testLargeTag(t, b, 100_000)
}

func TestInvalidateLargeTagOnCluster(t *testing.T) {
	testLargeTag(t, redistest.Cluster(t), 5_000)
}

// TestTagSetPrunesExpiredMembers: a hot tag that keeps getting members must
// not keep the dead ones (gocache's tag sets grow for 30 days).
func TestTagSetPrunesExpiredMembers(t *testing.T) {
	b := redistest.Standalone(t)
	b.RequireReal(t)
	ctx := context.Background()
	c := New(b.Client, WithNamespace(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	// 100 members that are already dead: scored in the past, as if their
	// keys had expired.
	tk := c.tagKey("hot")
	for i := range 100 {
		b.Client.ZAdd(ctx, tk, redis.Z{Score: 1, Member: fmt.Sprint("dead:", i)})
	}
	b.Client.Expire(ctx, tk, time.Hour)
	// Each tagging prunes up to tagPrune dead members.
	for i := range 2 {
		k := fmt.Sprint("live:", i)
		if err := c.store(ctx, k, c.prefix+k, []byte("x"), time.Minute, []string{"hot"}); err != nil {
			t.Fatal(err)
		}
	}
	members := b.Client.ZRange(ctx, tk, 0, -1).Val()
	if len(members) != 2 {
		t.Fatalf("tag set holds %v, want only the 2 live members", members)
	}
	// Its expiry is that of its longest-lived member, not the hour before.
	if ttl := b.Client.PTTL(ctx, tk).Val(); ttl > time.Minute+tagMargin || ttl <= 0 {
		t.Fatalf("tag set TTL %v, want at most 1m + margin", ttl)
	}
}
