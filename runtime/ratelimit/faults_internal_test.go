package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/faultproxy"
	"github.com/repocache/repocache/internal/redistest"
)

// proxied is a client that reaches b's server through a fault proxy, with
// a short read timeout and go-redis's retries, as runtime.NewClient sets
// them.
type proxied struct {
	client *redis.Client
	proxy  *faultproxy.Proxy
	before atomic.Pointer[func(name, arg string)]
}

func newProxied(t *testing.T, b *redistest.Backend, retries int, scripts ...*redis.Script) *proxied {
	t.Helper()
	b.RequireReal(t)
	p, err := faultproxy.Start(b.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	client := redis.NewClient(&redis.Options{
		Addr: p.Addr(), ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
		MaxRetries: retries, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond,
		PoolSize: 4, DialerRetries: 1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = client.Close() })
	px := &proxied{client: client, proxy: p}
	client.AddHook(px)
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts { // no NOSCRIPT round trip before the delayed reply
		if err := s.Load(ctx, client).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return px
}

func (px *proxied) DialHook(next redis.DialHook) redis.DialHook { return next }
func (px *proxied) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f := px.before.Load(); f != nil {
			arg := ""
			if args := cmd.Args(); len(args) > 1 {
				arg, _ = args[1].(string)
			}
			(*f)(strings.ToLower(cmd.Name()), arg)
		}
		return next(ctx, cmd)
	}
}
func (px *proxied) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// lateReply makes the reply to the next run of script arrive after the
// client's read timeout: the server has run it, go-redis runs it again.
func (px *proxied) lateReply(script *redis.Script) {
	var once atomic.Bool
	f := func(name, arg string) {
		if name == "evalsha" && arg == script.Hash() && !once.Swap(true) {
			px.proxy.DelayNext(1, 350*time.Millisecond)
		}
	}
	px.before.Store(&f)
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
		sw, err := NewSlidingWindow(px.client, limit, time.Minute, WithPrefix(fmt.Sprintf("%s:sw%d", b.Namespace, limit)))
		if err != nil {
			t.Fatal(err)
		}
		gc, err := NewGCRA(px.client, limit, time.Minute, limit, WithPrefix(fmt.Sprintf("%s:gcra%d", b.Namespace, limit)))
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]struct {
			l      Limiter
			script *redis.Script
		}{"sliding": {sw, slidingScript}, "gcra": {gc, gcraScript}} {
			t.Run(fmt.Sprintf("%s/limit=%d", name, limit), func(t *testing.T) {
				ctx := context.Background()
				px.lateReply(c.script)
				start := px.proxy.Replies()
				r, err := c.l.Allow(ctx, "alice")
				if err != nil {
					t.Fatalf("retried Allow: %v", err)
				}
				if px.proxy.Replies()-start < 2 {
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
