package runtime

import (
	"context"
	"sync"
	"time"
)

// Background work: the store that follows a load, the release of a lease,
// stale-while-revalidate refreshes and invalidation retries run off the
// caller's goroutine, so that a slow or hung Redis never holds a caller
// past the moment its value was loaded. The work is bounded: at most
// maxBackground tasks at once (a task that finds no room is dropped and
// counted: a store that does not happen only costs a later miss), each
// under a timeout.
const maxBackground = 256

// tasks counts the background tasks in flight, for Wait.
type tasks struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n == 0; nil means closed
	sem  chan struct{}
}

// start takes a slot and counts a task; false when none is free.
func (t *tasks) start() bool {
	select {
	case t.sem <- struct{}{}:
	default:
		return false
	}
	t.add()
	return true
}

// end ends a task begun with start.
func (t *tasks) end() {
	<-t.sem
	t.done()
}

// add counts a task that takes no slot (the one retry loop); done ends it.
func (t *tasks) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tasks) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		close(t.idle)
	}
	t.mu.Unlock()
}

// background runs f in its own goroutine with a context that keeps ctx's
// values but not its cancellation, ending after timeout. It reports false,
// and counts the task as dropped, when maxBackground tasks are running.
func (c *Cache) background(ctx context.Context, timeout time.Duration, f func(context.Context)) bool {
	if !c.tasks.start() {
		c.stats.backgroundDropped.Add(1)
		return false
	}
	go func() {
		defer c.tasks.end()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		f(ctx)
	}()
	return true
}

// storeTimeout bounds a background store or release: the lease's TTL (its
// compare-and-set cannot succeed after the lease has expired anyway), at
// least a second.
func (c *Cache) storeTimeout() time.Duration { return max(c.leaseTTL, time.Second) }

// Wait blocks until the background work started so far has finished
// (stores after loads, lease releases, refreshes, pending invalidation
// retries), or ctx ends. Call it before a process exits, so that what was
// loaded last is stored, and in tests before reading Redis directly.
func (c *Cache) Wait(ctx context.Context) error {
	c.tasks.mu.Lock()
	idle := c.tasks.idle
	n := c.tasks.n
	c.tasks.mu.Unlock()
	if n == 0 {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
