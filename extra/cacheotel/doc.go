// Package cacheotel reports the events and statistics of repocache Caches
// (github.com/repocache/repocache/runtime) through OpenTelemetry: metrics
// through the OTel metric API, and optional spans for misses, loads, stale
// serves and invalidations.
//
// A Recorder has two sources, like cacheprometheus's Collector. Its Metrics
// hooks, given to runtime.WithMetrics, count each cache event as it happens
// and record the latency of hits, loads and invalidations. Its watched
// Caches (Watch) are asked for their Stats whenever the MeterProvider's
// reader collects: connection pool, reconnects, circuit breaker,
// invalidation retries, the near cache (runtime.WithL1) and what Redis's
// INFO says.
//
//	rec, err := cacheotel.New(
//		cacheotel.WithMeterProvider(mp),  // default: otel.GetMeterProvider()
//		cacheotel.WithTracerProvider(tp)) // default: otel.GetTracerProvider()
//	if err != nil {
//		return err
//	}
//	c := runtime.New(client,
//		runtime.WithNamespace("app:prod"),
//		runtime.WithMetrics(rec.Metrics("app:prod")))
//	if err := rec.Watch(c); err != nil {
//		return err
//	}
//
// # Instruments
//
// The instruments are those of cacheprometheus, named the OpenTelemetry way:
// repocache.hits, repocache.misses, repocache.loads, repocache.load.errors,
// repocache.hit.duration (seconds)... An OTel Prometheus exporter turns
// them into the same families as cacheprometheus (repocache_hits_total,
// repocache_hit_duration_seconds...), with the attributes as labels.
// InstrumentNames lists them.
//
// Every measurement has the attribute repocache.namespace (the namespace
// given to Metrics, or Cache.Namespace() for Watch: give Metrics the
// namespace the Cache ends up with). Events have repocache.method too, the
// repository method that the call served ("Repository.FindProject", passed
// by generated decorators; "unknown" when a call names none), bounded by
// WithMaxMethods (then "other"). The cache key is never an attribute of a
// measurement.
//
// # Spans
//
// A span is made for each event of the kinds WithSpans lists (by default
// misses, loads, stale serves, invalidations and failed invalidations; hits
// only when asked, as there is one per read). Its name is
// "repocache.<event>" ("repocache.load"); its attributes are the namespace,
// the method, repocache.result (hit, miss or stale) on reads,
// repocache.invalidation.kind and repocache.invalidated_keys on
// invalidations, and the key or tag itself only under WithKeys; an error
// (a failed load) is recorded on it and sets its status.
//
// A hook sees an event after the fact and without the caller's context, so
// these spans are made afterwards, starting Duration before their end, and
// they have no parent: each is the root of a trace of its own, not a child
// of the request that caused it. They sit beside go-redis's own
// instrumentation (redisotel), whose command spans do have the request as
// parent, without clashing: different span and instrument names. Spans
// inside the request's trace need the runtime to pass the caller's context
// with its events.
//
// # Cost
//
// Observe is called synchronously on the cache's request path. The
// attribute sets of a (namespace, method) pair are built once, at its first
// event; every later event finds them in a copy-on-write map, without a
// lock, and adds to the instruments with them. With no span kind set for
// it, a hit makes no span.
//
// Stats are read at collection time, each watched Cache in parallel,
// bounded by WithStatsTimeout (2s by default) and by the collection's
// context. A Cache whose Stats fails or does not answer in time does not
// fail the collection: repocache.stats.ok says so (0), and the values that
// need Redis's INFO are left out (all of that Cache's when it did not
// answer at all).
package cacheotel
