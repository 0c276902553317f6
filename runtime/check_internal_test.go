package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
)

// TestOneCheckOfTheMasters holds a check of the masters' run_ids (its
// INFO commands) and shows that everything that needs one shares it: a
// second caller joins it rather than starting another; a caller whose
// deadline passes returns (an invalidation that relied on an unseen master
// with ErrMasterUnconfirmed) while the check goes on; Wait counts it; and
// it clears only the connection failures that came before it began, so the
// next confirmation runs a check of its own.
func TestOneCheckOfTheMasters(t *testing.T) {
	b := redistest.Cluster(t)
	ctx := context.Background()
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs})
	t.Cleanup(func() { _ = cl.Close() })
	var (
		infos         atomic.Int64
		held, release = make(chan struct{}), make(chan struct{})
		hold          sync.Once
	)
	cl.OnNewNode(func(n *redis.Client) {
		n.AddHook(beforeSend(func(cmds []redis.Cmder) {
			for _, cmd := range cmds {
				if cmd.Name() == "info" {
					infos.Add(1)
					// The first INFO waits for release; the others
					// wait in Do until it returns.
					hold.Do(func() { close(held); <-release })
				}
			}
		}))
	})
	var masters int64
	if err := cl.ForEachMaster(ctx, func(context.Context, *redis.Client) error { atomic.AddInt64(&masters, 1); return nil }); err != nil {
		t.Fatal(err)
	}
	c := quietCache(&redistest.Backend{Client: cl, Namespace: b.Namespace, Cluster: true})
	var released sync.Once
	unhold := func() { released.Do(func() { close(release) }) }
	t.Cleanup(unhold) // also when the test fails: the check holds a task

	first := c.startCheck()
	<-held
	if again := c.startCheck(); again != first {
		t.Fatal("a second check of the masters started while one was in flight")
	}

	// A connection failure while the check runs: the check began before
	// it, so it must not clear it.
	c.suspectTopology()
	short := func() context.Context {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		t.Cleanup(cancel)
		return cctx
	}
	if err := c.confirmTopology(short(), nil, c.answers()); err != nil {
		t.Fatalf("an invalidation that only suspects the masters: %v after its deadline, want nil (the check goes on)", err)
	}
	if err := c.confirmTopology(short(), []string{c.tagKey("t")}, c.answers()+1); !errors.Is(err, ErrMasterUnconfirmed) {
		t.Fatalf("an invalidation that relied on an unseen master: %v after its deadline, want ErrMasterUnconfirmed", err)
	}
	if err := c.Wait(short()); err == nil {
		t.Fatal("Wait returned while the check of the masters was held")
	}
	select {
	case <-first.done:
		t.Fatal("the check ended with its callers' deadlines")
	default:
	}

	unhold()
	<-first.done
	if !first.whole {
		t.Fatal("the check did not reach every master")
	}
	if n := infos.Load(); n != masters {
		t.Fatalf("%d INFO commands for %d masters: more than one check ran", n, masters)
	}
	if !c.suspect() {
		t.Fatal("a check cleared a connection failure that came after it began")
	}

	// The next confirmation runs a check of its own, which clears it.
	if err := c.confirmTopology(ctx, nil, c.answers()); err != nil {
		t.Fatal(err)
	}
	if c.suspect() {
		t.Fatal("still suspect after a whole check that began after the failure")
	}
	if n := infos.Load(); n != 2*masters {
		t.Fatalf("%d INFO commands for %d masters after the second check, want %d", n, masters, 2*masters)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}
