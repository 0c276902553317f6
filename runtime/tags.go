package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tag storage (docs/design.md, "Tags: design and cost", says why):
//
//   - A tag is a sorted set at "<ns>:#tag:{<tag>}" whose members are the
//     full Redis keys tagged with it, each scored with the time (Redis
//     server clock, milliseconds) at which that key expires.
//   - Tagging a key runs tagAddScript on the tag's key alone: it prunes up to
//     tagPrune members that have already expired, adds the new member
//     (ZADD GT keeps the later expiry), and sets the set's own expiry to its
//     highest score. The set therefore never outlives the last key it points
//     to, and dead members are removed as new ones arrive.
//   - InvalidateTags runs tagDropScript, which renames the set to a fresh
//     drain key in the same slot (the braces are a cluster hash tag), O(1),
//     lists the drain in the tag's set of pending drains, records the
//     invalidation's time in a fresh set as the member "#v" (scored with
//     that time plus versionTTL, so that it expires like any member), and
//     returns every pending drain. Then it empties each of them tagBatch
//     members at a time: read a batch, unlink its keys (one command per key
//     on a cluster, so no command spans two slots), remove the batch from
//     the drain. A drain leaves the pending list only once it is empty.
//     So a retried drop loses nothing, a drop that stopped half way is
//     finished by the next one, and two concurrent drops of one tag each
//     return only after every key that carried the tag is gone.
//   - tagAddScript returns the "#v" score: a loader that took its lease
//     before the tag's last invalidation does not store (no stale sets).
//
// No command touches keys of two slots, every command is bounded by
// tagBatch or tagPrune members, and a hit never reads a tag.

const (
	// tagBatch bounds the members read and the keys unlinked per command
	// while invalidating a tag.
	tagBatch = 500
	// tagPrune bounds the expired members removed per tagging.
	tagPrune = 64
	// tagMargin keeps a member in its set a little past its key's expiry,
	// against clock skew between cluster nodes.
	tagMargin = time.Second
	// versionTTL is how long a tag remembers its last invalidation. A load
	// that takes longer than maxLoad is not stored.
	versionTTL = time.Minute
	maxLoad    = versionTTL - 5*time.Second
	// versionMember is the member of a tag set that records the tag's last
	// invalidation; it is never a key (keys start with the namespace).
	versionMember = "#v"
)

// tagAddScript: KEYS[1] the tag set; ARGV[1] the member's TTL in ms;
// ARGV[2..] members. Returns the "#v" score (the last invalidation's time
// plus versionTTL, in ms with a µs fraction) as a string, or "0".
var tagAddScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ` + strconv.Itoa(tagPrune) + `)
if #dead > 0 then redis.call('ZREM', KEYS[1], unpack(dead)) end
local exp = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'GT', exp, ARGV[i]) end
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then redis.call('PEXPIREAT', KEYS[1], string.format('%d', tonumber(top[2]))) end
local v = redis.call('ZSCORE', KEYS[1], '` + versionMember + `')
if v then return v end
return '0'
`)

// tagDropScript: KEYS[1] the tag set; KEYS[2] its set of pending drains;
// KEYS[3] a fresh drain key (all in one slot); ARGV[1] versionTTL in ms.
// It moves the tag's members to the drain key, lists that key among the
// pending drains, and starts a new set holding only the invalidation's time
// (ms with a µs fraction). It returns every pending drain: this call's and
// those of invalidations that have not finished (in flight elsewhere, or
// stopped half way), which the caller must empty before it returns.
//
// Run twice (a retry after a lost reply), the second run finds no members
// and only lists the drains again; if members arrived in between, they are
// merged into the same drain key, never written over it.
var tagDropScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], '` + versionMember + `') then n = n - 1 end
if n > 0 then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('ZUNIONSTORE', KEYS[3], 2, KEYS[3], KEYS[1], 'AGGREGATE', 'MAX')
    redis.call('DEL', KEYS[1])
  else
    redis.call('RENAME', KEYS[1], KEYS[3])
  end
  redis.call('ZREM', KEYS[3], '` + versionMember + `')
  local top = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[3], string.format('%d', tonumber(top[2])))
  local dt = redis.call('PTTL', KEYS[3])
  if dt > 0 then
    redis.call('SADD', KEYS[2], KEYS[3])
    if redis.call('PTTL', KEYS[2]) < dt then redis.call('PEXPIRE', KEYS[2], dt) end
  end
end
redis.call('ZADD', KEYS[1], string.format('%.3f', now + tonumber(ARGV[1])), '` + versionMember + `')
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return redis.call('SMEMBERS', KEYS[2])
`)

// drainDoneScript forgets a drain that is empty (an empty sorted set no
// longer exists). KEYS[1] the pending drains; KEYS[2] the drain.
var drainDoneScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 0 then return redis.call('SREM', KEYS[1], KEYS[2]) end
return 0
`)

// tagKeys are the Redis keys of the tags' sets.
func (c *Cache) tagKeys(tags []string) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = c.tagKey(t)
	}
	return out
}

// tagKey is the Redis key of a tag's set. '%', '{' and '}' are escaped so
// that the braces are the key's only hash tag.
func (c *Cache) tagKey(tag string) string {
	return c.prefix + "#tag:{" + escapeTag(tag) + "}"
}

// tagEscaper escapes the bytes that would break a tag key's hash tag.
var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

func escapeTag(tag string) string {
	if !strings.ContainsAny(tag, "%{}") {
		return tag
	}
	return tagEscaper.Replace(tag)
}

// entry is one value to store.
type entry struct {
	key, full string
	data      []byte
	ttl       time.Duration
	tags      []string
}

// tagCalls are the tagging scripts that add full to each tag's set for
// ttl (plus the margin).
func (c *Cache) tagCalls(full string, ttl time.Duration, tags []string) []scriptCall {
	calls := make([]scriptCall, len(tags))
	for i, t := range tags {
		calls[i] = scriptCall{tagAddScript, []string{c.tagKey(t)}, []any{ms(ttl + tagMargin), full}}
	}
	return calls
}

// invalidatedSince reads a tagging script's reply (the tag's last
// invalidation time plus versionTTL, or "0") and reports whether the tag
// was invalidated after start (server time, unix ms, of a lease), less the
// tolerated clock skew.
func (c *Cache) invalidatedSince(reply string, start float64) (bool, error) {
	score, err := strconv.ParseFloat(reply, 64)
	if err != nil {
		return false, fmt.Errorf("invalidation time %q: %w", reply, err)
	}
	return score != 0 && score-float64(versionTTL.Milliseconds()) >= start-float64(c.skew.Microseconds())/1000, nil
}

// store writes one entry; see storeMany.
func (c *Cache) store(ctx context.Context, key, full string, data []byte, ttl time.Duration, tags []string) error {
	return c.storeMany(ctx, []entry{{key: key, full: full, data: data, ttl: ttl, tags: tags}})
}

// storeMany writes each entry under its key for its TTL and adds the key to
// each of its tags' sets, all in one pipeline (one round trip on a
// standalone server). A value whose tag could not be recorded is deleted
// again: a key that its tag cannot reach would escape invalidation.
func (c *Cache) storeMany(ctx context.Context, entries []entry) error {
	start := time.Now()
	c.maybeCheckNodes(start)
	if !c.br.allow() {
		return ErrBreakerOpen
	}
	for _, e := range entries {
		c.noteTTL(e.ttl)
	}
	var (
		calls []scriptCall
		owner []int
	)
	for i, e := range entries {
		for _, sc := range c.tagCalls(e.full, e.ttl, e.tags) {
			calls = append(calls, sc)
			owner = append(owner, i)
		}
	}
	pipe := c.client.Pipeline()
	cmds := queueScripts(ctx, pipe, calls)
	sets := make([]*redis.StatusCmd, len(entries))
	for i, e := range entries {
		sets[i] = pipe.Set(ctx, e.full, e.data, e.ttl)
	}
	_, _ = pipe.Exec(ctx)
	c.retryNoScript(ctx, cmds, calls)
	for _, e := range entries {
		c.l1Drop(e.full)
	}
	failed := make(map[int]error)
	for n, cmd := range cmds {
		if err := cmd.Err(); err != nil && failed[owner[n]] == nil {
			failed[owner[n]] = fmt.Errorf("tag key %q: %w", calls[n].keys[0], err)
		}
	}
	var errs, undo []string
	var firstErr error
	for i, set := range sets {
		err := set.Err()
		switch {
		case err != nil:
		case failed[i] != nil:
			err = failed[i]
			undo = append(undo, entries[i].full)
		default:
			c.stats.sets.Add(1)
			c.observe(Event{Op: OpSet, Key: entries[i].key, Duration: time.Since(start), Method: methodOf(ctx)})
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
		errs = append(errs, entries[i].key)
	}
	if len(undo) > 0 {
		if _, err := c.unlink(ctx, undo); err != nil {
			return fmt.Errorf("store %v: %w; unlink of untagged values: %w", errs, firstErr, err)
		}
	}
	if firstErr != nil {
		return fmt.Errorf("store %v: %w", errs, firstErr)
	}
	return nil
}

// tagsUnchangedSince adds full to each tag's set (for ttl) and reports
// whether none of the tags was invalidated since start (server time, unix
// ms, of the lease), less the tolerated clock skew. Adding first and checking
// in the same script closes the race: an invalidation either comes before
// the add (and the check sees it) or after (and its drain sees the key).
func (c *Cache) tagsUnchangedSince(ctx context.Context, full string, ttl time.Duration, tags []string, start float64) (bool, error) {
	unchanged := true
	for i, cmd := range c.runScripts(ctx, c.tagCalls(full, ttl, tags)) {
		reply, err := cmd.Text()
		if err != nil {
			return false, fmt.Errorf("tag %q: %w", tags[i], err)
		}
		after, err := c.invalidatedSince(reply, start)
		if err != nil {
			return false, fmt.Errorf("tag %q: %w", tags[i], err)
		}
		unchanged = unchanged && !after
	}
	return unchanged, nil
}

// storeLeased stores one entry under its lease; see storeLeasedMany.
func (c *Cache) storeLeased(ctx context.Context, key string, l *lease, data []byte, ttl time.Duration, tags []string, sending func()) bool {
	return c.storeLeasedMany(ctx, []entry{{key: key, full: l.full, data: data, ttl: ttl, tags: tags}}, []*lease{l}, sending)[0]
}

// storeLeasedMany stores each entry under its key if its lease is still
// held (compare-and-set on the placeholder) and none of its tags was
// invalidated since the lease was granted. Otherwise the load raced with a
// write: the value may be stale, and it is dropped. It takes two pipelines,
// the tagging scripts of every entry, then the compare-and-sets (and the
// releases of the leases of entries that are not stored); without tags,
// only the second. sending, if set, is called right before the
// compare-and-sets are sent (see verdict). stored reports each entry's
// success; Redis errors are logged and counted.
func (c *Cache) storeLeasedMany(ctx context.Context, entries []entry, leases []*lease, sending func()) (stored []bool) {
	start := time.Now()
	for _, e := range entries {
		c.noteTTL(e.ttl)
	}
	var (
		calls []scriptCall
		owner []int
	)
	raced := make([]bool, len(entries))
	failed := make([]bool, len(entries))
	for i, e := range entries {
		if len(leases[i].tagged) == 0 {
			for _, sc := range c.tagCalls(e.full, e.ttl, e.tags) {
				calls = append(calls, sc)
				owner = append(owner, i)
			}
			continue
		}
		for _, t := range e.tags {
			if slices.Contains(leases[i].tagged, t) {
				continue // tagged before the lease (tryLease)
			}
			calls = append(calls, c.tagCalls(e.full, e.ttl, []string{t})...)
			owner = append(owner, i)
		}
	}
	if c.perKey {
		// A master of the key or of a tag set may have been replaced by a
		// replica that lacks a tag's last invalidation record: the tag
		// check below would pass a load from before it. Such an entry is
		// not stored until a check has dropped the namespace (which also
		// deletes the leases taken before).
		for i, e := range entries {
			keys := []string{e.full}
			for _, t := range e.tags {
				keys = append(keys, c.tagKey(t))
			}
			raced[i] = raced[i] || c.topologyUnsure(ctx, keys...)
		}
	}
	answers := c.answers()
	tagged := c.runScripts(ctx, calls)
	if len(calls) > 0 && c.answeredUnseen(ctx, answers) {
		// A tag's invalidation record may be missing on a master no check
		// has seen (a MOVED that go-redis followed): store nothing.
		for i := range raced {
			raced[i] = true
		}
	}
	for n, cmd := range tagged {
		i := owner[n]
		reply, err := cmd.Text()
		var after bool
		if err == nil {
			after, err = c.invalidatedSince(reply, leases[i].start)
		}
		if err != nil {
			c.redisError("tag", entries[i].key, err)
			failed[i] = true
		}
		raced[i] = raced[i] || after
	}
	calls = calls[:0]
	for i, e := range entries {
		if raced[i] || failed[i] {
			calls = append(calls, scriptCall{releaseScript, []string{e.full}, []any{leases[i].token}})
		} else {
			calls = append(calls, c.casCall(e, leases[i]))
		}
	}
	stored = make([]bool, len(entries))
	if sending != nil {
		sending()
	}
	cmds := c.runScripts(ctx, calls)
	for _, e := range entries {
		c.l1Drop(e.full)
	}
	if c.leasedStored != nil {
		c.leasedStored()
	}
	for i, cmd := range cmds {
		n, err := cmd.Int()
		switch {
		case err != nil:
			c.redisError("set", entries[i].key, err)
		case failed[i]:
		case raced[i] || n == 0:
			c.staleSetPrevented(entries[i].key, methodOf(ctx))
		default:
			stored[i] = true
			c.stats.sets.Add(1)
			c.observe(Event{Op: OpSet, Key: entries[i].key, Duration: time.Since(start), Method: methodOf(ctx)})
		}
	}
	return stored
}

// casCall is the compare-and-set of entry e under lease l: with the sets of
// the tags tagged with the lease when it has some (casStoreTaggedScript).
func (c *Cache) casCall(e entry, l *lease) scriptCall {
	keys := []string{e.full}
	for _, t := range l.tagged {
		if slices.Contains(e.tags, t) {
			keys = append(keys, c.tagKey(t))
		}
	}
	if len(keys) == 1 {
		return scriptCall{casStoreScript, keys, []any{l.token, e.data, ms(e.ttl)}}
	}
	return scriptCall{casStoreTaggedScript, keys, []any{l.token, e.data, ms(e.ttl), ms(tagMargin)}}
}

// staleSetPrevented counts a loaded value that was not stored because the
// key or one of its tags was invalidated while it loaded.
func (c *Cache) staleSetPrevented(key, method string) {
	c.stats.staleSetsPrevented.Add(1)
	c.observe(Event{Op: OpStaleSetPrevented, Key: key, Method: method})
}

// Invalidate deletes keys (given as to GetCached, without the namespace).
// Their tag sets keep a dead member each until it is pruned or expires.
func (c *Cache) Invalidate(ctx context.Context, keys ...string) error {
	full := make([]string, 0, len(keys))
	for _, k := range keys {
		if !validKey(k) {
			return fmt.Errorf("runtime: invalidate: %w %q", ErrInvalidKey, k)
		}
		full = append(full, c.prefix+k)
	}
	start := time.Now()
	c.maybeCheckNodes(start)
	var (
		n   int64
		err = ErrBreakerOpen
	)
	if c.br.allow() {
		n, err = c.unlink(ctx, full)
		c.br.recordCtx(ctx, err)
	}
	c.invalidated(joinComma(keys), methodOf(ctx), false, n, start)
	if err != nil {
		c.invalidationFailed(keys, nil, methodOf(ctx), err)
		return fmt.Errorf("runtime: invalidate: %w", err)
	}
	// A key deleted on a master no check has seen is deleted where its
	// readers find it, and they do not trust that master (topologyUnsure):
	// only a suspect topology is checked.
	_ = c.confirmTopology(ctx, nil, 0)
	return nil
}

// InvalidateTags deletes every key that carries one of the tags. Each Redis
// command it sends touches one slot and at most 500 keys, so a tag with
// 100 000 members is dropped in small steps that never block the server.
// Every tag is tried; the error joins the failures.
func (c *Cache) InvalidateTags(ctx context.Context, tags ...string) error {
	var errs []error
	answers := c.answers()
	for _, t := range tags {
		if t == "" {
			errs = append(errs, fmt.Errorf("runtime: invalidate tags: %w: empty tag", ErrInvalidKey))
			continue
		}
		start := time.Now()
		c.maybeCheckNodes(start)
		var (
			n   int64
			err = ErrBreakerOpen
		)
		if c.br.allow() {
			n, err = c.dropTag(ctx, t)
			c.br.recordCtx(ctx, err)
		}
		c.invalidated(t, methodOf(ctx), true, n, start)
		if err != nil {
			c.invalidationFailed(nil, []string{t}, methodOf(ctx), err)
			errs = append(errs, fmt.Errorf("runtime: invalidate tag %q: %w", t, err))
		}
	}
	if len(errs) == 0 {
		if err := c.confirmTopology(ctx, c.tagKeys(tags), answers); err != nil {
			c.invalidationFailed(nil, tags, methodOf(ctx), err)
			errs = append(errs, fmt.Errorf("runtime: invalidate tags: %w", err))
		}
	}
	c.l1Settle(ctx)
	return errors.Join(errs...)
}

// invalidated counts and reports an invalidation of keys (what joins them)
// or of a tag (tag, what is the tag).
func (c *Cache) invalidated(what, method string, tag bool, n int64, start time.Time) {
	c.stats.invalidated.Add(n)
	c.observe(Event{Op: OpInvalidate, Key: what, Tag: tag, Count: int(n), Duration: time.Since(start), Method: method})
}

// dropTag invalidates one tag: tagDropScript moves its members aside, then
// every pending drain of the tag is emptied, tagBatch members at a time.
// Each step is safe to repeat and to stop: a member leaves a drain only
// after its key was deleted, and a drain stays listed until it is empty, so
// an invalidation that failed or stopped half way is finished by the next
// invalidation of the tag (or by the background retry), and a concurrent
// invalidation of the same tag does not return before the keys moved by the
// other are gone too.
func (c *Cache) dropTag(ctx context.Context, tag string) (int64, error) {
	tk := c.tagKey(tag)
	pending := tk + ":drains"
	var r [8]byte
	_, _ = rand.Read(r[:])
	drain := tk + ":drain:" + hex.EncodeToString(r[:])
	drains, err := tagDropScript.Run(ctx, c.client, []string{tk, pending, drain}, ms(versionTTL)).StringSlice()
	if err != nil {
		return 0, err
	}
	if c.tagDropped != nil {
		c.tagDropped(tag)
	}
	var total int64
	for _, d := range drains {
		n, err := c.drain(ctx, pending, d)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// drain deletes the keys listed in the drain key d and removes them from
// it, until it is empty; then it takes d off the pending list. Concurrent
// drainers of one drain may delete a key twice, which is harmless.
func (c *Cache) drain(ctx context.Context, pending, d string) (int64, error) {
	var total int64
	members, err := c.client.ZRange(ctx, d, 0, tagBatch-1).Result()
	for err == nil && len(members) > 0 {
		keys := members[:0:0]
		for _, m := range members {
			if m != versionMember {
				keys = append(keys, m)
			}
		}
		var n int64
		n, err = c.unlink(ctx, keys)
		total += n
		if err != nil {
			break
		}
		// Remove what was deleted and read the next batch in one round
		// trip; the ZREM runs first.
		pipe := c.client.Pipeline()
		pipe.ZRem(ctx, d, toAny(members)...)
		next := pipe.ZRange(ctx, d, 0, tagBatch-1)
		if _, err = pipe.Exec(ctx); err == nil {
			members = next.Val()
		}
	}
	if err != nil {
		return total, err
	}
	return total, drainDoneScript.Run(ctx, c.client, []string{pending, d}).Err()
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// unlink deletes full Redis keys in commands of at most tagBatch keys; on a
// cluster or ring, one UNLINK per key, pipelined, so that no command spans
// two slots.
func (c *Cache) unlink(ctx context.Context, full []string) (int64, error) {
	if len(full) == 0 {
		return 0, nil
	}
	pipe := c.client.Pipeline()
	var cmds []*redis.IntCmd
	if c.perKey {
		cmds = make([]*redis.IntCmd, 0, len(full))
		for _, k := range full {
			cmds = append(cmds, pipe.Unlink(ctx, k))
		}
	} else {
		for i := 0; i < len(full); i += tagBatch {
			cmds = append(cmds, pipe.Unlink(ctx, full[i:min(i+tagBatch, len(full))]...))
		}
	}
	_, err := pipe.Exec(ctx)
	// Read your writes: this process's near cache lets none of them
	// through once this returns (also after an error: they may be gone).
	c.l1Drop(full...)
	var n int64
	for _, cmd := range cmds {
		n += cmd.Val()
	}
	return n, err
}
