package cacheprometheus

import (
	"sync/atomic"
	"time"

	"github.com/repocache/repocache/runtime"
)

// counterID indexes the event counters of a series.
type counterID int

const (
	cHits counterID = iota
	cL1Hits
	cMisses
	cLoads
	cLoadErrors
	cStale
	cSets
	cKeyInvalidations
	cTagInvalidations
	cInvalidatedKeys
	cInvalidationFailures
	cRedisErrors
	cDecodeErrors
	cEncodeErrors
	cBypasses
	cStaleSetsPrevented
	cUnrendered
	nCounters
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

// counterFamilies is indexed by counterID. The entries of a family with a
// kind label follow each other.
var counterFamilies = [nCounters]counterFamily{
	cHits:                 {name: "hits_total", help: "Reads served from the cache (stale serves and L1 hits included).", group: gRead},
	cL1Hits:               {name: "l1_hits_total", help: "Hits served from the in-process tier (runtime.WithL1), without a Redis round trip.", group: gL1},
	cMisses:               {name: "misses_total", help: "Reads that found no usable value in the cache.", group: gRead},
	cLoads:                {name: "loads_total", help: "Loader runs, failed ones included.", group: gRead},
	cLoadErrors:           {name: "load_errors_total", help: "Loader runs that returned an error.", group: gRead},
	cStale:                {name: "stale_serves_total", help: "Stale values served while a refresh ran (stale-while-revalidate); each is also a hit.", group: gRead},
	cSets:                 {name: "sets_total", help: "Values stored, after loads and by Set and Put.", group: gSet},
	cKeyInvalidations:     {name: "invalidations_total", help: `Invalidations: kind="key" counts the calls that deleted keys by name, kind="tag" each tag invalidated.`, kind: "key", group: gInvalidate},
	cTagInvalidations:     {name: "invalidations_total", kind: "tag", group: gInvalidate},
	cInvalidatedKeys:      {name: "invalidated_keys_total", help: "Keys deleted by invalidations of keys and tags.", group: gInvalidate},
	cInvalidationFailures: {name: "invalidation_failures_total", help: "Invalidations of keys or tags that failed; each is retried in the background.", group: gInvalidate},
	cRedisErrors:          {name: "redis_errors_total", help: "Redis errors, absorbed (the source answered) or returned.", group: gRedisError},
	cDecodeErrors:         {name: "decode_errors_total", help: "Stored values that could not be decoded (deleted and reloaded).", group: gDecodeError},
	cEncodeErrors:         {name: "encode_errors_total", help: "Values that could not be encoded, and so were not cached.", group: gEncodeError},
	cBypasses:             {name: "bypasses_total", help: "Calls passed to the source uncached because their key could not be built.", group: gBypass},
	cStaleSetsPrevented:   {name: "stale_sets_prevented_total", help: "Loaded values not stored because their key or a tag was invalidated while they loaded.", group: gStaleSet},
	cUnrendered:           {name: "unrendered_total", help: "Invalidation keys or tags that a generated method could not render (a nil pointer).", group: gUnrendered},
}

// histID indexes the latency histograms of a series.
type histID int

const (
	hHit histID = iota
	hLoad
	hInvalidation
	nHists
)

var histFamilies = [nHists]struct{ name, help string }{
	hHit:          {"hit_duration_seconds", "Time of a hit: the Redis round trip (or the L1 lookup) and the decode."},
	hLoad:         {"load_duration_seconds", "Time a loader took, failed runs included."},
	hInvalidation: {"invalidation_duration_seconds", "Time of an invalidation: of one call that deletes keys, or of one tag."},
}

// series holds the counters and histograms of one (namespace, method).
type series struct {
	method string // the label
	n      [nCounters]atomic.Uint64
	h      [nHists]histogram
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

func (c *Collector) newSeries(method string) *series {
	s := &series{method: method}
	for i := range s.h {
		s.h[i].counts = make([]atomic.Uint64, len(c.buckets)+1)
	}
	return s
}

// hook is the runtime.Metrics of one namespace.
type hook struct {
	col *Collector
	ns  string
	// byMethod maps an event's method to its series, copy on write: the
	// hot path reads it without a lock, a new method replaces it under
	// col.mu. A method counted as OtherMethod is not in it.
	byMethod atomic.Pointer[map[string]*series]
	other    atomic.Pointer[series] // OtherMethod's, once used
	byLabel  map[string]*series     // guarded by col.mu
	list     []*series              // every series, guarded by col.mu
}

// Observe implements runtime.Metrics.
func (h *hook) Observe(e runtime.Event) {
	method := e.Method
	if method == "" && (e.Op == runtime.OpBypass || e.Op == runtime.OpUnrendered) {
		method = e.Key // these events name the method in Key
	}
	s := h.series(method)
	switch e.Op {
	case runtime.OpHit:
		s.n[cHits].Add(1)
		if e.L1 {
			s.n[cL1Hits].Add(1)
		}
		s.h[hHit].observe(h.col.buckets, e.Duration)
	case runtime.OpMiss:
		s.n[cMisses].Add(1)
	case runtime.OpLoad:
		s.n[cLoads].Add(1)
		if e.Err != nil {
			s.n[cLoadErrors].Add(1)
		}
		s.h[hLoad].observe(h.col.buckets, e.Duration)
	case runtime.OpStale:
		s.n[cStale].Add(1)
	case runtime.OpSet:
		s.n[cSets].Add(1)
	case runtime.OpInvalidate:
		if e.Tag {
			s.n[cTagInvalidations].Add(1)
		} else {
			s.n[cKeyInvalidations].Add(1)
		}
		if e.Count > 0 {
			s.n[cInvalidatedKeys].Add(uint64(e.Count))
		}
		s.h[hInvalidation].observe(h.col.buckets, e.Duration)
	case runtime.OpInvalidateError:
		s.n[cInvalidationFailures].Add(1)
	case runtime.OpError:
		s.n[cRedisErrors].Add(1)
	case runtime.OpDecodeError:
		s.n[cDecodeErrors].Add(1)
	case runtime.OpEncodeError:
		s.n[cEncodeErrors].Add(1)
	case runtime.OpBypass:
		s.n[cBypasses].Add(1)
	case runtime.OpStaleSetPrevented:
		s.n[cStaleSetsPrevented].Add(1)
	case runtime.OpUnrendered:
		s.n[cUnrendered].Add(1)
	}
}

// series returns the series of method: from the copy-on-write map, without
// a lock or an allocation, but for a method's first event.
func (h *hook) series(method string) *series {
	if s, ok := (*h.byMethod.Load())[method]; ok {
		return s
	}
	if h.col.full.Load() {
		// No more methods get a label of their own: one that has none
		// goes to OtherMethod without taking the lock.
		if s := h.other.Load(); s != nil && !h.col.labelled(method) {
			return s
		}
	}
	return h.add(method)
}

func (h *hook) add(method string) *series {
	c := h.col
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *h.byMethod.Load()
	if s, ok := old[method]; ok {
		return s
	}
	label := c.methodLabel(method)
	s, ok := h.byLabel[label]
	if !ok {
		s = c.newSeries(label)
		h.byLabel[label] = s
		h.list = append(h.list, s)
	}
	if label == OtherMethod && method != OtherMethod {
		h.other.Store(s)
		return s
	}
	next := make(map[string]*series, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[method] = s
	h.byMethod.Store(&next)
	return s
}
