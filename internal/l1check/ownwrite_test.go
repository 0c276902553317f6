package l1check_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// gate holds back what the near cache's tracking connections receive: the
// notices of other processes' writes, made late at will.
type gate struct {
	mu sync.Mutex
	ch chan struct{} // nil while open
}

func (g *gate) hold() {
	g.mu.Lock()
	g.ch = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
	g.mu.Unlock()
}

func (g *gate) wait() {
	g.mu.Lock()
	ch := g.ch
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// dial connects to addr; a connection that names itself as a near cache's
// tracking connection (CLIENT SETNAME repocache-l1-…) passes what it reads
// through g.
func (g *gate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	cn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: cn, g: g}, nil
}

type gatedConn struct {
	net.Conn
	g        *gate
	tracking atomic.Bool
}

func (c *gatedConn) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("repocache-l1-")) {
		c.tracking.Store(true)
	}
	return c.Conn.Write(b)
}

func (c *gatedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.tracking.Load() {
		c.g.wait() // what arrived is handed over once the gate opens
	}
	return n, err
}

// TestWriterReadsOwnWriteWhileNoticeLate: a process holds a row in its
// near cache; another process writes the row and invalidates its tag; then
// this process writes the row, and its InvalidateTags returns before the
// other's notice has arrived. A read in this process after its own
// acknowledged write must not return the version older than both.
//
// It failed before InvalidateTags waited for the near cache to settle:
// InvalidateTags drops this process's entries of the keys it deleted, and
// the other process had already deleted them (the tag set was empty), so
// the near cache kept the old value until the other process's notice
// arrived.
func TestWriterReadsOwnWriteWhileNoticeLate(t *testing.T) {
	b := redistest.Standalone(t)
	b.RequireReal(t)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &gate{}
	opt := *b.Client.(*redis.Client).Options()
	opt.Dialer = g.dial
	cl := redis.NewClient(&opt)
	defer cl.Close()
	c := runtime.New(cl, runtime.WithNamespace(b.Namespace), runtime.WithL1(), runtime.WithLogger(quiet))
	defer c.Close()
	other := runtime.New(redistest.NewClient(t, b), runtime.WithNamespace(b.Namespace), runtime.WithLogger(quiet))

	var db atomic.Int64
	db.Store(1)
	get := func() int64 {
		v, err := runtime.GetCached(ctx, c, "row", func(context.Context) (int64, error) { return db.Load(), nil },
			runtime.TTL(time.Minute), runtime.Tags("t:row"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Read until the near cache serves the row: the runtime signals
	// neither that its stream is confirmed nor that a value was kept.
	deadline := time.Now().Add(10 * time.Second)
	for last := int64(0); ; {
		get()
		s, _ := c.Stats(ctx)
		if s.L1.Hits > last && last > 0 {
			break
		}
		last = max(last, s.L1.Hits, 1)
		if time.Now().After(deadline) {
			t.Fatal("the near cache never served the row")
		}
		time.Sleep(10 * time.Millisecond) // polling, see above
	}

	g.hold()          // the other process's notice is late
	defer g.release() // also on a failure: Close waits for the held watcher
	db.Store(2)
	if err := other.InvalidateTags(ctx, "t:row"); err != nil {
		t.Fatal(err)
	}
	db.Store(3)
	if err := c.InvalidateTags(ctx, "t:row"); err != nil { // this process's own write, acknowledged
		t.Fatal(err)
	}
	got := get()
	g.release()
	if got != 3 {
		t.Errorf("read %d after this process's own acknowledged write of version 3", got)
	}
}
