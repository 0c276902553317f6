package cacheotel

import (
	"context"
	"maps"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/repocache/repocache/runtime"
)

// counterID indexes the event counters.
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
	cTagInvalidations // the same instrument as cKeyInvalidations
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

// counterFamilies is indexed by counterID; an entry without a name is the
// instrument of the entry before it.
var counterFamilies = [nCounters]struct{ name, unit, help string }{
	cHits:                 {"repocache.hits", "{hit}", "Reads served from the cache (stale serves and L1 hits included)."},
	cL1Hits:               {"repocache.l1.hits", "{hit}", "Hits served from the in-process tier (runtime.WithL1), without a Redis round trip."},
	cMisses:               {"repocache.misses", "{miss}", "Reads that found no usable value in the cache."},
	cLoads:                {"repocache.loads", "{load}", "Loader runs, failed ones included."},
	cLoadErrors:           {"repocache.load.errors", "{error}", "Loader runs that returned an error."},
	cStale:                {"repocache.stale_serves", "{serve}", "Stale values served while a refresh ran (stale-while-revalidate); each is also a hit."},
	cSets:                 {"repocache.sets", "{set}", "Values stored, after loads and by Set and Put."},
	cKeyInvalidations:     {"repocache.invalidations", "{invalidation}", `Invalidations: repocache.invalidation.kind "key" counts the calls that deleted keys by name, "tag" each tag invalidated.`},
	cTagInvalidations:     {},
	cInvalidatedKeys:      {"repocache.invalidated_keys", "{key}", "Keys deleted by invalidations of keys and tags."},
	cInvalidationFailures: {"repocache.invalidation.failures", "{failure}", "Invalidations of keys or tags that failed; each is retried in the background."},
	cRedisErrors:          {"repocache.redis.errors", "{error}", "Redis errors, absorbed (the source answered) or returned."},
	cDecodeErrors:         {"repocache.decode_errors", "{error}", "Stored values that could not be decoded (deleted and reloaded)."},
	cEncodeErrors:         {"repocache.encode_errors", "{error}", "Values that could not be encoded, and so were not cached."},
	cBypasses:             {"repocache.bypasses", "{call}", "Calls passed to the source uncached because their key could not be built."},
	cStaleSetsPrevented:   {"repocache.stale_sets_prevented", "{set}", "Loaded values not stored because their key or a tag was invalidated while they loaded."},
	cUnrendered:           {"repocache.unrendered", "{template}", "Invalidation keys or tags that a generated method could not render (a nil pointer)."},
}

// histID indexes the latency histograms.
type histID int

const (
	hHit histID = iota
	hLoad
	hInvalidation
	nHists
)

var histFamilies = [nHists]struct{ name, help string }{
	hHit:          {"repocache.hit.duration", "Time of a hit: the Redis round trip (or the L1 lookup) and the decode."},
	hLoad:         {"repocache.load.duration", "Time a loader took, failed runs included."},
	hInvalidation: {"repocache.invalidation.duration", "Time of an invalidation: of one call that deletes keys, or of one tag."},
}

// series holds the prepared options of one (namespace, method): the
// attribute sets are built once, so that recording allocates nothing.
type series struct {
	add       []metric.AddOption
	addKey    []metric.AddOption // with kind "key"
	addTag    []metric.AddOption // with kind "tag"
	record    []metric.RecordOption
	spanAttrs []attribute.KeyValue
}

func newSeries(ns, method string) *series {
	base := []attribute.KeyValue{NamespaceKey.String(ns), MethodKey.String(method)}
	set := attribute.NewSet(base...)
	kind := func(k string) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append(base[:2:2], KindKey.String(k))...))}
	}
	return &series{
		add:       []metric.AddOption{metric.WithAttributeSet(set)},
		addKey:    kind("key"),
		addTag:    kind("tag"),
		record:    []metric.RecordOption{metric.WithAttributeSet(set)},
		spanAttrs: base,
	}
}

// knownMethods is the set of method values once there is no room for more:
// it no longer changes, and is read without a lock.
type knownMethods struct {
	full atomic.Bool
	set  atomic.Pointer[map[string]struct{}]
}

func (k *knownMethods) freeze(methods map[string]struct{}) {
	m := maps.Clone(methods)
	k.set.Store(&m)
	k.full.Store(true)
}

// has reports whether method has a value of its own; only once full.
func (k *knownMethods) has(method string) bool {
	v := UnknownMethod
	if method != "" {
		v = validUTF8(method)
	}
	_, ok := (*k.set.Load())[v]
	return ok
}

// hook is the runtime.Metrics of one namespace.
type hook struct {
	rec *Recorder
	ns  string
	// byMethod maps an event's method to its series, copy on write: the
	// hot path reads it without a lock, a new method replaces it under
	// rec.mu. A method recorded as OtherMethod is not in it.
	byMethod atomic.Pointer[map[string]*series]
	other    atomic.Pointer[series] // OtherMethod's, once used
	byLabel  map[string]*series     // guarded by rec.mu
}

// Observe implements runtime.Metrics.
func (h *hook) Observe(e runtime.Event) {
	method := e.Method
	if method == "" && (e.Op == runtime.OpBypass || e.Op == runtime.OpUnrendered) {
		method = e.Key // these events name the method in Key
	}
	s := h.series(method)
	r := h.rec
	ctx := context.Background() // events carry no context
	switch e.Op {
	case runtime.OpHit:
		r.counters[cHits].Add(ctx, 1, s.add...)
		if e.L1 {
			r.counters[cL1Hits].Add(ctx, 1, s.add...)
		}
		r.hists[hHit].Record(ctx, e.Duration.Seconds(), s.record...)
	case runtime.OpMiss:
		r.counters[cMisses].Add(ctx, 1, s.add...)
	case runtime.OpLoad:
		r.counters[cLoads].Add(ctx, 1, s.add...)
		var failed int64 // added even when 0, so that the error ratio starts at 0
		if e.Err != nil {
			failed = 1
		}
		r.counters[cLoadErrors].Add(ctx, failed, s.add...)
		r.hists[hLoad].Record(ctx, e.Duration.Seconds(), s.record...)
	case runtime.OpStale:
		r.counters[cStale].Add(ctx, 1, s.add...)
	case runtime.OpSet:
		r.counters[cSets].Add(ctx, 1, s.add...)
	case runtime.OpInvalidate:
		if e.Tag {
			r.counters[cTagInvalidations].Add(ctx, 1, s.addTag...)
		} else {
			r.counters[cKeyInvalidations].Add(ctx, 1, s.addKey...)
		}
		r.counters[cInvalidatedKeys].Add(ctx, int64(e.Count), s.add...)
		r.hists[hInvalidation].Record(ctx, e.Duration.Seconds(), s.record...)
	case runtime.OpInvalidateError:
		r.counters[cInvalidationFailures].Add(ctx, 1, s.add...)
	case runtime.OpError:
		r.counters[cRedisErrors].Add(ctx, 1, s.add...)
	case runtime.OpDecodeError:
		r.counters[cDecodeErrors].Add(ctx, 1, s.add...)
	case runtime.OpEncodeError:
		r.counters[cEncodeErrors].Add(ctx, 1, s.add...)
	case runtime.OpBypass:
		r.counters[cBypasses].Add(ctx, 1, s.add...)
	case runtime.OpStaleSetPrevented:
		r.counters[cStaleSetsPrevented].Add(ctx, 1, s.add...)
	case runtime.OpUnrendered:
		r.counters[cUnrendered].Add(ctx, 1, s.add...)
	}
	if r.spans[e.Op] {
		h.span(e, s)
	}
}

// span makes the span of an event after the fact: it ends now and started
// e.Duration ago. It has no parent (see the package doc).
func (h *hook) span(e runtime.Event, s *series) {
	end := time.Now()
	attrs := make([]attribute.KeyValue, 0, len(s.spanAttrs)+3)
	attrs = append(attrs, s.spanAttrs...)
	switch e.Op {
	case runtime.OpHit:
		attrs = append(attrs, ResultKey.String("hit"))
		if e.L1 {
			attrs = append(attrs, L1Key.Bool(true))
		}
	case runtime.OpMiss:
		attrs = append(attrs, ResultKey.String("miss"))
	case runtime.OpStale:
		attrs = append(attrs, ResultKey.String("stale"))
	case runtime.OpInvalidate:
		attrs = append(attrs, kindOf(e), InvalidatedKeysKey.Int(e.Count))
	case runtime.OpInvalidateError:
		attrs = append(attrs, kindOf(e))
	}
	if h.rec.keys && e.Key != "" {
		attrs = append(attrs, KeyKey.String(e.Key))
	}
	_, span := h.rec.tracer.Start(context.Background(), spanNames[e.Op],
		trace.WithTimestamp(end.Add(-e.Duration)), trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	if e.Err != nil {
		span.RecordError(e.Err, trace.WithTimestamp(end))
		span.SetStatus(codes.Error, e.Err.Error())
	}
	span.End(trace.WithTimestamp(end))
}

// spanNames are the span names by runtime.Op: "repocache.load".
var spanNames = func() (names [256]string) {
	for i := range names {
		names[i] = "repocache." + runtime.Op(i).String()
	}
	return names
}()

func kindOf(e runtime.Event) attribute.KeyValue {
	if e.Tag {
		return KindKey.String("tag")
	}
	return KindKey.String("key")
}

// series returns the series of method: from the copy-on-write map, without
// a lock or an allocation, but for a method's first event.
func (h *hook) series(method string) *series {
	if s, ok := (*h.byMethod.Load())[method]; ok {
		return s
	}
	if h.rec.known.full.Load() {
		// No more methods get a value of their own: one that has none
		// goes to OtherMethod without taking the lock.
		if s := h.other.Load(); s != nil && !h.rec.known.has(method) {
			return s
		}
	}
	return h.add(method)
}

func (h *hook) add(method string) *series {
	r := h.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *h.byMethod.Load()
	if s, ok := old[method]; ok {
		return s
	}
	v := r.methodValue(method)
	s, ok := h.byLabel[v]
	if !ok {
		s = newSeries(h.ns, v)
		h.byLabel[v] = s
	}
	if v == OtherMethod && method != OtherMethod {
		h.other.Store(s)
		return s
	}
	next := make(map[string]*series, len(old)+1)
	maps.Copy(next, old)
	next[method] = s
	h.byMethod.Store(&next)
	return s
}
