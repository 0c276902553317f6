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

// TestTagMemberLostInFailover forces what TestFaults' failover scenario met
// under load (47 reads of one row older than an acknowledged
// InvalidateTags, for 250 ms after the failover): a tag set's master dies
// before its replica has the newest member, and the replica, promoted,
// answers the tag's invalidation with nothing to delete. The key itself
// lives on a master that did not fail, so a read of it is a hit on a
// master every check has seen. The invalidation must not be acknowledged
// before what the lost member pointed to is gone.
func TestTagMemberLostInFailover(t *testing.T) {
	tp := redistest.ReplicatedCluster(t)
	ctx := context.Background()
	rdb := redis.NewClusterClient(tp.ClusterOptions())
	t.Cleanup(func() { _ = rdb.Close() })
	c := runtime.New(rdb, runtime.WithNamespace(tp.Namespace), runtime.WithLogger(quiet()))
	m0 := tp.Master(0)
	masterOf := func(full string) string {
		t.Helper()
		m, err := rdb.MasterForKey(ctx, full)
		if err != nil {
			t.Fatal(err)
		}
		return m.Options().Addr
	}
	// A tag whose set lives on m0, and a key that lives elsewhere.
	var tag, k string
	for i := 0; tag == "" || k == ""; i++ {
		if tg := fmt.Sprint("owner:", i); tag == "" && masterOf(c.RedisKey("#tag:{"+tg+"}")) == m0.Addr {
			tag = tg
		}
		if kk := fmt.Sprint("row:", i); k == "" && masterOf(c.RedisKey(kk)) != m0.Addr {
			k = kk
		}
	}
	tagKey := c.RedisKey("#tag:{" + tag + "}")
	var db atomic.Int64
	db.Store(1)
	read := func() int64 {
		t.Helper()
		v, err := runtime.GetCached(ctx, c, k, func(context.Context) (int64, error) { return db.Load(), nil },
			runtime.TTL(time.Minute), runtime.Tags(tag))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The masters' first check, before replication is held.
	if err := runtime.Set(ctx, c, "warm", 1, runtime.TTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tp.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	// Hold m0's replication, then cache k: its member reaches m0 alone.
	r0 := holdReplication(t, tp, m0)
	read()
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if v := read(); v != 1 {
		t.Fatalf("read = %d, want the cached 1", v)
	}
	nm := promoteHeld(t, tp, m0, r0)
	if n, err := nm.Client().ZCard(ctx, tagKey).Result(); err != nil || n != 0 {
		t.Fatalf("the new master holds %d members of the tag (%v): replication was not held, the test forced nothing", n, err)
	}
	waitRouted(t, rdb, tagKey, nm)
	db.Store(2)
	// The check it runs can confirm the new master here (every master
	// answers), so the invalidation must be acknowledged: a test that
	// accepted ErrMasterUnconfirmed would pass on code that never
	// confirms.
	if err := c.InvalidateTags(ctx, tag); err != nil {
		t.Fatal(err)
	}
	if v := read(); v != 2 {
		t.Fatalf("read after the acknowledged InvalidateTags = version %d, want 2: the member lost with the old master left the value behind", v)
	}
}
