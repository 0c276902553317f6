package runtime

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/repocache/repocache/codec"
)

// The loader tier, the last of the read path (see getCached): a miss that
// Redis could not answer is loaded here, once per process for concurrent
// callers, under a lease that a store needs, and stored in the background.
// Read it top to bottom:
//
//   - fill collapses concurrent misses of a key (flight.go) and hands a
//     follower a copy of the leader's answer, if it is fresh for it;
//   - loadLeased takes the key's lease (lease.go; with tags known before the
//     load, their taggings ride in its round trip), or waits for another
//     holder's value, or loads without storing;
//   - loadWithLease loads with the lease kept alive and stores, in the
//     background (background.go) for a caller with a deadline, else in the
//     caller's goroutine, with a compare-and-set that an invalidation in
//     between defeats (tags.go, storeLeasedMany);
//   - entryFor encodes what is to be stored: a value, an SWR envelope
//     (swr.go) or a cached not-found (notfound.go).

// fill loads the value of a missed key, collapsing concurrent misses of the
// key in this process (unless LockNone), and stores it under a lease in the
// background.
func fill[T any](ctx context.Context, c *Cache, key, full string, load func(context.Context) (T, error), o callOptions, opts []CallOption) (T, error) {
	if o.lock == LockNone {
		vd := newVerdict()
		v, _, err := loadLeased(ctx, c, key, full, load, &o, opts, vd)
		vd.storeHere(ctx, c)
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
			// After publish: followers that may take the answer at once
			// do not wait for the store.
			vd.storeHere(ctx, c)
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
	// lease (tryLease). Not on a cluster: a tag's set lives on
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
	// The key's master's breaker, looked up once: each lease answer is an
	// outcome of a read on it (for a read that skipped its GET,
	// leaseFirst, maybe a half-open breaker's probe). nil off a cluster.
	nb := c.nodeBreakerOf(ctx, full)
	for {
		rctx, cancel := c.redisCtx(ctx)
		vd.sending()
		answers := c.answers()
		state, l, val, busyFor, err := c.tryLease(rctx, full, tagTTL, tags)
		cancel()
		// Only the first attempt tags: a waiter that polls the lease
		// would tag again at every poll. A lease granted later is tagged
		// at the store.
		tags = nil
		if a := o.leaseHit; a != nil && err == nil && state != leaseValue && !a.missed {
			a.missed = true
			c.miss(key, o.method, a.start)
		}
		if err == nil {
			nb.record(c, nil)
		}
		switch {
		case err != nil:
			if cerr := ctx.Err(); cerr != nil {
				var zero T
				vd.finish(false)
				return zero, nil, cerr
			}
			nb.record(c, err)
			c.redisError("lease", key, err)
			vd.finish(false)
			v, err := loadAndCount(ctx, c, key, o.method, load)
			return v, nil, err
		case state == leaseValue && c.answeredUnseen(ctx, answers, full):
			// Read from a master no check has seen (see getCached).
			vd.finish(false)
			v, err := loadAndCount(ctx, c, key, o.method, load)
			return v, nil, err
		case state == leaseValue:
			// Stored since our GET: by another process's loader, or by
			// a write-through. Or, for a read that skipped its GET
			// (leaseFirst), a hit.
			if v, stale, ok, cached := decodeHit[T](ctx, c, key, full, val, opts); ok {
				vd.finish(true)
				if a := o.leaseHit; a != nil && !a.missed {
					// The first answer: a hit. After a busy lease it is
					// another loader's value, and the miss is counted.
					a.hit, a.stale, a.val = true, stale, val
				}
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
	if _, ok := ctx.Deadline(); !ok && c.storeWait > 0 {
		// No deadline to keep, and the caller would wait for the store
		// anyway (awaitStore): it runs in the caller's goroutine, not in
		// one whose hand-off cost a miss about a fifth of its CPU; fill
		// runs it once the answer is published (storeHere).
		vd.store = store
		return v, frame, err
	}
	if !c.background(ctx, c.storeTimeout(), store) {
		vd.finish(false) // the lease ends by its TTL
	}
	c.awaitStore(ctx, vd.ch)
	return v, frame, err
}

// storeHere runs the store that loadWithLease left to the caller's
// goroutine, if any, bounded as a background one is: by the lease's TTL
// where the client honours context deadlines (where it does not, stall is
// 0 and its own timeouts bound it). The caller's cancellation does not
// stop it, as it would not stop a background store.
func (v *verdict) storeHere(ctx context.Context, c *Cache) {
	store := v.store
	if store == nil {
		return
	}
	v.store = nil
	ctx = context.WithoutCancel(ctx)
	if c.stall != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.storeTimeout())
		defer cancel()
	}
	store(ctx)
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
