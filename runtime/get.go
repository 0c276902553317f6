package runtime

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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
	// The chain: the near cache (l1.go), Redis (below), the loader (fill).
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
	c.maybeCheckNodes(start)
	nb := c.nodeBreakerOf(ctx, full)
	if !c.br.allow() || !nb.allow(c, start) || c.topologyUnsure(ctx, full) {
		// Redis (or, on a cluster, the master of this key) is failing,
		// or a master may have been replaced: the source answers at once.
		c.miss(k, o.method, start)
		return loadAndCount(ctx, c, k, o.method, l.load)
	}
	rctx, cancel := c.redisCtx(ctx)
	var (
		s    string
		err  error
		left time.Duration // the key's remaining TTL, read with it for the near cache
	)
	if snap.ok {
		s, left, err = c.getWithTTL(rctx, full)
	} else {
		s, err = c.client.Get(rctx, full).Result()
	}
	cancel()
	switch {
	case err == nil:
		c.br.ok()
		nb.record(c, nil)
		v, stale, ok, cached := decodeHit[T](ctx, c, k, full, s, opts)
		if ok {
			if snap.ok {
				if c.l1Fetched != nil {
					c.l1Fetched()
				}
				c.l1Keep(full, s, snap, start.UnixNano(), left, &o)
			}
			served(ctx, c, k, full, s, stale, false, l, &o, opts, start)
			return v, cached
		}
	case err == redis.Nil:
	case redis.HasErrorPrefix(err, "WRONGTYPE"):
		// Not ours: count it; the lease script deletes it.
		c.stats.decodeErrors.Add(1)
		c.observe(Event{Op: OpDecodeError, Key: k, Err: err, Method: o.method})
	default:
		if cerr := ctx.Err(); cerr != nil {
			var zero T
			return zero, cerr
		}
		nb.record(c, err)
		c.redisError("get", k, err)
		c.miss(k, o.method, start)
		// Redis is failing: serve from the source and do not try to
		// store, which would only add a second timeout.
		return loadAndCount(ctx, c, k, o.method, l.load)
	}
	c.miss(k, o.method, start)
	return fill(ctx, c, k, full, l.load, o, opts)
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

// Set stores value under key for the TTL (plus jitter) with the tags: the
// write-through half of a cached repository. Unlike a read, a failed write
// is returned to the caller, who decides whether it matters.
func Set[T any](ctx context.Context, c *Cache, key string, value T, opts ...CallOption) error {
	o := resolve(opts)
	if err := o.check(key, opts); err != nil {
		return err
	}
	return set(ctx, c, key, value, &o, tagsFor(opts, value))
}

// set encodes and stores value with tags; its options are checked.
func set[T any](ctx context.Context, c *Cache, key string, value T, o *callOptions, tags []string) error {
	data, err := codec.Marshal(c.codec, value)
	if err != nil {
		c.encodeError(key, err)
		return fmt.Errorf("runtime: set %q: %w", key, err)
	}
	if err := c.store(ctx, key, c.prefix+key, data, o.expiry(), tags); err != nil {
		c.redisError("set", key, err)
		return fmt.Errorf("runtime: set %q: %w", key, err)
	}
	return nil
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

// fill loads the value of a missed key, collapsing concurrent misses of the
// key in this process (unless LockNone), and stores it under a lease in the
// background.
func fill[T any](ctx context.Context, c *Cache, key, full string, load func(context.Context) (T, error), o callOptions, opts []CallOption) (T, error) {
	if o.lock == LockNone {
		v, _, err := loadLeased(ctx, c, key, full, load, &o, opts, newVerdict())
		return v, err
	}
	began := c.flight.now()
	for {
		call, leader, joined := c.flight.join(full)
		if leader {
			// The call stays in flight until its store has finished, so
			// that a read of the key in this process meanwhile gets this
			// answer instead of loading again.
			vd := call.vd
			vd.before = func() { c.flight.forget(full, call) }
			v, frame, err := loadLeased(ctx, c, key, full, load, &o, opts, vd)
			publish(c, call, v, err, frame)
			return v, err
		}
		var zero T
		select {
		case <-call.done:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
		// The leader's own context ended: its error is not ours to
		// return. Take over with our context.
		if isContextErr(call.err) && ctx.Err() == nil {
			continue
		}
		// A load that began before this call did may predate a write
		// that this caller has already seen acknowledged. Its answer is
		// ours only if it is verified fresh (stored under its lease with
		// no invalidation in between, or read from Redis) by a command
		// sent after we joined; else join a newer load, whose answer is
		// then ours whatever it is.
		if call.gen <= began {
			select {
			case <-call.vd.ch:
			case <-ctx.Done():
				return zero, ctx.Err()
			}
			if !call.vd.freshFor(joined) {
				continue
			}
		}
		switch {
		case call.err != nil:
			return zero, call.err
		case call.nilValue:
			return zero, nil
		}
		if call.frame != nil {
			if v, err := codec.Unmarshal[T](c.codec, call.frame); err == nil {
				return v, nil
			}
		}
		// The leader's value could not be copied: load our own.
		return loadAndCount(ctx, c, key, o.method, load)
	}
}

// loadLeased takes the key's lease and loads; or, if another loader holds
// the lease, waits for its value (LockDistributed) or loads without storing
// (the other loader stores). frame is the value encoded, when it was. It
// settles vd, now or after a background store, with whether the answer is
// known to be as fresh as the cache: read from it, or stored under the
// lease with no invalidation in between.
func loadLeased[T any](ctx context.Context, c *Cache, key, full string, load func(context.Context) (T, error), o *callOptions, opts []CallOption, vd *verdict) (_ T, frame []byte, _ error) {
	wait := c.pollMin
	// On a single master, tags known before the load are tagged with the
	// lease (tryLeaseTagged). Not on a cluster: a tag's set lives on
	// another master, whose failover could lose the member while the
	// placeholder survives; tagging at the store finds that out. A member
	// must not expire before its key: it is scored for the longest TTL the
	// entry can get, counted from a store as late as the lease allows (a
	// load of up to one lease TTL, then a compare-and-set within one more;
	// after a longer load the store tags again, see loadWithLease).
	var (
		tags   []string
		tagTTL time.Duration
	)
	if !c.perKey {
		tags = staticTags(opts)
		tagTTL = max(o.ttl+o.jitter, o.negative) + o.swr + 2*c.leaseTTL
	}
	for {
		rctx, cancel := c.redisCtx(ctx)
		vd.sending()
		state, l, val, busyFor, err := c.tryLeaseTagged(rctx, full, tagTTL, tags)
		cancel()
		switch {
		case err != nil:
			if cerr := ctx.Err(); cerr != nil {
				var zero T
				vd.finish(false)
				return zero, nil, cerr
			}
			c.nodeBreakerOf(ctx, full).record(c, err)
			c.redisError("lease", key, err)
			vd.finish(false)
			v, err := loadAndCount(ctx, c, key, o.method, load)
			return v, nil, err
		case state == leaseValue:
			// Stored since our GET: by another process's loader, or by
			// a write-through.
			if v, _, ok, cached := decodeHit[T](ctx, c, key, full, val, opts); ok {
				vd.finish(true)
				return v, nil, cached
			}
		case state == leaseBusy && o.lock != LockDistributed:
			vd.finish(false)
			v, err := loadAndCount(ctx, c, key, o.method, load)
			return v, nil, err
		case state == leaseBusy:
			if c.waiting != nil {
				c.waiting()
			}
			// Poll until the holder stores its value, or its lease ends
			// (it failed, or died: then we take over).
			d := min(wait, max(busyFor, time.Millisecond))
			wait = min(2*wait, c.pollMax)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				var zero T
				vd.finish(false)
				return zero, nil, ctx.Err()
			case <-t.C:
			}
		default:
			return loadWithLease(ctx, c, key, l, load, o, opts, vd)
		}
	}
}

// loadWithLease loads while keeping the lease alive, and returns what it
// loaded at once. In the background, it stores the result if the lease is
// still ours and none of its tags was invalidated since the lease was
// granted, and settles vd with whether it did.
func loadWithLease[T any](ctx context.Context, c *Cache, key string, l *lease, load func(context.Context) (T, error), o *callOptions, opts []CallOption, vd *verdict) (_ T, frame []byte, _ error) {
	stop := c.keepAlive(ctx, l)
	started := time.Now()
	v, err := loadAndCount(ctx, c, key, o.method, load)
	stop()
	if time.Since(started) > c.leaseTTL {
		// Past what the members tagged with the lease were scored for.
		l.tagged = nil
	}
	data, frame, ttl, tags, ok := entryFor(c, key, v, err, o, opts)
	method := o.method // not o: the closure would move the caller's options to the heap
	store := func(bg context.Context) {
		vd.finish(c.storeLeased(WithMethod(bg, method), key, l, data, ttl, tags, vd.sending))
	}
	switch {
	case !ok:
		store = func(bg context.Context) { c.release(bg, l); vd.finish(false) }
	case time.Since(started) > maxLoad:
		c.log.Warn("repocache: load too slow to be stored safely", "key", key, "took", time.Since(started))
		store = func(bg context.Context) { c.release(bg, l); vd.finish(false) }
	}
	if !c.background(ctx, c.storeTimeout(), store) {
		vd.finish(false) // the lease ends by its TTL
	}
	c.awaitStore(ctx, vd.ch)
	return v, frame, err
}

// awaitStore gives a background store up to the store wait (WithStoreWait)
// to finish, so that on a healthy Redis a caller returns with its value
// stored, and on a slow one is not held longer than that.
func (c *Cache) awaitStore(ctx context.Context, done <-chan struct{}) {
	if c.storeWait <= 0 {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	t := time.NewTimer(c.storeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// entryFor encodes what a load returned, if it is to be cached: a value (in
// an envelope with its freshness under SWR), or with Negative a not-found
// error or a nil pointer. frame is the value's codec frame, when it has one.
func entryFor[T any](c *Cache, key string, v T, err error, o *callOptions, opts []CallOption) (data, frame []byte, ttl time.Duration, tags []string, ok bool) {
	now := time.Now()
	if err != nil && o.negative > 0 {
		if payload, ok := notFoundOf(opts).match(c.codec, err); ok {
			return makeEnvelope(flagNotFound, now.Add(o.negative), payload), nil, o.negative, staticTags(opts), true
		}
	}
	switch {
	case err != nil:
		return nil, nil, 0, nil, false
	case isNilPointer(v) && o.negative > 0:
		return makeEnvelope(flagNilResult, now.Add(o.negative), nil), nil, o.negative, staticTags(opts), true
	case isNilPointer(v):
		return nil, nil, 0, nil, false
	}
	frame, merr := codec.Marshal(c.codec, v)
	if merr != nil {
		c.encodeError(key, merr)
		return nil, nil, 0, nil, false
	}
	ttl = o.expiry()
	if o.swr > 0 {
		return makeEnvelope(0, now.Add(ttl), frame), frame, ttl + o.swr, tagsFor(opts, v), true
	}
	return frame, frame, ttl, tagsFor(opts, v), true
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

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func loadAndCount[T any](ctx context.Context, c *Cache, key, method string, load func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	v, err := load(ctx)
	c.stats.loads.Add(1)
	if err != nil {
		c.stats.loadErrors.Add(1)
	}
	c.observe(Event{Op: OpLoad, Key: key, Duration: time.Since(start), Err: err, Method: method})
	return v, err
}

// isNilPointer reports a nil pointer or nil interface result, which the
// cache treats as not-found.
func isNilPointer[T any](v T) bool {
	rv := reflect.ValueOf(&v).Elem()
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
