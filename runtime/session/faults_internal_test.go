package session

import (
	"context"
	"errors"
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

func newProxiedStore(t *testing.T, retries int) (*redistest.Backend, *proxied, *Store[string]) {
	t.Helper()
	b := redistest.Standalone(t)
	px := newProxied(t, b, retries, createScript, regenerateScript, touchScript, updateScript, deleteScript, indexAddScript)
	s, err := New[string](px.client, WithPrefix(b.Namespace+":sess"))
	if err != nil {
		t.Fatal(err)
	}
	return b, px, s
}

// sessionKeys lists the session hashes under b's namespace (not the
// user indexes).
func sessionKeys(t *testing.T, b *redistest.Backend) []string {
	t.Helper()
	keys, err := b.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if !strings.Contains(k, ":user:") {
			out = append(out, k)
		}
	}
	return out
}

// TestRetriedRegenerateKeepsTheSession (issue 10): the reply to
// Regenerate's script is lost after the server swapped the sessions, and
// go-redis runs it again. The retry must recognise its own swap: the user
// keeps a session (the new one, listed in the index), not ErrNotFound with
// the old one deleted and the new one alive but unlisted.
func TestRetriedRegenerateKeepsTheSession(t *testing.T) {
	b, px, s := newProxiedStore(t, 2)
	ctx := context.Background()
	old, err := s.Create(ctx, "", "anonymous cart")
	if err != nil {
		t.Fatal(err)
	}
	old.UserID, old.Data = "ada", "logged in"
	px.lateReply(regenerateScript)
	start := px.proxy.Replies()
	next, err := s.Regenerate(ctx, old)
	if px.proxy.Replies()-start < 2 {
		t.Fatal("the script was not run twice: the late reply did not cause a retry")
	}
	if err != nil {
		t.Fatalf("retried Regenerate: %v; want the new session (the first run made it)", err)
	}
	if _, err := s.Get(ctx, old.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old ID after Regenerate: %v, want ErrNotFound", err)
	}
	if got, err := s.Get(ctx, next.ID); err != nil || got.UserID != "ada" || got.Data != "logged in" {
		t.Fatalf("new ID: %+v, %v", got, err)
	}
	if n, err := s.DeleteAllForUser(ctx, "ada"); err != nil || n != 1 {
		t.Fatalf("DeleteAllForUser = %d, %v; want the new session listed and deleted", n, err)
	}
	if keys := sessionKeys(t, b); len(keys) != 0 {
		t.Fatalf("sessions left after DeleteAllForUser: %q", keys)
	}
}

// TestTimedOutWriteLeavesNoSession (issue 10, retries off): the reply to
// the write is lost and not retried; Create and Regenerate return the
// error, and must not leave behind a live session whose ID nobody got
// (and that, after a Regenerate, the user's index no longer lists).
func TestTimedOutWriteLeavesNoSession(t *testing.T) {
	for _, op := range []string{"create", "regenerate"} {
		t.Run(op, func(t *testing.T) {
			b, px, s := newProxiedStore(t, -1)
			ctx := context.Background()
			var err error
			if op == "create" {
				px.lateReply(createScript)
				_, err = s.Create(ctx, "ada", "data")
			} else {
				old, cerr := s.Create(ctx, "ada", "data")
				if cerr != nil {
					t.Fatal(cerr)
				}
				px.lateReply(regenerateScript)
				_, err = s.Regenerate(ctx, old)
			}
			if err == nil {
				t.Fatal("the write succeeded: the late reply did not time out")
			}
			time.Sleep(200 * time.Millisecond) // the late reply has arrived; the server ran the script
			if keys := sessionKeys(t, b); len(keys) != 0 {
				t.Fatalf("%s returned %v but left sessions %q", op, err, keys)
			}
		})
	}
}

// TestRetriedReadsAndWritesAreIdempotent (issue 10): Create, Get, Update
// and Delete run twice give the caller the answer of one run.
func TestRetriedReadsAndWritesAreIdempotent(t *testing.T) {
	b, px, s := newProxiedStore(t, 2)
	ctx := context.Background()
	px.lateReply(createScript)
	sess, err := s.Create(ctx, "ada", "v1")
	if err != nil {
		t.Fatalf("retried Create: %v", err)
	}
	px.lateReply(indexAddScript)
	other, err := s.Create(ctx, "ada", "v1")
	if err != nil {
		t.Fatalf("Create with a retried index add: %v", err)
	}
	px.lateReply(touchScript)
	if got, err := s.Get(ctx, sess.ID); err != nil || got.Data != "v1" {
		t.Fatalf("retried Get: %+v, %v", got, err)
	}
	sess.Data = "v2"
	px.lateReply(updateScript)
	if err := s.Update(ctx, sess); err != nil {
		t.Fatalf("retried Update: %v", err)
	}
	px.lateReply(deleteScript)
	if err := s.Delete(ctx, other.ID); err != nil {
		t.Fatalf("retried Delete: %v", err)
	}
	if _, err := s.Get(ctx, other.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if n, err := s.DeleteAllForUser(ctx, "ada"); err != nil || n != 1 {
		t.Fatalf("DeleteAllForUser = %d, %v; want 1", n, err)
	}
	if keys := sessionKeys(t, b); len(keys) != 0 {
		t.Fatalf("sessions left: %q", keys)
	}
}
