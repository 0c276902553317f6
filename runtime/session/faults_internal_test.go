package session

import (
	"context"
	"errors"
	"strings"
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

func newProxiedStore(t *testing.T, retries int) (*redistest.Backend, *faultproxy.Client, *Store[string]) {
	t.Helper()
	b := redistest.Standalone(t)
	px := newProxied(t, b, retries, createScript, regenerateScript, touchScript, updateScript, deleteScript, indexAddScript)
	s, err := New[string](px.Client, WithPrefix(b.Namespace+":sess"))
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
	px.LateReply(regenerateScript)
	start := px.Proxy.Replies()
	next, err := s.Regenerate(ctx, old)
	if px.Proxy.Replies()-start < 2 {
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
				px.LateReply(createScript)
				_, err = s.Create(ctx, "ada", "data")
			} else {
				old, cerr := s.Create(ctx, "ada", "data")
				if cerr != nil {
					t.Fatal(cerr)
				}
				px.LateReply(regenerateScript)
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
	px.LateReply(createScript)
	sess, err := s.Create(ctx, "ada", "v1")
	if err != nil {
		t.Fatalf("retried Create: %v", err)
	}
	px.LateReply(indexAddScript)
	other, err := s.Create(ctx, "ada", "v1")
	if err != nil {
		t.Fatalf("Create with a retried index add: %v", err)
	}
	px.LateReply(touchScript)
	if got, err := s.Get(ctx, sess.ID); err != nil || got.Data != "v1" {
		t.Fatalf("retried Get: %+v, %v", got, err)
	}
	sess.Data = "v2"
	px.LateReply(updateScript)
	if err := s.Update(ctx, sess); err != nil {
		t.Fatalf("retried Update: %v", err)
	}
	px.LateReply(deleteScript)
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
