package runtime

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// InvalidatePattern deletes every key of the namespace that matches the glob
// pattern (SCAN MATCH syntax, namespace excluded): "workspace:*". It walks
// SCAN on every master of a cluster, never KEYS, and deletes in batches of
// at most 500 keys per command.
//
// It is an administrative tool, for a deploy hook or an operator: its cost
// grows with the size of the whole keyspace, not with the number of keys it
// deletes, so it does not belong on a request path. Use tags there. Values
// escaped with EscapeKeyPart never contain glob characters, so a pattern
// cannot be widened by data.
//
// It deletes values (and the placeholders of loads in flight, whose stores
// then fail), never the cache's own records under "#": a tag's set, with
// its members and its last invalidation's time, is what a later
// InvalidateTags needs to find a value stored while the pattern ran (after
// SCAN passed its key); deleted, that value would outlive every
// invalidation of the tag (TestPatternDropLosesStoredMember). Those
// records expire by themselves, and their members left pointing at deleted
// keys are pruned as usual.
func (c *Cache) InvalidatePattern(ctx context.Context, pattern string) (int64, error) {
	if pattern == "" {
		return 0, fmt.Errorf("runtime: invalidate pattern: %w: empty pattern", ErrInvalidKey)
	}
	start := time.Now()
	var total atomic.Int64
	err := forEachMaster(ctx, c.client, func(ctx context.Context, m *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := m.Scan(ctx, cursor, c.prefix+pattern, tagBatch).Result()
			if err != nil {
				return err
			}
			keys = c.valueKeys(keys)
			// Keys found on one node can still hash to different slots:
			// with a cluster, one UNLINK per key.
			pipe := m.Pipeline()
			cmds := make([]*redis.IntCmd, 0, len(keys))
			if c.perKey {
				for _, k := range keys {
					cmds = append(cmds, pipe.Unlink(ctx, k))
				}
			} else if len(keys) > 0 {
				cmds = append(cmds, pipe.Unlink(ctx, keys...))
			}
			if len(cmds) > 0 {
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
				for _, cmd := range cmds {
					total.Add(cmd.Val())
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	})
	c.l1Flush() // which keys matched is not worth knowing here
	c.invalidated(pattern, methodOf(ctx), false, total.Load(), start)
	if err != nil {
		c.redisError("invalidate_pattern", pattern, err)
		return total.Load(), fmt.Errorf("runtime: invalidate pattern %q: %w", pattern, err)
	}
	return total.Load(), nil
}

// valueKeys keeps, in place, the keys of keys that hold values or
// placeholders: not the cache's own records (a name starting with "#"
// after the namespace, which no key given to GetCached can).
func (c *Cache) valueKeys(keys []string) []string {
	out := keys[:0]
	for _, k := range keys {
		if validKey(k[len(c.prefix):]) { // SCAN answers names that begin with the prefix
			out = append(out, k)
		}
	}
	return out
}
