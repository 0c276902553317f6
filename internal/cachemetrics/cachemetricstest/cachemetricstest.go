// Package cachemetricstest holds what the tests of the metrics exporters
// (extra/cacheprometheus, extra/cacheotel) share: the scripted workload
// whose counts each checks in its own terms, and the setup of their
// BenchmarkHit.
package cachemetricstest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type project struct {
	ID   int
	Name string
}

// unencodable cannot be encoded by MessagePack: loading it is an encode
// error.
type unencodable struct{ C chan int }

// ErrDB is the error of the workload's failing load.
var ErrDB = errors.New("database down")

// Wait waits up to 10s for c's background work, failing t if it does not
// end.
func Wait(t testing.TB, c *runtime.Cache) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("background work: %v", err)
	}
}

// Down returns a Cache in namespace ns whose Redis refuses connections:
// nothing listens at its address. Its client is closed at the end of t.
func Down(t testing.TB, ns string) *runtime.Cache {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { client.Close() })
	return runtime.New(client, runtime.WithNamespace(ns), runtime.WithLogger(discard))
}

// Workload runs a scripted workload on c, whose metrics hook is the
// exporter's, and waits for its background work. Its events, by method:
//
//   - Repo.Find: 3 misses (each loads and stores), then 5 hits; a load
//     error (a miss, a load, no store); a call whose key could not be built
//     (a bypass).
//   - no method: a miss, a load and a set ("unknown").
//   - Repo.List: an undecodable entry (a decode error, which names no
//     method), then its miss, load and set.
//   - Repo.Stream: a value that cannot be encoded (an encode error, which
//     names no method): a miss and a load, no set.
//   - Repo.Swr: a miss, then a stale hit whose refresh loads again and
//     stores (the refresh's set names no method).
//   - Repo.Delete: a tag invalidation that drops 2 keys, a key
//     invalidation that drops 1; an invalidation template it could not
//     render.
func Workload(t *testing.T, c *runtime.Cache) {
	t.Helper()
	ctx := context.Background()
	find := func(ctx context.Context, id int) (project, error) { return project{ID: id, Name: "p"}, nil }
	get := func(id int, tag, method string) {
		t.Helper()
		opts := []runtime.CallOption{runtime.TTL(time.Minute), runtime.Tags(tag)}
		if method != "" {
			opts = append(opts, runtime.Method(method))
		}
		if _, err := runtime.GetCachedWith(ctx, c, "project:"+strconv.Itoa(id), id, find, opts...); err != nil {
			t.Fatal(err)
		}
	}
	// Repo.Find: 3 misses (each loads and stores), then 5 hits; projects
	// 1 and 2 carry tag t:a, project 3 t:b.
	get(1, "t:a", "Repo.Find")
	get(2, "t:a", "Repo.Find")
	get(3, "t:b", "Repo.Find")
	Wait(t, c)
	for _, id := range []int{1, 1, 1, 2, 2} {
		get(id, "t:a", "Repo.Find")
	}
	// Repo.Find: a load error (a miss, a load, no store).
	_, err := runtime.GetCached(ctx, c, "project:err", func(context.Context) (project, error) { return project{}, ErrDB },
		runtime.TTL(time.Minute), runtime.Method("Repo.Find"))
	if !errors.Is(err, ErrDB) {
		t.Fatalf("load error: got %v", err)
	}
	// A call that names no method: a miss, a load and a set under "unknown".
	get(4, "t:c", "")
	// Repo.List: an undecodable entry (a decode error, which names no
	// method), then its miss, load and set.
	if err := c.Client().Set(ctx, c.RedisKey("list:bad"), "not a cache entry", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.GetCached(ctx, c, "list:bad", func(context.Context) ([]int, error) { return []int{1}, nil },
		runtime.TTL(time.Minute), runtime.Method("Repo.List")); err != nil {
		t.Fatal(err)
	}
	// Repo.Stream: a value that cannot be encoded (an encode error, which
	// names no method): a miss and a load, no set.
	if _, err := runtime.GetCached(ctx, c, "stream:1", func(context.Context) (unencodable, error) { return unencodable{C: make(chan int)}, nil },
		runtime.TTL(time.Minute), runtime.Method("Repo.Stream")); err != nil {
		t.Fatal(err)
	}
	// Repo.Swr: a miss, then a stale hit whose refresh loads again and
	// stores (the refresh's set names no method).
	swr := func(context.Context) (string, error) { return "v", nil }
	for i := range 2 {
		if _, err := runtime.GetCached(ctx, c, "swr:1", swr, runtime.TTL(time.Millisecond), runtime.SWR(time.Minute), runtime.Method("Repo.Swr")); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			Wait(t, c)
			time.Sleep(20 * time.Millisecond)
		}
	}
	Wait(t, c)
	// Repo.Delete: tag t:a drops projects 1 and 2, a key invalidation
	// drops project 3; an invalidation template it could not render.
	del := runtime.WithMethod(ctx, "Repo.Delete")
	if err := c.InvalidateTags(del, "t:a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(del, "project:3"); err != nil {
		t.Fatal(err)
	}
	c.Unrendered("Repo.Delete", "project:{{.Owner.ID}}")
	// Repo.Find: a call whose key could not be built.
	c.Bypass("Repo.Find", "nil owner")
	Wait(t, c)
}

// CPUTime is this process's user+system CPU time: wall time on a loopback
// round trip mostly measures the scheduler, CPU time the work.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type benchArgs struct{ id string }

// Hit is the setup of an exporter's BenchmarkHit: two Caches on the same
// client and namespace of a cachetest kit, so on the same stored value,
// Plain with no metrics hook and Hooked with the exporter's.
type Hit struct {
	// Plain has no metrics hook.
	Plain *runtime.Cache
	// Hooked has Hook.
	Hooked *runtime.Cache
	// Hook is the exporter's hook for the kit's namespace.
	Hook runtime.Metrics

	load func(context.Context, benchArgs) (project, error)
}

// NewHit stores the value that Get hits, with hook(namespace) as Hooked's
// metrics hook.
func NewHit(b *testing.B, hook func(namespace string) runtime.Metrics) *Hit {
	b.Helper()
	kit := cachetest.New(b)
	want := project{ID: 42, Name: "Acme Corporation"}
	h := &Hit{Hook: hook(kit.Namespace()), load: func(context.Context, benchArgs) (project, error) { return want, nil }}
	h.Plain = runtime.New(kit.Client(), runtime.WithNamespace(kit.Namespace()), runtime.WithLogger(discard))
	h.Hooked = runtime.New(kit.Client(), runtime.WithNamespace(kit.Namespace()), runtime.WithLogger(discard),
		runtime.WithMetrics(h.Hook))
	if err := runtime.Set(context.Background(), h.Plain, "project:42", want, runtime.TTL(time.Hour)); err != nil {
		b.Fatal(err)
	}
	return h
}

// Get is one GetCachedWith hit on c, as a generated method makes it.
func (h *Hit) Get(c *runtime.Cache) error {
	v, err := runtime.GetCachedWith(context.Background(), c, "project:42", benchArgs{id: "42"}, h.load,
		runtime.TTL(5*time.Minute), runtime.Tags("project:42"), runtime.Method("Repository.FindProject"))
	if err == nil && v.ID != 42 {
		err = errors.New("hit of the wrong value")
	}
	return err
}

// Run measures b.N hits on c, with their allocations and their CPU time
// (cpu-ns/op).
func (h *Hit) Run(b *testing.B, c *runtime.Cache) {
	b.ReportAllocs()
	start := CPUTime()
	b.ResetTimer()
	for range b.N {
		if err := h.Get(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(CPUTime()-start)/float64(b.N), "cpu-ns/op")
}

// Observe measures the hook alone, on a hit event.
func (h *Hit) Observe(b *testing.B) {
	b.ReportAllocs()
	e := runtime.Event{Op: runtime.OpHit, Key: "project:42", Duration: 300 * time.Microsecond, Method: "Repository.FindProject"}
	for range b.N {
		h.Hook.Observe(e)
	}
}
