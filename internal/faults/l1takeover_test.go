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

// TestL1SentinelTakeover: the Sentinel failover that TestL1Failover does
// not cover. The old primary is not killed: SENTINEL FAILOVER demotes it,
// and it keeps the near cache's tracking connection open. Its replication
// from the new primary is then cut, so no invalidation of a write on the
// new primary reaches that connection. The reader's near cache must not
// keep serving what it held: a write acknowledged after the failover is
// read within the bound.
func TestL1SentinelTakeover(t *testing.T) {
	tp := redistest.Sentinel(t)
	ctx := context.Background()
	var sent []string
	for _, s := range tp.Sentinels() {
		sent = append(sent, s.Addr)
	}
	caches := newCaches(t, "redis+sentinel://"+strings.Join(sent, ",")+"/"+tp.MasterName, tp.Namespace, 2, runtime.WithL1())
	reader, writer := caches[0], caches[1]
	for _, c := range caches {
		t.Cleanup(func() { _ = c.Close() })
		waitL1(t, c)
	}
	var db atomic.Int64
	read := func(c *runtime.Cache) int64 {
		t.Helper()
		v, err := runtime.GetCached(ctx, c, "row", func(context.Context) (int64, error) { return db.Load(), nil },
			runtime.TTL(time.Minute), runtime.Tags("row"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	deadline := time.Now().Add(10 * time.Second)
	for s, _ := reader.Stats(ctx); s.L1.Hits == 0; s, _ = reader.Stats(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("the reader served nothing from memory after 10 s")
		}
		read(reader)
	}

	old := tp.Master(0)
	if err := tp.Sentinels()[0].SentinelClient().Failover(ctx, tp.MasterName).Err(); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := tp.WaitFailover(fctx, old); err != nil {
		t.Fatal(err)
	}
	// The demoted primary replicates from nowhere: nothing written on the
	// new primary reaches it, nor its tracking connections.
	if err := old.Client().Do(ctx, "REPLICAOF", "127.0.0.1", "1").Err(); err != nil {
		t.Fatal(err)
	}
	failedOver := time.Now()
	db.Store(1)
	for {
		if err := writer.InvalidateTags(ctx, "row"); err == nil {
			break
		}
		if time.Since(failedOver) > 30*time.Second {
			t.Fatal("no invalidation acknowledged 30 s after the failover")
		}
		time.Sleep(20 * time.Millisecond) // waiting for the client to find the new primary
	}
	acked := time.Now()
	const bound = 3 * time.Second
	stale := 0
	for read(reader) != 1 {
		stale++
		if since := time.Since(acked); since > bound {
			s, _ := reader.Stats(ctx)
			t.Fatalf("the reader still served the version from before the failover %v after the write was acknowledged (%d reads; L1 hits %d, lost %d)", since, stale, s.L1.Hits, s.L1.Lost)
		}
		time.Sleep(time.Millisecond) // waiting for the reader to notice
	}
	t.Logf("%d reads of the old version after the acknowledged write, for %v", stale, time.Since(acked))
}
