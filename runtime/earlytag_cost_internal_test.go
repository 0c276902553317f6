package runtime

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
)

// TestWaiterTagsOnce: a LockDistributed waiter polls the
// lease every 2-20ms; each poll now runs every tagging script too (here 3
// tags), so a waiter costs Redis (1+tags) scripts per poll instead of one.
func TestWaiterTagsOnce(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	holder := quietCache(b)
	waiterClient := redistest.NewClient(t, b)
	var tagged atomic.Int64 // tagAddScript runs, pipelined or not
	waiterClient.AddHook(beforeSend(func(cmds []redis.Cmder) {
		for _, cmd := range cmds {
			if scriptOf(cmd) == "tag" {
				tagged.Add(1)
			}
		}
	}))
	waiter := New(waiterClient, WithNamespace(b.Namespace))
	opts := []CallOption{TTL(time.Minute), Tags("a", "b", "c"), Lock(LockDistributed)}
	loading, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = GetCached(ctx, holder, "k", func(context.Context) (int, error) { close(loading); <-release; return 1, nil }, opts...)
	}()
	<-loading
	go func() { time.Sleep(300 * time.Millisecond); close(release) }()
	if _, err := GetCached(ctx, waiter, "k", func(context.Context) (int, error) { return 1, nil }, opts...); err != nil {
		t.Fatal(err)
	}
	if n := tagged.Load(); n > 3 {
		t.Fatalf("one waiting read ran the tagging script %d times (3 tags)", n)
	}
}
