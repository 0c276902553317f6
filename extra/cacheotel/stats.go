package cacheotel

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/repocache/repocache/internal/cachemetrics"
	"github.com/repocache/repocache/runtime"
)

const statsOKName = "repocache.stats.ok"

// statFamily is an instrument read from runtime.Stats at collection time.
type statFamily struct {
	name, unit, help string
	counter          bool // cumulative; else a gauge
	float            bool // a float64 instrument; else int64
	// info marks a value read from Redis's INFO, left out when INFO
	// failed.
	info bool
	// value returns the value, or false when the Cache does not know it.
	value func(*runtime.Stats) (float64, bool)
}

func known(v int64) (float64, bool)   { return float64(v), true }
func knownU(v uint32) (float64, bool) { return float64(v), true }
func knownB(v bool) (float64, bool) {
	if v {
		return 1, true
	}
	return 0, true
}

// statFamilies are the instruments of Watch, those of cacheprometheus.
// runtime.Stats fields that the event instruments already count (hits,
// misses...) are not repeated.
var statFamilies = []statFamily{
	{name: "repocache.breaker.open", help: "1 while the circuit breaker is open: Redis is failing and the cache is not using it.",
		value: func(s *runtime.Stats) (float64, bool) { return knownB(s.BreakerOpen) }},
	{name: "repocache.breaker.opens", unit: "{open}", counter: true, help: "Times the circuit breaker opened.",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.BreakerOpens) }},
	{name: "repocache.breaker.skips", unit: "{operation}", counter: true, help: "Redis operations the open circuit breaker spared.",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.BreakerSkips) }},
	{name: "repocache.reconnects", unit: "{connection}", counter: true, help: "Connections dialled after a connection error (only for a client from runtime.NewClient).",
		value: func(s *runtime.Stats) (float64, bool) { return float64(s.Reconnects), s.Reconnects >= 0 }},
	{name: "repocache.pool.connections", unit: "{connection}", help: "Connections in the Redis client's pool, idle and in use.",
		value: func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.TotalConns) }},
	{name: "repocache.pool.idle_connections", unit: "{connection}", help: "Idle connections in the Redis client's pool.",
		value: func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.IdleConns) }},
	{name: "repocache.pool.pending_requests", unit: "{request}", help: "Requests waiting for a connection of the Redis client's pool.",
		value: func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.PendingRequests) }},
	{name: "repocache.pool.hits", unit: "{hit}", counter: true, help: "Times the pool had a free connection.",
		value: func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.Hits) }},
	{name: "repocache.pool.misses", unit: "{miss}", counter: true, help: "Times the pool had no free connection.",
		value: func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.Misses) }},
	{name: "repocache.pool.timeouts", unit: "{timeout}", counter: true, help: "Times waiting for a pool connection timed out.",
		value: func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.Timeouts) }},
	{name: "repocache.pool.waits", unit: "{wait}", counter: true, help: "Times a request waited for a pool connection.",
		value: func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.WaitCount) }},
	{name: "repocache.pool.wait", unit: "s", counter: true, float: true, help: "Time requests spent waiting for a pool connection.",
		value: func(s *runtime.Stats) (float64, bool) { return time.Duration(s.Pool.WaitDurationNs).Seconds(), true }},
	{name: "repocache.pool.stale_connections", unit: "{connection}", counter: true, help: "Stale connections removed from the pool.",
		value: func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.StaleConns) }},
	{name: "repocache.invalidation.retries.pending", unit: "{invalidation}", help: "Failed invalidations (keys and tags) waiting to be retried.",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.InvalidationRetries) }},
	{name: "repocache.invalidation.retries.succeeded", unit: "{invalidation}", counter: true, help: "Retried invalidations that landed.",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.RetriesSucceeded) }},
	{name: "repocache.invalidation.retries.dropped", unit: "{invalidation}", counter: true, help: "Retried invalidations given up (queue full, or past the retry window).",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.RetriesDropped) }},
	{name: "repocache.background_dropped", unit: "{task}", counter: true, help: "Background tasks (stores after loads) not run because too many were running.",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.BackgroundDropped) }},
	{name: "repocache.master_restarts", unit: "{restart}", counter: true, help: "Cluster masters seen restarted or replaced.",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.MasterRestarts) }},
	{name: "repocache.namespace_flushes", unit: "{flush}", counter: true, help: "Times the namespace was dropped because a master restarted.",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.NamespaceFlushes) }},
	{name: "repocache.l1.watched", help: "1 while the near cache (runtime.WithL1) may serve: every master's invalidation stream is live.",
		value: func(s *runtime.Stats) (float64, bool) { v, _ := knownB(s.L1.Watched); return v, s.L1.Enabled }},
	{name: "repocache.l1.entries", unit: "{entry}", help: "Entries in the near cache (runtime.WithL1).",
		value: func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Entries), s.L1.Enabled }},
	{name: "repocache.l1.memory", unit: "By", help: "Memory held by the near cache's entries: keys, values and about 96 bytes of bookkeeping each.",
		value: func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Bytes), s.L1.Enabled }},
	{name: "repocache.l1.dropped", unit: "{entry}", counter: true, help: "Near-cache entries dropped because their key changed.",
		value: func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Dropped), s.L1.Enabled }},
	{name: "repocache.l1.flushes", unit: "{flush}", counter: true, help: "Times the near cache was emptied whole.",
		value: func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Flushes), s.L1.Enabled }},
	{name: "repocache.l1.streams_lost", unit: "{stream}", counter: true, help: "Invalidation streams of the near cache lost (each flushes it).",
		value: func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Lost), s.L1.Enabled }},
	{name: "repocache.redis.used_memory", unit: "By", info: true, help: "Redis's used_memory, summed over the masters (the whole server, not only this namespace).",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.Server.UsedMemory) }},
	{name: "repocache.redis.evicted_keys", unit: "{key}", counter: true, info: true, help: "Redis's evicted_keys, summed over the masters: non-zero means maxmemory evicts cached values.",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.Server.EvictedKeys) }},
	{name: "repocache.redis.blocked_clients", unit: "{client}", info: true, help: "Redis's blocked_clients, summed over the masters.",
		value: func(s *runtime.Stats) (float64, bool) { return known(s.Server.BlockedClients) }},
	{name: "repocache.redis.masters", unit: "{server}", info: true, help: "Redis masters whose INFO was read.",
		value: func(s *runtime.Stats) (float64, bool) { return float64(s.Server.Masters), true }},
	{name: "repocache.evicting_tag_sets", info: true, help: "1 if Redis evicted keys since the last reading under a policy that may evict tag sets: invalidations may miss keys until their TTL.",
		value: func(s *runtime.Stats) (float64, bool) { return knownB(s.Server.EvictingTagSets) }},
}

// statInstrument is the instrument of a statFamily: one of the two.
type statInstrument struct {
	i metric.Int64Observable
	f metric.Float64Observable
}

func (r *Recorder) newStatInstruments(meter metric.Meter) error {
	var observables []metric.Observable
	for _, f := range statFamilies {
		var (
			in  statInstrument
			err error
		)
		switch {
		case f.float && f.counter:
			in.f, err = meter.Float64ObservableCounter(f.name, metric.WithDescription(f.help), metric.WithUnit(f.unit))
		case f.float:
			in.f, err = meter.Float64ObservableGauge(f.name, metric.WithDescription(f.help), metric.WithUnit(f.unit))
		case f.counter:
			in.i, err = meter.Int64ObservableCounter(f.name, metric.WithDescription(f.help), metric.WithUnit(f.unit))
		default:
			in.i, err = meter.Int64ObservableGauge(f.name, metric.WithDescription(f.help), metric.WithUnit(f.unit))
		}
		if err != nil {
			return err
		}
		r.stats = append(r.stats, in)
		if in.f != nil {
			observables = append(observables, in.f)
		} else {
			observables = append(observables, in.i)
		}
	}
	var err error
	r.statsOK, err = meter.Int64ObservableGauge(statsOKName,
		metric.WithDescription("1 if the last collection read the Cache's Stats, Redis's INFO included, in time; 0 if not (the INFO instruments are then left out)."))
	if err != nil {
		return err
	}
	if _, err := meter.RegisterCallback(r.observeStats, append(observables, r.statsOK)...); err != nil {
		return fmt.Errorf("registering the Stats callback: %w", err)
	}
	return nil
}

// observeStats is the callback of the Stats instruments: it reads the Stats
// of every watched Cache in parallel, for up to the stats timeout or the
// end of ctx, and observes them.
func (r *Recorder) observeStats(ctx context.Context, o metric.Observer) error {
	r.watched.Read(ctx, r.statsTimeout, func(w *cachemetrics.Watched[metric.MeasurementOption], stats *runtime.Stats, err error) {
		if stats == nil {
			o.ObserveInt64(r.statsOK, 0, w.Extra)
			return
		}
		ok, _ := knownB(err == nil)
		o.ObserveInt64(r.statsOK, int64(ok), w.Extra)
		for j, f := range statFamilies {
			if f.info && err != nil {
				continue
			}
			v, known := f.value(stats)
			switch {
			case !known:
			case f.float:
				o.ObserveFloat64(r.stats[j].f, v, w.Extra)
			default:
				o.ObserveInt64(r.stats[j].i, int64(v), w.Extra)
			}
		}
	})
	return nil
}
