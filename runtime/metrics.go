package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redisnode"
)

// Op names a cache event.
type Op uint8

// Cache events.
const (
	OpHit               Op = iota + 1 // a value was served from Redis
	OpMiss                            // no usable value in Redis (absent or undecodable)
	OpLoad                            // the loader ran; Duration is its run time, Err its error
	OpStale                           // a stale value was served while a refresh ran
	OpSet                             // a value was stored
	OpInvalidate                      // keys or tags were invalidated; Count is how many keys
	OpError                           // a Redis error was absorbed (fail open) or returned
	OpDecodeError                     // a stored value could not be decoded and was deleted
	OpBypass                          // a call went to the source uncached (its key could not be built)
	OpStaleSetPrevented               // a loaded value was not stored: the key or a tag was invalidated while it loaded
	OpInvalidateError                 // an invalidation failed; Key names its keys or tags; it is retried in the background
	OpEncodeError                     // a loaded or written value could not be encoded; it was not cached
	OpUnrendered                      // an invalidation template could not be rendered (a nil pointer); Key is the method
	// OpL1Invalidate: Redis told the near cache (WithL1) that a key of
	// the namespace changed. Key is the key without the namespace (the
	// cache's own tag records, which begin with "#", included); Count is
	// 1 if an entry held for it was dropped, else 0. Observed on the
	// watching connection's goroutine after the drop: a read that begins
	// once Observe has been called no longer gets the dropped entry.
	OpL1Invalidate
	// OpL1Flush: the near cache was emptied whole (an invalidation stream
	// lost or restarted, a master added or gone, FLUSHALL, a namespace
	// drop). Count is the entries dropped. Observed once no lock is held,
	// shortly after the flush.
	OpL1Flush
)

var opNames = [...]string{"", "hit", "miss", "load", "stale", "set", "invalidate", "error", "decode_error", "bypass", "stale_set_prevented",
	"invalidate_error", "encode_error", "unrendered", "l1_invalidate", "l1_flush"}

// String returns the event's name in lower case, e.g. "hit".
func (o Op) String() string {
	if int(o) < len(opNames) && o != 0 {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Event is one observation passed to Metrics.
type Event struct {
	Op Op
	// Key is the cache key (without the namespace) or, for a tag
	// invalidation (Tag), the tag; for OpL1Invalidate the key Redis
	// reported; empty for OpL1Flush.
	Key string
	// Tag reports that Key is a tag: an invalidation of every key that
	// carries it.
	Tag bool
	// Duration is the time the operation took, when measured (hit, miss,
	// load, set, invalidate).
	Duration time.Duration
	// Count is the number of keys an invalidation deleted; for
	// OpL1Invalidate 1 if the near cache held the key, else 0; for
	// OpL1Flush the entries it dropped.
	Count int
	// Err is the error of a failed load or an absorbed Redis error.
	Err error
	// Method is the repository method the call served, when it said
	// (Method, WithMethod; generated decorators always do), e.g.
	// "Repository.FindProject".
	Method string
	// L1 reports a hit served from the in-process tier (WithL1) without a
	// Redis round trip.
	L1 bool
}

// Metrics observes cache events, e.g. to feed Prometheus counters and
// histograms. Observe is called synchronously on the request path, and for
// the near cache's events (OpL1Invalidate) on the goroutine that reads
// Redis's notices, which waits for it: it must be fast, must not block,
// must not call the Cache, and must be safe for concurrent use.
type Metrics interface {
	Observe(Event)
}

// MultiMetrics returns a Metrics that passes each event to every m in
// order (nil ones are skipped): a Prometheus collector, an OpenTelemetry
// recorder and a debug page can watch one Cache together.
func MultiMetrics(ms ...Metrics) Metrics {
	var list multiMetrics
	for _, m := range ms {
		if m != nil {
			list = append(list, m)
		}
	}
	if len(list) == 1 {
		return list[0]
	}
	return list
}

type multiMetrics []Metrics

func (l multiMetrics) Observe(e Event) {
	for _, m := range l {
		m.Observe(e)
	}
}

// MetricsFunc adapts a function to Metrics.
type MetricsFunc func(Event)

// Observe implements Metrics.
func (f MetricsFunc) Observe(e Event) { f(e) }

func (c *Cache) observe(e Event) {
	if c.metrics != nil {
		c.metrics.Observe(e)
	}
}

type counters struct {
	hits, misses, loads, loadErrors, stale, sets, invalidated, errors, decodeErrors, bypasses, staleSetsPrevented atomic.Int64
	backgroundDropped, encodeErrors, invalidationFailures, retriesDropped, retriesSucceeded, unrendered           atomic.Int64
	hitNanos                                                                                                      atomic.Int64
}

// Stats is a snapshot of a Cache's counters, its client's connection
// events, and the server's view from INFO.
type Stats struct {
	Hits, Misses, Loads, LoadErrors, StaleServes, Sets int64
	// Invalidated counts keys deleted by Invalidate, InvalidateTags and
	// InvalidatePattern.
	Invalidated int64
	// Errors counts Redis errors, absorbed or returned.
	Errors int64
	// DecodeErrors counts stored values that could not be decoded.
	DecodeErrors int64
	// Bypasses counts calls passed through uncached (see Cache.Bypass).
	Bypasses int64
	// StaleSetsPrevented counts loaded values that were not stored because
	// their key or one of their tags was invalidated while they loaded.
	StaleSetsPrevented int64
	// EncodeErrors counts values that could not be encoded (and so were
	// returned but not cached, or not written by Set and Put).
	EncodeErrors int64
	// InvalidationFailures counts invalidations (of keys or tags) that
	// failed; each is retried in the background. InvalidationRetries is
	// what waits to be retried now, RetriesSucceeded the retries that
	// landed, RetriesDropped those given up (the queue was full, or the
	// retry window passed).
	InvalidationFailures, InvalidationRetries, RetriesSucceeded, RetriesDropped int64
	// Unrendered counts invalidation keys and tags that a generated
	// method could not render (a nil pointer on the template's path).
	Unrendered int64
	// BackgroundDropped counts background tasks (stores after loads)
	// not run because too many were running.
	BackgroundDropped int64
	// BreakerOpen reports that Redis is failing and the cache is not
	// using it; BreakerOpens counts the times that happened and
	// BreakerSkips the operations it spared.
	BreakerOpen                bool
	BreakerOpens, BreakerSkips int64
	// MasterRestarts counts cluster masters seen restarted or replaced
	// (their run_id changed, or a new master appeared); NamespaceFlushes
	// the times the namespace was dropped because of one (restart.go).
	MasterRestarts, NamespaceFlushes int64
	// L1 is the near cache's state (WithL1); zero without it.
	L1 L1Stats
	// HitRatio is Hits / (Hits + Misses), 0 before any read.
	HitRatio float64
	// MeanHitLatency is the mean time of a hit, Redis round trip and decode.
	MeanHitLatency time.Duration

	// Reconnects counts connections dialled after a connection error; it
	// is known only for a client built by NewClient (-1 otherwise).
	Reconnects int64
	// Pool is the client's connection pool.
	Pool redis.PoolStats

	// Server is read from INFO, summed over the masters of a cluster.
	Server ServerStats
}

// L1Stats describes the near cache (WithL1).
type L1Stats struct {
	// Enabled reports that the Cache has a near cache; Watched that it may
	// serve now (every master's invalidation stream is live).
	Enabled, Watched bool
	// Hits counts reads served from process memory (they are counted in
	// Stats.Hits too).
	Hits int64
	// Entries and Bytes are what it holds now (Bytes counts keys, values
	// and about 96 bytes of bookkeeping per entry).
	Entries, Bytes int64
	// Dropped counts entries dropped because their key changed (told by
	// Redis, or written by this process); Flushes the times the whole tier
	// was emptied; Lost the invalidation streams lost (each flushes).
	Dropped, Flushes, Lost int64
}

// ServerStats is what INFO says about the server(s).
type ServerStats struct {
	UsedMemory     int64 // bytes, used_memory
	EvictedKeys    int64 // evicted_keys: non-zero means maxmemory evicts cached values (and maybe tag sets)
	BlockedClients int64 // blocked_clients
	Masters        int   // servers read
	// MaxmemoryPolicy is maxmemory_policy (of the first master read);
	// any policy but noeviction may evict tag sets.
	MaxmemoryPolicy string
	// EvictingTagSets reports that the policy may evict tag sets and a
	// master's evicted_keys grew (or was non-zero at this Cache's first
	// reading of that master) within the last five minutes, as seen by any call of Stats: every
	// reader (an exporter, the live page) sees it, not only the first after
	// the growth. Invalidation may then miss keys until their TTL (see "If
	// Redis evicts" in docs/design.md). The first time, a warning is logged.
	EvictingTagSets bool
}

// evictionWindow is how long Stats reports EvictingTagSets after it last
// saw evicted_keys grow.
const evictionWindow = 5 * time.Minute

// Stats returns the cache's counters and reads INFO from every master. The
// counters are returned even when INFO fails, together with the error.
func (c *Cache) Stats(ctx context.Context) (Stats, error) {
	s := Stats{
		Hits: c.stats.hits.Load(), Misses: c.stats.misses.Load(),
		Loads: c.stats.loads.Load(), LoadErrors: c.stats.loadErrors.Load(),
		StaleServes: c.stats.stale.Load(), Sets: c.stats.sets.Load(),
		Invalidated: c.stats.invalidated.Load(), Errors: c.stats.errors.Load(),
		DecodeErrors: c.stats.decodeErrors.Load(), Bypasses: c.stats.bypasses.Load(),
		StaleSetsPrevented: c.stats.staleSetsPrevented.Load(), Reconnects: -1,
		EncodeErrors: c.stats.encodeErrors.Load(), InvalidationFailures: c.stats.invalidationFailures.Load(),
		InvalidationRetries: c.retries.pending(), RetriesSucceeded: c.stats.retriesSucceeded.Load(),
		RetriesDropped: c.stats.retriesDropped.Load(), Unrendered: c.stats.unrendered.Load(),
		BackgroundDropped: c.stats.backgroundDropped.Load(),
		BreakerOpen:       c.br.open.Load(), BreakerOpens: c.br.opens.Load(), BreakerSkips: c.br.skips.Load(),
		MasterRestarts: c.nodes.restarts.Load(), NamespaceFlushes: c.nodes.flushes.Load(),
	}
	if c.l1 != nil {
		s.L1 = L1Stats{Enabled: true, Watched: c.l1.watched(time.Now().UnixNano()), Hits: c.l1.hits.Load(),
			Dropped: c.l1.dropped.Load(), Flushes: c.l1.flushes.Load(), Lost: c.track.lost.Load()}
		s.L1.Entries, s.L1.Bytes = c.l1.size()
	}
	if n := s.Hits + s.Misses; n > 0 {
		s.HitRatio = float64(s.Hits) / float64(n)
	}
	if s.Hits > 0 {
		s.MeanHitLatency = time.Duration(c.stats.hitNanos.Load() / s.Hits)
	}
	if cl, ok := c.client.(*Client); ok {
		s.Reconnects = cl.Reconnects()
	}
	if ps := c.client.PoolStats(); ps != nil {
		s.Pool = *ps
	}
	var mu sync.Mutex
	evicted := map[string]int64{} // by master: its run_id, else its address
	err := forEachMaster(ctx, c.client, func(ctx context.Context, m *redis.Client) error {
		info, err := m.Info(ctx).Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		s.Server.Masters++
		s.Server.UsedMemory += infoInt(info, "used_memory")
		n := infoInt(info, "evicted_keys")
		s.Server.EvictedKeys += n
		id := infoString(info, "run_id")
		if id == "" {
			id = m.Options().Addr
		}
		evicted[id] = n
		s.Server.BlockedClients += infoInt(info, "blocked_clients")
		if s.Server.MaxmemoryPolicy == "" {
			s.Server.MaxmemoryPolicy = infoString(info, "maxmemory_policy")
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("runtime: stats: %w", err)
	}
	now := time.Now().UnixNano()
	if c.evictions.grew(evicted) {
		c.evictedAt.Store(now)
	}
	mayEvict := s.Server.MaxmemoryPolicy != "" && s.Server.MaxmemoryPolicy != "noeviction"
	if at := c.evictedAt.Load(); mayEvict && at != 0 && now-at < int64(c.evictionWindow) {
		s.Server.EvictingTagSets = true
		if !c.evictionWarned.Swap(true) {
			c.log.Warn("repocache: Redis evicts keys and its policy may evict tag sets: invalidations can then miss keys until their TTL; give Redis more memory",
				"maxmemory_policy", s.Server.MaxmemoryPolicy, "evicted_keys", s.Server.EvictedKeys)
		}
	}
	return s, nil
}

// evictions is what Stats has read of each master's evicted_keys.
type evictions struct {
	mu   sync.Mutex
	seen map[string]int64 // run_id (or address) → the highest evicted_keys read
}

// grew records a Stats's readings (master → evicted_keys) and reports
// whether a master's counter is above anything read of it before (or is
// non-zero at its first reading). Per master, so that a master that
// restarts, whose counter starts again at 0, hides no growth of the
// others'; the highest reading, so that a Stats that read the servers
// before another but finished after it does not move the counter back
// (the next reading would then look like growth:
// TestEvictionNotFlaggedByAnOlderReading). Masters no longer read are
// forgotten.
func (e *evictions) grew(readings map[string]int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seen == nil {
		e.seen = map[string]int64{}
	}
	grew := false
	for id, n := range readings {
		if prev, ok := e.seen[id]; !ok || n > prev {
			e.seen[id] = n
			grew = grew || n > prev
		}
	}
	for id := range e.seen {
		if _, ok := readings[id]; !ok {
			delete(e.seen, id)
		}
	}
	return grew
}

func infoString(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func infoInt(info, field string) int64 {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// forEachMaster runs fn on every master of client (see redisnode).
func forEachMaster(ctx context.Context, client redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	if err := redisnode.ForEachMaster(ctx, unwrapClient(client), fn); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	return nil
}
