package redistest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const topologyKeys = 200

// writeKeys sets topologyKeys keys under the namespace through the
// topology's client.
func writeKeys(ctx context.Context, t *testing.T, tp *Topology) {
	t.Helper()
	for i := range topologyKeys {
		if err := tp.Client.Set(ctx, tp.Key(fmt.Sprint(i)), i, 0).Err(); err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
	}
}

// readKeysThroughFailover reads every key through the same client until
// one pass succeeds, allowing at most maxErrors errors on the way and
// failing on a missing or wrong value: the writes were replicated before
// the kill. It returns the errors seen and the time taken.
func readKeysThroughFailover(ctx context.Context, t *testing.T, tp *Topology, maxErrors int) (int, time.Duration) {
	t.Helper()
	began := time.Now()
	errs := 0
	for i := 0; i < topologyKeys; {
		v, err := tp.Client.Get(ctx, tp.Key(fmt.Sprint(i))).Int()
		switch {
		case err == redis.Nil:
			t.Fatalf("key %d lost in the failover", i)
		case err != nil:
			errs++
			if errs > maxErrors || ctx.Err() != nil {
				t.Fatalf("%d errors reading through the failover (last: %v)", errs, err)
			}
			time.Sleep(20 * time.Millisecond) // poll interval while the client catches up
			continue
		case v != i:
			t.Fatalf("key %d = %d", i, v)
		}
		i++
	}
	return errs, time.Since(began)
}

func mustRunID(t *testing.T, n *Node) string {
	t.Helper()
	id, err := n.RunID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTopologyReplicatedCluster(t *testing.T) {
	began := time.Now()
	tp := ReplicatedCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	startup := time.Since(began)

	if got := len(tp.Nodes()); got != 6 {
		t.Fatalf("%d nodes", got)
	}
	for i := range 3 {
		m := tp.Master(i)
		r := tp.ReplicaOf(m)
		if m.Role != RoleMaster || r.Role != RoleReplica || m.ID == "" || r.ID == "" {
			t.Fatalf("master %d: %v %q, replica %v %q", i, m, m.ID, r, r.ID)
		}
		if role, err := r.CurrentRole(ctx); err != nil || role != "slave" {
			t.Fatalf("%v: role %q %v", r, role, err)
		}
	}

	writeKeys(ctx, t, tp)
	if err := tp.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}

	// Stop and continue a replica: it answers nothing while stopped.
	r2 := tp.ReplicaOf(tp.Master(2))
	if err := r2.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Client().Ping(ctx).Err(); err == nil || !r2.Stopped() {
		t.Fatalf("a stopped node answered PING (stopped %v, err %v)", r2.Stopped(), err)
	}
	if err := r2.Cont(); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 20*time.Millisecond, func() error { return r2.Client().Ping(ctx).Err() }); err != nil {
		t.Fatalf("after Cont: %v", err)
	}

	m := tp.Master(0)
	oldID := mustRunID(t, m)
	killed := time.Now()
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if m.Running() {
		t.Fatal("killed node still running")
	}
	nm, err := tp.WaitFailover(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if nm != tp.ReplicaOf(m) {
		t.Fatalf("failed over to %v, not to the replica %v", nm, tp.ReplicaOf(m))
	}
	failover := time.Since(killed)
	errs, took := readKeysThroughFailover(ctx, t, tp, 100)

	// The old master comes back empty, under its old identity, as a
	// replica of the node that took over.
	if err := m.Restart(true); err != nil {
		t.Fatal(err)
	}
	if newID := mustRunID(t, m); newID == oldID {
		t.Fatalf("run_id %s unchanged after Restart(true)", newID)
	}
	if err := tp.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	if role, err := m.CurrentRole(ctx); err != nil || role != "slave" {
		t.Fatalf("restarted old master: role %q %v", role, err)
	}
	rejoined := time.Since(killed)
	if _, took2 := readKeysThroughFailover(ctx, t, tp, 0); took2 > 5*time.Second {
		t.Fatalf("reads took %v after the cluster was whole", took2)
	}
	t.Logf("startup %v; failover seen after %v; reads recovered with %d errors in %v; rejoined after %v",
		startup.Round(time.Millisecond), failover.Round(time.Millisecond), errs, took.Round(time.Millisecond),
		rejoined.Round(time.Millisecond))
}

func TestTopologySentinel(t *testing.T) {
	began := time.Now()
	tp := Sentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	startup := time.Since(began)

	if len(tp.Nodes()) != 2 || len(tp.Sentinels()) != 3 || tp.Backend.Name != "sentinel" {
		t.Fatalf("%d nodes, %d sentinels, %q", len(tp.Nodes()), len(tp.Sentinels()), tp.Backend.Name)
	}
	p := tp.Master(0)
	r := tp.ReplicaOf(p)
	writeKeys(ctx, t, tp)
	if err := tp.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	// A second client, as another process would have.
	other := NewClient(t, tp.Backend)
	if v, err := other.Get(ctx, tp.Key("7")).Int(); err != nil || v != 7 {
		t.Fatalf("second client: %v %v", v, err)
	}

	oldID := mustRunID(t, p)
	killed := time.Now()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	np, err := tp.WaitFailover(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if np != r {
		t.Fatalf("failed over to %v, not to the replica %v", np, r)
	}
	failover := time.Since(killed)
	errs, took := readKeysThroughFailover(ctx, t, tp, 100)
	if err := tp.Client.Set(ctx, tp.Key("after"), "x", 0).Err(); err != nil {
		t.Fatalf("write after the failover: %v", err)
	}

	// The old primary comes back empty, as a master: the sentinels make it
	// a replica about 20 s later (not waited for here, see Sentinel).
	if err := p.Restart(true); err != nil {
		t.Fatal(err)
	}
	if newID := mustRunID(t, p); newID == oldID {
		t.Fatalf("run_id %s unchanged after Restart(true)", newID)
	}
	if role, _ := p.CurrentRole(ctx); role == "master" {
		if n, err := p.Client().DBSize(ctx).Result(); err != nil || n != 0 {
			t.Fatalf("restarted primary: dbsize %d %v", n, err)
		}
	}
	t.Logf("startup %v; failover seen after %v; reads recovered with %d errors in %v",
		startup.Round(time.Millisecond), failover.Round(time.Millisecond), errs, took.Round(time.Millisecond))
}
