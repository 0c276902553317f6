package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestConcurrentMissesLoadOnce forces the interleaving: the loader does not
// return before every other caller has joined its flight.
func TestConcurrentMissesLoadOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		const n = 64
		ctx := context.Background()
		c := New(b.Client, WithNamespace(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		var joined atomic.Int64
		allJoined := make(chan struct{})
		c.flight.joined = func() {
			if joined.Add(1) == n-1 {
				close(allJoined)
			}
		}
		var calls atomic.Int64
		load := func(context.Context) (string, error) {
			calls.Add(1)
			<-allJoined
			return "v", nil
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := GetCached(ctx, c, "hot", load, TTL(time.Minute))
				if err == nil && v != "v" {
					err = fmt.Errorf("got %q", v)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := calls.Load(); got != 1 {
			t.Fatalf("%d loads for %d concurrent misses, want 1", got, n)
		}
	})
}

// TestFollowerTakesOverWhenLeaderIsCanceled: the leader's context ends
// during its load; a follower with a live context must not get the
// leader's context error but load itself.
func TestFollowerTakesOverWhenLeaderIsCanceled(t *testing.T) {
	b := redistest.Standalone(t)
	c := New(b.Client, WithNamespace(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	followerJoined := make(chan struct{})
	var once sync.Once
	c.flight.joined = func() { once.Do(func() { close(followerJoined) }) }
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderIn := make(chan struct{})
	var calls atomic.Int64
	load := func(ctx context.Context) (string, error) {
		if calls.Add(1) == 1 {
			close(leaderIn)
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "fresh", nil
	}
	leaderErr := make(chan error, 1)
	go func() {
		_, err := GetCached(leaderCtx, c, "k", load, TTL(time.Minute))
		leaderErr <- err
	}()
	<-leaderIn
	followerDone := make(chan string, 1)
	go func() {
		v, err := GetCached(context.Background(), c, "k", load, TTL(time.Minute))
		if err != nil {
			v = "error: " + err.Error()
		}
		followerDone <- v
	}()
	<-followerJoined
	cancelLeader()
	if err := <-leaderErr; err != context.Canceled {
		t.Fatalf("leader err = %v", err)
	}
	if v := <-followerDone; v != "fresh" {
		t.Fatalf("follower got %q, want it to load itself", v)
	}
}
