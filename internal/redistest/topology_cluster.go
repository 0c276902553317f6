package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of ReplicatedCluster: a
// master that stops answering for this long is failed over, about one to
// three seconds later.
const ClusterNodeTimeout = 1500 * time.Millisecond

// ClusterStateReloadInterval is the ClusterStateReloadInterval of the
// ReplicatedCluster client. go-redis (v9.23) reloads its slot map only on a
// MOVED, ASK or READONLY reply or once the map is older than this; a killed
// master never replies, so with go-redis's default of 60 s its slots keep
// failing for up to a minute after a replica has taken them over.
const ClusterStateReloadInterval = time.Second

// ReplicatedCluster starts a Redis Cluster of its own for t: six
// redis-server processes on free loopback ports, three masters with one
// replica each (redis-cli --cluster create --cluster-replicas 1), with a
// short cluster-node-timeout (ClusterNodeTimeout) and
// cluster-replica-validity-factor 0, so that a replica takes over a failed
// master within a few seconds. It returns once every node reports
// cluster_state:ok and every replica's link to its master is up. It
// skips t when redis-server or redis-cli is missing, or fails it under
// CI=true. Everything stops when t ends.
func ReplicatedCluster(t testing.TB) *Topology {
	t.Helper()
	requireBinaries(t, "redis-server", "redis-cli")
	began := time.Now()
	tp := newTopology(t)
	timeout := fmt.Sprintf("cluster-node-timeout %d", ClusterNodeTimeout.Milliseconds())
	var addrs []string
	for i := range 6 {
		n, err := tp.startNode(fmt.Sprintf("node%d", i), true, false, func(n *Node) []string {
			return append(dataConf(n),
				"cluster-enabled yes",
				"cluster-config-file "+quoteConf(filepath.Join(n.Dir, "nodes.conf")),
				timeout,
				"cluster-replica-validity-factor 0",
			)
		})
		if err != nil {
			t.Fatalf("redistest: replicated cluster: %v", err)
		}
		tp.nodes = append(tp.nodes, n)
		addrs = append(addrs, n.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v: %s", err, out)
	}
	var view []clusterEntry
	err := poll(ctx, 50*time.Millisecond, func() error {
		var e error
		view, e = clusterHealthy(ctx, tp.nodes)
		return e
	})
	if err != nil {
		t.Fatalf("redistest: replicated cluster not healthy: %v", err)
	}
	tp.assignClusterRoles(view)

	tp.clusterOpt = &redis.ClusterOptions{
		Addrs:       addrs,
		DialTimeout: faultDialTimeout, DialerRetries: 1,
		ReadTimeout: faultIOTimeout, WriteTimeout: faultIOTimeout, PoolTimeout: faultPoolTimeout,
		ClusterStateReloadInterval: ClusterStateReloadInterval,
	}
	client := redis.NewClusterClient(copyClusterOptions(tp.clusterOpt))
	tp.Backend = &Backend{
		Name: "replicated-cluster", Client: client, Namespace: namespace(t), Cluster: true,
		Addrs: append([]string(nil), addrs...), clusterOpt: tp.clusterOpt,
	}
	// The servers are the test's own and die with it: no key cleanup.
	t.Cleanup(func() { _ = client.Close() })
	t.Logf("redistest: replicated cluster (3 masters, 3 replicas) ready in %v", time.Since(began).Round(time.Millisecond))
	return tp
}

// assignClusterRoles sets each node's ID and role from a healthy view and
// orders the nodes: masters by their first slot, then their replicas in
// the same order.
func (tp *Topology) assignClusterRoles(view []clusterEntry) {
	byID := map[string]*Node{}
	for _, e := range view {
		if n := tp.nodeByAddr(e.addr); n != nil {
			n.ID = e.id
			byID[e.id] = n
		}
	}
	var masters []*Node
	for _, e := range view {
		if n := byID[e.id]; n != nil && e.flags["master"] && len(e.slots) > 0 {
			n.Role = RoleMaster
			masters = append(masters, n)
		}
	}
	tp.rememberSlots(view)
	sort.Slice(masters, func(i, j int) bool { return masters[i].slots[0] < masters[j].slots[0] })
	nodes := append([]*Node(nil), masters...)
	for _, m := range masters {
		for _, e := range view {
			if n := byID[e.id]; n != nil && e.master == m.ID {
				n.Role = RoleReplica
				tp.replicaOf[m] = n
				nodes = append(nodes, n)
				break
			}
		}
	}
	tp.nodes = nodes
}

// rememberSlots records which slot ranges each master serves in view.
func (tp *Topology) rememberSlots(view []clusterEntry) {
	for _, e := range view {
		n := tp.nodeByAddr(e.addr)
		if n == nil || !e.flags["master"] || len(e.slots) == 0 {
			continue
		}
		var firsts []int
		for _, r := range e.slots {
			firsts = append(firsts, r[0])
		}
		sort.Ints(firsts)
		n.mu.Lock()
		n.slots = firsts
		n.mu.Unlock()
	}
}

// clusterEntry is one line of CLUSTER NODES.
type clusterEntry struct {
	id, addr string
	flags    map[string]bool
	master   string // the master's ID, for a replica
	link     string
	slots    [][2]int
}

func (e clusterEntry) failing() bool {
	return e.flags["fail"] || e.flags["fail?"] || e.flags["handshake"] || e.flags["noaddr"]
}

func (e clusterEntry) serves(slot int) bool {
	for _, r := range e.slots {
		if r[0] <= slot && slot <= r[1] {
			return true
		}
	}
	return false
}

func parseClusterNodes(text string) []clusterEntry {
	var out []clusterEntry
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		addr, _, _ = strings.Cut(addr, ",")
		e := clusterEntry{id: f[0], addr: addr, flags: map[string]bool{}, master: f[3], link: f[7]}
		for _, fl := range strings.Split(f[2], ",") {
			e.flags[fl] = true
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") { // a slot being migrated or imported
				continue
			}
			lo, hi, ok := strings.Cut(s, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if ok {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 == nil && err2 == nil {
				e.slots = append(e.slots, [2]int{a, b})
			}
		}
		out = append(out, e)
	}
	return out
}

// clusterHealthy reports (as an error) what keeps the cluster from being
// whole, and returns the last node's view when it is whole.
func clusterHealthy(ctx context.Context, nodes []*Node) ([]clusterEntry, error) {
	var (
		ref  map[int]string // first slot of a range -> master ID
		view []clusterEntry
	)
	for _, n := range nodes {
		info, err := n.client.ClusterInfo(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("%v: CLUSTER INFO: %w", n, err)
		}
		if st := infoField(info, "cluster_state"); st != "ok" {
			return nil, fmt.Errorf("%v: cluster_state:%s", n, st)
		}
		if k := infoField(info, "cluster_known_nodes"); k != strconv.Itoa(len(nodes)) {
			return nil, fmt.Errorf("%v: cluster_known_nodes:%s, want %d", n, k, len(nodes))
		}
		if ok := infoField(info, "cluster_slots_ok"); ok != "16384" {
			return nil, fmt.Errorf("%v: cluster_slots_ok:%s", n, ok)
		}
		text, err := n.client.ClusterNodes(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("%v: CLUSTER NODES: %w", n, err)
		}
		view = parseClusterNodes(text)
		owners := map[int]string{}
		hasReplica := map[string]bool{}
		var myself clusterEntry
		for _, e := range view {
			if e.failing() {
				return nil, fmt.Errorf("%v sees %s %s flagged %v", n, e.id, e.addr, e.flags)
			}
			if e.flags["myself"] {
				myself = e
			} else if e.link != "connected" {
				return nil, fmt.Errorf("%v: link to %s is %s", n, e.addr, e.link)
			}
			if e.flags["slave"] {
				hasReplica[e.master] = true
			}
			for _, r := range e.slots {
				owners[r[0]] = e.id
			}
		}
		for _, e := range view {
			if e.flags["master"] && len(e.slots) > 0 && !hasReplica[e.id] {
				return nil, fmt.Errorf("%v: master %s has no replica", n, e.addr)
			}
		}
		if ref == nil {
			ref = owners
		} else if fmt.Sprint(ref) != fmt.Sprint(owners) {
			return nil, fmt.Errorf("%v disagrees on the slot owners", n)
		}
		if myself.flags["slave"] {
			repl, err := n.client.Info(ctx, "replication").Result()
			if err != nil {
				return nil, fmt.Errorf("%v: INFO replication: %w", n, err)
			}
			if st := infoField(repl, "master_link_status"); st != "up" || infoField(repl, "master_sync_in_progress") != "0" {
				return nil, fmt.Errorf("%v: master_link_status:%s", n, st)
			}
		}
	}
	return view, nil
}

// clusterFailedOver returns the node that serves old's slots when every
// reachable node other than old agrees that it does.
func clusterFailedOver(ctx context.Context, nodes []*Node, old *Node) (*Node, error) {
	var live []*Node
	for _, n := range nodes {
		if n != old && n.Running() && !n.Stopped() {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		return nil, fmt.Errorf("no running node but %v", old)
	}
	views := map[*Node][]clusterEntry{}
	for _, n := range live {
		text, err := n.client.ClusterNodes(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("%v: CLUSTER NODES: %w", n, err)
		}
		views[n] = parseClusterNodes(text)
	}
	// old's slots: from a view that still has it as their master, else
	// what was last seen.
	var slots []int
	for _, n := range live {
		for _, e := range views[n] {
			if e.id == old.ID && e.flags["master"] && len(e.slots) > 0 {
				for _, r := range e.slots {
					slots = append(slots, r[0])
				}
				break
			}
		}
		if slots != nil {
			break
		}
	}
	if slots == nil {
		old.mu.Lock()
		slots = append(slots, old.slots...)
		old.mu.Unlock()
	}
	if len(slots) == 0 {
		return nil, fmt.Errorf("%v served no slots", old)
	}
	var newID string
	for _, n := range live {
		for _, s := range slots {
			var owner *clusterEntry
			for i, e := range views[n] {
				if e.serves(s) {
					owner = &views[n][i]
				}
			}
			switch {
			case owner == nil:
				return nil, fmt.Errorf("%v: nobody serves slot %d", n, s)
			case owner.id == old.ID:
				return nil, fmt.Errorf("%v: slot %d still served by %v", n, s, old)
			case owner.failing() || !owner.flags["master"]:
				return nil, fmt.Errorf("%v: slot %d served by %s flagged %v", n, s, owner.addr, owner.flags)
			case newID == "":
				newID = owner.id
			case owner.id != newID:
				return nil, fmt.Errorf("nodes disagree on the master of slot %d", s)
			}
		}
	}
	var found *Node
	for _, n := range live {
		if n.ID == newID {
			found = n
		}
	}
	if found == nil {
		return nil, fmt.Errorf("new master %s is not a running node", newID)
	}
	if role, err := found.CurrentRole(ctx); err != nil || role != "master" {
		return nil, fmt.Errorf("%v: role %q %v", found, role, err)
	}
	found.mu.Lock()
	for _, s := range slots {
		if !slices.Contains(found.slots, s) {
			found.slots = append(found.slots, s)
		}
	}
	sort.Ints(found.slots)
	found.mu.Unlock()
	return found, nil
}
