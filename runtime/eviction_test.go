package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// evictingServer starts a redis-server of its own with 2 MB of memory
// under allkeys-lru, and returns a client of it; hooks, if any, are added
// before its first command.
func evictingServer(t *testing.T, hooks ...redis.Hook) *redis.Client {
	t.Helper()
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
	for _, h := range hooks {
		client.AddHook(h)
	}
	t.Cleanup(func() { _ = client.Close() })
	for i := 0; client.Ping(context.Background()).Err() != nil; i++ {
		if i > 200 {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond) // polling a process that has no other signal
	}
	return client
}

// fillPastMemory writes 10 MB of tagged values into the 2 MB server.
func fillPastMemory(t *testing.T, c *runtime.Cache, prefix string) {
	t.Helper()
	big := strings.Repeat("x", 10<<10)
	for i := range 1000 {
		if err := runtime.Set(context.Background(), c, fmt.Sprint(prefix, i), big, runtime.TTL(time.Minute), runtime.Tags(fmt.Sprint("t:", i%10))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEvictionIsFlagged (issue 10, item 6): on a server whose policy may
// evict tag sets, once evicted_keys grows, Stats says so and one warning
// is logged.
func TestEvictionIsFlagged(t *testing.T) {
	client := evictingServer(t)
	ctx := context.Background()
	var logs bytes.Buffer
	c := runtime.New(client, runtime.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	const window = 300 * time.Millisecond
	runtime.SetEvictionWindow(c, window)
	s, err := c.Stats(ctx)
	if err != nil || s.Server.EvictingTagSets || s.Server.MaxmemoryPolicy != "allkeys-lru" {
		t.Fatalf("before eviction: %+v, %v", s.Server, err)
	}
	fillPastMemory(t, c, "k:")
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
	if s = quietWindow(t, c, s, window); s.Server.EvictingTagSets {
		t.Errorf("EvictingTagSets %v after evicted_keys last grew, with a window of %v", window+100*time.Millisecond, window)
	}
	// Write until Redis evicts again (after the pause it may have room).
	big := strings.Repeat("x", 10<<10)
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

// holdReply holds the reply of the next INFO, once armed, until released:
// a Stats that read the server before another but finishes after it.
type holdReply struct {
	armed         atomic.Bool
	got, released chan struct{}
}

func (h *holdReply) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *holdReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "info" && h.armed.CompareAndSwap(true, false) {
			close(h.got)
			<-h.released
		}
		return err
	}
}
func (h *holdReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestEvictionNotFlaggedByAnOlderReading: two Stats at once, the one that
// read evicted_keys first finishing last, must not make the next Stats
// see growth that did not happen (a counter moved backwards, then
// forwards again).
func TestEvictionNotFlaggedByAnOlderReading(t *testing.T) {
	h := &holdReply{got: make(chan struct{}), released: make(chan struct{})}
	client := evictingServer(t, h)
	ctx := context.Background()
	c := runtime.New(client, runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	const window = 300 * time.Millisecond
	runtime.SetEvictionWindow(c, window)
	if _, err := c.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	h.armed.Store(true)
	older := make(chan runtime.Stats, 1)
	go func() { s, _ := c.Stats(ctx); older <- s }()
	<-h.got // it has read evicted_keys: 0
	fillPastMemory(t, c, "k:")
	s, err := c.Stats(ctx)
	if err != nil || !s.Server.EvictingTagSets {
		t.Fatalf("after evictions: %+v, %v", s.Server, err)
	}
	close(h.released)
	if o := <-older; o.Server.EvictedKeys != 0 {
		t.Fatalf("the held Stats read %d evicted keys, want 0", o.Server.EvictedKeys)
	}
	// Once evicted_keys stays put for a window, nothing is flagged.
	if s = quietWindow(t, c, s, window); s.Server.EvictingTagSets {
		t.Errorf("EvictingTagSets with evicted_keys unchanged (%d) for %v: the older reading made it look like growth", s.Server.EvictedKeys, window+100*time.Millisecond)
	}
}

// quietWindow waits for a window in which evicted_keys stayed put, starting
// from the reading s, and returns the Stats read at its end. Redis 7 may go
// on evicting for a while after the writes (eviction is time-sliced).
func quietWindow(t *testing.T, c *runtime.Cache, s runtime.Stats, window time.Duration) runtime.Stats {
	t.Helper()
	for attempt := 0; ; attempt++ {
		before := s.Server.EvictedKeys
		time.Sleep(window + 100*time.Millisecond) // the window is time itself
		var err error
		if s, err = c.Stats(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.Server.EvictedKeys == before {
			return s
		}
		if attempt == 20 { // it grew: the flag is right to be set, wait again
			t.Fatal("evicted_keys kept growing for 20 windows")
		}
	}
}
