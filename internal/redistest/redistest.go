// Package redistest gives tests a real Redis to talk to, and a real local
// Redis Cluster.
//
// The standalone server is, in order of preference: the server at REDIS_URL;
// a throwaway redis-server started on a free port when one is on PATH; the
// embedded miniredis, announced on stderr. Under CI=true the embedded
// fallback is refused: the test fails instead. The cluster is REDIS_CLUSTER_URL
// (comma-separated seed addresses) when set, else three throwaway
// redis-server processes joined with redis-cli --cluster create; without a
// redis-server the cluster tests are skipped, or fail under CI=true.
//
// Each test gets its own key namespace and its cleanup deletes only the keys
// under it: nothing ever flushes a server that the harness did not start.
// Packages that use the harness call Main from TestMain so that the servers
// it started stop when the tests end.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Backend is a Redis server or cluster that a test talks to.
type Backend struct {
	// Name is "standalone" or "cluster" (or, for a Topology,
	// "replicated-cluster" or "sentinel").
	Name string
	// Client is a client for this test; it is closed when the test ends.
	Client redis.UniversalClient
	// Namespace is unique to the test; every key the test writes should
	// start with Namespace + ":". Cleanup deletes those keys.
	Namespace string
	// Embedded reports that the server is miniredis, not a real Redis.
	Embedded bool
	// Cluster reports a Redis Cluster.
	Cluster bool
	// Addrs are the server's (or the cluster's seed, or the sentinels')
	// addresses.
	Addrs []string

	// The client options of a Topology's backend, for NewClient.
	clusterOpt  *redis.ClusterOptions
	failoverOpt *redis.FailoverOptions
}

// servers holds what this test process started; Main stops it.
type servers struct {
	once       sync.Once
	standalone *server
	url        string // REDIS_URL, when set
	mini       *miniredis.Miniredis
	err        error

	clusterOnce sync.Once
	cluster     []*server
	clusterAddr []string
	clusterErr  error
}

var state servers

// Main runs the package's tests and then stops every server the harness
// started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	stopAll()
	os.Exit(code)
}

func stopAll() {
	if state.standalone != nil {
		state.standalone.stop()
	}
	if state.mini != nil {
		state.mini.Close()
	}
	for _, s := range state.cluster {
		s.stop()
	}
}

func inCI() bool { v := os.Getenv("CI"); return v != "" && v != "false" && v != "0" }

// Standalone returns a standalone Redis backend for t.
func Standalone(t testing.TB) *Backend {
	t.Helper()
	state.once.Do(startStandalone)
	if state.err != nil {
		t.Fatalf("redistest: %v", state.err)
	}
	b := &Backend{Name: "standalone", Namespace: namespace(t)}
	switch {
	case state.url != "":
		opt, err := redis.ParseURL(state.url)
		if err != nil {
			t.Fatalf("redistest: REDIS_URL: %v", err)
		}
		b.Client = redis.NewClient(opt)
		b.Addrs = []string{opt.Addr}
	case state.standalone != nil:
		b.Client = redis.NewClient(&redis.Options{Addr: state.standalone.addr})
		b.Addrs = []string{state.standalone.addr}
	default:
		b.Client = redis.NewClient(&redis.Options{Addr: state.mini.Addr()})
		b.Addrs = []string{state.mini.Addr()}
		b.Embedded = true
	}
	t.Cleanup(func() { b.cleanup(t) })
	return b
}

// Cluster returns a Redis Cluster backend for t, or skips t when none can
// be had outside CI.
func Cluster(t testing.TB) *Backend {
	t.Helper()
	state.clusterOnce.Do(startCluster)
	if state.clusterErr != nil {
		if inCI() {
			t.Fatalf("redistest: no Redis Cluster under CI: %v", state.clusterErr)
		}
		t.Skipf("redistest: no Redis Cluster: %v", state.clusterErr)
	}
	b := &Backend{
		Name: "cluster", Namespace: namespace(t), Cluster: true, Addrs: state.clusterAddr,
		Client: redis.NewClusterClient(&redis.ClusterOptions{Addrs: state.clusterAddr}),
	}
	t.Cleanup(func() { b.cleanup(t) })
	return b
}

// Each runs fn as two subtests, against a standalone server and a cluster.
func Each(t *testing.T, fn func(t *testing.T, b *Backend)) {
	t.Helper()
	t.Run("standalone", func(t *testing.T) { fn(t, Standalone(t)) })
	t.Run("cluster", func(t *testing.T) { fn(t, Cluster(t)) })
}

// NewClient returns another client to b's server or cluster, with its own
// connection pool, as another process would have; it is closed when t ends.
func NewClient(t testing.TB, b *Backend) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	switch {
	case b.failoverOpt != nil:
		c = redis.NewFailoverClient(copyFailoverOptions(b.failoverOpt))
	case b.clusterOpt != nil:
		c = redis.NewClusterClient(copyClusterOptions(b.clusterOpt))
	case b.Cluster:
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs})
	default:
		opt := b.Client.(*redis.Client).Options()
		c = redis.NewClient(opt)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// RequireReal skips t (or fails it under CI) when the backend is embedded.
func (b *Backend) RequireReal(t testing.TB) {
	t.Helper()
	if b.Embedded {
		if inCI() {
			t.Fatal("redistest: embedded Redis under CI")
		}
		t.Skip("needs a real Redis server")
	}
}

// Key returns Namespace + ":" + suffix.
func (b *Backend) Key(suffix string) string { return b.Namespace + ":" + suffix }

// Keys lists every key under the namespace, on every master.
func (b *Backend) Keys(ctx context.Context) ([]string, error) {
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, b.Namespace+":*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := b.Client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		err = fmt.Errorf("redistest: unexpected client %T", b.Client)
	}
	return keys, err
}

func (b *Backend) cleanup(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys, err := b.Keys(ctx)
	if err == nil {
		pipe := b.Client.Pipeline()
		for i, k := range keys {
			pipe.Unlink(ctx, k)
			if i%1000 == 999 {
				if _, err = pipe.Exec(ctx); err != nil {
					break
				}
			}
		}
		if err == nil {
			_, err = pipe.Exec(ctx)
		}
	}
	if err != nil && err != redis.Nil {
		t.Logf("redistest: cleanup of %s: %v", b.Namespace, err)
	}
	_ = b.Client.Close()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func namespace(t testing.TB) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 48 {
		name = name[len(name)-48:]
	}
	return "rctest:" + name + ":" + hex.EncodeToString(r[:])
}

// ClosedAddr returns a loopback address on which nothing listens.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func startStandalone() {
	if u := os.Getenv("REDIS_URL"); u != "" {
		state.url = u
		return
	}
	if _, err := exec.LookPath("redis-server"); err == nil {
		state.standalone, state.err = startServer(nil)
		return
	}
	if inCI() {
		state.err = fmt.Errorf("no REDIS_URL and no redis-server on PATH; the embedded fallback is refused under CI=true")
		return
	}
	fmt.Fprintln(os.Stderr, "redistest: no REDIS_URL and no redis-server on PATH: using the embedded miniredis, not a real Redis")
	state.mini, state.err = miniredis.Run()
}

func startCluster() {
	if u := os.Getenv("REDIS_CLUSTER_URL"); u != "" {
		state.clusterAddr = strings.Split(u, ",")
		return
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		state.clusterErr = fmt.Errorf("redis-server is not on PATH")
		return
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		state.clusterErr = fmt.Errorf("redis-cli is not on PATH")
		return
	}
	state.cluster, state.clusterAddr, state.clusterErr = startClusterNodes(3)
}
