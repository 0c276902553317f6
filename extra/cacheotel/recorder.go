package cacheotel

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/repocache/repocache/internal/cachemetrics"
	"github.com/repocache/repocache/runtime"
)

// ScopeName is the instrumentation scope of the Recorder's meter and tracer.
const ScopeName = "github.com/repocache/repocache/extra/cacheotel"

// Attribute keys of measurements and spans.
const (
	// NamespaceKey is the Cache's namespace.
	NamespaceKey = attribute.Key("repocache.namespace")
	// MethodKey is the repository method of an event (Event.Method), or
	// UnknownMethod, or OtherMethod.
	MethodKey = attribute.Key("repocache.method")
	// KindKey says whether an invalidation was of keys ("key") or of a
	// tag ("tag").
	KindKey = attribute.Key("repocache.invalidation.kind")
	// ResultKey is "hit", "miss" or "stale", on the span of a read.
	ResultKey = attribute.Key("repocache.result")
	// InvalidatedKeysKey is the number of keys an invalidation deleted, on
	// its span.
	InvalidatedKeysKey = attribute.Key("repocache.invalidated_keys")
	// L1Key is true on the span of a hit served by the in-process tier.
	L1Key = attribute.Key("repocache.l1")
	// KeyKey is the cache key (or the keys, or the tag) of an event, on its
	// span, only under WithKeys.
	KeyKey = attribute.Key("repocache.key")
)

const (
	// UnknownMethod is the method of an event whose call named none
	// (runtime.Method, runtime.WithMethod).
	UnknownMethod = cachemetrics.UnknownMethod
	// OtherMethod is the method of events of the methods seen after the
	// first WithMaxMethods ones.
	OtherMethod = cachemetrics.OtherMethod
)

// DefaultBuckets returns the bucket boundaries of the latency histograms:
// 10µs to 10s in 1, 2.5, 5 steps, those of cacheprometheus.
func DefaultBuckets() []time.Duration { return cachemetrics.DefaultBuckets() }

// DefaultSpans returns the events that make spans unless WithSpans says
// otherwise: misses, loads, stale serves, invalidations and failed
// invalidations. Not hits: there is one per read.
func DefaultSpans() []runtime.Op {
	return []runtime.Op{runtime.OpMiss, runtime.OpLoad, runtime.OpStale, runtime.OpInvalidate, runtime.OpInvalidateError}
}

// Option configures a Recorder.
type Option func(*config)

type config struct {
	mp           metric.MeterProvider
	tp           trace.TracerProvider
	spans        []runtime.Op
	keys         bool
	buckets      []time.Duration
	maxMethods   int
	statsTimeout time.Duration
}

// WithMeterProvider sets where the instruments are created; the default is
// otel.GetMeterProvider(), the global one (a no-op until the application
// sets one).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

// WithTracerProvider sets where spans are made; the default is
// otel.GetTracerProvider(), the global one (a no-op until the application
// sets one).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithSpans sets the events that make spans, replacing DefaultSpans: add
// runtime.OpHit for a span per hit; give none for no spans at all.
func WithSpans(ops ...runtime.Op) Option {
	return func(c *config) { c.spans = slices.Clone(ops) }
}

// WithKeys puts the key of an event (the keys of an invalidation, the tag
// of a tag invalidation) on its span, as repocache.key. Keys often hold ids
// or e-mail addresses: it is off by default. Measurements never have keys.
func WithKeys() Option {
	return func(c *config) { c.keys = true }
}

// WithBuckets sets the bucket boundaries of the latency histograms; they
// are sorted and deduplicated, and boundaries that are not positive are
// dropped. The default is DefaultBuckets.
func WithBuckets(bounds ...time.Duration) Option {
	return func(c *config) {
		if b := cachemetrics.Buckets(bounds); len(b) > 0 {
			c.buckets = b
		}
	}
}

// WithMaxMethods bounds the number of distinct method attribute values:
// events of methods seen after the first n are recorded under OtherMethod.
// The default is 1000; n < 1 is ignored.
func WithMaxMethods(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.maxMethods = n
		}
	}
}

// WithStatsTimeout bounds how long a collection waits for the Stats of the
// watched Caches (read in parallel); a Cache that has not answered by then
// is reported with repocache.stats.ok 0. The default is 2s; d <= 0 is
// ignored.
func WithStatsTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.statsTimeout = d
		}
	}
}

// Recorder records the events of repocache Caches through OpenTelemetry
// instruments and spans, and the Stats of the Caches it watches. It is safe
// for concurrent use.
type Recorder struct {
	tracer       trace.Tracer
	spans        [256]bool // by runtime.Op
	keys         bool
	maxMethods   int
	statsTimeout time.Duration

	counters [cachemetrics.NumCounters]metric.Int64Counter
	hists    [cachemetrics.NumHists]metric.Float64Histogram
	stats    []statInstrument // one per statFamilies entry
	statsOK  metric.Int64ObservableGauge

	hooks   *cachemetrics.Hooks[series]
	watched cachemetrics.WatchList[metric.MeasurementOption] // with the namespace's attributes
}

// New returns a Recorder with its instruments created on the meter
// provider, no hooks and no watched Caches.
func New(opts ...Option) (*Recorder, error) {
	cfg := config{spans: DefaultSpans(), buckets: DefaultBuckets(), maxMethods: 1000, statsTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	r := &Recorder{
		tracer:       cfg.tp.Tracer(ScopeName),
		keys:         cfg.keys,
		maxMethods:   cfg.maxMethods,
		statsTimeout: cfg.statsTimeout,
	}
	r.hooks = cachemetrics.NewHooks(&sink{r}, r.maxMethods, newSeries)
	for _, op := range cfg.spans {
		r.spans[op] = true
	}
	meter := cfg.mp.Meter(ScopeName)
	var errs []error
	for i, f := range counterFamilies {
		if f.name == "" {
			r.counters[i] = r.counters[i-1] // one instrument, another kind
			continue
		}
		var err error
		r.counters[i], err = meter.Int64Counter(f.name, metric.WithDescription(f.help), metric.WithUnit(f.unit))
		errs = append(errs, err)
	}
	bounds := make([]float64, len(cfg.buckets))
	for i, d := range cfg.buckets {
		bounds[i] = d.Seconds()
	}
	for i, f := range histFamilies {
		var err error
		r.hists[i], err = meter.Float64Histogram(f.name, metric.WithDescription(f.help), metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
	}
	errs = append(errs, r.newStatInstruments(meter))
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cacheotel: creating instruments: %w", err)
	}
	return r, nil
}

// InstrumentNames returns the names of the instruments a Recorder creates:
// those of events, then those of Watch.
func InstrumentNames() []string {
	var names []string
	for _, f := range counterFamilies {
		if f.name != "" {
			names = append(names, f.name)
		}
	}
	for _, f := range histFamilies {
		names = append(names, f.name)
	}
	for _, f := range statFamilies {
		names = append(names, f.name)
	}
	return append(names, statsOKName)
}

// Metrics returns the hook to give runtime.WithMetrics for the Caches of
// namespace, whose events it records with that repocache.namespace (see
// the package doc: Cache.Namespace() is the value to give). Calls with the
// same namespace return the same hook.
func (r *Recorder) Metrics(namespace string) runtime.Metrics {
	return r.hooks.Hook(namespace)
}

// Watch adds c's Stats to what a collection reports, with the
// repocache.namespace c.Namespace(): the pool, reconnects, breaker, retries
// and Redis INFO instruments. Watching a Cache again does nothing; watching
// a second Cache with the namespace of a watched one is an error, since
// their measurements would collide.
func (r *Recorder) Watch(cache *runtime.Cache) error {
	if cache == nil {
		return errors.New("cacheotel: Watch of a nil Cache")
	}
	ns := cachemetrics.ValidUTF8(cache.Namespace())
	if !r.watched.Add(cache, ns, metric.WithAttributeSet(attribute.NewSet(NamespaceKey.String(ns)))) {
		return fmt.Errorf("cacheotel: another Cache with namespace %q is watched", ns)
	}
	return nil
}

// Unwatch removes c from the watched Caches (see Watch), e.g. before it is
// closed.
func (r *Recorder) Unwatch(cache *runtime.Cache) {
	r.watched.Remove(cache)
}
