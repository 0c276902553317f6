package runtime

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/redistest"
)

// TestConcurrentInvalidatorsOfOneTag (issue 11, bug 1): the first
// invalidator has moved the tag's members aside and not yet deleted them;
// a second invalidation of the same tag must not return before they are
// gone.
func TestConcurrentInvalidatorsOfOneTag(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b)
		storeTagged(t, c, "item:1", "group")
		storeTagged(t, c, "item:2", "group")
		moved, resume := make(chan struct{}), make(chan struct{})
		var first atomic.Bool
		c.tagDropped = func(string) {
			if !first.Swap(true) {
				close(moved)
				<-resume
			}
		}
		done := make(chan error)
		go func() { done <- c.InvalidateTags(ctx, "group") }()
		<-moved
		if err := c.InvalidateTags(ctx, "group"); err != nil { // the second invalidator
			t.Fatal(err)
		}
		assertGone(t, b, "item:1", "item:2")
		close(resume)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

type account struct {
	ID    int
	Name  string
	Roles []string
}

// TestJoinedCallersGetTheirOwnValue (issue 11, bug 3): callers that join
// one load must not share its pointer, nor the slices inside it.
func TestJoinedCallersGetTheirOwnValue(t *testing.T) {
	redistest.Each(t, testJoinedCallersGetTheirOwnValue)
}

func testJoinedCallersGetTheirOwnValue(t *testing.T, b *redistest.Backend) {
	c := quietCache(b)
	ctx := context.Background()
	joined := make(chan struct{})
	c.flight.joined = func() { close(joined) }
	load := func(context.Context) (*account, error) {
		<-joined
		return &account{ID: 1, Name: "ann", Roles: []string{"admin"}}, nil
	}
	var got [2]*account
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := GetCached(ctx, c, "acct:1", load, TTL(time.Minute))
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		}()
	}
	wg.Wait()
	if got[0] == nil || got[1] == nil {
		t.Fatal("nil result")
	}
	if got[0] == got[1] {
		t.Fatal("the two callers got the same pointer: one's mutation is the other's")
	}
	got[0].Name, got[0].Roles[0] = "mutated", "mutated"
	if got[1].Name != "ann" || got[1].Roles[0] != "admin" {
		t.Fatalf("a mutation by one caller is visible to the other: %+v", got[1])
	}
}

// TestBrokenEntriesAreRepaired (issue 10, defect 7): a placeholder
// without a TTL (written by hand or an old version) and a key of another
// type must not block or defeat the cache forever.
func TestBrokenEntriesAreRepaired(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b)
		if err := b.Client.Set(ctx, b.Key("stuck"), newPlaceholder(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.Client.LPush(ctx, b.Key("list"), "x").Err(); err != nil {
			t.Fatal(err)
		}
		var loads atomic.Int64
		load := func(context.Context) (string, error) { loads.Add(1); return "v", nil }
		for _, key := range []string{"stuck", "list"} {
			for i := range 2 {
				dctx, cancel := context.WithTimeout(ctx, time.Second) // a lease lives 3 s
				v, err := GetCached(dctx, c, key, load, TTL(time.Minute), Lock(LockDistributed))
				cancel()
				if err != nil || v != "v" {
					t.Fatalf("%s, read %d = %q, %v", key, i, v, err)
				}
				if err := c.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if n := loads.Swap(0); n != 1 {
				t.Fatalf("%s: %d loads for two reads, want 1: the broken entry was not replaced", key, n)
			}
		}
	})
}

type cyclic struct {
	Name string
	Next *cyclic
}

// TestEncodeFailuresAreCountedAndQuiet (issue 10, defect 7): a value that
// cannot be encoded is returned uncached, counted each time, and logged at
// most once a second; a Put of one is logged and counted too.
func TestEncodeFailuresAreCountedAndQuiet(t *testing.T) {
	b := redistest.Standalone(t)
	var logs bytes.Buffer
	c := New(b.Client, WithNamespace(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx := context.Background()
	loop := &cyclic{Name: "a"}
	loop.Next = loop
	for range 5 {
		v, err := GetCached(ctx, c, "loop", func(context.Context) (*cyclic, error) { return loop, nil }, TTL(time.Minute))
		if err != nil || v != loop {
			t.Fatalf("GetCached = %v, %v; want the loaded value", v, err)
		}
	}
	Put(ctx, c, "loop", loop, TTL(time.Minute))
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Stats(ctx)
	if s.EncodeErrors != 6 {
		t.Errorf("EncodeErrors = %d, want 6 (five reads and a put)", s.EncodeErrors)
	}
	if n := strings.Count(logs.String(), "encode failed"); n != 1 {
		t.Errorf("%d encode-failure lines for 6 failures within a second, want 1:\n%s", n, logs.String())
	}
	if s.Errors != 0 {
		t.Errorf("encode failures counted as Redis errors: %d", s.Errors)
	}
}

// TestFollowerAfterAcknowledgedInvalidation (the 1 stale read that the
// fault suite's delayed-replies scenario showed now and then): a leader's
// value is stored under its lease, then an invalidation deletes it and
// returns before the leader has read its store's reply. A read that begins
// after that invalidation returned joins the leader's call, which is still
// in flight; it must not take the leader's value, loaded before the write.
func TestFollowerAfterAcknowledgedInvalidation(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := quietCache(b)
		var db atomic.Int64
		db.Store(1)
		load := func(context.Context) (int64, error) { return db.Load(), nil }
		stored, resume, joined := make(chan struct{}), make(chan struct{}), make(chan struct{})
		var once atomic.Bool
		c.leasedStored = func() {
			if !once.Swap(true) {
				close(stored)
				<-resume
			}
		}
		c.flight.joined = func() { close(joined) }
		leader := make(chan error, 1)
		go func() {
			_, err := GetCached(ctx, c, "row", load, TTL(time.Minute), Tags("row"))
			leader <- err
		}()
		<-stored // version 1 is in Redis; the leader has not seen its reply
		db.Store(2)
		if err := c.InvalidateTags(ctx, "row"); err != nil {
			t.Fatal(err)
		}
		// The write is acknowledged: every read from now on must see 2.
		got := make(chan int64, 1)
		go func() {
			v, err := GetCached(ctx, c, "row", load, TTL(time.Minute), Tags("row"))
			if err != nil {
				t.Error(err)
			}
			got <- v
		}()
		<-joined
		close(resume)
		if err := <-leader; err != nil {
			t.Fatal(err)
		}
		if v := <-got; v != 2 {
			t.Fatalf("a read that began after the invalidation returned got version %d, loaded before it", v)
		}
	})
}
