// Package faults holds repocache's fault suite (faults_test.go): it starts
// its own Redis servers (a cluster with replicas, a Sentinel set) and a
// loopback fault proxy, drives a consistency workload through caches built
// by runtime.NewClient with its production defaults, and injects the faults
// of production: replies delayed past the client's timeout, a master killed
// and failed over, a master stopped and continued, a master restarted
// empty, a Sentinel failover, and maxmemory eviction. It asserts that no
// reader sees an error, that no read returns a value older than an
// invalidation that had returned nil, that what a failed invalidation
// leaves stale is bounded, and that after quiescence every cached value
// equals the database. `make faults-table` writes the figures to
// RESULTS.md.
package faults
