package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// TestEvictionIsFlagged (issue 10, item 6): on a server whose policy may
// evict tag sets, once evicted_keys grows, Stats says so and one warning
// is logged.
func TestEvictionIsFlagged(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		redistest.Standalone(t).RequireReal(t) // skips, or fails under CI
	}
	addr := redistest.ClosedAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	srv := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()
	for i := 0; client.Ping(ctx).Err() != nil; i++ {
		if i > 200 {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond) // polling a process that has no other signal
	}
	var logs bytes.Buffer
	c := runtime.New(client, runtime.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	const window = 300 * time.Millisecond
	runtime.SetEvictionWindow(c, window)
	s, err := c.Stats(ctx)
	if err != nil || s.Server.EvictingTagSets || s.Server.MaxmemoryPolicy != "allkeys-lru" {
		t.Fatalf("before eviction: %+v, %v", s.Server, err)
	}
	big := strings.Repeat("x", 10<<10)
	for i := range 1000 { // 10 MB into 2 MB
		if err := runtime.Set(ctx, c, fmt.Sprint("k:", i), big, runtime.TTL(time.Minute), runtime.Tags(fmt.Sprint("t:", i%10))); err != nil {
			t.Fatal(err)
		}
	}
	// Two readers (an exporter and the live page, say) both see it.
	for i := range 2 {
		if s, err = c.Stats(ctx); err != nil {
			t.Fatal(err)
		}
		if !s.Server.EvictingTagSets {
			t.Errorf("reader %d: EvictingTagSets false right after evicted_keys grew (%d)", i+1, s.Server.EvictedKeys)
		}
	}
	if s.Server.EvictedKeys == 0 {
		t.Fatal("nothing was evicted")
	}
	// Redis 7 may go on evicting for a while after the writes (eviction
	// is time-sliced): wait for a window in which evicted_keys stayed put.
	for attempt := 0; ; attempt++ {
		before := s.Server.EvictedKeys
		time.Sleep(window + 100*time.Millisecond) // the window is time itself
		if s, err = c.Stats(ctx); err != nil {
			t.Fatal(err)
		}
		if s.Server.EvictedKeys != before {
			if attempt == 20 {
				t.Fatal("evicted_keys kept growing for 20 windows")
			}
			continue // it grew: the flag is right to be set
		}
		if s.Server.EvictingTagSets {
			t.Errorf("EvictingTagSets %v after evicted_keys last grew, with a window of %v", window+100*time.Millisecond, window)
		}
		break
	}
	// Write until Redis evicts again (after the pause it may have room).
	for i := 0; ; i++ {
		if err := runtime.Set(ctx, c, fmt.Sprint("more:", i), big, runtime.TTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		n, err := client.Info(ctx, "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(n, fmt.Sprintf("evicted_keys:%d\r", s.Server.EvictedKeys)) {
			break
		}
		if i == 500 {
			t.Fatal("500 more values of 10 KB evicted nothing")
		}
	}
	if s, _ = c.Stats(ctx); !s.Server.EvictingTagSets {
		t.Errorf("EvictingTagSets false with evicted_keys growing (%d) under %s", s.Server.EvictedKeys, s.Server.MaxmemoryPolicy)
	}
	if n := strings.Count(logs.String(), "may evict tag sets"); n != 1 {
		t.Errorf("%d eviction warnings, want 1:\n%s", n, logs.String())
	}
}
