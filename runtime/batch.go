package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/codec"
)

// GetBatch is the batch form of GetCached, for a method that loads many
// entities by id: each id has its own key, key(id). The hits come back in one
// round trip (one MGET on a standalone server; on a cluster one MGET per
// slot, pipelined); load is called once, with the ids that missed only
// (each once, in their first order); each loaded element is stored under
// the key of idOf(element) with the call's tags, ResultTags computed from
// that element alone. Like GetCached, each miss is stored under a lease, so
// that an invalidation while the batch loads is never undone by its store.
//
// The result keeps the order of ids, each found element once, at the first
// place of its id (a duplicate id does not repeat it); ids that neither the
// cache nor load produced are absent. As with GetCached, a
// Redis error is never returned (all ids are loaded and nothing is
// stored), errors from load are returned unchanged, and nil elements are
// not stored. Inside a transaction (WithTx) the cache is neither read nor
// filled: load is called with every id once, and the result is ordered as
// above.
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
		// A transaction neither reads nor fills the cache; the result is
		// still a batch get's: each id asked once, in the order of ids.
		var uniq []ID
		seen := make(map[ID]bool, len(ids))
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				uniq = append(uniq, id)
			}
		}
		loaded, err := load(ctx, uniq)
		if err != nil {
			return nil, err
		}
		found := make(map[ID]T, len(loaded))
		for _, v := range loaded {
			found[idOf(v)] = v
		}
		return inIDOrder(ids, found), nil
	}
	start := time.Now()
	// The near cache first; Redis for the rest.
	var (
		held  []*l1Item // what the near cache held, by index
		snaps []l1Snap
		ask   = full
	)
	if c.l1 != nil && o.l1Allowed() {
		held, snaps, ask = c.l1Batch(full, start.UnixNano())
	}
	c.maybeCheckNodes(start)
	var raw []*string
	var err error
	switch {
	case len(ask) == 0:
	case c.br.allow() && !c.topologyUnsure(ctx, ask...):
		answers := c.answers()
		raw, err = c.mget(ctx, ask)
		if err == nil && c.answeredUnseen(ctx, answers, ask...) {
			err = errUnsure // a master found during the reads: see getCached
		}
	default:
		err = ErrBreakerOpen
	}
	if err != nil && err != ErrBreakerOpen && err != errUnsure {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		c.redisError("mget", keys[0], err)
	}
	// Redis failed: what it should have answered is loaded, not stored.
	redisFailed := err != nil
	if err != nil {
		raw = nil
	}
	if held != nil {
		raw = c.l1Merge(ctx, full, held, snaps, raw, start.UnixNano(), &o)
	}
	found := make(map[ID]T, len(ids))
	absent := make(map[ID]bool) // a cached not-found
	var missing []int           // indexes into ids, each id once
	for i, id := range ids {
		if _, ok := found[id]; ok || absent[id] || containsID(ids, missing, id) {
			continue
		}
		if raw != nil && raw[i] != nil {
			fromL1 := held != nil && held[i] != nil
			var (
				v      T
				ok     bool
				cached error
			)
			if fromL1 {
				v, _, ok, cached = decodeL1[T](ctx, c, keys[i], full[i], held[i], opts)
			} else {
				v, _, ok, cached = decodeHit[T](ctx, c, keys[i], full[i], *raw[i], opts)
			}
			if ok {
				c.stats.hits.Add(1)
				c.observe(Event{Op: OpHit, Key: keys[i], Duration: time.Since(start), Method: o.method, L1: fromL1})
				if cached != nil || isNilPointer(v) {
					absent[id] = true
				} else {
					found[id] = v
				}
				continue
			}
		}
		missing = append(missing, i)
		c.miss(keys[i], o.method, start)
	}
	if len(missing) > 0 {
		if err := loadBatch(ctx, c, ids, keys, full, missing, redisFailed, found, idOf, load, &o, opts); err != nil {
			return nil, err
		}
	}
	return inIDOrder(ids, found), nil
}

// inIDOrder returns the elements found in the order of ids, each once, at
// its id's first place; ids not found are absent. It empties found.
func inIDOrder[ID comparable, T any](ids []ID, found map[ID]T) []T {
	out := make([]T, 0, len(found))
	for _, id := range ids {
		if v, ok := found[id]; ok {
			out = append(out, v)
			delete(found, id)
		}
	}
	return out
}

func containsID[ID comparable](ids []ID, idx []int, id ID) bool {
	for _, i := range idx {
		if ids[i] == id {
			return true
		}
	}
	return false
}

// loadBatch leases the missing keys in one pipeline, loads the ids that no
// other loader stored meanwhile in one call, and stores each loaded element
// under its lease, as loadWithLease does for one key: an element whose key
// or tags were invalidated while it loaded is returned but not stored.
func loadBatch[ID comparable, T any](ctx context.Context, c *Cache, ids []ID, keys, full []string, missing []int, redisDown bool,
	found map[ID]T, idOf func(T) ID, load func(context.Context, []ID) ([]T, error), o *callOptions, opts []CallOption) error {
	leases := make(map[ID]*lease, len(missing))
	keyOf := make(map[ID]int, len(missing))
	var toLoad []ID
	if redisDown {
		for _, i := range missing {
			toLoad = append(toLoad, ids[i])
		}
	} else {
		calls := make([]scriptCall, len(missing))
		tokens := make([]string, len(missing))
		for n, i := range missing {
			tokens[n] = newPlaceholder()
			calls[n] = scriptCall{leaseScript, []string{full[i]}, []any{tokens[n], ms(c.leaseTTL)}}
		}
		for n, cmd := range c.runScripts(ctx, calls) {
			i := missing[n]
			id := ids[i]
			keyOf[id] = i
			res, err := cmd.Slice()
			var (
				state leaseState
				l     *lease
				val   string
			)
			if err == nil {
				state, l, val, _, err = parseLease(full[i], tokens[n], res)
			}
			switch {
			case err != nil:
				c.redisError("lease", keys[i], err)
			case state == leaseGranted:
				leases[id] = l
			case state == leaseValue:
				if v, _, ok, cached := decodeHit[T](ctx, c, keys[i], full[i], val, opts); ok {
					if cached == nil && !isNilPointer(v) {
						found[id] = v
					}
					continue
				}
			}
			toLoad = append(toLoad, id)
		}
	}
	releaseAll := func() {
		if len(leases) == 0 {
			return
		}
		held := make([]*lease, 0, len(leases))
		for _, l := range leases {
			held = append(held, l)
		}
		c.background(ctx, c.storeTimeout(), func(bg context.Context) {
			for _, l := range held {
				c.release(bg, l)
			}
		})
	}
	if len(toLoad) == 0 {
		return nil
	}
	started := time.Now()
	loaded, err := loadAndCount(ctx, c, keys[missing[0]], o.method, func(ctx context.Context) ([]T, error) { return load(ctx, toLoad) })
	if err != nil {
		releaseAll()
		return err
	}
	var (
		entries []entry
		owned   []*lease
	)
	for _, v := range loaded {
		id := idOf(v)
		found[id] = v
		l := leases[id]
		if l == nil || isNilPointer(v) {
			continue
		}
		data, err := codec.Marshal(c.codec, v)
		if err != nil {
			c.encodeError(keys[keyOf[id]], err)
			continue
		}
		delete(leases, id)
		entries = append(entries, entry{key: keys[keyOf[id]], full: l.full, data: data, ttl: o.expiry(), tags: tagsFor(opts, v)})
		owned = append(owned, l)
	}
	releaseAll() // ids that load did not return
	if len(entries) == 0 {
		return nil
	}
	slow := time.Since(started) > maxLoad
	stored := make(chan struct{})
	if !c.background(ctx, c.storeTimeout(), func(bg context.Context) {
		defer close(stored)
		if slow {
			for _, l := range owned {
				c.release(bg, l)
			}
			return
		}
		c.storeLeasedMany(WithMethod(bg, o.method), entries, owned, nil)
	}) {
		return nil
	}
	c.awaitStore(ctx, stored)
	return nil
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
