package faults_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
)

// slowSlots delays CLUSTER SLOTS (go-redis's slot-map reload) once armed:
// a reload that is slower than the read it raced with.
type slowSlots struct{ armed *atomic.Bool }

func (h slowSlots) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h slowSlots) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.armed.Load() && strings.EqualFold(cmd.Name(), "cluster") {
			if a := cmd.Args(); len(a) > 1 && strings.EqualFold(fmt.Sprint(a[1]), "slots") {
				time.Sleep(300 * time.Millisecond)
			}
		}
		return next(ctx, cmd)
	}
}
func (h slowSlots) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestInvalidationLostInTakeover: topologyUnsure checks go-redis's slot map
// after the GET, but a GET that go-redis redirected with MOVED ran on the
// new master while the slot map (reloaded in the background, LazyReload)
// may still name the old one. Here the replica is promoted by CLUSTER
// FAILOVER TAKEOVER without the invalidation its master acknowledged
// (replication held as in TestInvalidationLostInFailover), and the old
// master, alive, turns into its replica and answers MOVED. The read through
// the Cache is served by the promoted replica's copy, which the
// acknowledged invalidation had deleted. With delay=false the reload races
// with the read; with delay=true the reload is slower than the read.
func TestInvalidationLostInTakeover(t *testing.T) {
	for _, delay := range []bool{false, true} {
		t.Run(fmt.Sprint("slowReload=", delay), func(t *testing.T) { testMovedToUnseenMaster(t, delay) })
	}
}

func testMovedToUnseenMaster(t *testing.T, delay bool) {
	tp := redistest.ReplicatedCluster(t)
	ctx := context.Background()
	opt := tp.ClusterOptions()
	opt.ClusterStateReloadInterval = 0 // go-redis's default
	rdb := redis.NewClusterClient(opt)
	var armed atomic.Bool
	rdb.OnNewNode(func(n *redis.Client) { n.AddHook(slowSlots{&armed}) })
	t.Cleanup(func() { _ = rdb.Close() })
	h := holdInvalidation(t, tp, rdb, getCached)
	c, m0, r0, k, read := h.c, h.m0, h.r0, h.k, h.read
	if err := c.Wait(ctx); err != nil { // the check the invalidation started
		t.Fatal(err)
	}
	checked := time.Now()
	// Promote r0 before it can resync: the TAKEOVER is written to its
	// socket while it is stopped (a write that returns has reached the
	// kernel's buffer), and runs first when it continues.
	conn, err := net.Dial("tcp", r0.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("*3\r\n$7\r\nCLUSTER\r\n$8\r\nFAILOVER\r\n$8\r\nTAKEOVER\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := r0.Cont(); err != nil {
		t.Fatal(err)
	}
	if reply, err := bufio.NewReader(conn).ReadString('\n'); err != nil || reply != "+OK\r\n" {
		t.Fatalf("TAKEOVER: %q, %v", reply, err)
	}
	// Wait (through the nodes' own clients, not the Cache's) until m0
	// redirects the key to r0, and r0 holds the deleted key.
	for {
		err := m0.Client().Get(ctx, c.RedisKey(k)).Err()
		if err != nil && strings.HasPrefix(err.Error(), "MOVED") && strings.Contains(err.Error(), r0.Addr) {
			break
		}
		if time.Since(checked) > 800*time.Millisecond {
			t.Skipf("m0 did not redirect to r0 in time (last: %v)", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, _ := r0.Client().Exists(ctx, c.RedisKey(k)).Result(); n != 1 {
		t.Fatalf("r0 does not hold the deleted key: the test forced nothing")
	}
	if m, _ := rdb.MasterForKey(ctx, c.RedisKey(k)); m == nil || m.Options().Addr != m0.Addr {
		t.Fatalf("the client's slot map already moved: the test forced nothing")
	}
	armed.Store(delay)
	if time.Since(checked) > 900*time.Millisecond {
		t.Skip("too slow: the Cache's next check of the masters is due")
	}
	if v := read(); v != 2 {
		t.Fatalf("read after the acknowledged invalidation = version %d, want 2: served by the promoted replica through a MOVED redirect (%v after the last check)", v, time.Since(checked))
	}
}
