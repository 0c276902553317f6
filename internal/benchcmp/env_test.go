package benchcmp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gocache "github.com/eko/gocache/lib/v4/cache"
	"github.com/eko/gocache/lib/v4/marshaler"
	gocachestore "github.com/eko/gocache/lib/v4/store"
	redisstore "github.com/eko/gocache/store/redis/v4"
	rediscache "github.com/go-redis/cache/v9"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/repocache/repocache/runtime"
)

// The settings every library gets, so that the rows compare like with like.
const (
	ttl    = 5 * time.Minute
	jitter = time.Minute // repocache rows only: the generated decorator's directive has it
	hitID  = "42"
)

var (
	ctx = context.Background()

	// prefix starts every key this run writes (and every gocache tag, whose
	// key is "gocache_tag_<tag>"): cleanup deletes exactly those.
	prefix string
	addr   string
	want   = NewWorkspace(hitID)

	discard = slog.New(slog.DiscardHandler)

	rdb *redis.Client // the go-redis client the go-redis based libraries share
)

// redisURL is REDIS_URL, else the machine's Redis.
func redisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379"
}

// newGoRedis returns a new go-redis client on the benchmark's server: each
// simulated process of the stampede rows gets its own.
func newGoRedis() *redis.Client {
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		panic(err)
	}
	return redis.NewClient(opt)
}

// newRueidis returns a rueidis client; csc switches client-side caching
// (RESP3 tracking) on, which is rueidis's default and rueidisaside's design.
func newRueidis(csc bool) rueidis.Client {
	opt, err := rueidis.ParseURL(redisURL())
	if err != nil {
		panic(err)
	}
	opt.DisableCache = !csc
	c, err := rueidis.NewClient(opt)
	if err != nil {
		panic(err)
	}
	return c
}

func TestMain(m *testing.M) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	prefix = "benchcmp-" + hex.EncodeToString(rnd[:]) + ":"
	rdb = newGoRedis()
	if err := rdb.Ping(ctx).Err(); err != nil {
		fmt.Fprintf(os.Stderr, "benchcmp: no Redis at %s: %v\n", redisURL(), err)
		os.Exit(1)
	}
	addr = rdb.Options().Addr
	code := m.Run()
	n, err := cleanup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchcmp: cleanup: %v\n", err)
	} else if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "benchcmp: deleted %d keys\n", n)
	}
	_ = rdb.Close()
	os.Exit(code)
}

// cleanup unlinks this run's keys (SCAN MATCH, never FLUSHDB).
func cleanup() (int, error) {
	n := 0
	for _, pattern := range []string{prefix + "*", "gocache_tag_" + prefix + "*"} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			n += len(batch)
			err := rdb.Unlink(ctx, batch...).Err()
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return n, err
		}
		if err := flush(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// cpuTime is this process's user+system CPU time (getrusage): wall time on
// a loopback round trip mostly measures the scheduler, CPU time the work.
// Copied from runtime/bench_test.go.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// load is the data source of every row: it returns the value for id without
// allocating, so that rows measure the cache layer.
func load(id string) Workspace {
	v := want
	v.ID = id
	return v
}

func loadMany(ids []string) []Workspace {
	out := make([]Workspace, len(ids))
	for i, id := range ids {
		out[i] = load(id)
	}
	return out
}

// source is the WorkspaceRepo that the generated decorator wraps.
type source struct{}

func (source) Find(_ context.Context, id string) (Workspace, error) { return load(id), nil }
func (source) FindMany(_ context.Context, ids []string) ([]Workspace, error) {
	return loadMany(ids), nil
}

// libs holds one instance of each library, configured as RESULTS.md says.
type libs struct {
	rc     *runtime.Cache      // repocache, msgpack codec (its default)
	gen    *WorkspaceRepoCache // the cachegen decorator on rc
	rcSolo *runtime.Cache      // repocache sending each hit's GET on its own (WithHitPipelining(0)), the rc namespace
	rcL1   *runtime.Cache      // repocache with its near cache (WithL1), a namespace of its own
	genL1  *WorkspaceRepoCache // the cachegen decorator on rcL1
	grc    *rediscache.Cache   // go-redis/cache, plain msgpack, no compression, no LocalCache
	grcS2  *rediscache.Cache   // go-redis/cache with its default codec (msgpack + s2 above 64 B)
	gc     *marshaler.Marshaler
	gcRaw  *gocache.Cache[any] // the cache under gc, for Loadable-free paths
	rue    rueidis.Client      // rueidis, client-side caching off
	rueC   rueidis.Client      // rueidis, client-side caching on (its default)
}

var (
	libsOnce sync.Once
	theLibs  libs
)

func getLibs() *libs {
	libsOnce.Do(func() {
		l := &theLibs
		l.rc = runtime.New(rdb, runtime.WithNamespace(prefix+"rc"), runtime.WithLogger(discard))
		l.gen = NewWorkspaceRepoCache(source{}, l.rc)
		l.rcSolo = runtime.New(rdb, runtime.WithNamespace(prefix+"rc"), runtime.WithLogger(discard), runtime.WithHitPipelining(0))
		// A namespace of its own: its tracking connection is told of
		// every write under its prefix, and the other rows' writes
		// (misses, batches) must not cost this process anything.
		l.rcL1 = runtime.New(newGoRedis(), runtime.WithNamespace(prefix+"rcl1"), runtime.WithLogger(discard), runtime.WithL1())
		l.genL1 = NewWorkspaceRepoCache(source{}, l.rcL1)
		waitWatched(l.rcL1)
		l.grc = rediscache.New(&rediscache.Options{Redis: rdb, Marshal: msgpack.Marshal, Unmarshal: msgpack.Unmarshal})
		l.grcS2 = rediscache.New(&rediscache.Options{Redis: rdb})
		l.gcRaw = gocache.New[any](redisstore.NewRedis(rdb, gocachestore.WithExpiration(ttl)))
		l.gc = marshaler.New(l.gcRaw)
		l.rue = newRueidis(false)
		l.rueC = newRueidis(true)
	})
	return &theLibs
}

// Keys of each library's copy of a value. repocache's are under its
// namespace (prefix + "rc:"); the raw and rueidis rows share the raw key.
func rawKey(id string) string   { return prefix + "raw:workspace:" + id }
func grcKey(id string) string   { return prefix + "grc:workspace:" + id }
func grcS2Key(id string) string { return prefix + "grcs2:workspace:" + id }
func gcKey(id string) string    { return prefix + "gc:workspace:" + id }
func rcKey(id string) string    { return "workspace:" + runtime.EscapeKeyPart(id) }

// gocache tags are global keys ("gocache_tag_<tag>"): they carry the prefix.
func gcTag(tag string) string { return prefix + tag }

// seed stores id's value in every library's format, as each library itself
// writes it.
func seed(b testing.TB, ids ...string) {
	b.Helper()
	l := getLibs()
	for _, id := range ids {
		v := load(id)
		raw, err := msgpack.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		errs := []error{
			rdb.Set(ctx, rawKey(id), raw, ttl).Err(),
			runtime.Set(ctx, l.rc, rcKey(id), v, runtime.TTL(ttl), runtime.Tags("workspace:"+id)),
			runtime.Set(ctx, l.rcL1, rcKey(id), v, runtime.TTL(ttl), runtime.Tags("workspace:"+id)),
			l.grc.Set(&rediscache.Item{Ctx: ctx, Key: grcKey(id), Value: v, TTL: ttl}),
			l.grcS2.Set(&rediscache.Item{Ctx: ctx, Key: grcS2Key(id), Value: v, TTL: ttl}),
			l.gc.Set(ctx, gcKey(id), v, gocachestore.WithExpiration(ttl), gocachestore.WithTags([]string{gcTag("workspace:" + id)})),
		}
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// cmdTimer is a go-redis hook that times every round trip (a command, or
// a whole pipeline) the client makes.
type cmdTimer struct {
	mu      sync.Mutex
	max     time.Duration
	maxName string
	n       int64
	on      bool
}

func (h *cmdTimer) reset(on bool) {
	h.mu.Lock()
	h.max, h.maxName, h.n, h.on = 0, "", 0, on
	h.mu.Unlock()
}

func (h *cmdTimer) record(name string, d time.Duration) {
	h.mu.Lock()
	if h.on {
		h.n++
		if d > h.max {
			h.max, h.maxName = d, name
		}
	}
	h.mu.Unlock()
}

func (h *cmdTimer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cmdTimer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.record(cmdName(cmd), time.Since(start))
		return err
	}
}

func (h *cmdTimer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		name := "pipeline"
		if len(cmds) > 0 {
			name = fmt.Sprintf("pipeline of %d (%s...)", len(cmds), cmdName(cmds[0]))
		}
		h.record(name, time.Since(start))
		return err
	}
}

// cmdName is the command's name and, for EVALSHA, enough to tell which.
func cmdName(cmd redis.Cmder) string {
	args := cmd.Args()
	name := strings.ToUpper(cmd.Name())
	if len(args) > 1 && (name == "UNLINK" || name == "DEL" || name == "MGET") {
		return fmt.Sprintf("%s %d keys", name, len(args)-1)
	}
	return name
}

// percentile returns the p-th percentile (0 < p <= 1) of d, sorting it.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(float64(len(d))*p+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// waitWatched waits (up to 10 s) until a near cache may serve: Redis has
// confirmed its invalidation stream. Without it, its rows would measure
// Redis hits.
func waitWatched(c *runtime.Cache) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s, _ := c.Stats(ctx); s.L1.Watched {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling the server's confirmation
	}
	// Its rows would measure Redis hits and be published as the near
	// cache's.
	panic("benchcmp: the near cache was not watched after 10 s")
}
