package runtime

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The near cache (L1): entries of this process's memory in front of Redis,
// kept fresh by Redis itself. See WithL1 and tracking.go.
//
// An L1 entry is the string a GET returned, so a hit reads it as a Redis
// hit would: every caller gets its own value, envelopes (SWR, negative
// caching) follow the same rules, and a placeholder (a loader's lease) is
// never held. A value is decoded on the entry's first hit only, and hits
// hand out deep copies of that decoding (l1clone.go). Consistency rests on
// three rules:
//
//   - Serve only while watched: every master of the Cache has a live
//     tracking connection (CLIENT TRACKING ... BCAST on the namespace's
//     prefix) that has answered a ping within l1StaleAfter. When a watch is
//     lost, or a new one starts (a reconnect), the whole L1 is flushed
//     before it serves again: invalidations sent meanwhile may be lost.
//   - Keep nothing that an invalidation may have passed: a reader takes a
//     snapshot (its shard's generation and the L1's epoch) before its GET
//     is sent, and its value is kept only if neither moved by the time it
//     is inserted. An invalidation received (or made by this process) in
//     between bumps the generation, so the classic race (the GET reply and
//     the invalidation cross) never leaves a stale entry.
//   - Read your writes: Invalidate, InvalidateTags, Set, Put, AfterWrite and
//     the stores of loads drop this process's entries of every key they
//     touched, after Redis answered and before they return.

const (
	// l1Shards is the most shards the tier splits into; a small tier has
	// fewer, so that each holds at least l1PerShard entries.
	l1Shards   = 256
	l1PerShard = 64
	// l1ItemOverhead estimates what an entry costs beyond its key and
	// value: the item, its map slot and the string headers.
	l1ItemOverhead = 96
	// l1Sample bounds the entries an eviction looks at.
	l1Sample = 8
)

// L1Option configures the near cache of WithL1.
type L1Option func(*l1Config)

type l1Config struct {
	maxEntries int
	maxBytes   int64
	ttl        time.Duration
}

// L1MaxEntries bounds the number of entries held in process memory; the
// default is 100 000. When full, an entry not read since the eviction last
// passed it is evicted first (the CLOCK rule, on a sample).
func L1MaxEntries(n int) L1Option { return func(c *l1Config) { c.maxEntries = n } }

// L1MaxBytes bounds the memory held by entries (their keys, values and
// about 96 bytes of bookkeeping each, and, once an entry has been read from
// memory, an estimate of its decoded value); the default is 64 MiB.
func L1MaxBytes(n int64) L1Option { return func(c *l1Config) { c.maxBytes = n } }

// L1TTL is how long an entry may live in process memory when its call sets
// no cap of its own (the L1 call option, //cache:get l1=); the default is
// one minute. An entry never outlives the call's TTL either, nor the
// freshness of a cached not-found or the window of a stale-while-revalidate
// value.
func L1TTL(d time.Duration) L1Option { return func(c *l1Config) { c.ttl = d } }

// WithL1 puts an in-process near cache in front of Redis for GetCached,
// GetCachedWith, GetBatch and generated gets: a hit is then served from
// memory, without a round trip. Redis keeps it fresh: the Cache watches its
// namespace's keys on every master with server-assisted client-side
// caching (CLIENT TRACKING in broadcast mode, on one dedicated connection
// per master), drops an entry when Redis reports its key changed, and
// flushes the whole tier whenever it cannot prove it is being told (a lost
// or restarted connection, a failover, FLUSHALL). The process that writes
// drops its own entries before the write returns.
//
// Other processes see a write once Redis's notice reaches them: about a
// millisecond on a LAN, measured by the cross-process checker (see
// docs/design.md). Keep L1 off for data that must be read fresh across
// processes the instant a write returns, and on servers that do not support
// CLIENT TRACKING (Redis before 6, some proxies and managed services, the
// embedded miniredis): there the tier never serves, and says so once in the
// log. Close stops the watching connections.
func WithL1(opts ...L1Option) Option {
	cfg := l1Config{maxEntries: 100_000, maxBytes: 64 << 20, ttl: time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	return func(c *Cache) { c.l1cfg = &cfg }
}

// nearCache is the L1 tier: sharded maps under read-write locks, so that
// hits on different keys never contend on one lock.
type nearCache struct {
	seed       maphash.Seed
	shards     []l1Shard
	maxEntries int   // per shard
	maxBytes   int64 // per shard
	ttl        time.Duration
	// epoch moves at every flush: a value read before a flush is never
	// inserted after it.
	epoch atomic.Uint64
	// servable is when the tier stops serving (unix nanoseconds): every
	// master watched, the earliest last proof plus l1StaleAfter; 0 while
	// a master is not watched. The tracker sets it.
	servable atomic.Int64

	hits, flushes, dropped atomic.Int64
	// observe, when the Cache has Metrics, is told of every flush
	// (OpL1Flush, through report) and every key Redis reports changed
	// (OpL1Invalidate).
	observe func(Event)
	// pending holds the flushes not yet observed: their entry counts.
	pendMu  sync.Mutex
	pending []int
}

type l1Shard struct {
	mu sync.RWMutex
	// gen moves at every drop of a key of this shard (an invalidation
	// received or made here), under mu.
	gen   atomic.Uint64
	m     map[string]*l1Item
	bytes int64
	_     [40]byte // keep shards on separate cache lines
}

type l1Item struct {
	val     string
	expires int64 // unix nanoseconds
	size    int64
	ref     atomic.Bool // read since the eviction last passed it
	// memo is val decoded, from the entry's first hit on (decodeL1).
	memo atomic.Pointer[l1Memo]
}

func newNearCache(cfg *l1Config) *nearCache {
	shards := 1
	for shards < l1Shards && shards*2*l1PerShard <= cfg.maxEntries {
		shards *= 2
	}
	n := &nearCache{
		seed:       maphash.MakeSeed(),
		shards:     make([]l1Shard, shards),
		maxEntries: max(1, cfg.maxEntries/shards),
		maxBytes:   max(1, cfg.maxBytes/int64(shards)),
		ttl:        cfg.ttl,
	}
	for i := range n.shards {
		n.shards[i].m = make(map[string]*l1Item)
	}
	return n
}

// watched reports whether the tier may serve at now.
func (n *nearCache) watched(now int64) bool { return now < n.servable.Load() }

func (n *nearCache) shard(full string) *l1Shard {
	return &n.shards[maphash.String(n.seed, full)%uint64(len(n.shards))]
}

// get returns the entry held for full, if the tier may serve it; else nil.
func (n *nearCache) get(full string, now int64) *l1Item {
	if !n.watched(now) {
		return nil
	}
	sh := n.shard(full)
	sh.mu.RLock()
	it := sh.m[full]
	sh.mu.RUnlock()
	if it == nil || now >= it.expires {
		return nil
	}
	if !it.ref.Load() {
		it.ref.Store(true)
	}
	n.hits.Add(1)
	return it
}

// l1Snap is what a reader saw before its GET was sent.
type l1Snap struct {
	gen, epoch uint64
	ok         bool // the tier was watched: what the GET returns may be kept
}

func (n *nearCache) snapshot(full string, now int64) l1Snap {
	if !n.watched(now) {
		return l1Snap{}
	}
	return l1Snap{gen: n.shard(full).gen.Load(), epoch: n.epoch.Load(), ok: true}
}

// insert keeps val, read by a GET sent after snap was taken, until
// expires, unless an invalidation of the shard or a flush came in between.
func (n *nearCache) insert(full, val string, snap l1Snap, expires int64) {
	if !snap.ok {
		return
	}
	size := int64(len(full)+len(val)) + l1ItemOverhead
	sh := n.shard(full)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen.Load() != snap.gen || n.epoch.Load() != snap.epoch || !n.watched(time.Now().UnixNano()) {
		return
	}
	if old := sh.m[full]; old != nil {
		sh.bytes -= old.size
	}
	it := &l1Item{val: val, expires: expires, size: size}
	sh.m[full] = it
	sh.bytes += size
	for len(sh.m) > n.maxEntries || sh.bytes > n.maxBytes {
		sh.evictOne(full)
	}
}

// evictOne removes one entry other than keep: the first of a sample (the
// map's iteration starts at random) not read since the eviction last
// passed it, else the last one looked at.
func (sh *l1Shard) evictOne(keep string) {
	var victim string
	seen := 0
	for k, it := range sh.m {
		if k == keep {
			continue
		}
		victim = k
		if !it.ref.Load() {
			break
		}
		it.ref.Store(false)
		if seen++; seen >= l1Sample {
			break
		}
	}
	if victim == "" { // keep alone is over the bounds
		victim = keep
	}
	sh.bytes -= sh.m[victim].size
	delete(sh.m, victim)
}

// drop forgets full, and keeps a read of it in flight from being inserted.
func (n *nearCache) drop(full string) (held bool) {
	sh := n.shard(full)
	sh.mu.Lock()
	sh.gen.Add(1)
	if it := sh.m[full]; it != nil {
		sh.bytes -= it.size
		delete(sh.m, full)
		n.dropped.Add(1)
		held = true
	}
	sh.mu.Unlock()
	return held
}

// flush forgets everything, and keeps every read in flight from being
// inserted.
func (n *nearCache) flush() {
	n.epoch.Add(1)
	n.flushes.Add(1)
	dropped := 0
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.Lock()
		dropped += len(sh.m)
		clear(sh.m)
		sh.bytes = 0
		sh.mu.Unlock()
	}
	if n.observe != nil {
		// Observed by report: a flush may run under the tracker's lock
		// or inside go-redis's dial, where a Metrics callback must not.
		n.pendMu.Lock()
		n.pending = append(n.pending, dropped)
		n.pendMu.Unlock()
	}
}

// report observes the flushes not yet observed (OpL1Flush). Its callers
// hold no lock of the tier, the tracker or go-redis.
func (n *nearCache) report() {
	if n.observe == nil {
		return
	}
	n.pendMu.Lock()
	p := n.pending
	n.pending = nil
	n.pendMu.Unlock()
	for _, dropped := range p {
		n.observe(Event{Op: OpL1Flush, Count: dropped})
	}
}

// size returns the entries and bytes held.
func (n *nearCache) size() (entries, bytes int64) {
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.RLock()
		entries += int64(len(sh.m))
		bytes += sh.bytes
		sh.mu.RUnlock()
	}
	return entries, bytes
}

// l1Expiry is when an entry read now may leave memory at the latest: the
// call's cap (or the tier's default), never past the call's TTL, a cached
// not-found's freshness, or a stale-while-revalidate value's window.
func (n *nearCache) expiry(now int64, o *callOptions, e *parsedEntry) (int64, bool) {
	d := n.ttl
	if o.l1Set {
		if o.l1 <= 0 {
			return 0, false
		}
		d = o.l1
	}
	if o.ttl > 0 {
		d = min(d, o.ttl)
	}
	exp := now + int64(d)
	switch e.kind {
	case kindValue:
	case kindEnvelope:
		until := e.freshUntil * int64(time.Millisecond)
		if e.flags&(flagNotFound|flagNilResult) == 0 {
			until += int64(o.swr)
		}
		exp = min(exp, until)
	default:
		return 0, false // a placeholder, or something foreign
	}
	return exp, exp > now
}

// l1Drop drops this process's entries of full keys after a write to them.
func (c *Cache) l1Drop(full ...string) {
	if c.l1 == nil {
		return
	}
	for _, k := range full {
		c.l1.drop(k)
	}
}

// l1Flush empties the tier (a namespace drop, InvalidatePattern).
func (c *Cache) l1Flush() {
	if c.l1 != nil {
		c.l1.flush()
		c.l1.report()
	}
}

// l1Allowed reports whether the call lets its value into the near cache.
func (o *callOptions) l1Allowed() bool { return !o.l1Set || o.l1 > 0 }

// l1Keep holds s, which a GET sent after snap returned at now, in the near
// cache, for as long as the call allows.
func (c *Cache) l1Keep(ctx context.Context, full, s string, snap l1Snap, now int64, left time.Duration, o *callOptions) {
	if left <= 0 {
		return // gone, or of an unknown age: Redis would not say when it expires
	}
	if !c.track.watches(ctx, full) {
		return // its master would tell nobody of a change
	}
	e := parseEntry(s)
	if exp, ok := c.l1.expiry(now, o, &e); ok {
		// Never past the key's own expiry in Redis, which sends its
		// notice only when it gets round to deleting the key.
		c.l1.insert(full, s, snap, min(exp, now+int64(left)))
	}
}

// getWithTTL is GET and PTTL of full in one round trip, for a read whose
// value the near cache may keep: left is the key's remaining TTL counted
// from before the request was sent (so never too long), 0 when unknown.
func (c *Cache) getWithTTL(ctx context.Context, full string) (s string, left time.Duration, err error) {
	pipe := c.client.Pipeline()
	get := pipe.Get(ctx, full)
	ttl := pipe.PTTL(ctx, full)
	_, _ = pipe.Exec(ctx)
	if s, err = get.Result(); err != nil {
		return "", 0, err
	}
	if d, terr := ttl.Result(); terr == nil && d > 0 {
		left = d
	}
	return s, left, nil
}

// ttlsOf reads the remaining TTLs of keys in one round trip (one per master
// on a cluster); 0 where unknown.
func (c *Cache) ttlsOf(ctx context.Context, keys []string) []time.Duration {
	out := make([]time.Duration, len(keys))
	if len(keys) == 0 {
		return out
	}
	pipe := c.client.Pipeline()
	cmds := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.PTTL(ctx, k)
	}
	_, _ = pipe.Exec(ctx)
	for i, cmd := range cmds {
		if d, err := cmd.Result(); err == nil && d > 0 {
			out[i] = d
		}
	}
	return out
}

// l1Batch looks up the keys of a batch in the near cache: held has what
// it holds (nil for the others), snaps the snapshots of the others, ask the
// others' keys, to read from Redis.
func (c *Cache) l1Batch(full []string, now int64) (held []*l1Item, snaps []l1Snap, ask []string) {
	held = make([]*l1Item, len(full))
	snaps = make([]l1Snap, len(full))
	for i, k := range full {
		if it := c.l1.get(k, now); it != nil {
			held[i] = it
			continue
		}
		snaps[i] = c.l1.snapshot(k, now)
		ask = append(ask, k)
	}
	return held, snaps, ask
}

// l1Merge lines up what the near cache held and what Redis returned for the
// rest (raw, in the order of the keys asked; nil when Redis failed), keeps
// Redis's answers in the near cache, and returns one value per key (nil
// for a miss).
func (c *Cache) l1Merge(ctx context.Context, full []string, held []*l1Item, snaps []l1Snap, raw []*string, now int64, o *callOptions) []*string {
	out := make([]*string, len(full))
	var keep []int // what Redis returned that the near cache may keep
	j := 0
	for i := range full {
		if held[i] != nil {
			out[i] = &held[i].val
			continue
		}
		if raw != nil && raw[j] != nil {
			out[i] = raw[j]
			if snaps[i].ok {
				keep = append(keep, i)
			}
		}
		j++
	}
	if len(keep) > 0 {
		// Their TTLs, one more round trip on the first read of each: an
		// entry never outlives its key.
		keys := make([]string, len(keep))
		for n, i := range keep {
			keys[n] = full[i]
		}
		for n, left := range c.ttlsOf(ctx, keys) {
			i := keep[n]
			c.l1Keep(ctx, full[i], *out[i], snaps[i], now, left, o)
		}
	}
	return out
}

// l1Settle returns once this process's near cache has heard of every change
// Redis made before the call, so that a tag invalidation is read-your-writes
// here too: its drop deletes only the keys it finds in the tag's set, and
// when another process has just dropped the same tag, the keys are gone
// before this one looks, and only Redis's notice tells the tier. It waits
// for one ping per master (the notices travel ahead of its answer). If that
// fails, the tier is flushed instead.
func (c *Cache) l1Settle(ctx context.Context) {
	if c.l1 == nil {
		return
	}
	if !c.l1.watched(time.Now().UnixNano()) {
		// A late stream may be proved again by an answer sent before
		// the keys went: what it holds cannot be trusted.
		c.l1Flush()
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l1StaleAfter)
	defer cancel()
	if err := c.track.sync(sctx); err != nil {
		c.l1Flush()
	}
}
