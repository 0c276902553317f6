package runtime

import (
	"context"
	"strconv"
	"time"

	"github.com/repocache/repocache/codec"
)

// startRefresh starts refresh in the background with a copy of the call's
// options: the copy, not the caller's options, outlives the call, so the
// caller's arguments stay on its stack.
func startRefresh[T any](ctx context.Context, c *Cache, key, full, stamp string, load func(context.Context) (T, error), o callOptions, opts []CallOption) {
	own := append([]CallOption(nil), opts...)
	c.refreshStale(ctx, key, full, stamp, func(ctx context.Context) error {
		return refresh(ctx, c, key, full, stamp, load, o, own)
	})
}

// refreshStale runs one background refresh of a stale key per process (and,
// through a short Redis lock, one across processes) unless one is running.
// A failed refresh is logged; the stale value keeps being served until the
// SWR window ends (grace).
func (c *Cache) refreshStale(ctx context.Context, key, full, stamp string, run func(context.Context) error) {
	call, leader, _ := c.refresh.join(full)
	if !leader {
		return
	}
	started := c.background(ctx, maxLoad, func(ctx context.Context) {
		defer func() {
			c.refresh.forget(full, call)
			close(call.done)
		}()
		if err := run(ctx); err != nil {
			c.log.Warn("repocache: stale-while-revalidate refresh failed; serving the stale value", "key", key, "err", err)
		}
	})
	if !started {
		c.refresh.forget(full, call)
		close(call.done)
	}
}

// refresh reloads a stale key under its refresh lock and replaces the stale
// envelope only if the key still holds it and none of the value's tags was
// invalidated since the refresh began.
func refresh[T any](ctx context.Context, c *Cache, key, full, stamp string, load func(context.Context) (T, error), o callOptions, opts []CallOption) error {
	lockKey := c.prefix + "#refresh:" + key
	token := newPlaceholder()
	reply, err := refreshLockScript.Run(ctx, c.client, []string{lockKey}, token, ms(c.leaseTTL)).Text()
	if err != nil {
		c.redisError("refresh_lock", key, err)
		return err
	}
	start, err := strconv.ParseFloat(reply, 64)
	if err != nil || start == 0 {
		return err // "0": another process refreshes it
	}
	l := &lease{full: lockKey, token: token, start: start}
	defer c.release(ctx, l)
	stop := c.keepAlive(ctx, l)
	v, err := loadAndCount(ctx, c, key, o.method, load)
	stop()
	if err != nil {
		return err
	}
	if isNilPointer(v) {
		return nil
	}
	frame, err := codec.Marshal(c.codec, v)
	if err != nil {
		return err
	}
	ttl := o.expiry()
	data := makeEnvelope(0, time.Now().Add(ttl), frame)
	if tags := tagsFor(opts, v); len(tags) > 0 {
		if c.topologyUnsure(ctx, append([]string{full}, c.tagKeys(tags)...)...) {
			return nil // as in storeLeasedMany: not until a check has run
		}
		fresh, err := c.tagsUnchangedSince(ctx, full, ttl+o.swr, tags, start)
		if err != nil || !fresh {
			return err
		}
	}
	ok, err := casRefreshScript.Run(ctx, c.client, []string{full}, stamp, data, ms(ttl+o.swr)).Int()
	c.l1Drop(full)
	if err != nil {
		return err
	}
	if ok == 1 {
		c.stats.sets.Add(1)
		c.observe(Event{Op: OpSet, Key: key, Method: o.method})
	}
	return nil
}
