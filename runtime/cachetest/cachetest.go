// Package cachetest gives tests a *runtime.Cache on a real Redis, with a
// namespace of the test's own and counters to assert hits, misses, loads and
// invalidations.
//
//	func TestFindProject(t *testing.T) {
//		c := cachetest.New(t)
//		repo := NewRepositoryCache(db, c.Cache)
//		repo.FindProject(ctx, 1) // miss, load, store
//		repo.FindProject(ctx, 1) // hit
//		c.AssertCounts(t, cachetest.Counts{Hits: 1, Misses: 1, Loads: 1, Sets: 1})
//	}
//
// The server is, in order of preference: the one at REDIS_URL (any URL that
// runtime.NewClient accepts); a throwaway redis-server started on a free
// loopback port when one is on PATH, shared by the tests of the package and
// stopped when the test binary exits; the embedded miniredis, announced once
// on stderr. Under CI=true the embedded fallback is refused: the test fails.
//
// Each Cache has a namespace unique to its test, and the test's cleanup
// deletes the keys under it (SCAN and UNLINK) and nothing else: cachetest
// never flushes a server.
package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// WaitTimeout bounds Wait and the wait of AssertCounts: background work that
// takes longer fails the test.
const WaitTimeout = 10 * time.Second

// Cache is a *runtime.Cache for one test, with counters fed by its metrics
// hook. Pass its embedded Cache to runtime.GetCached and to generated
// decorators: runtime.GetCached(ctx, c.Cache, key, load, opts...).
//
// Its Wait shadows runtime's (*Cache).Wait(ctx); c.Cache.Wait(ctx) is still
// there.
type Cache struct {
	*runtime.Cache

	// Embedded reports that the server is the embedded miniredis, not a
	// real Redis.
	Embedded bool

	t      testing.TB // nil for a Cache from Open
	rec    recorder
	logOut *tbWriter
	closed atomic.Bool
}

// New returns a Cache for t on the package's Redis (see the package doc).
// Before opts it applies a logger that writes warnings and errors to t.Log
// and runtime.WithStoreWait(time.Second), so that a read that loaded has
// stored its value when it returns (on a healthy server) and the next read
// is a hit. After opts it applies the test's namespace and the counting
// metrics hook: a runtime.WithNamespace or runtime.WithMetrics in opts has
// no effect. The test's cleanup waits for background work, then deletes
// the namespace's keys and closes the client.
func New(t testing.TB, opts ...runtime.Option) *Cache {
	t.Helper()
	w := &tbWriter{t: t}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := open(t.Name(), append([]runtime.Option{runtime.WithLogger(log)}, opts...))
	if err != nil {
		t.Fatalf("cachetest: %v", err)
	}
	c.t, c.logOut = t, w
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Logf("cachetest: cleanup of %s: %v", c.Namespace(), err)
		}
	})
	return c
}

// Open returns a Cache outside a test (an Example, a TestMain, a
// benchmark harness): like New, with a namespace made from name and a
// logger that discards. The caller must Close it. Its Wait and Keys panic
// where a Cache from New fails its test.
func Open(name string, opts ...runtime.Option) (*Cache, error) {
	return open(name, append([]runtime.Option{runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...))
}

func open(name string, opts []runtime.Option) (*Cache, error) {
	client, embedded, err := newClient()
	if err != nil {
		return nil, err
	}
	c := &Cache{Embedded: embedded}
	all := make([]runtime.Option, 0, len(opts)+3)
	all = append(all, runtime.WithStoreWait(time.Second))
	all = append(all, opts...)
	all = append(all, runtime.WithNamespace(namespace(name)), runtime.WithMetrics(&c.rec))
	c.Cache = runtime.New(client, all...)
	return c, nil
}

// Close waits (up to WaitTimeout) for the Cache's background work, deletes
// every key of its namespace and closes its client. A Cache from New is
// closed by its test's cleanup; closing it again does nothing.
func (c *Cache) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	werr := c.Cache.Wait(ctx)
	_, err := c.InvalidatePattern(ctx, "*")
	if err == nil {
		err = c.deleteRecords(ctx)
	}
	if c.logOut != nil {
		c.logOut.close() // a background task may log after the test: not on t
	}
	if cerr := c.Client().Close(); err == nil {
		err = cerr
	}
	if err == nil && werr != nil {
		err = fmt.Errorf("background work still running: %w", werr)
	}
	return err
}

// Wait blocks until the Cache's background work (stores after loads,
// lease releases, stale-while-revalidate refreshes, invalidation retries)
// has finished. Call it before reading Redis directly. It fails the test
// if that takes longer than WaitTimeout.
func (c *Cache) Wait() {
	if c.t != nil {
		c.t.Helper()
	}
	if err := c.wait(); err != nil {
		c.fail("cachetest: Wait: %v", err)
	}
}

func (c *Cache) wait() error {
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := c.Cache.Wait(ctx); err != nil {
		return fmt.Errorf("background work not finished after %v: %w", WaitTimeout, err)
	}
	return nil
}

func (c *Cache) fail(format string, args ...any) {
	if c.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	c.t.Helper()
	c.t.Fatalf(format, args...)
}

// deleteRecords deletes what InvalidatePattern leaves: the runtime's own
// records (tag sets and the like), once nothing writes to the namespace.
func (c *Cache) deleteRecords(ctx context.Context) error {
	keys, err := c.keys()
	for _, k := range keys {
		if uerr := c.Client().Unlink(ctx, c.RedisKey(k)).Err(); err == nil {
			err = uerr
		}
	}
	return err
}

// Keys waits for background work (see Wait) and returns the keys of the
// namespace as the runtime takes them (without the namespace), sorted: the
// values' keys and the runtime's own ("#tag:{t}" for a tag's set).
func (c *Cache) Keys() []string {
	if c.t != nil {
		c.t.Helper()
	}
	keys, err := c.keys()
	if err != nil {
		c.fail("cachetest: Keys: %v", err)
	}
	return keys
}

func (c *Cache) keys() ([]string, error) {
	if err := c.wait(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	prefix := c.RedisKey("")
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, m *redis.Client) error {
		iter := m.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, strings.TrimPrefix(iter.Val(), prefix))
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch cl := c.Client().(type) {
	case *redis.ClusterClient:
		err = cl.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, cl)
	default:
		err = fmt.Errorf("unexpected client %T", cl)
	}
	sort.Strings(keys)
	return keys, err
}

// Counts are the events a Cache observed through its metrics hook since it
// was created or Reset.
type Counts struct {
	Hits   int64 // values served from Redis (stale serves included)
	Misses int64 // reads that found no usable value
	Loads  int64 // loader runs, failed ones included
	// LoadErrors counts loader runs that returned an error.
	LoadErrors int64
	Stale      int64 // stale values served under SWR
	Sets       int64 // values stored
	// Invalidated counts the keys that invalidations deleted (Invalidate,
	// InvalidateTags, Put, AfterWrite, InvalidatePattern).
	Invalidated int64
	// Errors counts Redis errors, absorbed or returned, and failed
	// invalidations.
	Errors int64
	// DecodeErrors counts stored values that could not be decoded.
	DecodeErrors int64
}

// String lists the non-zero counts, "hits 1, misses 1, loads 1", or "none".
func (n Counts) String() string {
	var b bytes.Buffer
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"hits", n.Hits}, {"misses", n.Misses}, {"loads", n.Loads}, {"load errors", n.LoadErrors},
		{"stale", n.Stale}, {"sets", n.Sets}, {"invalidated", n.Invalidated},
		{"errors", n.Errors}, {"decode errors", n.DecodeErrors},
	} {
		if f.v != 0 {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", f.name, f.v)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Counts returns the counts so far. Stores after loads run in the
// background: call Wait first to count them all.
func (c *Cache) Counts() Counts { return c.rec.counts() }

// Hits returns the number of values served from Redis.
func (c *Cache) Hits() int64 { return c.rec.counts().Hits }

// Misses returns the number of reads that found no usable value.
func (c *Cache) Misses() int64 { return c.rec.counts().Misses }

// Loads returns the number of loader runs.
func (c *Cache) Loads() int64 { return c.rec.counts().Loads }

// Invalidated returns the number of keys that invalidations deleted.
func (c *Cache) Invalidated() int64 { return c.rec.counts().Invalidated }

// Reset sets every count to zero, e.g. after a test's setup.
func (c *Cache) Reset() { c.rec.reset() }

// AssertCounts waits for background work (see Wait) and reports an error
// on t unless the counts equal want, every field: a field left out of want
// must be zero.
func (c *Cache) AssertCounts(t testing.TB, want Counts) {
	t.Helper()
	if err := c.wait(); err != nil {
		t.Fatalf("cachetest: AssertCounts: %v", err)
	}
	if got := c.Counts(); got != want {
		t.Errorf("cachetest: counts are {%v}, want {%v}", got, want)
	}
}

// recorder is the Cache's metrics hook.
type recorder struct {
	hits, misses, loads, loadErrors, stale, sets, invalidated, errors, decodeErrors atomic.Int64
}

// Observe implements runtime.Metrics.
func (r *recorder) Observe(e runtime.Event) {
	switch e.Op {
	case runtime.OpHit:
		r.hits.Add(1)
	case runtime.OpMiss:
		r.misses.Add(1)
	case runtime.OpLoad:
		r.loads.Add(1)
		if e.Err != nil {
			r.loadErrors.Add(1)
		}
	case runtime.OpStale:
		r.stale.Add(1)
	case runtime.OpSet:
		r.sets.Add(1)
	case runtime.OpInvalidate:
		r.invalidated.Add(int64(e.Count))
	case runtime.OpError, runtime.OpInvalidateError:
		r.errors.Add(1)
	case runtime.OpDecodeError:
		r.decodeErrors.Add(1)
	}
}

func (r *recorder) all() []*atomic.Int64 {
	return []*atomic.Int64{&r.hits, &r.misses, &r.loads, &r.loadErrors, &r.stale, &r.sets, &r.invalidated, &r.errors, &r.decodeErrors}
}

func (r *recorder) counts() Counts {
	return Counts{
		Hits: r.hits.Load(), Misses: r.misses.Load(), Loads: r.loads.Load(), LoadErrors: r.loadErrors.Load(),
		Stale: r.stale.Load(), Sets: r.sets.Load(), Invalidated: r.invalidated.Load(),
		Errors: r.errors.Load(), DecodeErrors: r.decodeErrors.Load(),
	}
}

func (r *recorder) reset() {
	for _, n := range r.all() {
		n.Store(0)
	}
}

// tbWriter writes log lines to t.Log until the test's cleanup, and drops
// them afterwards (t.Log after a test ends panics).
type tbWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// namespace is "cachetest:<name>:<random>", the name cut to its last 48
// safe characters.
func namespace(name string) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	name = unsafeChars.ReplaceAllString(name, "_")
	if len(name) > 48 {
		name = name[len(name)-48:]
	}
	return "cachetest:" + name + ":" + hex.EncodeToString(r[:])
}
