package faults_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

type evictionFigures struct {
	policy                 string
	entries, evicted       int64
	staleGroup, staleItems int
	flagged                bool
}

var evictionTable []evictionFigures

// startServer starts a throwaway redis-server with extra arguments.
func startServer(t *testing.T, args ...string) *redis.Client {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		redistest.Standalone(t).RequireReal(t) // skips, or fails under CI
	}
	addr := redistest.ClosedAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	srv := exec.Command("redis-server", append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	for i := 0; client.Ping(context.Background()).Err() != nil; i++ {
		if i > 300 {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond) // polling a process that gives no other signal
	}
	return client
}

// TestEvictionLeavesStaleEntries measures, under each eviction policy, how
// many of 4 000 tagged entries survive the invalidation of every tag on a
// server that evicted (maxmemory 2mb): each is a stale read until its TTL.
// It asserts only that the cache flags the risk; the counts go in the table.
func TestEvictionLeavesStaleEntries(t *testing.T) {
	const entries, groups = 4000, 40
	for _, policy := range []string{"allkeys-lru", "volatile-lru", "volatile-ttl"} {
		t.Run(policy, func(t *testing.T) {
			client := startServer(t, "--maxmemory", "2mb", "--maxmemory-policy", policy)
			ctx := context.Background()
			c := runtime.New(client, runtime.WithLogger(quiet()))
			val := strings.Repeat("v", 600)
			for i := range entries {
				if err := runtime.Set(ctx, c, fmt.Sprint("item:", i), val, runtime.TTL(time.Minute),
					runtime.Tags(fmt.Sprint("item:", i), fmt.Sprint("group:", i%groups))); err != nil {
					t.Fatal(err)
				}
			}
			s, err := c.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			f := evictionFigures{policy: policy, entries: entries, evicted: s.Server.EvictedKeys, flagged: s.Server.EvictingTagSets}
			count := func() int {
				n := 0
				for i := range entries {
					if client.Exists(ctx, c.RedisKey(fmt.Sprint("item:", i))).Val() == 1 {
						n++
					}
				}
				return n
			}
			// Group tags first: what survives is what an evicted group set
			// could not reach; then the item tags.
			for g := range groups {
				_ = c.InvalidateTags(ctx, fmt.Sprint("group:", g))
			}
			f.staleGroup = count()
			var items []string
			for i := range entries {
				items = append(items, fmt.Sprint("item:", i))
			}
			_ = c.InvalidateTags(ctx, items...)
			f.staleItems = count()
			t.Logf("%s: %d evicted; after invalidating every group tag %d entries left, after every item tag %d; flagged %v",
				policy, f.evicted, f.staleGroup, f.staleItems, f.flagged)
			if f.evicted > 0 && !f.flagged {
				t.Errorf("evicted %d keys under %s, and Stats did not flag it", f.evicted, policy)
			}
			tableMu.Lock()
			evictionTable = append(evictionTable, f)
			tableMu.Unlock()
		})
	}
}
