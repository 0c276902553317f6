package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/codec"
)

// GetCached returns the value stored under key, or calls load, stores its
// result under key for the TTL (plus jitter) with the tags, and returns it.
//
// A hit is one Redis GET. Concurrent misses of one key in this process make
// one call to load (LockLocal, the default). Errors from load are returned
// unchanged and never cached; a nil pointer result is returned but not
// stored. A Redis error is never returned: the loader's answer is (fail
// open), and the error is logged and counted. A stored value that cannot be
// decoded is deleted and reloaded. The only errors that do not come from
// load are misuse (ErrNoTTL, ErrInvalidKey, ErrUnsupported) and the
// caller's own context ending.
func GetCached[T any](ctx context.Context, c *Cache, key string, load func(context.Context) (T, error), opts ...CallOption) (T, error) {
	return getCached(ctx, c, key, funcLoader[T](load), opts)
}

// GetCachedWith is GetCached for a loader that takes its arguments as a
// value rather than capturing them: load(ctx, arg). With a load function
// that captures nothing, a hit allocates nothing for the loader (a
// capturing closure passed to GetCached is allocated by its caller on every
// call, since a stale-while-revalidate refresh may outlive the call).
// Generated decorators use it.
func GetCachedWith[T, A any](ctx context.Context, c *Cache, key string, arg A, load func(context.Context, A) (T, error), opts ...CallOption) (T, error) {
	return getCached(ctx, c, key, argLoader[T, A]{arg: arg, fn: load}, opts)
}

// loader is what getCached calls on a miss. Its load method is taken as a
// method value only where a load happens, so that a loader given by value
// is copied to the heap only then.
type loader[T any] interface {
	load(context.Context) (T, error)
}

type funcLoader[T any] func(context.Context) (T, error)

func (f funcLoader[T]) load(ctx context.Context) (T, error) { return f(ctx) }

type argLoader[T, A any] struct {
	arg A
	fn  func(context.Context, A) (T, error)
}

func (a argLoader[T, A]) load(ctx context.Context) (T, error) { return a.fn(ctx, a.arg) }

// getCached is the read path, one tier after another, each in a file of its
// own:
//
//  1. The near cache (l1.go, with WithL1): a hit is a copy of the entry's
//     decoded value (l1clone.go); tracking.go keeps the tier fresh.
//  2. Redis (this file): one GET, read with its TTL when the near cache may
//     keep it; a hit is decoded here (decodeHit) and counted (served),
//     which starts a stale-while-revalidate refresh (swr.go) if it is due.
//     A failing Redis or master (breaker.go, restart.go) skips this tier.
//  3. The loader (loader.go): a miss is loaded once per process, under a
//     lease, and stored in the background.
func getCached[T any, L loader[T]](ctx context.Context, c *Cache, key string, l L, opts []CallOption) (T, error) {
	// From here on the key is read from full, which is on the heap anyway:
	// the caller's key then never escapes, and a key the caller builds
	// (as generated code does) can stay on its stack.
	full := c.prefix + key
	k := full[len(c.prefix):]
	o := resolve(opts)
	if err := o.check(k, opts); err != nil {
		var zero T
		return zero, err
	}
	if inTx(ctx) {
		// A transaction may see its own uncommitted writes: it must
		// neither read the cache nor fill it.
		return loadAndCount(ctx, c, k, o.method, l.load)
	}
	start := time.Now()
	// 1. The near cache.
	var snap l1Snap
	if c.l1 != nil && o.l1Allowed() {
		now := start.UnixNano()
		if it := c.l1.get(full, now); it != nil {
			if v, stale, ok, cached := decodeL1[T](ctx, c, k, full, it, opts); ok {
				served(ctx, c, k, full, it.val, stale, true, l, &o, opts, start)
				return v, cached
			}
		}
		snap = c.l1.snapshot(full, now)
	}
	// 2. Redis.
	c.maybeCheckNodes(start)
	var (
		nb    *nodeBreaker
		probe bool
	)
	ok := c.br.allow()
	if ok {
		nb = c.nodeBreakerOf(ctx, full)
		ok, probe = nb.allow(c, start)
	}
	if !ok {
		// Redis (or, on a cluster, the master of this key) is failing:
		// the source answers at once.
		c.miss(k, o.method, start)
		return loadAndCount(ctx, c, k, o.method, l.load)
	}
	// From here on a half-open node breaker's probe (this read, maybe)
	// ends with a Redis outcome recorded, or is given back (nb.release).
	if c.topologyUnsureAt(ctx, nb, full) {
		// A master may have been replaced: the source answers.
		nb.release(probe)
		c.miss(k, o.method, start)
		return loadAndCount(ctx, c, k, o.method, l.load)
	}
	if !snap.ok && c.missRun.Load() >= leaseFirstAfter {
		// The lease script records its outcome (loadLeased); a read that
		// joined another's load sent nothing.
		defer nb.release(probe)
		return leaseFirst(ctx, c, k, full, l, o, opts, start)
	}
	rctx, cancel := c.redisCtx(ctx)
	answers := c.answers()
	var (
		s    string
		err  error
		left time.Duration // the key's remaining TTL, read with it for the near cache
	)
	if snap.ok {
		s, left, err = c.getWithTTL(rctx, full)
	} else {
		s, err = c.hitPipeFor(nb).get(rctx, full)
	}
	cancel()
	switch {
	case err == nil && c.answeredUnseen(ctx, answers, full):
		// go-redis found a new master for the key while the GET ran (a
		// retry, or a MOVED it followed): what that master holds is not
		// trusted yet.
		nb.release(probe)
		c.miss(k, o.method, start)
		return loadAndCount(ctx, c, k, o.method, l.load)
	case err == nil:
		c.br.ok()
		nb.record(c, nil)
		v, stale, ok, cached := decodeHit[T](ctx, c, k, full, s, opts)
		if ok {
			c.hitRun()
			if snap.ok {
				if c.l1Fetched != nil {
					c.l1Fetched()
				}
				c.l1Keep(ctx, full, s, snap, start.UnixNano(), left, &o)
			}
			served(ctx, c, k, full, s, stale, false, l, &o, opts, start)
			return v, cached
		}
	case err == redis.Nil:
		c.br.ok()
		nb.record(c, nil)
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		nb.record(c, nil)
		// Not ours: count it; the lease script deletes it.
		c.stats.decodeErrors.Add(1)
		c.observe(Event{Op: OpDecodeError, Key: k, Err: err, Method: o.method})
	default:
		if cerr := ctx.Err(); cerr != nil {
			nb.release(probe)
			var zero T
			return zero, cerr
		}
		nb.record(c, err)
		nb.release(probe)
		c.redisError("get", k, err)
		c.miss(k, o.method, start)
		// Redis is failing: serve from the source and do not try to
		// store, which would only add a second timeout.
		return loadAndCount(ctx, c, k, o.method, l.load)
	}
	// 3. The loader.
	c.missRun.Add(1)
	c.miss(k, o.method, start)
	return fill(ctx, c, k, full, l.load, o, opts)
}

// leaseFirstAfter is how many misses in a row make reads skip their GET
// (leaseFirst) until one is a hit.
const leaseFirstAfter = 4

// leaseFirst is tiers 2 and 3 in one round trip, for a Cache whose last
// reads all missed (a cold cache, a key space read once): it goes
// straight to the loader tier, whose lease script returns the value if
// one is stored and grants the lease otherwise. A miss is then two round
// trips (the lease, the compare-and-set) instead of three, and a hit
// costs a script instead of a GET; the first hit makes reads GETs again,
// so a warm cache's hits stay plain GETs (which replicas and client-side
// caching can serve).
func leaseFirst[T any, L loader[T]](ctx context.Context, c *Cache, k, full string, l L, o callOptions, opts []CallOption, start time.Time) (T, error) {
	a := &leaseAnswer{start: start}
	o.leaseHit = a
	v, err := fill(ctx, c, k, full, l.load, o, opts)
	o.leaseHit = nil // a refresh started below outlives this read
	if !a.hit {
		if !a.missed { // a follower, or the lease failed
			c.miss(k, o.method, start)
		}
		return v, err
	}
	c.hitRun()
	served(ctx, c, k, full, a.val, a.stale, false, l, &o, opts, start)
	return v, err
}

// hitRun ends a run of misses (see leaseFirst). It writes only when a run
// was counted, so that hits do not share a written cache line.
func (c *Cache) hitRun() {
	if c.missRun.Load() != 0 {
		c.missRun.Store(0)
	}
}

// served counts a hit (from the near cache with l1) and, for a value past
// its freshness, starts the one refresh of stale-while-revalidate.
func served[T any, L loader[T]](ctx context.Context, c *Cache, k, full, s string, stale, l1 bool, l L, o *callOptions, opts []CallOption, start time.Time) {
	d := time.Since(start)
	c.stats.hits.Add(1)
	c.stats.hitNanos.Add(int64(d))
	c.observe(Event{Op: OpHit, Key: k, Duration: d, Method: o.method, L1: l1})
	if stale {
		c.stats.stale.Add(1)
		c.observe(Event{Op: OpStale, Key: k, Method: o.method})
		if o.swr > 0 {
			startRefresh(ctx, c, k, full, s[:stampEnd], l.load, *o, opts)
		}
	}
}

// decodeHit decodes what GET returned. ok is false for a miss: a
// placeholder (someone is loading) or an undecodable entry, which it
// deletes. cached is a cached not-found error; stale reports an envelope
// past its freshness.
func decodeHit[T any](ctx context.Context, c *Cache, key, full, s string, opts []CallOption) (v T, stale, ok bool, cached error) {
	e := parseEntry(s)
	var err error
	switch e.kind {
	case kindValue:
		if v, err = codec.Unmarshal[T](c.codec, e.frame); err == nil {
			return v, false, true, nil
		}
	case kindEnvelope:
		stale = e.freshUntil < time.Now().UnixMilli()
		switch {
		case e.flags&flagNotFound != 0:
			return v, stale, true, notFoundOf(opts).rebuild(c.codec, e.frame)
		case e.flags&flagNilResult != 0:
			return v, stale, true, nil
		}
		if v, err = codec.Unmarshal[T](c.codec, e.frame); err == nil {
			return v, stale, true, nil
		}
	case kindPlaceholder:
		return v, false, false, nil
	default:
		err = fmt.Errorf("%w: not a cache entry", codec.ErrForeign)
	}
	c.decodeError(ctx, key, full, methodIn(opts), err)
	var zero T
	return zero, false, false, nil
}

func (c *Cache) miss(key, method string, start time.Time) {
	c.stats.misses.Add(1)
	c.observe(Event{Op: OpMiss, Key: key, Duration: time.Since(start), Method: method})
}

// decodeError counts and logs an undecodable entry and deletes it, so that
// the reload that follows replaces it.
func (c *Cache) decodeError(ctx context.Context, key, full, method string, err error) {
	c.stats.decodeErrors.Add(1)
	c.observe(Event{Op: OpDecodeError, Key: key, Err: err, Method: method})
	if ok, suppressed := c.valueLog.allow(); ok {
		c.log.Info("repocache: undecodable cache entry deleted", "key", key, "err", err, "suppressed", suppressed)
	}
	// Synchronously (Redis has just answered): deleted later, it could
	// take the reload's value with it.
	derr := c.client.Unlink(context.WithoutCancel(ctx), full).Err()
	c.l1Drop(full)
	if derr != nil {
		c.redisError("unlink", key, derr)
	}
}

// redisCtx bounds a Redis call on the read path to half of what is left of
// the caller's deadline, so that a Redis that hangs leaves the loader the
// other half: the caller is served by the source instead of failing with
// its deadline. It does so only when the deadline is near enough for a
// hung Redis to reach it (within twice c.stall, what the client's own
// timeouts and retries let one command take): otherwise the client gives
// up first, and ctx is used as it is, at no cost (a derived context costs a
// hit 7 allocations; BenchmarkHitWithDeadline).
func (c *Cache) redisCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok || c.stall == 0 {
		return ctx, noCancel
	}
	left := time.Until(dl)
	if c.stall > 0 && left > 2*c.stall {
		return ctx, noCancel
	}
	return context.WithDeadline(ctx, dl.Add(-left/2))
}

func noCancel() {}
