package cachetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// backend is the server the tests of this process share, chosen once.
var backend struct {
	once sync.Once
	url  string // REDIS_URL
	addr string // the throwaway server's or miniredis's address
	proc *exec.Cmd
	done chan struct{} // closed when proc has exited
	dir  string
	mini *miniredis.Miniredis
	err  error
}

// Main runs the package's tests, then the given functions (another test
// harness's cleanup, say), then stops the redis-server or miniredis that
// cachetest started, and exits with the tests' code. Calling it from
// TestMain is optional on Linux, where the server dies with the test
// binary anyway; elsewhere it keeps a redis-server from outliving the tests.
func Main(m *testing.M, stop ...func()) {
	code := m.Run()
	for _, f := range stop {
		f()
	}
	shutdown()
	os.Exit(code)
}

func shutdown() {
	if p := backend.proc; p != nil {
		_ = p.Process.Kill()
		<-backend.done
		_ = os.RemoveAll(backend.dir)
		backend.proc = nil
	}
	if backend.mini != nil {
		backend.mini.Close()
		backend.mini = nil
	}
}

func inCI() bool { v := os.Getenv("CI"); return v != "" && v != "false" && v != "0" }

func choose() {
	if u := os.Getenv("REDIS_URL"); u != "" {
		if _, err := runtime.ParseURL(u); err != nil {
			backend.err = fmt.Errorf("REDIS_URL: %w", err)
		}
		backend.url = u
		return
	}
	if _, err := exec.LookPath("redis-server"); err == nil {
		backend.err = startServer()
		return
	}
	if inCI() {
		backend.err = errors.New("no REDIS_URL and no redis-server on PATH; the embedded fallback is refused under CI=true")
		return
	}
	fmt.Fprintln(os.Stderr, "cachetest: no REDIS_URL and no redis-server on PATH: using the embedded miniredis, not a real Redis")
	backend.mini, backend.err = miniredis.Run()
	if backend.err == nil {
		backend.addr = backend.mini.Addr()
	}
}

// newClient returns a new client to the shared server, and whether it is
// the embedded one.
func newClient() (redis.UniversalClient, bool, error) {
	backend.once.Do(choose)
	if backend.err != nil {
		return nil, false, backend.err
	}
	if backend.url == "" {
		return redis.NewClient(&redis.Options{Addr: backend.addr}), backend.mini != nil, nil
	}
	o, err := runtime.ParseURL(backend.url)
	if err != nil {
		return nil, false, err
	}
	switch scheme, _, _ := strings.Cut(backend.url, "://"); {
	case o.MasterName != "":
		return redis.NewFailoverClient(o.Failover()), false, nil
	case len(o.Addrs) > 1 || strings.Contains(scheme, "cluster"):
		return redis.NewClusterClient(o.Cluster()), false, nil
	default:
		return redis.NewClient(o.Simple()), false, nil
	}
}

// startServer starts redis-server on a free loopback port, without
// persistence, and waits until it answers PING. It retries on a port taken
// between the check and the start.
func startServer() error {
	dir, err := os.MkdirTemp("", "cachetest-")
	if err != nil {
		return err
	}
	for range 5 {
		if err = startOn(dir); err == nil {
			backend.dir = dir
			return nil
		}
	}
	_ = os.RemoveAll(dir)
	return err
}

func startOn(dir string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "")
	cmd.SysProcAttr = childAttr()
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		switch {
		case err == nil:
			backend.proc, backend.done, backend.addr = cmd, exited, addr
			return nil
		case time.Now().After(deadline):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s not ready after 15s: %v: %s", addr, err, out.String())
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited: %s", addr, out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// lockedBuffer keeps the first 4 KiB of a server's output, for errors.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := 4096 - len(b.buf); n > 0 {
		b.buf = append(b.buf, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}
