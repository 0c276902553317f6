package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Topology is a set of redis-server processes that belongs to one test,
// for fault tests: a Redis Cluster with replicas (ReplicatedCluster) or a
// primary with a replica watched by Sentinel (Sentinel). The test may kill,
// stop and restart any of its nodes; nothing is shared with other tests.
// Everything stops when the test ends.
//
// The embedded Backend's Client goes through the cluster or the sentinels
// with short timeouts (dial 250 ms, read and write 500 ms, no command
// retries beyond the cluster client's redirects), so that a fault shows up
// as an error within a second rather than as a hang.
type Topology struct {
	*Backend

	// MasterName is the name the sentinels monitor ("" for a cluster).
	MasterName string

	t         testing.TB
	base      string
	nodes     []*Node // data nodes: masters first (by slot, for a cluster), then replicas
	sentinels []*Node
	replicaOf map[*Node]*Node // master -> its replica, at start

	clusterOpt  *redis.ClusterOptions
	failoverOpt *redis.FailoverOptions
}

// Role is what a node was started as.
type Role string

// The roles of a Topology's nodes.
const (
	RoleMaster   Role = "master"
	RoleReplica  Role = "replica"
	RoleSentinel Role = "sentinel"
)

// A Node is one redis-server process of a Topology. Its address, port and
// directory stay the same across restarts.
type Node struct {
	// Addr is 127.0.0.1:Port.
	Addr string
	Port int
	// Role is the node's role when the topology started; failovers change
	// the live role (see CurrentRole), not this field.
	Role Role
	// ID is the cluster node ID (cluster nodes only). It survives
	// restarts: nodes.conf is kept, even by Restart(true).
	ID string
	// Dir holds the node's config file, log file (redis.log) and, in
	// Dir/data, its data directory.
	Dir string

	conf    string
	dataDir string
	logFile string
	extra   []string // arguments after the config file

	client *redis.Client         // data nodes
	sc     *redis.SentinelClient // sentinels

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool  // SIGSTOP sent, no SIGCONT yet
	slots   []int // cluster: the first slot of each range it served, when last seen as master
}

func (n *Node) String() string {
	return fmt.Sprintf("%s %s", n.Role, n.Addr)
}

// Nodes returns the data nodes (not the sentinels): the masters first (in
// Master order), then the replicas.
func (tp *Topology) Nodes() []*Node { return append([]*Node(nil), tp.nodes...) }

// Sentinels returns the sentinel processes (none for a cluster).
func (tp *Topology) Sentinels() []*Node { return append([]*Node(nil), tp.sentinels...) }

// Master returns the i-th node started as a master. For a cluster the
// masters are ordered by the slots they were given: Master(0) served slot
// 0. For Sentinel there is only Master(0), the first primary.
func (tp *Topology) Master(i int) *Node {
	var masters []*Node
	for _, n := range tp.nodes {
		if n.Role == RoleMaster {
			masters = append(masters, n)
		}
	}
	if i < 0 || i >= len(masters) {
		tp.t.Fatalf("redistest: Master(%d): the topology has %d masters", i, len(masters))
	}
	return masters[i]
}

// ReplicaOf returns the node that was master's replica when the topology
// started.
func (tp *Topology) ReplicaOf(master *Node) *Node {
	r := tp.replicaOf[master]
	if r == nil {
		tp.t.Fatalf("redistest: ReplicaOf(%v): not a master of this topology", master)
	}
	return r
}

// ClusterOptions returns a copy of the options of the topology's cluster
// client, for a test that builds its own client (nil for Sentinel).
func (tp *Topology) ClusterOptions() *redis.ClusterOptions { return copyClusterOptions(tp.clusterOpt) }

// FailoverOptions returns a copy of the options of the topology's
// failover client, for a test that builds its own client (nil for a
// cluster).
func (tp *Topology) FailoverOptions() *redis.FailoverOptions {
	return copyFailoverOptions(tp.failoverOpt)
}

func copyClusterOptions(o *redis.ClusterOptions) *redis.ClusterOptions {
	if o == nil {
		return nil
	}
	c := *o
	c.Addrs = append([]string(nil), o.Addrs...)
	return &c
}

func copyFailoverOptions(o *redis.FailoverOptions) *redis.FailoverOptions {
	if o == nil {
		return nil
	}
	c := *o
	c.SentinelAddrs = append([]string(nil), o.SentinelAddrs...)
	return &c
}

// WaitHealthy waits until the topology is whole again: every node is
// running and, for a cluster, every node reports cluster_state:ok, knows
// every other node without a failure flag, all slots are served and every
// master has a replica whose link is up; for Sentinel, the sentinels agree
// on one primary, every other data node replicates it with its link up,
// and each sentinel sees the replicas and the other sentinels. Roles may
// differ from the start after a failover.
func (tp *Topology) WaitHealthy(ctx context.Context) error {
	for _, n := range append(tp.Nodes(), tp.sentinels...) {
		if !n.Running() {
			return fmt.Errorf("redistest: %v is not running", n)
		}
	}
	if tp.clusterOpt != nil {
		var view []clusterEntry
		err := poll(ctx, 50*time.Millisecond, func() error {
			var e error
			view, e = clusterHealthy(ctx, tp.nodes)
			return e
		})
		if err == nil {
			tp.rememberSlots(view)
		}
		return err
	}
	return poll(ctx, 50*time.Millisecond, func() error { return sentinelHealthy(ctx, tp) })
}

// WaitFailover waits until a node other than oldMaster serves what
// oldMaster served, and returns it: for a cluster, until every running,
// unstopped node other than oldMaster reports another node, itself a
// running master, as the master of each of oldMaster's slot ranges; for
// Sentinel, until every running sentinel reports another node as the
// primary and that node reports role:master.
func (tp *Topology) WaitFailover(ctx context.Context, oldMaster *Node) (*Node, error) {
	var (
		found *Node
		err   error
	)
	if tp.clusterOpt != nil {
		err = poll(ctx, 50*time.Millisecond, func() error {
			var e error
			found, e = clusterFailedOver(ctx, tp.nodes, oldMaster)
			return e
		})
	} else {
		err = poll(ctx, 50*time.Millisecond, func() error {
			var e error
			found, e = sentinelFailedOver(ctx, tp, oldMaster)
			return e
		})
	}
	if err != nil {
		return nil, fmt.Errorf("redistest: no failover from %v: %w", oldMaster, err)
	}
	return found, nil
}

// nodeByAddr returns the data node at addr, or nil.
func (tp *Topology) nodeByAddr(addr string) *Node {
	for _, n := range tp.nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// Client returns a client to this node alone (for a sentinel, see
// SentinelClient), with short timeouts and no retries; it is closed when
// the test ends.
func (n *Node) Client() *redis.Client { return n.client }

// SentinelClient returns a client to this sentinel (nil for a data node).
func (n *Node) SentinelClient() *redis.SentinelClient { return n.sc }

// Running reports whether the process is alive (possibly stopped).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.aliveLocked()
}

// Stopped reports whether the process was sent SIGSTOP and not SIGCONT.
func (n *Node) Stopped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.aliveLocked() && n.stopped
}

func (n *Node) aliveLocked() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the process to exit. Killing a node
// that is not running does nothing.
func (n *Node) Kill() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.killLocked()
}

func (n *Node) killLocked() error {
	if !n.aliveLocked() {
		return nil
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redistest: kill %v: %w", n, err)
	}
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("redistest: %v still running 10s after SIGKILL", n)
	}
	n.stopped = false
	return nil
}

// Stop sends SIGSTOP: the node keeps its connections and answers nothing
// until Cont.
func (n *Node) Stop() error { return n.signal(syscall.SIGSTOP, true) }

// Cont sends SIGCONT to a node that Stop stopped.
func (n *Node) Cont() error { return n.signal(syscall.SIGCONT, false) }

func (n *Node) signal(sig syscall.Signal, stopped bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.aliveLocked() {
		return fmt.Errorf("redistest: %v: signal %v: not running", n, sig)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("redistest: %v: signal %v: %w", n, sig, err)
	}
	n.stopped = stopped
	return nil
}

// Restart starts the node again on the same port with the same config
// file and directory, and returns once it accepts connections (it may not
// have rejoined yet: see WaitHealthy). A running node is killed first; with
// empty false, a running, unstopped data node is first saved (SAVE), so
// that it comes back with its data, as after a clean restart. No
// persistence is configured otherwise (save "", appendonly no): a node
// that was killed comes back without data either way.
//
// With empty, the data directory is wiped before the start, so the node
// comes back with no data whatever happened before. Its configuration is
// kept: a cluster node keeps its nodes.conf (its ID, its slots or its
// master, the cluster's epoch) and a Sentinel data node keeps the
// replicaof line a sentinel may have written, as a server whose data
// volume was lost but not its config. For a sentinel process empty does
// nothing more than a restart.
func (n *Node) Restart(empty bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.aliveLocked() {
		if !empty && !n.stopped && n.client != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := n.client.Save(ctx).Err()
			cancel()
			if err != nil {
				return fmt.Errorf("redistest: %v: SAVE before restart: %w", n, err)
			}
		}
		if err := n.killLocked(); err != nil {
			return err
		}
	}
	if empty && n.dataDir != "" {
		if err := os.RemoveAll(n.dataDir); err != nil {
			return err
		}
		if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
			return err
		}
	}
	return n.startLocked()
}

// RunID returns the run_id of INFO server; it changes at every start.
func (n *Node) RunID() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := n.info(ctx, "server")
	if err != nil {
		return "", err
	}
	id := infoField(info, "run_id")
	if id == "" {
		return "", fmt.Errorf("redistest: %v: no run_id in INFO server", n)
	}
	return id, nil
}

// CurrentRole returns the node's live role from INFO replication: "master"
// or "slave" (or "sentinel" for a sentinel).
func (n *Node) CurrentRole(ctx context.Context) (string, error) {
	if n.sc != nil {
		return "sentinel", nil
	}
	info, err := n.info(ctx, "replication")
	if err != nil {
		return "", err
	}
	return infoField(info, "role"), nil
}

func (n *Node) info(ctx context.Context, section string) (string, error) {
	var cmd *redis.StringCmd
	if n.sc != nil {
		cmd = redis.NewStringCmd(ctx, "info", section)
		_ = n.sc.Process(ctx, cmd)
	} else {
		cmd = n.client.Info(ctx, section)
	}
	info, err := cmd.Result()
	if err != nil {
		return "", fmt.Errorf("redistest: %v: INFO %s: %w", n, section, err)
	}
	return info, nil
}

// infoField returns the value of name in an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// startLocked starts the process and waits until it answers PING.
func (n *Node) startLocked() error {
	cmd := exec.Command("redis-server", append([]string{n.conf}, n.extra...)...)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done, n.stopped = cmd, done, false

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := poll(ctx, 20*time.Millisecond, func() error {
		select {
		case <-done:
			return errExited
		default:
		}
		if n.sc != nil {
			return n.sc.Ping(ctx).Err()
		}
		return n.client.Ping(ctx).Err()
	})
	if err != nil {
		_ = n.killLocked()
		return fmt.Errorf("redistest: %v did not start: %w\n%s", n, err, n.logTail())
	}
	return nil
}

var errExited = errors.New("redis-server exited")

// logTail returns the end of the node's log, for error messages.
func (n *Node) logTail() string {
	b, err := os.ReadFile(n.logFile)
	if err != nil {
		return ""
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// poll calls fn every interval until it returns nil, errExited, or ctx
// ends; it then returns nil, or the last error with ctx's.
func poll(ctx context.Context, interval time.Duration, fn func() error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil || errors.Is(err, errExited) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// fault-test client settings: fail within about a second, never hang.
const (
	faultDialTimeout = 250 * time.Millisecond
	faultIOTimeout   = 500 * time.Millisecond
	faultPoolTimeout = time.Second
)

func nodeClientOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr: addr, DialTimeout: faultDialTimeout, DialerRetries: 1,
		ReadTimeout: faultIOTimeout, WriteTimeout: faultIOTimeout, PoolTimeout: faultPoolTimeout,
		MaxRetries: -1, PoolSize: 4,
	}
}

// requireBinaries skips t (fails it under CI) without the programs named.
func requireBinaries(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if inCI() {
				t.Fatalf("redistest: %s is not on PATH under CI", name)
			}
			t.Skipf("redistest: %s is not on PATH", name)
		}
	}
}

// newTopology prepares the common parts: the base directory and the
// cleanup that stops every process.
func newTopology(t testing.TB) *Topology {
	tp := &Topology{t: t, base: t.TempDir(), replicaOf: map[*Node]*Node{}}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(tp.stop)
	return tp
}

func (tp *Topology) stop() {
	for _, n := range append(tp.Nodes(), tp.sentinels...) {
		if err := n.Kill(); err != nil {
			tp.t.Logf("%v", err)
		}
		if n.client != nil {
			_ = n.client.Close()
		}
		if n.sc != nil {
			_ = n.sc.Close()
		}
	}
}

// startNode writes the node's config file and starts it on a free port,
// retrying on a port that was taken meanwhile. conf returns the config
// file's lines for a port.
func (tp *Topology) startNode(name string, cluster, sentinel bool, conf func(n *Node) []string) (*Node, error) {
	var lastErr error
	for range 5 {
		port, err := freePort(cluster)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(tp.base, fmt.Sprintf("%s-%d", name, port))
		n := &Node{
			Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, Dir: dir,
			conf: filepath.Join(dir, "redis.conf"), logFile: filepath.Join(dir, "redis.log"),
		}
		if sentinel {
			n.Role = RoleSentinel
			n.extra = []string{"--sentinel"}
			n.sc = redis.NewSentinelClient(nodeClientOptions(n.Addr))
		} else {
			n.dataDir = filepath.Join(dir, "data")
			n.client = redis.NewClient(nodeClientOptions(n.Addr))
		}
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			return nil, err
		}
		lines := append([]string{
			"port " + strconv.Itoa(port),
			"bind 127.0.0.1",
			"daemonize no",
			"logfile " + quoteConf(n.logFile),
		}, conf(n)...)
		if err := os.WriteFile(n.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
		n.mu.Lock()
		err = n.startLocked()
		n.mu.Unlock()
		if err == nil {
			return n, nil
		}
		lastErr = err
		if n.client != nil {
			_ = n.client.Close()
		}
		if n.sc != nil {
			_ = n.sc.Close()
		}
	}
	return nil, lastErr
}

// dataConf is the config of a data node: no persistence, and an immediate
// full sync (no diskless-sync delay) so that replicas catch up at once.
func dataConf(n *Node) []string {
	return []string{
		"dir " + quoteConf(n.dataDir),
		`save ""`,
		"appendonly no",
		"repl-diskless-sync-delay 0",
		"protected-mode no",
	}
}

// quoteConf quotes a path for a redis config file.
func quoteConf(s string) string { return strconv.Quote(s) }

// WaitReplicated waits until every running replica has received what its
// master had written when WaitReplicated was called (its
// slave_repl_offset reaches the master's master_repl_offset), so that a
// test can kill a master without losing writes it made before.
func (tp *Topology) WaitReplicated(ctx context.Context) error {
	type pair struct {
		replica *Node
		target  int64
	}
	var pairs []pair
	for _, n := range tp.nodes {
		if !n.Running() || n.Stopped() {
			continue
		}
		info, err := n.info(ctx, "replication")
		if err != nil {
			return err
		}
		if infoField(info, "role") != "slave" {
			continue
		}
		m := tp.nodeByAddr(net.JoinHostPort(infoField(info, "master_host"), infoField(info, "master_port")))
		if m == nil {
			return fmt.Errorf("redistest: %v replicates %s:%s, not a node", n,
				infoField(info, "master_host"), infoField(info, "master_port"))
		}
		minfo, err := m.info(ctx, "replication")
		if err != nil {
			return err
		}
		target, err := strconv.ParseInt(infoField(minfo, "master_repl_offset"), 10, 64)
		if err != nil {
			return fmt.Errorf("redistest: %v: master_repl_offset: %w", m, err)
		}
		pairs = append(pairs, pair{n, target})
	}
	for _, p := range pairs {
		err := poll(ctx, 20*time.Millisecond, func() error {
			info, err := p.replica.info(ctx, "replication")
			if err != nil {
				return err
			}
			off, _ := strconv.ParseInt(infoField(info, "slave_repl_offset"), 10, 64)
			if off < p.target {
				return fmt.Errorf("%v: slave_repl_offset %d < %d", p.replica, off, p.target)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("redistest: not replicated: %w", err)
		}
	}
	return nil
}
