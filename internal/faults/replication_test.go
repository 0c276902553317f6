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
	t.Run("GetCached", func(t *testing.T) {
		testInvalidationLostInFailover(t, func(ctx context.Context, c *runtime.Cache, k string, load func(context.Context) (int64, error)) (int64, error) {
			return runtime.GetCached(ctx, c, k, load, runtime.TTL(time.Minute))
		})
	})
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
	c := runtime.New(rdb, runtime.WithNamespace(tp.Namespace), runtime.WithLogger(quiet()))
	m0 := tp.Master(0)
	var k string
	for i := 0; ; i++ {
		k = fmt.Sprint("row:", i)
		m, err := rdb.MasterForKey(ctx, c.RedisKey(k))
		if err != nil {
			t.Fatal(err)
		}
		if m.Options().Addr == m0.Addr {
			break
		}
	}
	var db atomic.Int64
	db.Store(1)
	read := func() int64 {
		t.Helper()
		v, err := get(ctx, c, k, func(context.Context) (int64, error) { return db.Load(), nil })
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	read()
	if err := c.Wait(ctx); err != nil { // the store, and the first check of the masters
		t.Fatal(err)
	}
	if v := read(); v != 1 {
		t.Fatalf("read = %d, want 1", v)
	}
	if err := tp.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}

	// Hold replication: pause the replica, then cut its link.
	r0 := tp.ReplicaOf(m0)
	if err := r0.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m0.Client().ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	db.Store(2)
	if err := c.Invalidate(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := m0.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := r0.Cont(); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	nm, err := tp.WaitFailover(fctx, m0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := nm.Client().Exists(ctx, c.RedisKey(k)).Result(); err != nil || n != 1 {
		t.Fatalf("the new master %v does not hold the deleted key (%d, %v): replication was not held, the test forced nothing", nm, n, err)
	}
	// go-redis reloads its slot map in the background: wait until it
	// routes the key to the new master (it gives no signal).
	deadline := time.Now().Add(10 * time.Second)
	for {
		rdb.ReloadState(ctx)
		m, err := rdb.MasterForKey(ctx, c.RedisKey(k))
		if err == nil && m.Options().Addr == nm.Addr {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client still routes the key to %v, not to the new master %v", m, nm)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
