package cacheotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/repocache/repocache/internal/cachemetrics"
	"github.com/repocache/repocache/runtime"
)

// counterFamilies is indexed by cachemetrics.Counter; an entry without a name is the
// instrument of the entry before it.
var counterFamilies = [cachemetrics.NumCounters]struct{ name, unit, help string }{
	cachemetrics.Hits:                 {"repocache.hits", "{hit}", "Reads served from the cache (stale serves and L1 hits included)."},
	cachemetrics.L1Hits:               {"repocache.l1.hits", "{hit}", "Hits served from the in-process tier (runtime.WithL1), without a Redis round trip."},
	cachemetrics.Misses:               {"repocache.misses", "{miss}", "Reads that found no usable value in the cache."},
	cachemetrics.Loads:                {"repocache.loads", "{load}", "Loader runs, failed ones included."},
	cachemetrics.LoadErrors:           {"repocache.load.errors", "{error}", "Loader runs that returned an error."},
	cachemetrics.Stale:                {"repocache.stale_serves", "{serve}", "Stale values served while a refresh ran (stale-while-revalidate); each is also a hit."},
	cachemetrics.Sets:                 {"repocache.sets", "{set}", "Values stored, after loads and by Set and Put."},
	cachemetrics.KeyInvalidations:     {"repocache.invalidations", "{invalidation}", `Invalidations: repocache.invalidation.kind "key" counts the calls that deleted keys by name, "tag" each tag invalidated.`},
	cachemetrics.TagInvalidations:     {},
	cachemetrics.InvalidatedKeys:      {"repocache.invalidated_keys", "{key}", "Keys deleted by invalidations of keys and tags."},
	cachemetrics.InvalidationFailures: {"repocache.invalidation.failures", "{failure}", "Invalidations of keys or tags that failed; each is retried in the background."},
	cachemetrics.RedisErrors:          {"repocache.redis.errors", "{error}", "Redis errors, absorbed (the source answered) or returned."},
	cachemetrics.DecodeErrors:         {"repocache.decode_errors", "{error}", "Stored values that could not be decoded (deleted and reloaded)."},
	cachemetrics.EncodeErrors:         {"repocache.encode_errors", "{error}", "Values that could not be encoded, and so were not cached."},
	cachemetrics.Bypasses:             {"repocache.bypasses", "{call}", "Calls passed to the source uncached because their key could not be built."},
	cachemetrics.StaleSetsPrevented:   {"repocache.stale_sets_prevented", "{set}", "Loaded values not stored because their key or a tag was invalidated while they loaded."},
	cachemetrics.Unrendered:           {"repocache.unrendered", "{template}", "Invalidation keys or tags that a generated method could not render (a nil pointer)."},
}

var histFamilies = [cachemetrics.NumHists]struct{ name, help string }{
	cachemetrics.HitDuration:          {"repocache.hit.duration", "Time of a hit: the Redis round trip (or the L1 lookup) and the decode."},
	cachemetrics.LoadDuration:         {"repocache.load.duration", "Time a loader took, failed runs included."},
	cachemetrics.InvalidationDuration: {"repocache.invalidation.duration", "Time of an invalidation: of one call that deletes keys, or of one tag."},
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

// sink records events through the instruments of a Recorder.
type sink struct{ r *Recorder }

func (k *sink) Add(s *series, c cachemetrics.Counter, n int64) {
	opts := s.add
	switch c {
	case cachemetrics.KeyInvalidations:
		opts = s.addKey
	case cachemetrics.TagInvalidations:
		opts = s.addTag
	}
	// n is added even when 0: a load that did not fail makes the error
	// ratio start at 0.
	k.r.counters[c].Add(context.Background(), n, opts...) // events carry no context
}

func (k *sink) Observe(s *series, h cachemetrics.Hist, d time.Duration) {
	k.r.hists[h].Record(context.Background(), d.Seconds(), s.record...)
}

func (k *sink) Event(s *series, e runtime.Event) {
	if k.r.spans[e.Op] {
		k.r.span(e, s)
	}
}

// span makes the span of an event after the fact: it ends now and started
// e.Duration ago. It has no parent (see the package doc).
func (r *Recorder) span(e runtime.Event, s *series) {
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
	if r.keys && e.Key != "" {
		attrs = append(attrs, KeyKey.String(e.Key))
	}
	_, span := r.tracer.Start(context.Background(), spanNames[e.Op],
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
