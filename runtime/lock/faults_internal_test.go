package lock

import (
	"context"
	"errors"
	"io"
	"log/slog"
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

func newProxiedLocks(t *testing.T, retries int) (*redistest.Backend, *proxied, *Client) {
	t.Helper()
	b := redistest.Standalone(t)
	px := newProxied(t, b, retries, obtainScript, releaseScript, refreshScript)
	c, err := New(px.client, WithPrefix(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return b, px, c
}

func assertRetried(t *testing.T, px *proxied, start int64) {
	t.Helper()
	if px.proxy.Replies()-start < 2 {
		t.Fatal("the script was not run twice: the late reply did not cause a retry")
	}
}

// TestRetriedObtainIsTheCallersOwn (issue 10): the reply to Obtain's
// script is lost after the server set the lock, and go-redis runs it
// again. The retry must recognise the caller's own token instead of
// finding the lock "held by someone else" (and leaving it locked by nobody
// for its TTL).
func TestRetriedObtainIsTheCallersOwn(t *testing.T) {
	b, px, c := newProxiedLocks(t, 2)
	ctx := context.Background()
	before, err := c.Obtain(ctx, "job", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := before.Release(ctx); err != nil {
		t.Fatal(err)
	}
	px.lateReply(obtainScript)
	start := px.proxy.Replies()
	l, err := c.Obtain(ctx, "job", time.Minute)
	assertRetried(t, px, start)
	if err != nil {
		t.Fatalf("retried Obtain: %v; want the lock (the retry saw the caller's own token as another holder's)", err)
	}
	if l.Fence() <= before.Fence() {
		t.Fatalf("fence %d after %d: want increasing", l.Fence(), before.Fence())
	}
	if f, err := b.Client.Get(ctx, l.keys[1]).Int64(); err != nil || f != l.Fence() {
		t.Fatalf("fencing counter %d (%v), lock's fence %d: the retry advanced the counter again", f, err, l.Fence())
	}
	if ttl, err := l.TTL(ctx); err != nil || ttl < 50*time.Second {
		t.Fatalf("TTL = %v, %v", ttl, err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if _, err := c.Obtain(ctx, "job", time.Minute); err != nil {
		t.Fatalf("Obtain after Release: %v", err)
	}
}

// TestRetriedReleaseSucceeds (issue 10): the reply to Release's script is
// lost after the server deleted the lock; the retry must report the
// release done, not ErrNotHeld. A second Release by the caller still
// reports ErrNotHeld.
func TestRetriedReleaseSucceeds(t *testing.T) {
	b, px, c := newProxiedLocks(t, 2)
	ctx := context.Background()
	l, err := c.Obtain(ctx, "job", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	px.lateReply(releaseScript)
	start := px.proxy.Replies()
	err = l.Release(ctx)
	assertRetried(t, px, start)
	if err != nil {
		t.Fatalf("retried Release: %v; want nil (the first run released it)", err)
	}
	if n := b.Client.Exists(ctx, l.keys[0]).Val(); n != 0 {
		t.Fatal("the lock is still there")
	}
	if err := l.Release(ctx); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("second Release: %v, want ErrNotHeld", err)
	}
}

// TestRetriedRefreshSucceeds (issue 10): a refresh run twice extends the
// caller's own lock twice: it succeeds.
func TestRetriedRefreshSucceeds(t *testing.T) {
	_, px, c := newProxiedLocks(t, 2)
	ctx := context.Background()
	l, err := c.Obtain(ctx, "job", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	px.lateReply(refreshScript)
	start := px.proxy.Replies()
	err = l.Refresh(ctx, time.Minute)
	assertRetried(t, px, start)
	if err != nil {
		t.Fatalf("retried Refresh: %v", err)
	}
	if ttl, err := l.TTL(ctx); err != nil || ttl < 50*time.Second {
		t.Fatalf("TTL = %v, %v; want about a minute", ttl, err)
	}
}

// TestTimedOutObtainLeavesNoLock (issue 10, retries off): the obtain's
// reply is lost and not retried; Obtain returns the error and must not
// leave the key locked by nobody.
func TestTimedOutObtainLeavesNoLock(t *testing.T) {
	_, px, c := newProxiedLocks(t, -1)
	ctx := context.Background()
	px.lateReply(obtainScript)
	if _, err := c.Obtain(ctx, "job", time.Minute); err == nil {
		t.Fatal("Obtain succeeded: the late reply did not time out")
	}
	if _, err := c.Obtain(ctx, "job", time.Minute); err != nil {
		t.Fatalf("Obtain after a timed-out Obtain: %v (the first left its lock behind)", err)
	}
}
