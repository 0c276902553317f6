package runtime

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unsafe"

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
	o := resolve(opts)
	if err := o.check(key, opts); err != nil {
		var zero T
		return zero, err
	}
	full := c.prefix + key
	start := time.Now()
	s, err := c.client.Get(ctx, full).Result()
	switch {
	case err == nil:
		v, derr := codec.Unmarshal[T](c.codec, unsafe.Slice(unsafe.StringData(s), len(s)))
		if derr == nil {
			d := time.Since(start)
			c.stats.hits.Add(1)
			c.stats.hitNanos.Add(int64(d))
			c.observe(Event{Op: OpHit, Key: key, Duration: d})
			return v, nil
		}
		c.decodeError(ctx, key, full, derr)
	case err == redis.Nil:
	default:
		if cerr := ctx.Err(); cerr != nil {
			var zero T
			return zero, cerr
		}
		c.redisError("get", key, err)
		c.miss(key, start)
		// Redis is failing: serve from the source and do not try to
		// store, which would only add a second timeout.
		return loadAndCount(ctx, c, key, load)
	}
	c.miss(key, start)
	return fill(ctx, c, key, full, load, o, opts)
}

// Set stores value under key for the TTL (plus jitter) with the tags: the
// write-through half of a cached repository. Unlike a read, a failed write
// is returned to the caller, who decides whether it matters.
func Set[T any](ctx context.Context, c *Cache, key string, value T, opts ...CallOption) error {
	o := resolve(opts)
	if err := o.check(key, opts); err != nil {
		return err
	}
	data, err := codec.Marshal(c.codec, value)
	if err != nil {
		return fmt.Errorf("runtime: set %q: %w", key, err)
	}
	if err := c.store(ctx, key, c.prefix+key, data, o.expiry(), tagsFor(opts, value)); err != nil {
		c.redisError("set", key, err)
		return fmt.Errorf("runtime: set %q: %w", key, err)
	}
	return nil
}

func (c *Cache) miss(key string, start time.Time) {
	c.stats.misses.Add(1)
	c.observe(Event{Op: OpMiss, Key: key, Duration: time.Since(start)})
}

// decodeError counts and logs an undecodable entry and deletes it, so that
// the reload that follows replaces it.
func (c *Cache) decodeError(ctx context.Context, key, full string, err error) {
	c.stats.decodeErrors.Add(1)
	c.observe(Event{Op: OpDecodeError, Key: key, Err: err})
	c.log.Info("repocache: undecodable cache entry deleted", "key", key, "err", err)
	if derr := c.client.Unlink(context.WithoutCancel(ctx), full).Err(); derr != nil {
		c.redisError("unlink", key, derr)
	}
}

// fill loads the value of a missed key, collapsing concurrent misses of the
// key in this process, and stores it.
func fill[T any](ctx context.Context, c *Cache, key, full string, load func(context.Context) (T, error), o callOptions, opts []CallOption) (T, error) {
	if o.lock == LockNone {
		return loadAndStore(ctx, c, key, full, load, &o, opts)
	}
	for {
		call, leader := c.flight.join(full)
		if leader {
			v, err := loadAndStore(ctx, c, key, full, load, &o, opts)
			call.finish(v, err)
			c.flight.forget(full, call)
			return v, err
		}
		select {
		case <-call.done:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
		// The leader's own context ended: its error is not ours to
		// return. Take over with our context.
		if isContextErr(call.err) && ctx.Err() == nil {
			continue
		}
		v, _ := call.val.(T)
		return v, call.err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func loadAndCount[T any](ctx context.Context, c *Cache, key string, load func(context.Context) (T, error)) (T, error) {
	start := time.Now()
	v, err := load(ctx)
	c.stats.loads.Add(1)
	if err != nil {
		c.stats.loadErrors.Add(1)
	}
	c.observe(Event{Op: OpLoad, Key: key, Duration: time.Since(start), Err: err})
	return v, err
}

func loadAndStore[T any](ctx context.Context, c *Cache, key, full string, load func(context.Context) (T, error), o *callOptions, opts []CallOption) (T, error) {
	v, err := loadAndCount(ctx, c, key, load)
	if err != nil || isNilPointer(v) {
		return v, err
	}
	data, merr := codec.Marshal(c.codec, v)
	if merr != nil {
		c.log.Error("repocache: value not cached: encode failed", "key", key, "err", merr)
		return v, nil
	}
	// The value is paid for: store it even if the caller has gone.
	if serr := c.store(context.WithoutCancel(ctx), key, full, data, o.expiry(), tagsFor(opts, v)); serr != nil {
		c.redisError("set", key, serr)
	}
	return v, nil
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
