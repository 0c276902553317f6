package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/codec"
)

// GetBatch is the batch form of GetCached, for a method that loads many
// entities by id: each id has its own key, key(id). The hits come back in one
// round trip (one MGET on a standalone server; on a cluster one MGET per
// slot, pipelined); load is called once, with the ids that missed only
// (each once, in their first order); each loaded element is stored under
// the key of idOf(element) with the call's tags, ResultTags computed from
// that element alone.
//
// The result keeps the order of ids (an id given twice appears twice); ids
// that neither the cache nor load produced are absent. As with GetCached, a
// Redis error is never returned (all ids are loaded and nothing is
// stored), errors from load are returned unchanged, and nil elements are
// not stored.
func GetBatch[ID comparable, T any](ctx context.Context, c *Cache, ids []ID, key func(ID) string, idOf func(T) ID,
	load func(context.Context, []ID) ([]T, error), opts ...CallOption) ([]T, error) {
	o := resolve(opts)
	keys := make([]string, len(ids))
	full := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = key(id)
		if err := o.check(keys[i], opts); err != nil {
			return nil, err
		}
		full[i] = c.prefix + keys[i]
	}
	if len(ids) == 0 {
		return []T{}, nil
	}
	if inTx(ctx) {
		return load(ctx, ids) // a transaction neither reads nor fills the cache
	}
	start := time.Now()
	raw, err := c.mget(ctx, full)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		c.redisError("mget", keys[0], err)
		raw = nil
	}
	found := make(map[ID]T, len(ids))
	var missing []ID
	var bad []string
	for i, id := range ids {
		if _, seen := found[id]; seen {
			continue
		}
		if raw != nil && raw[i] != nil {
			s := *raw[i]
			v, derr := codec.Unmarshal[T](c.codec, unsafe.Slice(unsafe.StringData(s), len(s)))
			if derr == nil {
				found[id] = v
				c.stats.hits.Add(1)
				c.observe(Event{Op: OpHit, Key: keys[i], Duration: time.Since(start)})
				continue
			}
			c.stats.decodeErrors.Add(1)
			c.observe(Event{Op: OpDecodeError, Key: keys[i], Err: derr})
			bad = append(bad, full[i])
		}
		if !contains(missing, id) {
			missing = append(missing, id)
			c.miss(keys[i], start)
		}
	}
	if len(bad) > 0 {
		c.log.Info("repocache: undecodable cache entries deleted", "count", len(bad), "first", bad[0])
		if _, err := c.unlink(context.WithoutCancel(ctx), bad); err != nil {
			c.redisError("unlink", bad[0], err)
		}
	}
	if len(missing) > 0 {
		loaded, err := loadAndCount(ctx, c, keys[0], func(ctx context.Context) ([]T, error) { return load(ctx, missing) })
		if err != nil {
			return nil, err
		}
		entries := make([]entry, 0, len(loaded))
		for _, v := range loaded {
			id := idOf(v)
			found[id] = v
			if raw == nil || isNilPointer(v) { // Redis is failing, or nothing to store
				continue
			}
			data, err := codec.Marshal(c.codec, v)
			if err != nil {
				c.log.Error("repocache: value not cached: encode failed", "key", key(id), "err", err)
				continue
			}
			k := key(id)
			entries = append(entries, entry{key: k, full: c.prefix + k, data: data, ttl: o.expiry(), tags: tagsFor(opts, v)})
		}
		if len(entries) > 0 {
			if err := c.storeMany(context.WithoutCancel(ctx), entries); err != nil {
				c.redisError("set", entries[0].key, err)
			}
		}
	}
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		if v, ok := found[id]; ok {
			out = append(out, v)
		}
	}
	return out, nil
}

func contains[ID comparable](s []ID, id ID) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}

// mget reads full keys in one round trip: one MGET on a standalone server,
// one MGET per hash slot in one pipeline otherwise. An absent key is nil.
func (c *Cache) mget(ctx context.Context, full []string) ([]*string, error) {
	out := make([]*string, len(full))
	fill := func(idx []int, vals []any) error {
		if len(vals) != len(idx) {
			return fmt.Errorf("runtime: MGET returned %d values for %d keys", len(vals), len(idx))
		}
		for j, v := range vals {
			if s, ok := v.(string); ok {
				out[idx[j]] = &s
			}
		}
		return nil
	}
	if !c.perKey {
		vals, err := c.client.MGet(ctx, full...).Result()
		if err != nil {
			return nil, err
		}
		idx := make([]int, len(full))
		for i := range idx {
			idx[i] = i
		}
		return out, fill(idx, vals)
	}
	bySlot := make(map[uint16][]int)
	var order []uint16
	for i, k := range full {
		s := slot(k)
		if _, ok := bySlot[s]; !ok {
			order = append(order, s)
		}
		bySlot[s] = append(bySlot[s], i)
	}
	pipe := c.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(order))
	for j, s := range order {
		idx := bySlot[s]
		keys := make([]string, len(idx))
		for n, i := range idx {
			keys[n] = full[i]
		}
		cmds[j] = pipe.MGet(ctx, keys...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	var errs []error
	for j, s := range order {
		errs = append(errs, fill(bySlot[s], cmds[j].Val()))
	}
	return out, errors.Join(errs...)
}
