package lock

import (
	"context"
	"errors"
	"io"
	"log/slog"
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

func newProxiedLocks(t *testing.T, retries int) (*redistest.Backend, *faultproxy.Client, *Client) {
	t.Helper()
	b := redistest.Standalone(t)
	px := newProxied(t, b, retries, obtainScript, releaseScript, refreshScript)
	c, err := New(px.Client, WithPrefix(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	return b, px, c
}

func assertRetried(t *testing.T, px *faultproxy.Client, start int64) {
	t.Helper()
	if px.Proxy.Replies()-start < 2 {
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
	px.LateReply(obtainScript)
	start := px.Proxy.Replies()
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
	px.LateReply(releaseScript)
	start := px.Proxy.Replies()
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
	px.LateReply(refreshScript)
	start := px.Proxy.Replies()
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
	px.LateReply(obtainScript)
	if _, err := c.Obtain(ctx, "job", time.Minute); err == nil {
		t.Fatal("Obtain succeeded: the late reply did not time out")
	}
	if _, err := c.Obtain(ctx, "job", time.Minute); err != nil {
		t.Fatalf("Obtain after a timed-out Obtain: %v (the first left its lock behind)", err)
	}
}
