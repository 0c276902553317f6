package cacheprometheus

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/repocache/repocache/internal/cachemetrics"
	"github.com/repocache/repocache/runtime"
)

const (
	// metricPrefix starts every family's name.
	metricPrefix = "repocache_"
	// UnknownMethod is the method label of an event whose call named no
	// method (runtime.Method, runtime.WithMethod).
	UnknownMethod = cachemetrics.UnknownMethod
	// OtherMethod is the method label of events of the methods seen after
	// the first WithMaxMethods ones.
	OtherMethod = cachemetrics.OtherMethod
)

// DefaultBuckets returns the upper bounds of the latency histograms: 10µs
// to 10s in 1, 2.5, 5 steps, which covers an in-process hit (µs), a Redis
// round trip (100µs to a few ms) and a slow loader (seconds).
func DefaultBuckets() []time.Duration { return cachemetrics.DefaultBuckets() }

// Option configures a Collector.
type Option func(*config)

type config struct {
	buckets      []time.Duration
	maxMethods   int
	statsTimeout time.Duration
}

// WithBuckets sets the upper bounds of the latency histograms (hits, loads,
// invalidations); they are sorted and deduplicated, and bounds that are not
// positive are dropped. The default is DefaultBuckets.
func WithBuckets(bounds ...time.Duration) Option {
	return func(c *config) {
		if b := cachemetrics.Buckets(bounds); len(b) > 0 {
			c.buckets = b
		}
	}
}

// WithMaxMethods bounds the number of distinct method label values: events
// of methods seen after the first n are counted under OtherMethod. The
// default is 1000; n < 1 is ignored.
func WithMaxMethods(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.maxMethods = n
		}
	}
}

// WithStatsTimeout bounds how long a scrape waits for the Stats of the
// watched Caches (read in parallel); a Cache that has not answered by then
// is reported with repocache_stats_ok 0. The default is 2s; d <= 0 is
// ignored.
func WithStatsTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.statsTimeout = d
		}
	}
}

// Collector is a prometheus.Collector for one or more repocache Caches: the
// events that its Metrics hooks observe, and the Stats of the Caches it
// watches. It is safe for concurrent use. Register it on a
// prometheus.Registerer; New registers nothing.
type Collector struct {
	buckets      []time.Duration
	bucketBounds []float64 // the same in seconds
	maxMethods   int
	statsTimeout time.Duration

	counterDescs [cachemetrics.NumCounters]*prometheus.Desc
	histDescs    [cachemetrics.NumHists]*prometheus.Desc
	statDescs    []*prometheus.Desc // one per statFamilies entry
	statsOK      *prometheus.Desc

	hooks   *cachemetrics.Hooks[series]
	watched cachemetrics.WatchList[struct{}]
}

// New returns a Collector with no hooks and no watched Caches.
func New(opts ...Option) *Collector {
	cfg := config{buckets: DefaultBuckets(), maxMethods: 1000, statsTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	c := &Collector{
		buckets:      cfg.buckets,
		maxMethods:   cfg.maxMethods,
		statsTimeout: cfg.statsTimeout,
	}
	c.hooks = cachemetrics.NewHooks(&sink{c.buckets}, c.maxMethods, func(_, method string) *series {
		return newSeries(c.buckets, method)
	})
	for _, d := range c.buckets {
		c.bucketBounds = append(c.bucketBounds, d.Seconds())
	}
	eventLabels := []string{"namespace", "method"}
	for i, f := range counterFamilies {
		if f.kind != "" && i > 0 && counterFamilies[i-1].name == f.name {
			c.counterDescs[i] = c.counterDescs[i-1] // one family, another kind
			continue
		}
		labels := eventLabels
		if f.kind != "" {
			labels = append(labels[:2:2], "kind")
		}
		c.counterDescs[i] = prometheus.NewDesc(metricPrefix+f.name, f.help, labels, nil)
	}
	for i, f := range histFamilies {
		c.histDescs[i] = prometheus.NewDesc(metricPrefix+f.name, f.help, eventLabels, nil)
	}
	for _, f := range statFamilies {
		c.statDescs = append(c.statDescs, prometheus.NewDesc(metricPrefix+f.name, f.help, []string{"namespace"}, nil))
	}
	c.statsOK = prometheus.NewDesc(metricPrefix+"stats_ok",
		"1 if the last scrape read the Cache's Stats, Redis's INFO included, in time; 0 if not (the INFO families are then left out).",
		[]string{"namespace"}, nil)
	return c
}

// Metrics returns the hook to give runtime.WithMetrics for the Caches of
// namespace, whose events it counts under that namespace label (see the
// package doc: Cache.Namespace() is the value to give). Calls with the same
// namespace return the same hook; several Caches may share it, their
// events then add up.
func (c *Collector) Metrics(namespace string) runtime.Metrics {
	return c.hooks.Hook(namespace)
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for i, d := range c.counterDescs {
		if i == 0 || d != c.counterDescs[i-1] {
			ch <- d
		}
	}
	for _, d := range c.histDescs {
		ch <- d
	}
	for _, d := range c.statDescs {
		ch <- d
	}
	ch <- c.statsOK
}

// Collect implements prometheus.Collector: the event families of every
// hook, then the Stats families of every watched Cache (see Watch).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, ns := range c.hooks.Snapshot() {
		for _, s := range ns.Series {
			c.collectSeries(ch, ns.Name, s)
		}
	}
	c.collectStats(ch)
}

func (c *Collector) collectSeries(ch chan<- prometheus.Metric, ns string, s *series) {
	var n [cachemetrics.NumCounters]uint64
	var touched [nGroups]bool
	for i := range n {
		n[i] = s.n[i].Load()
		if n[i] > 0 {
			touched[counterFamilies[i].group] = true
		}
	}
	for i, f := range counterFamilies {
		if !touched[f.group] {
			continue
		}
		labels := []string{ns, s.method}
		if f.kind != "" {
			labels = append(labels, f.kind)
		}
		ch <- constMetric(c.counterDescs[i], prometheus.CounterValue, float64(n[i]), labels...)
	}
	for i := range s.h {
		h := &s.h[i]
		cum := make(map[float64]uint64, len(c.bucketBounds))
		var count uint64
		for j := range h.counts {
			count += h.counts[j].Load()
			if j < len(c.bucketBounds) {
				cum[c.bucketBounds[j]] = count
			}
		}
		if count == 0 {
			continue
		}
		m, err := prometheus.NewConstHistogram(c.histDescs[i], count, time.Duration(h.sum.Load()).Seconds(), cum, ns, s.method)
		if err != nil {
			m = prometheus.NewInvalidMetric(c.histDescs[i], err)
		}
		ch <- m
	}
}

func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

// errWatched reports a second Cache with the namespace of a watched one:
// their series would collide.
var errWatched = errors.New("cacheprometheus: another Cache with this namespace is watched")

// Watch adds c's Stats to what a scrape reports, under the namespace label
// c.Namespace(): the pool, reconnects, breaker, retries and Redis INFO
// families. Watching a Cache again does nothing; watching a second Cache
// with the namespace of a watched one is an error, since their series
// would collide.
func (c *Collector) Watch(cache *runtime.Cache) error {
	if cache == nil {
		return errors.New("cacheprometheus: Watch of a nil Cache")
	}
	ns := cachemetrics.ValidUTF8(cache.Namespace())
	if !c.watched.Add(cache, ns, struct{}{}) {
		return fmt.Errorf("%w: %q", errWatched, ns)
	}
	return nil
}

// Unwatch removes c from the watched Caches (see Watch), e.g. before it is
// closed. Its event series stay.
func (c *Collector) Unwatch(cache *runtime.Cache) {
	c.watched.Remove(cache)
}
