package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// server is a redis-server process this test binary started.
type server struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

func (s *server) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	_ = os.RemoveAll(s.dir)
}

// startServer starts redis-server on a free loopback port with extra
// arguments, and returns once it accepts connections. It retries on a port
// taken between the check and the start.
func startServer(extra []string) (*server, error) {
	var lastErr error
	for range 5 {
		port, err := freePort(len(extra) > 0)
		if err != nil {
			return nil, err
		}
		s, err := startOn(port, extra)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startOn(port int, extra []string) (*server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "",
	}, extra...)
	cmd := exec.Command("redis-server", args...)
	cmd.SysProcAttr = childAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	s := &server{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	// redis-server logs this line once it accepts connections; its exit
	// closes the pipe first.
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var log []string
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "Ready to accept connections") {
				ready <- nil
				for sc.Scan() { // drain, so that the server never blocks on a full pipe
				}
				return
			}
			log = append(log, line)
		}
		ready <- fmt.Errorf("redis-server on port %d exited: %s", port, strings.Join(log, "\n"))
	}()
	select {
	case err = <-ready:
	case <-time.After(15 * time.Second):
		err = fmt.Errorf("redis-server on port %d not ready after 15s", port)
	}
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// freePort finds a free loopback port; for a cluster node the bus port
// (port+10000) must be free too.
func freePort(cluster bool) (int, error) {
	for range 50 {
		if !cluster {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, err
			}
			port := l.Addr().(*net.TCPAddr).Port
			_ = l.Close()
			return port, nil
		}
		port := 20000 + rand.IntN(30000)
		if portFree(port) && portFree(port+10000) {
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// startClusterNodes starts n cluster-enabled servers, joins them with
// redis-cli --cluster create and waits for cluster_state:ok.
func startClusterNodes(n int) ([]*server, []string, error) {
	var (
		nodes []*server
		addrs []string
	)
	fail := func(err error) ([]*server, []string, error) {
		for _, s := range nodes {
			s.stop()
		}
		return nil, nil, err
	}
	for range n {
		s, err := startServer([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"})
		if err != nil {
			return fail(err)
		}
		nodes = append(nodes, s)
		addrs = append(addrs, s.addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("redis-cli --cluster create: %v: %s", err, out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		err := waitClusterOK(ctx, c)
		_ = c.Close()
		if err != nil {
			return fail(fmt.Errorf("cluster node %s: %w", addr, err))
		}
	}
	return nodes, addrs, nil
}

// waitClusterOK polls CLUSTER INFO: the gossip that makes a new cluster
// consistent has no event a client could wait on.
func waitClusterOK(ctx context.Context, c *redis.Client) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := c.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster_state not ok: %v %q", err, info)
		case <-tick.C:
		}
	}
}
