package runtime_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/faultproxy"
	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		url        string
		addrs      []string
		master     string
		db         int
		tls        bool
		pass, user string
	}{
		{url: "redis://localhost:6379/2", addrs: []string{"localhost:6379"}, db: 2},
		{url: "redis://:p%40ss@h:1", addrs: []string{"h:1"}, pass: "p@ss"},
		{url: "rediss://default:tok@eu1.upstash.io:6379", addrs: []string{"eu1.upstash.io:6379"}, tls: true, user: "default", pass: "tok"},
		{url: "redis+cluster://u:pw@a:7000,b:7001,c:7002?read_timeout=2s", addrs: []string{"a:7000", "b:7001", "c:7002"}, user: "u", pass: "pw"},
		{url: "rediss+cluster://a:7000", addrs: []string{"a:7000"}, tls: true},
		{url: "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/3", addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster", db: 3, pass: "pw"},
	}
	for _, tc := range cases {
		o, err := runtime.ParseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if strings.Join(o.Addrs, ",") != strings.Join(tc.addrs, ",") || o.MasterName != tc.master || o.DB != tc.db ||
			(o.TLSConfig != nil) != tc.tls || o.Password != tc.pass || o.Username != tc.user {
			t.Errorf("%s: got addrs=%v master=%q db=%d tls=%v user=%q pass=%q", tc.url, o.Addrs, o.MasterName, o.DB, o.TLSConfig != nil, o.Username, o.Password)
		}
	}
	bad := []string{
		"localhost:6379",
		"http://u:secretpw@h:1",
		"redis://u:secretpw@h:1,h:2",
		"redis://u:secretpw@h:notaport/0",
		"redis://u:secretpw@h:1/0?bogus=1",
		"redis+sentinel://u:secretpw@h:1",
		"redis+ring://u:secretpw@h:1",
	}
	for _, u := range bad {
		_, err := runtime.ParseURL(u)
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: error leaks the password: %v", u, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://u:secret@h:1/0":            "redis://u:xxxxx@h:1/0",
		"rediss://:secret@h:1":              "rediss://:xxxxx@h:1",
		"redis://secret@h:1":                "redis://xxxxx@h:1",
		"redis+cluster://u:s@cr@et@a:1,b:2": "redis+cluster://u:xxxxx@a:1,b:2",
		"redis://h:1":                       "redis://h:1",
	} {
		if got := runtime.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewClientDefaults(t *testing.T) {
	var opts redis.UniversalOptions
	c, err := runtime.NewClient("redis://127.0.0.1:1/0?read_timeout=3s", runtime.WithClientLogger(discard),
		runtime.WithClientOptions(func(o *redis.UniversalOptions) { opts = *o }))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if opts.ReadTimeout != 3*time.Second || opts.WriteTimeout != runtime.DefaultWriteTimeout ||
		opts.DialTimeout != runtime.DefaultDialTimeout || opts.MaxRetries != runtime.DefaultMaxRetries ||
		opts.PoolSize == 0 || !opts.ContextTimeoutEnabled {
		t.Fatalf("options %+v: want the URL's read_timeout and the defaults elsewhere", opts)
	}
	if _, ok := c.Unwrap().(*redis.Client); !ok {
		t.Fatalf("redis:// built a %T", c.Unwrap())
	}
	cl, err := runtime.NewClient("redis+cluster://127.0.0.1:1,127.0.0.1:2", runtime.WithClientLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, ok := cl.Unwrap().(*redis.ClusterClient); !ok {
		t.Fatalf("redis+cluster:// built a %T", cl.Unwrap())
	}
}

// TestReconnectIsLoggedAndCounted stops the server under a client and starts
// it again on the same address: the error and the reconnect reach the log,
// with the password redacted, and Stats counts the reconnect.
func TestReconnectIsLoggedAndCounted(t *testing.T) {
	mr := miniredis.NewMiniRedis()
	mr.RequireAuth("hunter2")
	if err := mr.Start(); err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client, err := runtime.NewClient("redis://:hunter2@"+mr.Addr()+"/0?max_retries=-1", runtime.WithClientLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := runtime.New(client, runtime.WithLogger(discard))
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	mr.Close()
	if err := client.Ping(ctx).Err(); err == nil {
		t.Fatal("ping succeeded with the server down")
	}
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Stats(ctx)
	if s.Reconnects != 1 {
		t.Fatalf("Reconnects = %d, want 1", s.Reconnects)
	}
	out := logs.String()
	for _, want := range []string{"redis client configured", "redis reconnected", "redis://:xxxxx@"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "connection error") && !strings.Contains(out, "dial failed") {
		t.Errorf("the outage was not logged:\n%s", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("log leaks the password:\n%s", out)
	}
}

func TestStatsReadsServerInfo(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		s, err := newCache(b).Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if b.Cluster {
			want = 3
		}
		if s.Server.Masters != want || s.Server.UsedMemory <= 0 || s.Reconnects != -1 {
			t.Fatalf("server stats %+v, want %d masters", s, want)
		}
	})
}

// TestSlowServerIsNoReconnect (issue 10, defect 4): a server that stalls
// makes commands time out and go-redis dial new connections, which all
// succeed; that is no outage and no reconnect.
func TestSlowServerIsNoReconnect(t *testing.T) {
	b := redistest.Standalone(t)
	b.RequireReal(t)
	p, err := faultproxy.Start(b.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client, err := runtime.NewClient("redis://"+p.Addr()+"/0?read_timeout=100ms&max_retries=-1", runtime.WithClientLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	for range 3 {
		if err := client.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		p.Hold()
		if err := client.Ping(ctx).Err(); err == nil {
			t.Fatal("ping succeeded with replies held")
		}
		p.Release()
	}
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n := client.Reconnects(); n != 0 {
		t.Fatalf("Reconnects = %d after three stalls of a server that never went down, want 0", n)
	}
}

// TestGoRedisLogsThroughSlog (issue 10, defect 4): go-redis's own lines
// ("failed to dial ...") reach the configured logger, rate limited, instead
// of standard error.
func TestGoRedisLogsThroughSlog(t *testing.T) {
	// go-redis dials in goroutines of its own, which may still log while
	// the test reads: the buffer is locked.
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	client, err := runtime.NewClient("redis://"+redistest.ClosedAddr(t)+"/0?max_retries=-1", runtime.WithClientLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for range 20 {
		_ = client.Ping(context.Background()).Err()
	}
	out := logs.String()
	if !strings.Contains(out, "go-redis: ") {
		t.Fatalf("no go-redis line reached the logger:\n%s", out)
	}
	if n := strings.Count(out, "go-redis: "); n > 2 {
		t.Errorf("%d go-redis lines for 20 failed pings within a second: want them rate limited", n)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent Write and String.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
