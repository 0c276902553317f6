package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Sentinel settings of Sentinel: a primary that does not answer for
// SentinelDownAfter is failed over, about one to three seconds later.
const (
	SentinelDownAfter       = 1000 * time.Millisecond
	SentinelFailoverTimeout = 5000 * time.Millisecond
	sentinelMasterName      = "rcmaster"
)

// Sentinel starts, for t alone, a primary, one replica (replicaof the
// primary) and three redis-server --sentinel processes on free loopback
// ports, their config files in t.TempDir(). The sentinels monitor the
// primary as MasterName with quorum 2, down-after-milliseconds
// SentinelDownAfter and failover-timeout SentinelFailoverTimeout. It
// returns once every sentinel reports the primary, sees the replica with
// its link up and knows the two other sentinels. It skips t when
// redis-server is missing, or fails it under CI=true. Everything stops
// when t ends.
//
// A killed primary that is restarted comes back as a master (its config
// file has no replicaof line: no sentinel could rewrite it while it was
// down); the sentinels make it a replica of the new primary about 20 s
// later (their 10 s INFO period plus Sentinel's 8 s wait before it
// reconfigures an instance), which is when WaitHealthy returns. The
// FailoverClient keeps going to the new primary meanwhile.
func Sentinel(t testing.TB) *Topology {
	t.Helper()
	requireBinaries(t, "redis-server")
	began := time.Now()
	tp := newTopology(t)
	tp.MasterName = sentinelMasterName
	primary, err := tp.startNode("primary", false, false, dataConf)
	if err != nil {
		t.Fatalf("redistest: sentinel primary: %v", err)
	}
	primary.Role = RoleMaster
	tp.nodes = append(tp.nodes, primary)
	replica, err := tp.startNode("replica", false, false, func(n *Node) []string {
		return append(dataConf(n), fmt.Sprintf("replicaof 127.0.0.1 %d", primary.Port))
	})
	if err != nil {
		t.Fatalf("redistest: sentinel replica: %v", err)
	}
	replica.Role = RoleReplica
	tp.nodes = append(tp.nodes, replica)
	tp.replicaOf[primary] = replica

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The sentinels learn of the replica from the primary's INFO, which
	// they read when they connect and then every 10 s: let the replica
	// connect first.
	err = poll(ctx, 20*time.Millisecond, func() error {
		info, err := replica.client.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if st := infoField(info, "master_link_status"); st != "up" {
			return fmt.Errorf("%v: master_link_status:%s", replica, st)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("redistest: sentinel replica never synced: %v", err)
	}
	for i := range 3 {
		s, err := tp.startNode(fmt.Sprintf("sentinel%d", i), false, true, func(n *Node) []string {
			name := tp.MasterName
			return []string{
				"dir " + quoteConf(n.Dir),
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", name, primary.Port),
				fmt.Sprintf("sentinel down-after-milliseconds %s %d", name, SentinelDownAfter.Milliseconds()),
				fmt.Sprintf("sentinel failover-timeout %s %d", name, SentinelFailoverTimeout.Milliseconds()),
				fmt.Sprintf("sentinel parallel-syncs %s 1", name),
			}
		})
		if err != nil {
			t.Fatalf("redistest: sentinel: %v", err)
		}
		tp.sentinels = append(tp.sentinels, s)
	}
	if err := poll(ctx, 50*time.Millisecond, func() error { return sentinelHealthy(ctx, tp) }); err != nil {
		t.Fatalf("redistest: sentinels not ready: %v", err)
	}

	var addrs []string
	for _, s := range tp.sentinels {
		addrs = append(addrs, s.Addr)
	}
	tp.failoverOpt = &redis.FailoverOptions{
		MasterName: tp.MasterName, SentinelAddrs: addrs,
		DialTimeout: faultDialTimeout, DialerRetries: 1,
		ReadTimeout: faultIOTimeout, WriteTimeout: faultIOTimeout, PoolTimeout: faultPoolTimeout,
		MaxRetries: -1,
	}
	client := redis.NewFailoverClient(copyFailoverOptions(tp.failoverOpt))
	tp.Backend = &Backend{
		Name: "sentinel", Client: client, Namespace: namespace(t),
		Addrs: addrs, failoverOpt: tp.failoverOpt,
	}
	// The servers are the test's own and die with it: no key cleanup.
	t.Cleanup(func() { _ = client.Close() })
	t.Logf("redistest: sentinel (primary, replica, 3 sentinels) ready in %v", time.Since(began).Round(time.Millisecond))
	return tp
}

// sentinelHealthy reports (as an error) what keeps the Sentinel setup
// from being whole.
func sentinelHealthy(ctx context.Context, tp *Topology) error {
	var primaryAddr string
	for _, s := range tp.sentinels {
		addr, err := s.sc.GetMasterAddrByName(ctx, tp.MasterName).Result()
		if err != nil || len(addr) != 2 {
			return fmt.Errorf("%v: get-master-addr-by-name: %v %v", s, addr, err)
		}
		a := net.JoinHostPort(addr[0], addr[1])
		if primaryAddr == "" {
			primaryAddr = a
		} else if a != primaryAddr {
			return fmt.Errorf("sentinels disagree on the primary: %s, %s", primaryAddr, a)
		}
		m, err := s.sc.Master(ctx, tp.MasterName).Result()
		if err != nil {
			return fmt.Errorf("%v: sentinel master: %w", s, err)
		}
		if m["flags"] != "master" {
			return fmt.Errorf("%v: primary flags %s", s, m["flags"])
		}
		if m["num-other-sentinels"] != strconv.Itoa(len(tp.sentinels)-1) {
			return fmt.Errorf("%v knows %s other sentinels", s, m["num-other-sentinels"])
		}
		reps, err := s.sc.Replicas(ctx, tp.MasterName).Result()
		if err != nil {
			return fmt.Errorf("%v: sentinel replicas: %w", s, err)
		}
		ok := 0
		for _, r := range reps {
			if r["flags"] == "slave" && r["master-link-status"] == "ok" {
				ok++
			}
		}
		if ok != len(tp.nodes)-1 || len(reps) != len(tp.nodes)-1 {
			return fmt.Errorf("%v sees %d replicas, %d of them up", s, len(reps), ok)
		}
	}
	primary := tp.nodeByAddr(primaryAddr)
	if primary == nil {
		return fmt.Errorf("the sentinels' primary %s is not a node", primaryAddr)
	}
	for _, n := range tp.nodes {
		info, err := n.client.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("%v: INFO replication: %w", n, err)
		}
		role := infoField(info, "role")
		if n == primary {
			if role != "master" {
				return fmt.Errorf("%v: the sentinels' primary has role:%s", n, role)
			}
			continue
		}
		if role != "slave" || infoField(info, "master_port") != strconv.Itoa(primary.Port) ||
			infoField(info, "master_link_status") != "up" {
			return fmt.Errorf("%v: role:%s master_port:%s master_link_status:%s", n, role,
				infoField(info, "master_port"), infoField(info, "master_link_status"))
		}
	}
	return nil
}

// sentinelFailedOver returns the new primary once every running sentinel
// names a node other than old and that node reports role:master.
func sentinelFailedOver(ctx context.Context, tp *Topology, old *Node) (*Node, error) {
	var addr string
	asked := 0
	for _, s := range tp.sentinels {
		if !s.Running() || s.Stopped() {
			continue
		}
		asked++
		a, err := s.sc.GetMasterAddrByName(ctx, tp.MasterName).Result()
		if err != nil || len(a) != 2 {
			return nil, fmt.Errorf("%v: get-master-addr-by-name: %v %v", s, a, err)
		}
		got := net.JoinHostPort(a[0], a[1])
		switch {
		case got == old.Addr:
			return nil, fmt.Errorf("%v still reports %v", s, old)
		case addr == "":
			addr = got
		case got != addr:
			return nil, fmt.Errorf("sentinels disagree on the primary: %s, %s", addr, got)
		}
	}
	if asked == 0 {
		return nil, fmt.Errorf("no sentinel is running")
	}
	n := tp.nodeByAddr(addr)
	if n == nil {
		return nil, fmt.Errorf("the sentinels' primary %s is not a node", addr)
	}
	if role, err := n.CurrentRole(ctx); err != nil || role != "master" {
		return nil, fmt.Errorf("%v: role %q %v", n, role, err)
	}
	return n, nil
}
