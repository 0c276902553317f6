package cacheprometheus

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/repocache/repocache/internal/cachemetrics"
	"github.com/repocache/repocache/runtime"
)

// statFamily is a family read from runtime.Stats at scrape time.
type statFamily struct {
	name, help string
	typ        prometheus.ValueType
	// info marks a value read from Redis's INFO, left out when INFO
	// failed.
	info bool
	// value returns the value, or false when the Cache does not know it.
	value func(*runtime.Stats) (float64, bool)
}

func known(v int64) (float64, bool)   { return float64(v), true }
func knownU(v uint32) (float64, bool) { return float64(v), true }
func knownB(v bool) (float64, bool)   { return b2f(v), true }

func b2f(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

func gauge(name, help string, info bool, f func(*runtime.Stats) (float64, bool)) statFamily {
	return statFamily{name: name, help: help, typ: prometheus.GaugeValue, info: info, value: f}
}

func counter(name, help string, info bool, f func(*runtime.Stats) (float64, bool)) statFamily {
	return statFamily{name: name, help: help, typ: prometheus.CounterValue, info: info, value: f}
}

// statFamilies are the families of Watch. runtime.Stats fields that the
// event families already count (hits, misses...) are not repeated.
var statFamilies = []statFamily{
	gauge("breaker_open", "1 while the circuit breaker is open: Redis is failing and the cache is not using it.", false,
		func(s *runtime.Stats) (float64, bool) { return knownB(s.BreakerOpen) }),
	counter("breaker_opens_total", "Times the circuit breaker opened.", false,
		func(s *runtime.Stats) (float64, bool) { return known(s.BreakerOpens) }),
	counter("breaker_skips_total", "Redis operations the open circuit breaker spared.", false,
		func(s *runtime.Stats) (float64, bool) { return known(s.BreakerSkips) }),
	counter("reconnects_total", "Connections dialled after a connection error (only for a client from runtime.NewClient).", false,
		func(s *runtime.Stats) (float64, bool) { return float64(s.Reconnects), s.Reconnects >= 0 }),
	gauge("pool_connections", "Connections in the Redis client's pool, idle and in use.", false,
		func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.TotalConns) }),
	gauge("pool_idle_connections", "Idle connections in the Redis client's pool.", false,
		func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.IdleConns) }),
	gauge("pool_pending_requests", "Requests waiting for a connection of the Redis client's pool.", false,
		func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.PendingRequests) }),
	counter("pool_hits_total", "Times the pool had a free connection.", false,
		func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.Hits) }),
	counter("pool_misses_total", "Times the pool had no free connection.", false,
		func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.Misses) }),
	counter("pool_timeouts_total", "Times waiting for a pool connection timed out.", false,
		func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.Timeouts) }),
	counter("pool_waits_total", "Times a request waited for a pool connection.", false,
		func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.WaitCount) }),
	counter("pool_wait_seconds_total", "Time requests spent waiting for a pool connection.", false,
		func(s *runtime.Stats) (float64, bool) { return time.Duration(s.Pool.WaitDurationNs).Seconds(), true }),
	counter("pool_stale_connections_total", "Stale connections removed from the pool.", false,
		func(s *runtime.Stats) (float64, bool) { return knownU(s.Pool.StaleConns) }),
	gauge("invalidation_retries_pending", "Failed invalidations (keys and tags) waiting to be retried.", false,
		func(s *runtime.Stats) (float64, bool) { return known(s.InvalidationRetries) }),
	counter("invalidation_retries_succeeded_total", "Retried invalidations that landed.", false,
		func(s *runtime.Stats) (float64, bool) { return known(s.RetriesSucceeded) }),
	counter("invalidation_retries_dropped_total", "Retried invalidations given up (queue full, or past the retry window).", false,
		func(s *runtime.Stats) (float64, bool) { return known(s.RetriesDropped) }),
	counter("background_dropped_total", "Background tasks (stores after loads) not run because too many were running.", false,
		func(s *runtime.Stats) (float64, bool) { return known(s.BackgroundDropped) }),
	counter("master_restarts_total", "Cluster masters seen restarted or replaced.", false,
		func(s *runtime.Stats) (float64, bool) { return known(s.MasterRestarts) }),
	counter("namespace_flushes_total", "Times the namespace was dropped because a master restarted.", false,
		func(s *runtime.Stats) (float64, bool) { return known(s.NamespaceFlushes) }),
	gauge("l1_watched", "1 while the near cache (runtime.WithL1) may serve: every master's invalidation stream is live.", false,
		func(s *runtime.Stats) (float64, bool) { return b2f(s.L1.Watched), s.L1.Enabled }),
	gauge("l1_entries", "Entries in the near cache (runtime.WithL1).", false,
		func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Entries), s.L1.Enabled }),
	gauge("l1_memory_bytes", "Memory held by the near cache's entries: keys, values and about 96 bytes of bookkeeping each.", false,
		func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Bytes), s.L1.Enabled }),
	counter("l1_dropped_total", "Near-cache entries dropped because their key changed.", false,
		func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Dropped), s.L1.Enabled }),
	counter("l1_flushes_total", "Times the near cache was emptied whole.", false,
		func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Flushes), s.L1.Enabled }),
	counter("l1_streams_lost_total", "Invalidation streams of the near cache lost (each flushes it).", false,
		func(s *runtime.Stats) (float64, bool) { return float64(s.L1.Lost), s.L1.Enabled }),
	gauge("redis_used_memory_bytes", "Redis's used_memory, summed over the masters (the whole server, not only this namespace).", true,
		func(s *runtime.Stats) (float64, bool) { return known(s.Server.UsedMemory) }),
	counter("redis_evicted_keys_total", "Redis's evicted_keys, summed over the masters: non-zero means maxmemory evicts cached values.", true,
		func(s *runtime.Stats) (float64, bool) { return known(s.Server.EvictedKeys) }),
	gauge("redis_blocked_clients", "Redis's blocked_clients, summed over the masters.", true,
		func(s *runtime.Stats) (float64, bool) { return known(s.Server.BlockedClients) }),
	gauge("redis_masters", "Redis masters whose INFO was read.", true,
		func(s *runtime.Stats) (float64, bool) { return float64(s.Server.Masters), true }),
	gauge("evicting_tag_sets", "1 if Redis evicted keys since the last scrape under a policy that may evict tag sets: invalidations may miss keys until their TTL.", true,
		func(s *runtime.Stats) (float64, bool) { return knownB(s.Server.EvictingTagSets) }),
}

// collectStats reads the Stats of every watched Cache in parallel, for up
// to the stats timeout, and reports them.
func (c *Collector) collectStats(ch chan<- prometheus.Metric) {
	c.watched.Read(context.Background(), c.statsTimeout, func(w *cachemetrics.Watched[struct{}], stats *runtime.Stats, err error) {
		if stats == nil {
			ch <- constMetric(c.statsOK, prometheus.GaugeValue, 0, w.Namespace)
			return
		}
		ch <- constMetric(c.statsOK, prometheus.GaugeValue, b2f(err == nil), w.Namespace)
		for j, f := range statFamilies {
			if f.info && err != nil {
				continue
			}
			if v, ok := f.value(stats); ok {
				ch <- constMetric(c.statDescs[j], f.typ, v, w.Namespace)
			}
		}
	})
}
