// Package cacheprometheus exports the events and statistics of repocache
// Caches (github.com/repocache/repocache/runtime) as Prometheus metrics.
//
// A Collector has two sources. Its Metrics hooks, given to runtime.WithMetrics,
// count each cache event as it happens: hits, misses, loads, stale serves,
// sets, invalidations, errors, and the latency of hits, loads and
// invalidations. Its watched Caches (Watch) are asked for their Stats at
// scrape time: connection pool, reconnects, circuit breaker, invalidation
// retries, the near cache (runtime.WithL1: entries, memory, state) and what
// Redis's INFO says (used memory, evicted keys, blocked clients).
//
//	col := cacheprometheus.New()
//	c := runtime.New(client,
//		runtime.WithNamespace("app:prod"),
//		runtime.WithMetrics(col.Metrics("app:prod")))
//	if err := col.Watch(c); err != nil {
//		return err
//	}
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(col)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The package registers nothing by itself, on no registry: a Collector is a
// prometheus.Collector that the application registers where it wants (its
// own Registry, or prometheus.DefaultRegisterer). Constant labels (a
// service name, say) are added the Prometheus way, by registering through
// prometheus.WrapRegistererWith.
//
// # Labels
//
// Every series has a "namespace" label: the namespace given to Metrics for
// event families, Cache.Namespace() for the Stats families. Give Metrics the
// namespace the Cache ends up with (Cache.Namespace(): the value of
// runtime.WithNamespace, followed by ":@<database>" under
// runtime.WithDatabase) so that both kinds of family carry the same value.
// (Under Kubernetes, a scrape that does not honor labels renames it
// "exported_namespace".)
//
// Event families also have a "method" label: the repository method the call
// served ("Repository.FindProject"), which generated decorators always pass
// (runtime.Method, runtime.WithMethod). A call that names none is counted
// under "unknown". The label is bounded: once a Collector has seen
// WithMaxMethods distinct methods (1000 by default), further ones are
// counted under "other", so that a caller passing keys or ids as method
// names cannot blow up the number of series. The cache key is never a
// label.
//
// A series appears with its first event, together with its companions, so
// that ratios have a zero to start from: a read method's first event brings
// its hits, misses, loads, load errors and stale serves to zero; an
// invalidation brings key and tag invalidations, keys dropped and failures.
// A histogram appears with its first observation.
//
// # Cost
//
// Observe is called synchronously on the cache's request path. The first
// event of a (namespace, method) pair builds its series under a lock;
// every later one finds them in a copy-on-write map and increments atomic
// counters and histogram buckets: no lock, no allocation. BenchmarkHit
// measures a hit with and without a Collector attached.
//
// Stats are read at scrape time, each watched Cache in parallel, bounded by
// WithStatsTimeout (2s by default). A Cache whose Stats fails or does not
// answer in time does not fail the scrape: repocache_stats_ok says so (0),
// and the series that need Redis's INFO are left out of that scrape (all of
// that Cache's Stats series when it did not answer at all).
package cacheprometheus
