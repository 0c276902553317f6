package faults_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// TestInvalidationLostInFailover forces what the failover scenario of
// TestFaults meets by chance: an invalidation acknowledged by a master that
// dies before its replica has it. The replica is paused and its link cut,
// so the master acknowledges the UNLINK alone; the master is killed, and
// the replica, promoted, still holds the deleted value. The client then
// learns the new topology without an error of its own (as when another
// user of the client, or go-redis's periodic reload, found it first). A
// read through the Cache must not return the value the acknowledged
// invalidation deleted.
func TestInvalidationLostInFailover(t *testing.T) {
	t.Run("GetCached", func(t *testing.T) { testInvalidationLostInFailover(t, getCached) })
	t.Run("GetBatch", func(t *testing.T) {
		testInvalidationLostInFailover(t, func(ctx context.Context, c *runtime.Cache, k string, load func(context.Context) (int64, error)) (int64, error) {
			vs, err := runtime.GetBatch(ctx, c, []string{k}, func(id string) string { return id }, func(v int64) string { return k },
				func(ctx context.Context, ids []string) ([]int64, error) {
					v, err := load(ctx)
					return []int64{v}, err
				}, runtime.TTL(time.Minute))
			if err != nil || len(vs) != 1 {
				return 0, fmt.Errorf("GetBatch = %v, %v", vs, err)
			}
			return vs[0], nil
		})
	})
}

type readFunc func(ctx context.Context, c *runtime.Cache, k string, load func(context.Context) (int64, error)) (int64, error)

func testInvalidationLostInFailover(t *testing.T, get readFunc) {
	tp := redistest.ReplicatedCluster(t)
	ctx := context.Background()
	rdb := redis.NewClusterClient(tp.ClusterOptions())
	t.Cleanup(func() { _ = rdb.Close() })
	h := holdInvalidation(t, tp, rdb, get)
	c, k, read := h.c, h.k, h.read
	nm := promoteHeld(t, tp, h.m0, h.r0)
	if n, err := nm.Client().Exists(ctx, c.RedisKey(k)).Result(); err != nil || n != 1 {
		t.Fatalf("the new master %v does not hold the deleted key (%d, %v): replication was not held, the test forced nothing", nm, n, err)
	}
	waitRouted(t, rdb, c.RedisKey(k), nm)
	if v := read(); v != 2 {
		t.Fatalf("read after the acknowledged invalidation = version %d, want 2: the promoted replica's copy was served", v)
	}
	// And once the Cache has checked the masters, the value is gone from Redis.
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if v := read(); v != 2 {
		t.Fatalf("second read = version %d, want 2", v)
	}
}

// held is a cluster Cache whose row k was cached at version 1 on master m0,
// then invalidated (version 2) while m0's replica r0 was paused with its
// link cut: m0 alone has the invalidation, r0 still holds version 1.
type held struct {
	c      *runtime.Cache
	m0, r0 *redistest.Node
	k      string
	read   func() int64 // a read of k through c with get, loading the database's version
}

// holdInvalidation sets up held on tp through rdb, reading with get. The
// Cache is made after rdb is given to it, so that a test may set rdb up
// (hooks, options) first.
func holdInvalidation(t *testing.T, tp *redistest.Topology, rdb *redis.ClusterClient, get readFunc) *held {
	t.Helper()
	ctx := context.Background()
	h := &held{c: runtime.New(rdb, runtime.WithNamespace(tp.Namespace), runtime.WithLogger(quiet())), m0: tp.Master(0)}
	for i := 0; ; i++ {
		h.k = fmt.Sprint("row:", i)
		m, err := rdb.MasterForKey(ctx, h.c.RedisKey(h.k))
		if err != nil {
			t.Fatal(err)
		}
		if m.Options().Addr == h.m0.Addr {
			break
		}
	}
	var db atomic.Int64
	db.Store(1)
	h.read = func() int64 {
		t.Helper()
		v, err := get(ctx, h.c, h.k, func(context.Context) (int64, error) { return db.Load(), nil })
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	h.read()
	if err := h.c.Wait(ctx); err != nil { // the store, and the first check of the masters
		t.Fatal(err)
	}
	if v := h.read(); v != 1 {
		t.Fatalf("read = %d, want 1", v)
	}
	if err := tp.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	h.r0 = holdReplication(t, tp, h.m0)
	db.Store(2)
	if err := h.c.Invalidate(ctx, h.k); err != nil {
		t.Fatal(err)
	}
	return h
}

// holdReplication pauses m0's replica, then cuts its link, so that what
// m0 acknowledges next reaches m0 alone; it returns the replica.
func holdReplication(t *testing.T, tp *redistest.Topology, m0 *redistest.Node) *redistest.Node {
	t.Helper()
	r0 := tp.ReplicaOf(m0)
	if err := r0.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m0.Client().ClientKillByFilter(context.Background(), "TYPE", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	return r0
}

// promoteHeld kills m0, resumes its held replica r0 and returns the master
// the cluster promoted.
func promoteHeld(t *testing.T, tp *redistest.Topology, m0, r0 *redistest.Node) *redistest.Node {
	t.Helper()
	if err := m0.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := r0.Cont(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nm, err := tp.WaitFailover(ctx, m0)
	if err != nil {
		t.Fatal(err)
	}
	return nm
}

// waitRouted reloads rdb's slot map until it routes full to master nm:
// go-redis reloads it in the background and gives no signal.
func waitRouted(t *testing.T, rdb *redis.ClusterClient, full string, nm *redistest.Node) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rdb.ReloadState(ctx)
		m, err := rdb.MasterForKey(ctx, full)
		if err == nil && m.Options().Addr == nm.Addr {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client still routes %s to %v (%v), not to the new master %v", full, m, err, nm)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// getCached is a readFunc through GetCached.
func getCached(ctx context.Context, c *runtime.Cache, k string, load func(context.Context) (int64, error)) (int64, error) {
	return runtime.GetCached(ctx, c, k, load, runtime.TTL(time.Minute))
}
