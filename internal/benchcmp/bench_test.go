package benchcmp

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocache "github.com/eko/gocache/lib/v4/cache"
	gocachestore "github.com/eko/gocache/lib/v4/store"
	redisstore "github.com/eko/gocache/store/redis/v4"
	rediscache "github.com/go-redis/cache/v9"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/repocache/repocache/runtime"
)

// row is one library's version of an operation.
type row struct {
	lib string
	op  func() error
}

func runRows(b *testing.B, rows []row) {
	for _, r := range rows {
		b.Run("lib="+r.lib, func(b *testing.B) {
			b.ReportAllocs()
			warmUp(b, func(int) error { return r.op() })
			start := cpuTime()
			for b.Loop() {
				if err := r.op(); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

// warmUp runs op untimed a few times, so that the first row of a run does
// not pay for dialing connections and filling pools.
func warmUp(b *testing.B, op func(i int) error) {
	for i := range 50 {
		if err := op(i % len(hotIDs)); err != nil {
			b.Fatal(err)
		}
	}
}

func check(v Workspace, err error, id string) error {
	if err != nil {
		return err
	}
	if v.ID != id || v.MemberCount != want.MemberCount {
		return fmt.Errorf("wrong value: id %q", v.ID)
	}
	return nil
}

// hotIDs are the ids of the hit rows: BenchmarkHit reads the first,
// BenchmarkParallelHit all of them, each goroutine in turn.
var hotIDs = func() []string {
	ids := []string{hitID}
	for i := 1; i < 100; i++ {
		ids = append(ids, "h"+strconv.Itoa(i))
	}
	return ids
}()

// hitRow is a library's hit path on the i-th hot id.
type hitRow struct {
	lib string
	op  func(i int) error
}

// hitRows are the hit path of each library, on values every library has
// stored under its own keys. Keys are built before the loop: a row measures
// the library, not the caller's key building (the generated decorator
// builds its keys and tags itself, as it must).
func hitRows(b *testing.B) []hitRow {
	l := getLibs()
	seed(b, hotIDs...)
	n := len(hotIDs)
	rk, gk, g2k, ck, rck, rcTag := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, id := range hotIDs {
		rk[i], gk[i], g2k[i], ck[i], rck[i], rcTag[i] = rawKey(id), grcKey(id), grcS2Key(id), gcKey(id), rcKey(id), "workspace:"+id
	}
	return []hitRow{
		{"raw", func(i int) error { // the floor: go-redis GET + msgpack decode
			data, err := rdb.Get(ctx, rk[i]).Bytes()
			if err != nil {
				return err
			}
			var v Workspace
			return check(v, msgpack.Unmarshal(data, &v), hotIDs[i])
		}},
		{"repocache", func(i int) error {
			id := hotIDs[i]
			// The loader captures its arguments, as generated code does.
			v, err := runtime.GetCached(ctx, l.rc, rck[i], func(ctx context.Context) (Workspace, error) {
				return load(id), nil
			}, runtime.TTL(ttl), runtime.Jitter(jitter), runtime.Tags(rcTag[i]))
			return check(v, err, id)
		}},
		{"repocache-gen", func(i int) error {
			v, err := l.gen.Find(ctx, hotIDs[i])
			return check(v, err, hotIDs[i])
		}},
		{"repocache-unpipelined", func(i int) error { // every GET on its own, as before WithHitPipelining
			id := hotIDs[i]
			v, err := runtime.GetCached(ctx, l.rcSolo, rck[i], func(ctx context.Context) (Workspace, error) {
				return load(id), nil
			}, runtime.TTL(ttl), runtime.Jitter(jitter), runtime.Tags(rcTag[i]))
			return check(v, err, id)
		}},
		{"repocache-l1", func(i int) error { // WithL1: served from process memory, kept fresh by Redis
			id := hotIDs[i]
			v, err := runtime.GetCached(ctx, l.rcL1, rck[i], func(ctx context.Context) (Workspace, error) {
				return load(id), nil
			}, runtime.TTL(ttl), runtime.Jitter(jitter), runtime.Tags(rcTag[i]))
			return check(v, err, id)
		}},
		{"repocache-gen-l1", func(i int) error {
			v, err := l.genL1.Find(ctx, hotIDs[i])
			return check(v, err, hotIDs[i])
		}},
		{"go-redis-cache", func(i int) error { // Once: the cache-aside call, with its singleflight
			id := hotIDs[i]
			var v Workspace
			err := l.grc.Once(&rediscache.Item{Ctx: ctx, Key: gk[i], Value: &v, TTL: ttl,
				Do: func(*rediscache.Item) (any, error) { return load(id), nil }})
			return check(v, err, id)
		}},
		{"go-redis-cache-get", func(i int) error { // Get: no loader, no singleflight
			var v Workspace
			return check(v, l.grc.Get(ctx, gk[i], &v), hotIDs[i])
		}},
		{"go-redis-cache-s2", func(i int) error { // Once with its default codec (s2 compression)
			id := hotIDs[i]
			var v Workspace
			err := l.grcS2.Once(&rediscache.Item{Ctx: ctx, Key: g2k[i], Value: &v, TTL: ttl,
				Do: func(*rediscache.Item) (any, error) { return load(id), nil }})
			return check(v, err, id)
		}},
		{"gocache", func(i int) error {
			var v Workspace
			_, err := l.gc.Get(ctx, ck[i], &v)
			return check(v, err, hotIDs[i])
		}},
		{"rueidis", func(i int) error { // client-side caching off: a GET over the network
			data, err := l.rue.Do(ctx, l.rue.B().Get().Key(rk[i]).Build()).AsBytes()
			if err != nil {
				return err
			}
			var v Workspace
			return check(v, msgpack.Unmarshal(data, &v), hotIDs[i])
		}},
		{"rueidis-csc", func(i int) error { // client-side caching on: served from process memory
			data, err := l.rueC.DoCache(ctx, l.rueC.B().Get().Key(rk[i]).Cache(), ttl).AsBytes()
			if err != nil {
				return err
			}
			var v Workspace
			return check(v, msgpack.Unmarshal(data, &v), hotIDs[i])
		}},
	}
}

// BenchmarkHit is one cache hit of a ~300-byte value.
func BenchmarkHit(b *testing.B) {
	for _, r := range hitRows(b) {
		if r.lib == "repocache-unpipelined" { // one goroutine: the same path as repocache
			continue
		}
		b.Run("lib="+r.lib, func(b *testing.B) {
			b.ReportAllocs()
			warmUp(b, r.op)
			start := cpuTime()
			for b.Loop() {
				if err := r.op(0); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

// BenchmarkParallelHit is the hit path under b.RunParallel, 8 goroutines
// per GOMAXPROCS, each reading the 100 hot ids in turn from its own starting
// point: ns/op is wall time divided by the hits of all goroutines.
func BenchmarkParallelHit(b *testing.B) {
	rows := hitRows(b)
	// Grow the shared connection pools first: the first row would pay it.
	var wg sync.WaitGroup
	for g := range 8 * goruntime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range 20 {
				for _, r := range rows {
					_ = r.op((g + i) % len(hotIDs))
				}
			}
		})
	}
	wg.Wait()
	for _, r := range rows {
		if r.lib == "go-redis-cache-get" || r.lib == "go-redis-cache-s2" {
			continue
		}
		b.Run("lib="+r.lib, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			warmUp(b, r.op)
			b.ResetTimer()
			start := cpuTime()
			var seq atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(seq.Add(37))
				for pb.Next() {
					i++
					if err := r.op(i % len(hotIDs)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportCPU(b, start)
		})
	}
}

// missCounter makes each miss row's keys unique to the row and iteration.
var missCounter atomic.Int64

func nextID(kind string) string {
	return kind + strconv.FormatInt(missCounter.Add(1), 10)
}

// BenchmarkMiss is a miss, a load and a store, without tags (go-redis/cache
// has none): each iteration asks for a key never stored before.
func BenchmarkMiss(b *testing.B) {
	l := getLibs()
	b.Cleanup(cleanupKeys(b))
	runRows(b, []row{
		{"raw", func() error { // GET, load, SET PX: no stampede protection
			id := nextID("m")
			k := rawKey(id)
			_, err := rdb.Get(ctx, k).Bytes()
			if err != redis.Nil {
				return fmt.Errorf("not a miss: %v", err)
			}
			v := load(id)
			data, err := msgpack.Marshal(v)
			if err != nil {
				return err
			}
			return rdb.Set(ctx, k, data, ttl).Err()
		}},
		{"repocache", func() error {
			id := nextID("m")
			v, err := runtime.GetCached(ctx, l.rc, rcKey(id), func(ctx context.Context) (Workspace, error) {
				return load(id), nil
			}, runtime.TTL(ttl))
			return check(v, err, id)
		}},
		{"go-redis-cache", func() error {
			id := nextID("m")
			var v Workspace
			err := l.grc.Once(&rediscache.Item{Ctx: ctx, Key: grcKey(id), Value: &v, TTL: ttl,
				Do: func(*rediscache.Item) (any, error) { return load(id), nil }})
			return check(v, err, id)
		}},
		{"gocache", func() error { // marshaler Get, then Set: gocache has no loader API with a codec
			id := nextID("m")
			k := gcKey(id)
			var v Workspace
			if _, err := l.gc.Get(ctx, k, &v); err == nil {
				return errors.New("not a miss")
			}
			v = load(id)
			return l.gc.Set(ctx, k, v, gocachestore.WithExpiration(ttl))
		}},
	})
}

// BenchmarkMissTagged is BenchmarkMiss with one tag per entry, for the
// libraries that have tags.
func BenchmarkMissTagged(b *testing.B) {
	l := getLibs()
	b.Cleanup(cleanupKeys(b))
	runRows(b, []row{
		{"repocache", func() error {
			id := nextID("t")
			v, err := runtime.GetCached(ctx, l.rc, rcKey(id), func(ctx context.Context) (Workspace, error) {
				return load(id), nil
			}, runtime.TTL(ttl), runtime.Jitter(jitter), runtime.Tags("workspace:"+id))
			return check(v, err, id)
		}},
		{"repocache-gen", func() error { // ttl=5m jitter=1m tags=workspace:{id}
			id := nextID("t")
			v, err := l.gen.Find(ctx, id)
			return check(v, err, id)
		}},
		{"gocache", func() error {
			id := nextID("t")
			k := gcKey(id)
			var v Workspace
			if _, err := l.gc.Get(ctx, k, &v); err == nil {
				return errors.New("not a miss")
			}
			v = load(id)
			return l.gc.Set(ctx, k, v, gocachestore.WithExpiration(ttl), gocachestore.WithTags([]string{gcTag("workspace:" + id)}))
		}},
	})
}

const batchSize = 100

// batchIDs returns the ids of one batch: all stored, or with every tenth
// one never seen before (10% misses).
func batchIDs(misses bool) []string {
	ids := make([]string, batchSize)
	for i := range ids {
		if misses && i%10 == 0 {
			ids[i] = nextID("bm")
		} else {
			ids[i] = "b" + strconv.Itoa(i)
		}
	}
	return ids
}

func checkBatch(vs []Workspace, ids []string) error {
	if len(vs) != len(ids) {
		return fmt.Errorf("got %d values for %d ids", len(vs), len(ids))
	}
	for i := range vs {
		if vs[i].ID != ids[i] {
			return fmt.Errorf("value %d: id %q, want %q", i, vs[i].ID, ids[i])
		}
	}
	return nil
}

// batchRows are 100 ids through each library's best batch API, or its loop
// when it has none. The ids are built in each iteration: the keys are
// derived from them by each row, as a caller would.
func batchRows(b *testing.B, misses bool) []row {
	l := getLibs()
	seeded := batchIDs(false)
	seed(b, seeded...)
	idOf := func(v Workspace) string { return v.ID }
	// setMissing stores loaded values in one pipeline (SET PX each).
	rueSet := func(c rueidis.Client, vs []Workspace) error {
		cmds := make(rueidis.Commands, 0, len(vs))
		for _, v := range vs {
			data, err := msgpack.Marshal(v)
			if err != nil {
				return err
			}
			cmds = append(cmds, c.B().Set().Key(rawKey(v.ID)).Value(rueidis.BinaryString(data)).Px(ttl).Build())
		}
		for _, r := range c.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
		return nil
	}
	return []row{
		{"raw", func() error { // MGET, decode, load the missing ones, one pipeline of SET PX
			ids := batchIDs(misses)
			keys := make([]string, len(ids))
			for i, id := range ids {
				keys[i] = rawKey(id)
			}
			vals, err := rdb.MGet(ctx, keys...).Result()
			if err != nil {
				return err
			}
			out := make([]Workspace, len(ids))
			var missing []string
			var at []int
			for i, x := range vals {
				s, ok := x.(string)
				if !ok {
					missing, at = append(missing, ids[i]), append(at, i)
					continue
				}
				if err := msgpack.Unmarshal([]byte(s), &out[i]); err != nil {
					return err
				}
			}
			if len(missing) > 0 {
				loaded := loadMany(missing)
				pipe := rdb.Pipeline()
				for j, v := range loaded {
					out[at[j]] = v
					data, err := msgpack.Marshal(v)
					if err != nil {
						return err
					}
					pipe.Set(ctx, rawKey(v.ID), data, ttl)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
			return checkBatch(out, ids)
		}},
		{"repocache", func() error { // GetBatch: one MGET, one load, one pipeline
			ids := batchIDs(misses)
			vs, err := runtime.GetBatch(ctx, l.rc, ids, rcKey, idOf, func(ctx context.Context, ids []string) ([]Workspace, error) {
				return loadMany(ids), nil
			}, runtime.TTL(ttl))
			if err != nil {
				return err
			}
			return checkBatch(vs, ids)
		}},
		{"repocache-gen", func() error { // FindMany: GetBatch with jitter and a tag per element
			ids := batchIDs(misses)
			vs, err := l.gen.FindMany(ctx, ids)
			if err != nil {
				return err
			}
			return checkBatch(vs, ids)
		}},
		{"go-redis-cache", func() error { // no batch API: Once per id
			ids := batchIDs(misses)
			out := make([]Workspace, len(ids))
			for i, id := range ids {
				err := l.grc.Once(&rediscache.Item{Ctx: ctx, Key: grcKey(id), Value: &out[i], TTL: ttl,
					Do: func(*rediscache.Item) (any, error) { return load(id), nil }})
				if err != nil {
					return err
				}
			}
			return checkBatch(out, ids)
		}},
		{"gocache", func() error { // no batch API: Get per id, one load of the misses, Set per miss
			ids := batchIDs(misses)
			out := make([]Workspace, len(ids))
			var missing []string
			var at []int
			for i, id := range ids {
				if _, err := l.gc.Get(ctx, gcKey(id), &out[i]); err != nil {
					missing, at = append(missing, id), append(at, i)
				}
			}
			for j, v := range loadMany(missing) {
				out[at[j]] = v
				if err := l.gc.Set(ctx, gcKey(v.ID), v, gocachestore.WithExpiration(ttl)); err != nil {
					return err
				}
			}
			return checkBatch(out, ids)
		}},
		{"rueidis", func() error { // MGET over the network; misses stored with DoMulti
			ids := batchIDs(misses)
			keys := make([]string, len(ids))
			for i, id := range ids {
				keys[i] = rawKey(id)
			}
			msgs, err := l.rue.Do(ctx, l.rue.B().Mget().Key(keys...).Build()).ToArray()
			if err != nil {
				return err
			}
			out := make([]Workspace, len(ids))
			var missing []string
			var at []int
			for i := range msgs {
				data, err := msgs[i].AsBytes()
				if rueidis.IsRedisNil(err) {
					missing, at = append(missing, ids[i]), append(at, i)
					continue
				}
				if err != nil {
					return err
				}
				if err := msgpack.Unmarshal(data, &out[i]); err != nil {
					return err
				}
			}
			if len(missing) > 0 {
				loaded := loadMany(missing)
				for j, v := range loaded {
					out[at[j]] = v
				}
				if err := rueSet(l.rue, loaded); err != nil {
					return err
				}
			}
			return checkBatch(out, ids)
		}},
		{"rueidis-csc", func() error { // MGetCache: client-side cache, misses fetched in one round trip
			ids := batchIDs(misses)
			keys := make([]string, len(ids))
			for i, id := range ids {
				keys[i] = rawKey(id)
			}
			got, err := rueidis.MGetCache(l.rueC, ctx, ttl, keys)
			if err != nil {
				return err
			}
			out := make([]Workspace, len(ids))
			var missing []string
			var at []int
			for i, k := range keys {
				m := got[k]
				data, err := m.AsBytes()
				if rueidis.IsRedisNil(err) {
					missing, at = append(missing, ids[i]), append(at, i)
					continue
				}
				if err != nil {
					return err
				}
				if err := msgpack.Unmarshal(data, &out[i]); err != nil {
					return err
				}
			}
			if len(missing) > 0 {
				loaded := loadMany(missing)
				for j, v := range loaded {
					out[at[j]] = v
				}
				if err := rueSet(l.rueC, loaded); err != nil {
					return err
				}
			}
			return checkBatch(out, ids)
		}},
	}
}

// BenchmarkBatch100Hits is a batch of 100 ids, all cached.
func BenchmarkBatch100Hits(b *testing.B) { runRows(b, batchRows(b, false)) }

// BenchmarkBatch100Miss10 is a batch of 100 ids of which 10 were never
// cached: they are loaded (in one call where the library allows) and stored.
func BenchmarkBatch100Miss10(b *testing.B) {
	b.Cleanup(cleanupKeys(b))
	runRows(b, batchRows(b, true))
}

// Stampede: 128 callers over 4 processes ask at the same moment for a key
// that is not cached; the loader takes stampedeLoad.
const (
	stampedeProcs   = 4
	stampedeCallers = 128
	stampedeLoad    = 50 * time.Millisecond
)

// stampedeLib makes one simulated process's get: each process has its own
// Redis client and its own library instance.
type stampedeLib struct {
	name string
	proc func(loads *atomic.Int64) func(key string) (Workspace, error)
}

func slowLoad(loads *atomic.Int64, id string) Workspace {
	loads.Add(1)
	time.Sleep(stampedeLoad)
	return load(id)
}

func stampedeLibs() []stampedeLib {
	return []stampedeLib{
		{"raw", func(loads *atomic.Int64) func(string) (Workspace, error) { // no protection
			c := newGoRedis()
			return func(id string) (Workspace, error) {
				data, err := c.Get(ctx, rawKey(id)).Bytes()
				var v Workspace
				if err == nil {
					return v, msgpack.Unmarshal(data, &v)
				}
				v = slowLoad(loads, id)
				data, _ = msgpack.Marshal(v)
				return v, c.Set(ctx, rawKey(id), data, ttl).Err()
			}
		}},
		{"repocache", func(loads *atomic.Int64) func(string) (Workspace, error) { // Lock(LockDistributed)
			rc := runtime.New(newGoRedis(), runtime.WithNamespace(prefix+"rc"), runtime.WithLogger(discard))
			return func(id string) (Workspace, error) {
				return runtime.GetCached(ctx, rc, rcKey(id), func(ctx context.Context) (Workspace, error) {
					return slowLoad(loads, id), nil
				}, runtime.TTL(ttl), runtime.Lock(runtime.LockDistributed))
			}
		}},
		{"repocache-local", func(loads *atomic.Int64) func(string) (Workspace, error) { // default LockLocal
			rc := runtime.New(newGoRedis(), runtime.WithNamespace(prefix+"rc"), runtime.WithLogger(discard))
			return func(id string) (Workspace, error) {
				return runtime.GetCached(ctx, rc, rcKey(id), func(ctx context.Context) (Workspace, error) {
					return slowLoad(loads, id), nil
				}, runtime.TTL(ttl))
			}
		}},
		{"go-redis-cache", func(loads *atomic.Int64) func(string) (Workspace, error) { // Once: singleflight per process
			c := rediscache.New(&rediscache.Options{Redis: newGoRedis(), Marshal: msgpack.Marshal, Unmarshal: msgpack.Unmarshal})
			return func(id string) (Workspace, error) {
				var v Workspace
				err := c.Once(&rediscache.Item{Ctx: ctx, Key: grcKey(id), Value: &v, TTL: ttl,
					Do: func(*rediscache.Item) (any, error) { return slowLoad(loads, id), nil }})
				return v, err
			}
		}},
		{"gocache", func(loads *atomic.Int64) func(string) (Workspace, error) { // LoadableCache: singleflight per process
			store := redisstore.NewRedis(newGoRedis(), gocachestore.WithExpiration(ttl))
			lc := gocache.NewLoadable[string](func(ctx context.Context, key any) (string, []gocachestore.Option, error) {
				k := key.(string)
				id := k[len(gcKey("")):]
				data, err := msgpack.Marshal(slowLoad(loads, id))
				return string(data), []gocachestore.Option{gocachestore.WithExpiration(ttl)}, err
			}, gocache.New[string](store))
			return func(id string) (Workspace, error) {
				s, err := lc.Get(ctx, gcKey(id))
				var v Workspace
				if err != nil {
					return v, err
				}
				return v, msgpack.Unmarshal([]byte(s), &v)
			}
		}},
	}
}

// cleanupKeys deletes this run's keys when a benchmark that creates a key
// per iteration ends, so that -count=6 does not pile them up in Redis (the
// next benchmark seeds what it reads).
func cleanupKeys(b *testing.B) func() {
	return func() {
		if _, err := cleanup(); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkStampede reports per stampede (op) the loads made (loads/op)
// and the 99th percentile and maximum of the callers' waits.
func BenchmarkStampede(b *testing.B) {
	for _, sl := range stampedeLibs() {
		b.Run("lib="+sl.name, func(b *testing.B) {
			var loads atomic.Int64
			procs := make([]func(string) (Workspace, error), stampedeProcs)
			for i := range procs {
				procs[i] = sl.proc(&loads)
			}
			var waits []time.Duration
			var failed atomic.Int64
			b.ReportAllocs()
			start := cpuTime()
			for i := 0; i < b.N; i++ {
				id := nextID("s")
				got := make([]time.Duration, stampedeCallers)
				var ready, done sync.WaitGroup
				gate := make(chan struct{})
				for c := range stampedeCallers {
					ready.Add(1)
					done.Add(1)
					go func() {
						defer done.Done()
						get := procs[c%stampedeProcs]
						ready.Done()
						<-gate
						t := time.Now()
						v, err := get(id)
						got[c] = time.Since(t)
						if check(v, err, id) != nil {
							failed.Add(1)
						}
					}()
				}
				ready.Wait()
				close(gate)
				done.Wait()
				waits = append(waits, got...)
			}
			reportCPU(b, start)
			if n := failed.Load(); n > 0 {
				b.Errorf("%d callers got a wrong value or an error", n)
			}
			b.ReportMetric(float64(loads.Load())/float64(b.N), "loads/op")
			b.ReportMetric(float64(percentile(waits, 0.99))/1e6, "p99-wait-ms")
			b.ReportMetric(float64(percentile(waits, 1))/1e6, "max-wait-ms")
		})
	}
}

// BenchmarkEntryBytes reports what Redis spends on one cached value
// (MEMORY USAGE ... SAMPLES 0), and for the libraries with tags on the
// one-member tag of that value (tag-B/entry).
func BenchmarkEntryBytes(b *testing.B) {
	l := getLibs()
	seed(b, hitID)
	rows := []struct{ lib, key, tagKey string }{
		{"raw", rawKey(hitID), ""},
		{"repocache", l.rc.RedisKey(rcKey(hitID)), l.rc.RedisKey("#tag:{workspace:" + hitID + "}")},
		{"go-redis-cache", grcKey(hitID), ""},
		{"go-redis-cache-s2", grcS2Key(hitID), ""},
		{"gocache", gcKey(hitID), fmt.Sprintf(redisstore.RedisTagPattern, gcTag("workspace:"+hitID))},
	}
	for _, r := range rows {
		b.Run("lib="+r.lib, func(b *testing.B) {
			var n, tn int64
			var err error
			for b.Loop() {
				if n, err = rdb.MemoryUsage(ctx, r.key, 0).Result(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "B/entry")
			if r.tagKey != "" {
				if tn, err = rdb.MemoryUsage(ctx, r.tagKey, 0).Result(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(tn), "tag-B/entry")
			}
			s, _ := rdb.StrLen(ctx, r.key).Result()
			b.ReportMetric(float64(s), "value-B")
		})
	}
}

// BenchmarkInvalidateTag drops a tag of 1 000 or 100 000 members. ns/op is
// the whole invalidation; max-cmd-ms is the slowest single round trip (a
// command, or a pipeline) that a go-redis hook saw during it, rtts/op the
// round trips, tag-B/member the tag's bookkeeping in Redis before it.
// Run with -benchtime=1x: each iteration first stores the members.
func BenchmarkInvalidateTag(b *testing.B) {
	timer := &cmdTimer{}
	hooked := newGoRedis()
	hooked.AddHook(timer)
	rc := runtime.New(hooked, runtime.WithNamespace(prefix+"inv"), runtime.WithLogger(discard))
	filler := runtime.New(rdb, runtime.WithNamespace(prefix+"inv"), runtime.WithLogger(discard))
	gcStore := redisstore.NewRedis(hooked, gocachestore.WithExpiration(ttl))
	gc := gocache.New[any](gcStore)

	type lib struct {
		name     string
		fill     func(tag string, ids []string) error
		tagKey   func(tag string) string
		drop     func(tag string) error
		survives func(id string) (bool, error)
	}
	libs := []lib{
		{"repocache",
			func(tag string, ids []string) error {
				_, err := runtime.GetBatch(ctx, filler, ids, rcKey, func(v Workspace) string { return v.ID },
					func(ctx context.Context, ids []string) ([]Workspace, error) { return loadMany(ids), nil },
					runtime.TTL(ttl), runtime.Tags(tag))
				if err != nil {
					return err
				}
				// The stores run in the background: until they end, a
				// key may hold its lease's placeholder, which a drop
				// need not delete (the store that finds the tag dropped
				// releases it), and a member may not be tagged yet.
				return filler.Wait(ctx)
			},
			func(tag string) string { return rc.RedisKey("#tag:{" + tag + "}") },
			func(tag string) error { return rc.InvalidateTags(ctx, tag) },
			func(id string) (bool, error) {
				n, err := rdb.Exists(ctx, rc.RedisKey(rcKey(id))).Result()
				return n == 1, err
			},
		},
		{"gocache",
			func(tag string, ids []string) error {
				// gocache's own Set, queued on a pipeline: SET PX, SADD, EXPIRE per key.
				pipe := rdb.Pipeline()
				st := redisstore.NewRedis(pipe, gocachestore.WithExpiration(ttl))
				for _, id := range ids {
					data, err := msgpack.Marshal(load(id))
					if err != nil {
						return err
					}
					if err := st.Set(ctx, gcKey(id), data, gocachestore.WithTags([]string{gcTag(tag)})); err != nil {
						return err
					}
				}
				_, err := pipe.Exec(ctx)
				return err
			},
			func(tag string) string { return fmt.Sprintf(redisstore.RedisTagPattern, gcTag(tag)) },
			func(tag string) error {
				return gc.Invalidate(ctx, gocachestore.WithInvalidateTags([]string{gcTag(tag)}))
			},
			func(id string) (bool, error) { n, err := rdb.Exists(ctx, gcKey(id)).Result(); return n == 1, err },
		},
	}
	for _, members := range []int{1000, 100000} {
		b.Run("members="+strconv.Itoa(members), func(b *testing.B) {
			for _, lb := range libs {
				b.Run("lib="+lb.name, func(b *testing.B) {
					var cpu, maxCmd time.Duration
					var rtts int64
					var tagBytes float64
					maxName := ""
					b.ReportAllocs()
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						tag := nextID("tag")
						ids := make([]string, members)
						for j := range ids {
							ids[j] = tag + "-" + strconv.Itoa(j)
						}
						for j := 0; j < len(ids); j += 5000 {
							if err := lb.fill(tag, ids[j:min(j+5000, len(ids))]); err != nil {
								b.Fatal(err)
							}
						}
						tb, err := rdb.MemoryUsage(ctx, lb.tagKey(tag), 0).Result()
						if err != nil {
							b.Fatalf("tag key %s: %v", lb.tagKey(tag), err)
						}
						tagBytes = float64(tb) / float64(members)
						timer.reset(true)
						c0 := cpuTime()
						b.StartTimer()
						err = lb.drop(tag)
						b.StopTimer()
						cpu += cpuTime() - c0
						timer.mu.Lock()
						timer.on = false
						if timer.max > maxCmd {
							maxCmd, maxName = timer.max, timer.maxName
						}
						rtts += timer.n
						timer.mu.Unlock()
						if err != nil {
							b.Fatal(err)
						}
						for _, id := range []string{ids[0], ids[len(ids)-1]} {
							if ok, err := lb.survives(id); err != nil || ok {
								b.Fatalf("%s survived the invalidation (%v)", id, err)
							}
						}
						b.StartTimer()
					}
					b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
					b.ReportMetric(float64(maxCmd)/1e6, "max-cmd-ms")
					b.ReportMetric(float64(rtts)/float64(b.N), "rtts/op")
					b.ReportMetric(tagBytes, "tag-B/member")
					b.Logf("slowest round trip: %s, %v", maxName, maxCmd)
				})
			}
		})
	}
}
