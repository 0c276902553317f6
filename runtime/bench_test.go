package runtime_test

import (
	"context"
	"fmt"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/repocache/repocache/codec"
	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// benchValue is a typical row, about 300 bytes in MessagePack.
type benchValue struct {
	ID          string
	Name        string
	Slug        string
	Plan        string
	OwnerEmail  string
	Description string
	MemberCount int
	Tags        []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func newBenchValue() benchValue {
	t := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return benchValue{
		ID: "42", Name: "Acme Corporation", Slug: "acme-corporation", Plan: "enterprise",
		OwnerEmail:  "owner@acme.example.com",
		Description: strings.Repeat("A workspace for the platform team. ", 4),
		MemberCount: 128, Tags: []string{"prod", "eu-west-1", "billing", "sso", "audit"},
		CreatedAt: t, UpdatedAt: t.Add(time.Hour),
	}
}

// cpuTime is this process's user+system CPU time: wall time on a loopback
// round trip mostly measures the scheduler, CPU time measures the work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkHit compares a cache hit through GetCached with the floor: a raw
// go-redis GET and a MessagePack decode of the same value, in the same run
// against the same server.
func BenchmarkHit(b *testing.B) {
	backend := redistest.Standalone(b)
	ctx := context.Background()
	c := runtime.New(backend.Client, runtime.WithNamespace(backend.Namespace), runtime.WithLogger(discard))
	want := newBenchValue()
	if err := runtime.Set(ctx, c, "workspace:42", want, runtime.TTL(time.Hour)); err != nil {
		b.Fatal(err)
	}
	raw, _ := msgpack.Marshal(want)
	rawKey := backend.Key("raw:workspace:42")
	backend.Client.Set(ctx, rawKey, raw, time.Hour)
	b.Logf("value: %d bytes of MessagePack, %d with the frame header", len(raw), len(raw)+codec.HeaderSize)
	load := func(context.Context, string) (benchValue, error) { return want, nil }

	b.Run("impl=raw-get-msgpack", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		b.ResetTimer()
		for range b.N {
			data, err := backend.Client.Get(ctx, rawKey).Bytes()
			if err != nil {
				b.Fatal(err)
			}
			var v benchValue
			if err := msgpack.Unmarshal(data, &v); err != nil || v.ID != "42" {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
	b.Run("impl=GetCached", func(b *testing.B) {
		b.ReportAllocs()
		id := "42"
		start := cpuTime()
		b.ResetTimer()
		for range b.N {
			// The loader captures its arguments, as generated code does.
			v, err := runtime.GetCached(ctx, c, "workspace:42", func(ctx context.Context) (benchValue, error) {
				return load(ctx, id)
			}, runtime.TTL(5*time.Minute), runtime.Jitter(time.Minute), runtime.Tags("workspace:42"))
			if err != nil || v.ID != "42" {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
	b.Run("impl=GetCachedWith", func(b *testing.B) {
		b.ReportAllocs()
		type args struct{ id string }
		a := args{id: "42"}
		start := cpuTime()
		b.ResetTimer()
		for range b.N {
			// The loader takes its arguments as a value, as generated code
			// does: nothing is captured, nothing allocated for it.
			v, err := runtime.GetCachedWith(ctx, c, "workspace:42", a, func(ctx context.Context, a args) (benchValue, error) {
				return newBenchValue(), nil
			}, runtime.TTL(5*time.Minute), runtime.Jitter(time.Minute), runtime.Tags("workspace:42"), runtime.Method("Repository.FindWorkspace"))
			if err != nil || v.ID != "42" {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
}

// BenchmarkBatch compares GetBatch of 100 ids, all hits, with a raw MGET of
// the same 100 keys and a MessagePack decode of each value.
func BenchmarkBatch(b *testing.B) {
	backend := redistest.Standalone(b)
	ctx := context.Background()
	c := runtime.New(backend.Client, runtime.WithNamespace(backend.Namespace), runtime.WithLogger(discard))
	v := newBenchValue()
	ids := make([]int, 100)
	rawKeys := make([]string, 100)
	key := func(id int) string { return "ws:" + strconv.Itoa(id) }
	raw, _ := msgpack.Marshal(v)
	for i := range ids {
		ids[i] = i
		val := v
		val.MemberCount = i
		if err := runtime.Set(ctx, c, key(i), val, runtime.TTL(time.Hour)); err != nil {
			b.Fatal(err)
		}
		rawKeys[i] = backend.Key("raw:" + key(i))
		backend.Client.Set(ctx, rawKeys[i], raw, time.Hour)
	}
	idOf := func(v benchValue) int { return v.MemberCount }
	load := func(context.Context, []int) ([]benchValue, error) {
		b.Fatal("loader called on an all-hit batch")
		return nil, nil
	}
	b.Run("impl=raw-mget-msgpack", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		b.ResetTimer()
		for range b.N {
			vals, err := backend.Client.MGet(ctx, rawKeys...).Result()
			if err != nil {
				b.Fatal(err)
			}
			out := make([]benchValue, 0, len(vals))
			for _, x := range vals {
				var v benchValue
				if err := msgpack.Unmarshal([]byte(x.(string)), &v); err != nil {
					b.Fatal(err)
				}
				out = append(out, v)
			}
			if len(out) != 100 {
				b.Fatal(len(out))
			}
		}
		reportCPU(b, start)
	})
	b.Run("impl=GetBatch", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		b.ResetTimer()
		for range b.N {
			out, err := runtime.GetBatch(ctx, c, ids, key, idOf, load, runtime.TTL(time.Hour))
			if err != nil || len(out) != 100 {
				b.Fatal(len(out), err)
			}
		}
		reportCPU(b, start)
	})
}

// BenchmarkStaleHit is the stale-while-revalidate path: a stale value is
// served at once and a background refresh runs (one at a time; most
// iterations find one in flight).
func BenchmarkStaleHit(b *testing.B) {
	backend := redistest.Standalone(b)
	ctx := context.Background()
	c := runtime.New(backend.Client, runtime.WithNamespace(backend.Namespace), runtime.WithLogger(discard))
	v := newBenchValue()
	// A TTL of 1ms makes every stored value stale at once; SWR keeps it
	// for an hour.
	opts := []runtime.CallOption{runtime.TTL(time.Millisecond), runtime.SWR(time.Hour)}
	load := func(context.Context) (benchValue, error) { return v, nil }
	if _, err := runtime.GetCached(ctx, c, "stale", load, opts...); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	for range b.N {
		if _, err := runtime.GetCached(ctx, c, "stale", load, opts...); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

// BenchmarkDistributedMiss is a miss with lock=distributed: GET, lease,
// load, compare-and-set, against a plain miss with the local lock.
func BenchmarkDistributedMiss(b *testing.B) {
	backend := redistest.Standalone(b)
	ctx := context.Background()
	c := runtime.New(backend.Client, runtime.WithNamespace(backend.Namespace), runtime.WithLogger(discard))
	v := newBenchValue()
	load := func(context.Context) (benchValue, error) { return v, nil }
	for _, lock := range []runtime.LockMode{runtime.LockLocal, runtime.LockDistributed} {
		name := map[runtime.LockMode]string{runtime.LockLocal: "lock=local", runtime.LockDistributed: "lock=distributed"}[lock]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			run := strconv.FormatInt(time.Now().UnixNano(), 36) // every key a miss, in every -count run
			i := 0
			start := cpuTime()
			b.ResetTimer()
			for range b.N {
				i++
				if _, err := runtime.GetCached(ctx, c, "miss:"+run+":"+strconv.Itoa(i), load, runtime.TTL(time.Minute), runtime.Lock(lock)); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

// BenchmarkHitWithDeadline: a hit whose caller has a deadline, as a
// request's context has. A deadline far beyond what a hung Redis could
// cost (the client's attempts times its read timeout) must cost the hit
// nothing; a near one pays for the context that keeps half of it for the
// loader.
func BenchmarkHitWithDeadline(b *testing.B) {
	backend := redistest.Standalone(b)
	// As NewClient configures it: 3 attempts of at most 500 ms each.
	opt := *backend.Client.(*redis.Client).Options()
	opt.ReadTimeout, opt.MaxRetries, opt.ContextTimeoutEnabled = 500*time.Millisecond, 2, true
	client := redis.NewClient(&opt)
	defer client.Close()
	c := runtime.New(client, runtime.WithNamespace(backend.Namespace), runtime.WithLogger(discard))
	want := newBenchValue()
	if err := runtime.Set(context.Background(), c, "workspace:42", want, runtime.TTL(time.Hour)); err != nil {
		b.Fatal(err)
	}
	load := func(context.Context, string) (benchValue, error) { return want, nil }
	for _, d := range []time.Duration{0, time.Minute, 100 * time.Millisecond} {
		// Each iteration makes its own deadline, as a request does: the
		// caller's WithTimeout is in every row but the first.
		b.Run(fmt.Sprintf("deadline=%v", d), func(b *testing.B) {
			b.ReportAllocs()
			start := cpuTime()
			b.ResetTimer()
			for range b.N {
				rctx, cancel := context.Background(), context.CancelFunc(func() {})
				if d > 0 {
					rctx, cancel = context.WithTimeout(context.Background(), d)
				}
				v, err := runtime.GetCachedWith(rctx, c, "workspace:42", "42", load, runtime.TTL(5*time.Minute))
				cancel()
				if err != nil || v.ID != "42" {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

// l1Bench is a Cache with a near cache on its own client, watched.
func l1Bench(b *testing.B, backend *redistest.Backend) *runtime.Cache {
	b.Helper()
	if backend.Embedded {
		b.Skip("the embedded server has no CLIENT TRACKING")
	}
	cl := redis.NewClient(&redis.Options{Addr: backend.Addrs[0]})
	c := runtime.New(cl, runtime.WithNamespace(backend.Namespace), runtime.WithLogger(discard), runtime.WithL1())
	b.Cleanup(func() { _ = c.Close(); _ = cl.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, _ := c.Stats(context.Background()); s.L1.Watched {
			return c
		}
		if time.Now().After(deadline) {
			b.Fatal("the near cache was not watched in 10 s")
		}
		time.Sleep(5 * time.Millisecond) // polling the server's confirmation
	}
}

// BenchmarkL1Hit compares a hit served by the near cache (WithL1) with the
// floor of a Redis hit (a raw GET and a MessagePack decode) and with a
// GetCachedWith hit without it, in the same run; the parallel rows read
// 100 hot keys from every P.
func BenchmarkL1Hit(b *testing.B) {
	backend := redistest.Standalone(b)
	ctx := context.Background()
	plain := runtime.New(backend.Client, runtime.WithNamespace(backend.Namespace), runtime.WithLogger(discard))
	near := l1Bench(b, backend)
	type args struct{ id string }
	load := func(ctx context.Context, a args) (benchValue, error) { return newBenchValue(), nil }
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = "ws:" + strconv.Itoa(i)
		for range 3 { // stored, read from Redis (kept), then from memory
			if _, err := runtime.GetCachedWith(ctx, near, keys[i], args{"42"}, load, runtime.TTL(5*time.Minute), runtime.Method("Repository.FindWorkspace")); err != nil {
				b.Fatal(err)
			}
		}
	}
	raw, err := msgpack.Marshal(newBenchValue())
	if err != nil {
		b.Fatal(err)
	}
	if err := backend.Client.Set(ctx, backend.Namespace+":raw", raw, 5*time.Minute).Err(); err != nil {
		b.Fatal(err)
	}
	get := func(c *runtime.Cache, key string) {
		v, err := runtime.GetCachedWith(ctx, c, key, args{"42"}, load, runtime.TTL(5*time.Minute), runtime.Method("Repository.FindWorkspace"))
		if err != nil || v.ID != "42" {
			b.Fatal(err)
		}
	}
	b.Run("impl=raw-get-msgpack", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for range b.N {
			s, err := backend.Client.Get(ctx, backend.Namespace+":raw").Bytes()
			if err != nil {
				b.Fatal(err)
			}
			var v benchValue
			if err := msgpack.Unmarshal(s, &v); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
	b.Run("impl=GetCachedWith", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for range b.N {
			get(plain, keys[0])
		}
		reportCPU(b, start)
	})
	b.Run("impl=GetCachedWith+L1", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for range b.N {
			get(near, keys[0])
		}
		reportCPU(b, start)
	})
	b.Run("impl=GetCachedWith+L1/parallel", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				get(near, keys[i%len(keys)])
				i++
			}
		})
		reportCPU(b, start)
	})
	// A value with no slice, map or pointer in it: what a hit hands out
	// needs no deep copy.
	loadFlat := func(ctx context.Context, a args) (flatBenchValue, error) { return newFlatBenchValue(), nil }
	getFlat := func() {
		v, err := runtime.GetCachedWith(ctx, near, "ws:flat", args{"42"}, loadFlat, runtime.TTL(5*time.Minute), runtime.Method("Repository.FindWorkspace"))
		if err != nil || v.ID != "42" {
			b.Fatal(err)
		}
	}
	for range 3 { // stored, read from Redis (kept), then from memory
		getFlat()
	}
	b.Run("impl=GetCachedWith+L1/value=flat", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for range b.N {
			getFlat()
		}
		reportCPU(b, start)
	})
	if s, _ := near.Stats(ctx); s.L1.Entries < int64(len(keys)+1) {
		b.Fatalf("the near cache holds %d entries, want %d: the rows above were not served from memory", s.L1.Entries, len(keys)+1)
	}
}

// flatBenchValue is benchValue without its slice: strings, ints and times
// only.
type flatBenchValue struct {
	ID          string
	Name        string
	Slug        string
	Plan        string
	OwnerEmail  string
	Description string
	MemberCount int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func newFlatBenchValue() flatBenchValue {
	v := newBenchValue()
	return flatBenchValue{ID: v.ID, Name: v.Name, Slug: v.Slug, Plan: v.Plan, OwnerEmail: v.OwnerEmail,
		Description: v.Description, MemberCount: v.MemberCount, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
}

// BenchmarkL1EntryMemory reports what the near cache holds per entry
// beyond the stored value (its key, the item, the map slot), in bytes.
func BenchmarkL1EntryMemory(b *testing.B) {
	backend := redistest.Standalone(b)
	ctx := context.Background()
	near := l1Bench(b, backend)
	const n = 2000
	load := func(ctx context.Context, i int) (benchValue, error) { return newBenchValue(), nil }
	value, _ := codec.Marshal(codec.Msgpack{}, newBenchValue())
	for range b.N {
		// Stored; then read from Redis and kept (Redis's notices of the
		// stores have arrived by then; one that arrives after a read
		// drops what it kept, and the next pass keeps it again).
		for range 3 {
			for i := range n {
				if _, err := runtime.GetCachedWith(ctx, near, "m:"+strconv.Itoa(i), i, load, runtime.TTL(5*time.Minute)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	s, _ := near.Stats(ctx)
	if s.L1.Entries < n/2 {
		b.Fatalf("only %d entries held", s.L1.Entries)
	}
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	_ = near.Close() // flushes the tier
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(before.HeapAlloc)-int64(after.HeapAlloc))/float64(s.L1.Entries)-float64(len(value)), "B/entry-beyond-value")
	b.ReportMetric(float64(s.L1.Bytes)/float64(s.L1.Entries)-float64(len(value)), "accounted-B/entry-beyond-value")
}
