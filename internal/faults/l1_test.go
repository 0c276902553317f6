package faults_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// TestL1Failover: a near cache (WithL1) on a Sentinel set and on a cluster
// with replicas. Its master is killed and another node takes over; the
// near cache's stream of invalidations breaks with it, so it is flushed,
// and serves again only once it watches the new master. A write acknowledged
// after the failover is then seen by a reader in another process within
// the notice's delay, never later: the old value held in memory before the
// failover is gone.
func TestL1Failover(t *testing.T) {
	t.Run("sentinel", func(t *testing.T) {
		tp := redistest.Sentinel(t)
		var sent []string
		for _, s := range tp.Sentinels() {
			sent = append(sent, s.Addr)
		}
		testL1Failover(t, tp, "redis+sentinel://"+strings.Join(sent, ",")+"/"+tp.MasterName)
	})
	t.Run("cluster", func(t *testing.T) {
		tp := redistest.ReplicatedCluster(t)
		testL1Failover(t, tp, "redis+cluster://"+addrs(tp))
	})
}

func testL1Failover(t *testing.T, tp *redistest.Topology, url string) {
	ctx := context.Background()
	caches := newCaches(t, url, tp.Namespace, 2, runtime.WithL1())
	reader, writer := caches[0], caches[1]
	for _, c := range caches {
		t.Cleanup(func() { _ = c.Close() })
		waitL1(t, c)
	}
	var db [rows]atomic.Int64
	read := func(c *runtime.Cache, r int) (int64, error) {
		return runtime.GetCached(ctx, c, key(r), func(context.Context) (int64, error) { return db[r].Load(), nil },
			runtime.TTL(time.Minute), runtime.Tags(key(r)))
	}
	// Every row held in the reader's memory: read until each is an L1 hit.
	deadline := time.Now().Add(10 * time.Second)
	for s, _ := reader.Stats(ctx); s.L1.Entries < rows; s, _ = reader.Stats(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("the reader holds %d of %d rows in memory after 10 s", s.L1.Entries, rows)
		}
		for r := range rows {
			if _, err := read(reader, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	before, _ := reader.Stats(ctx)

	m := tp.Master(0)
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := tp.WaitFailover(fctx, m); err != nil {
		t.Fatal(err)
	}
	failedOver := time.Now()

	// A new version of every row, each acknowledged by the writer.
	for r := range rows {
		db[r].Store(1)
		for {
			if err := writer.InvalidateTags(ctx, key(r)); err == nil {
				break
			}
			if time.Since(failedOver) > 30*time.Second {
				t.Fatalf("row %d: no invalidation acknowledged 30 s after the failover", r)
			}
			time.Sleep(20 * time.Millisecond) // waiting for the client to find the new master
		}
	}
	acked := time.Now()
	// The reader: never the old version once its notice could arrive; the
	// bound is generous for a loaded machine, the figure is logged.
	const bound = 2 * time.Second
	var lastStale time.Duration // after the ack, when the last old version was read
	stale := 0
	for r := range rows {
		for {
			began := time.Since(acked)
			v, err := read(reader, r)
			if err != nil {
				t.Fatal(err)
			}
			if v == 1 {
				break
			}
			stale++
			lastStale = began
			if began > bound {
				t.Fatalf("row %d: the reader still served the version from before the failover %v after the write was acknowledged", r, began)
			}
			time.Sleep(time.Millisecond) // waiting for the reader's stream
		}
	}
	after, _ := reader.Stats(ctx)
	t.Logf("%s: %d reads of an old version after the last acknowledged write, the last begun %v after it (bound %v); L1 flushes %d → %d, streams lost %d → %d",
		tp.Name, stale, lastStale, bound, before.L1.Flushes, after.L1.Flushes, before.L1.Lost, after.L1.Lost)
	if after.L1.Flushes == before.L1.Flushes {
		t.Error("the failover did not flush the reader's near cache")
	}
	// And it serves from memory again, once it watches the new master.
	waitL1(t, reader)
	for range 3 { // a read that keeps a value may be dropped by a late notice of its own store
		for r := range rows {
			if _, err := read(reader, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s, _ := reader.Stats(ctx); s.L1.Hits == after.L1.Hits {
		t.Error("the near cache served nothing from memory after the failover")
	}
}

// waitL1 waits until c's near cache watches every master.
func waitL1(t *testing.T, c *runtime.Cache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, _ := c.Stats(context.Background()); s.L1.Watched {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the near cache watched no master 10 s after it started")
		}
		time.Sleep(5 * time.Millisecond) // polling the server's confirmation
	}
}
