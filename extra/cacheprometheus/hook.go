package cacheprometheus

import (
	"sync/atomic"
	"time"

	"github.com/repocache/repocache/internal/cachemetrics"
	"github.com/repocache/repocache/runtime"
)

// Groups of counters that appear together (see collectSeries): a series
// is exported once any counter of its group is non-zero, so that a ratio
// of two has a zero to start from.
const (
	gRead = iota
	gL1
	gSet
	gInvalidate
	gRedisError
	gDecodeError
	gEncodeError
	gBypass
	gStaleSet
	gUnrendered
	nGroups
)

type counterFamily struct {
	name, help string
	kind       string // the "kind" label's value, for a family that has it
	group      int
}

// counterFamilies is indexed by cachemetrics.Counter. The entries of a family with a
// kind label follow each other.
var counterFamilies = [cachemetrics.NumCounters]counterFamily{
	cachemetrics.Hits:                 {name: "hits_total", help: "Reads served from the cache (stale serves and L1 hits included).", group: gRead},
	cachemetrics.L1Hits:               {name: "l1_hits_total", help: "Hits served from the in-process tier (runtime.WithL1), without a Redis round trip.", group: gL1},
	cachemetrics.Misses:               {name: "misses_total", help: "Reads that found no usable value in the cache.", group: gRead},
	cachemetrics.Loads:                {name: "loads_total", help: "Loader runs, failed ones included.", group: gRead},
	cachemetrics.LoadErrors:           {name: "load_errors_total", help: "Loader runs that returned an error.", group: gRead},
	cachemetrics.Stale:                {name: "stale_serves_total", help: "Stale values served while a refresh ran (stale-while-revalidate); each is also a hit.", group: gRead},
	cachemetrics.Sets:                 {name: "sets_total", help: "Values stored, after loads and by Set and Put.", group: gSet},
	cachemetrics.KeyInvalidations:     {name: "invalidations_total", help: `Invalidations: kind="key" counts the calls that deleted keys by name, kind="tag" each tag invalidated.`, kind: "key", group: gInvalidate},
	cachemetrics.TagInvalidations:     {name: "invalidations_total", kind: "tag", group: gInvalidate},
	cachemetrics.InvalidatedKeys:      {name: "invalidated_keys_total", help: "Keys deleted by invalidations of keys and tags.", group: gInvalidate},
	cachemetrics.InvalidationFailures: {name: "invalidation_failures_total", help: "Invalidations of keys or tags that failed; each is retried in the background.", group: gInvalidate},
	cachemetrics.RedisErrors:          {name: "redis_errors_total", help: "Redis errors, absorbed (the source answered) or returned.", group: gRedisError},
	cachemetrics.DecodeErrors:         {name: "decode_errors_total", help: "Stored values that could not be decoded (deleted and reloaded).", group: gDecodeError},
	cachemetrics.EncodeErrors:         {name: "encode_errors_total", help: "Values that could not be encoded, and so were not cached.", group: gEncodeError},
	cachemetrics.Bypasses:             {name: "bypasses_total", help: "Calls passed to the source uncached because their key could not be built.", group: gBypass},
	cachemetrics.StaleSetsPrevented:   {name: "stale_sets_prevented_total", help: "Loaded values not stored because their key or a tag was invalidated while they loaded.", group: gStaleSet},
	cachemetrics.Unrendered:           {name: "unrendered_total", help: "Invalidation keys or tags that a generated method could not render (a nil pointer).", group: gUnrendered},
}

var histFamilies = [cachemetrics.NumHists]struct{ name, help string }{
	cachemetrics.HitDuration:          {"hit_duration_seconds", "Time of a hit: the Redis round trip (or the L1 lookup) and the decode."},
	cachemetrics.LoadDuration:         {"load_duration_seconds", "Time a loader took, failed runs included."},
	cachemetrics.InvalidationDuration: {"invalidation_duration_seconds", "Time of an invalidation: of one call that deletes keys, or of one tag."},
}

// series holds the counters and histograms of one (namespace, method).
type series struct {
	method string // the label
	n      [cachemetrics.NumCounters]atomic.Uint64
	h      [cachemetrics.NumHists]histogram
}

// histogram counts observations per bucket, the last bucket being +Inf;
// sum is in nanoseconds. Its count is the sum of the buckets, read at
// scrape time, so that count and buckets always agree.
type histogram struct {
	counts []atomic.Uint64
	sum    atomic.Int64
}

func (h *histogram) observe(bounds []time.Duration, d time.Duration) {
	i := 0
	for i < len(bounds) && d > bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

func newSeries(buckets []time.Duration, method string) *series {
	s := &series{method: method}
	for i := range s.h {
		s.h[i].counts = make([]atomic.Uint64, len(buckets)+1)
	}
	return s
}

// sink records events into the series of a Collector.
type sink struct{ buckets []time.Duration }

func (*sink) Add(s *series, c cachemetrics.Counter, n int64) {
	if n > 0 {
		s.n[c].Add(uint64(n))
	}
}

func (k *sink) Observe(s *series, h cachemetrics.Hist, d time.Duration) {
	s.h[h].observe(k.buckets, d)
}

func (*sink) Event(*series, runtime.Event) {}
