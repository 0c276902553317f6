package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/faultproxy"
	"github.com/repocache/repocache/internal/redistest"
)

// newProxied is a client through a fault proxy to b's server, as
// runtime.NewClient would configure it (see faultproxy.NewClient).
func newProxied(t *testing.T, b *redistest.Backend, retries int, scripts ...*redis.Script) *faultproxy.Client {
	t.Helper()
	b.RequireReal(t)
	return faultproxy.NewClient(t, b.Addrs[0], retries, scripts...)
}

// TestRetriedAllowCountsOnce (issue 10): the reply to Allow's script is
// lost after the server ran it and go-redis runs it again. The request
// must be counted once: with a limit of 2 it is allowed with one
// remaining, exactly one more request is allowed after it, and a retry of
// the last request of a window is not denied by its own first run.
func TestRetriedAllowCountsOnce(t *testing.T) {
	b := redistest.Standalone(t)
	px := newProxied(t, b, 2, slidingScript, gcraScript)
	for _, limit := range []int{1, 2} {
		sw, err := NewSlidingWindow(px.Client, limit, time.Minute, WithPrefix(fmt.Sprintf("%s:sw%d", b.Namespace, limit)))
		if err != nil {
			t.Fatal(err)
		}
		gc, err := NewGCRA(px.Client, limit, time.Minute, limit, WithPrefix(fmt.Sprintf("%s:gcra%d", b.Namespace, limit)))
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]struct {
			l      Limiter
			script *redis.Script
		}{"sliding": {sw, slidingScript}, "gcra": {gc, gcraScript}} {
			t.Run(fmt.Sprintf("%s/limit=%d", name, limit), func(t *testing.T) {
				ctx := context.Background()
				px.LateReply(c.script)
				start := px.Proxy.Replies()
				r, err := c.l.Allow(ctx, "alice")
				if err != nil {
					t.Fatalf("retried Allow: %v", err)
				}
				if px.Proxy.Replies()-start < 2 {
					t.Fatal("the script was not run twice: the late reply did not cause a retry")
				}
				if !r.Allowed || r.Remaining != limit-1 {
					t.Fatalf("retried Allow = %+v, want allowed with %d remaining (counted once)", r, limit-1)
				}
				for i := 1; i < limit; i++ {
					if r, err := c.l.Allow(ctx, "alice"); err != nil || !r.Allowed || r.Remaining != limit-1-i {
						t.Fatalf("Allow %d = %+v, %v; want allowed with %d remaining: the retry counted the first twice", i+1, r, err, limit-1-i)
					}
				}
				if r, err := c.l.Allow(ctx, "alice"); err != nil || r.Allowed {
					t.Fatalf("Allow %d = %+v, %v; want denied", limit+1, r, err)
				}
			})
		}
	}
}
