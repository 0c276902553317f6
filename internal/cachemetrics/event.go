package cachemetrics

import (
	"time"

	"github.com/repocache/repocache/runtime"
)

// Counter indexes the event counters, which every exporter has.
type Counter int

// The event counters.
const (
	Hits                 Counter = iota // reads served from the cache, stale serves and L1 hits included
	L1Hits                              // hits served from the in-process tier
	Misses                              // reads that found no usable value
	Loads                               // loader runs, failed ones included
	LoadErrors                          // loader runs that returned an error
	Stale                               // stale values served
	Sets                                // values stored
	KeyInvalidations                    // calls that deleted keys by name
	TagInvalidations                    // tags invalidated
	InvalidatedKeys                     // keys deleted by invalidations
	InvalidationFailures                // failed invalidations
	RedisErrors                         // Redis errors
	DecodeErrors                        // stored values that could not be decoded
	EncodeErrors                        // values that could not be encoded
	Bypasses                            // calls passed to the source uncached
	StaleSetsPrevented                  // loaded values not stored because of an invalidation
	Unrendered                          // invalidation templates that could not be rendered
	NumCounters                         // the number of counters
)

// Hist indexes the latency histograms, which every exporter has.
type Hist int

// The latency histograms.
const (
	HitDuration          Hist = iota // time of a hit
	LoadDuration                     // time of a loader run
	InvalidationDuration             // time of an invalidation
	NumHists                         // the number of histograms
)

// Sink records the measurements of events into series of type T, those of
// one (namespace, method). Its methods are called on the hot path of every
// cache call: they must not block, and should not allocate.
type Sink[T any] interface {
	// Add adds n to counter c of s. n is 0 for a load that did not fail
	// (LoadErrors), so that an exporter that wants an error ratio to
	// start at 0 can add it; it is Event.Count, possibly 0, for
	// InvalidatedKeys.
	Add(s *T, c Counter, n int64)
	// Observe records d in histogram h of s.
	Observe(s *T, h Hist, d time.Duration)
	// Event is called after the Add and Observe calls of each event, for
	// what an exporter does beyond counting (a span).
	Event(s *T, e runtime.Event)
}

// Record feeds the measurements of e into s through sink: the counters
// and histograms of its Op, then sink.Event. An Op it does not know adds
// nothing.
func Record[T any](sink Sink[T], s *T, e runtime.Event) {
	switch e.Op {
	case runtime.OpHit:
		sink.Add(s, Hits, 1)
		if e.L1 {
			sink.Add(s, L1Hits, 1)
		}
		sink.Observe(s, HitDuration, e.Duration)
	case runtime.OpMiss:
		sink.Add(s, Misses, 1)
	case runtime.OpLoad:
		sink.Add(s, Loads, 1)
		var failed int64
		if e.Err != nil {
			failed = 1
		}
		sink.Add(s, LoadErrors, failed)
		sink.Observe(s, LoadDuration, e.Duration)
	case runtime.OpStale:
		sink.Add(s, Stale, 1)
	case runtime.OpSet:
		sink.Add(s, Sets, 1)
	case runtime.OpInvalidate:
		if e.Tag {
			sink.Add(s, TagInvalidations, 1)
		} else {
			sink.Add(s, KeyInvalidations, 1)
		}
		sink.Add(s, InvalidatedKeys, int64(e.Count))
		sink.Observe(s, InvalidationDuration, e.Duration)
	case runtime.OpInvalidateError:
		sink.Add(s, InvalidationFailures, 1)
	case runtime.OpError:
		sink.Add(s, RedisErrors, 1)
	case runtime.OpDecodeError:
		sink.Add(s, DecodeErrors, 1)
	case runtime.OpEncodeError:
		sink.Add(s, EncodeErrors, 1)
	case runtime.OpBypass:
		sink.Add(s, Bypasses, 1)
	case runtime.OpStaleSetPrevented:
		sink.Add(s, StaleSetsPrevented, 1)
	case runtime.OpUnrendered:
		sink.Add(s, Unrendered, 1)
	}
	sink.Event(s, e)
}
