// Package cachemetrics is what the metrics exporters of repocache
// (extra/cacheprometheus, extra/cacheotel) share: the per-namespace
// runtime.Metrics hook with its copy-on-write map of series and its bounded
// method label, the mapping from a runtime.Event to counters and latency
// histograms, and the reading of the watched Caches' Stats with a timeout
// and one call in flight per Cache.
//
// An exporter defines its series type (what it keeps per namespace and
// method) and a Sink that records measurements into it; Hooks does the
// rest. The package uses only the standard library and runtime, so that the
// root module gains no dependency.
package cachemetrics
