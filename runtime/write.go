package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/repocache/repocache/codec"
)

// Put is the write-through step of a //cache:put method, run after the
// wrapped method succeeded: it invalidates every key that carries one of the
// Tags, ResultTags or AlsoInvalidate tags, then stores value under key with
// the Tags, ResultTags and Attach tags attached, for the TTL plus jitter.
//
// The write it follows has happened, so Put returns nothing: a Redis failure
// is logged and counted (OpError), and what it leaves stale is bounded by
// the TTL of the keys it could not reach. Misuse (no TTL, a bad key) is
// logged at error level, since it is a bug in the caller. Inside a
// transaction (see WithTx) it runs after the commit, and not at all after a
// rollback.
func Put[T any](ctx context.Context, c *Cache, key string, value T, opts ...CallOption) {
	o := resolve(opts)
	if err := o.check(key, opts); err != nil {
		c.log.Error("repocache: put skipped", "key", key, "err", err)
		return
	}
	if tx, ok := TxFromContext(ctx); ok {
		bg := afterCommit(ctx)
		tx.AfterCommit(func() { Put(bg, c, key, value, opts...) })
		return
	}
	if methodOf(ctx) == "" {
		ctx = WithMethod(ctx, o.method)
	}
	tags := tagsFor(opts, value)
	if err := c.InvalidateTags(ctx, dropTags(opts, value)...); err != nil {
		// Logged, counted and queued for retry by InvalidateTags. The
		// value is not stored: the tag sets may still hold what the
		// write made stale, and the store would be dropped with it.
		// Deleting the key is what keeps the next read fresh.
		_ = c.Invalidate(ctx, key)
		return
	}
	if isNilPointer(value) {
		_ = c.Invalidate(ctx, key)
		return
	}
	if err := set(ctx, c, key, value, &o, tags); err != nil {
		// The key may hold the value from before the write: it must go.
		_ = c.Invalidate(ctx, key)
	}
}

// AfterWrite is the step of a //cache:invalidate method, run after the
// wrapped method succeeded: it deletes the keys and every key that carries
// one of the tags. Like Put it returns nothing; failures are logged and
// counted. Inside a transaction (see WithTx) both run after the commit.
func (c *Cache) AfterWrite(ctx context.Context, keys, tags []string) {
	if tx, ok := TxFromContext(ctx); ok {
		bg := afterCommit(ctx)
		tx.AfterCommit(func() { c.AfterWrite(bg, keys, tags) })
		return
	}
	var errs []error
	if len(keys) > 0 {
		errs = append(errs, c.Invalidate(ctx, keys...))
	}
	if len(tags) > 0 {
		errs = append(errs, c.InvalidateTags(ctx, tags...))
	}
	if err := errors.Join(errs...); err != nil && errors.Is(err, ErrInvalidKey) {
		c.log.Error("repocache: invalidation skipped", "keys", keys, "tags", tags, "err", err)
	}
}

// AfterUnrenderedWrite is the step of a generated put or invalidate that
// could render none of its keys and tags (a nil pointer on every
// template's path, each reported through Unrendered): the write changed
// something the cache cannot name, so every value of the namespace is
// dropped (InvalidatePattern("*"), a SCAN of the namespace), as after a
// master's restart, and a write never goes through with no invalidation
// at all. It returns once the drop is done; the caller's cancellation does
// not cut it short. A drop that fails is counted and logged like a failed
// invalidation and retried in the background. Inside a transaction (see
// WithTx) it runs after the commit.
func (c *Cache) AfterUnrenderedWrite(ctx context.Context) {
	if tx, ok := TxFromContext(ctx); ok {
		bg := afterCommit(ctx)
		tx.AfterCommit(func() { c.AfterUnrenderedWrite(bg) })
		return
	}
	method := methodOf(ctx)
	if ok, suppressed := c.dropLog.allow(); ok {
		c.log.Error("repocache: a write rendered none of its keys and tags (nil pointers); every value of the namespace is dropped",
			"method", method, "namespace", c.ns, "suppressed", suppressed)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkTimeout)
	defer cancel()
	if _, err := c.InvalidatePattern(dctx, "*"); err != nil {
		c.stats.invalidationFailures.Add(1)
		c.observe(Event{Op: OpInvalidateError, Key: "*", Err: err, Method: method})
		c.log.Error("repocache: dropping the namespace after an unrendered write failed; retrying in the background", "method", method, "err", err)
		c.retryLater(nil, nil, []string{"*"})
	}
}

// Unrendered records an invalidation key or tag of a generated method that
// could not be rendered (a nil pointer on the template's field path): the
// method still drops every other key and tag, and this one is logged and
// counted (Stats.Unrendered, OpUnrendered) so that the gap is visible.
func (c *Cache) Unrendered(method, template string) {
	c.stats.unrendered.Add(1)
	c.observe(Event{Op: OpUnrendered, Key: method, Method: method, Err: fmt.Errorf("not rendered: %s", template)})
	if ok, suppressed := c.invLog.allow(); ok {
		c.log.Error("repocache: invalidation template not rendered (nil pointer); it stays until its TTL", "method", method, "template", template, "suppressed", suppressed)
	}
}

// Bypass records a call that went to the source without the cache because
// its key could not be built (a nil pointer on the key's field path, say):
// it is logged and counted, and the caller passes the call through.
func (c *Cache) Bypass(method, reason string) {
	c.stats.bypasses.Add(1)
	c.observe(Event{Op: OpBypass, Key: method, Method: method, Err: fmt.Errorf("uncached: %s", reason)})
	if ok, suppressed := c.errLog.allow(); ok {
		c.log.Warn("repocache: call passed through uncached", "method", method, "reason", reason, "suppressed", suppressed)
	}
}

type methodKey struct{}

// WithMethod returns a context that names the repository method the calls
// made with it serve, e.g. "Repository.DeleteProject": Invalidate,
// InvalidateTags and AfterWrite report it in their events (Event.Method).
// Generated invalidations pass it; reads and Put take the Method call
// option instead, which costs a hit nothing.
func WithMethod(ctx context.Context, name string) context.Context {
	if name == "" {
		return ctx // names no method: nothing to carry
	}
	return context.WithValue(ctx, methodKey{}, name)
}

// methodOf returns the method that ctx names, or "".
func methodOf(ctx context.Context) string {
	m, _ := ctx.Value(methodKey{}).(string)
	return m
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
