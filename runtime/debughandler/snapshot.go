package debughandler

import (
	"context"
	"sync"
	"time"

	"github.com/repocache/repocache/runtime"
)

// Snapshot is what the page shows at one moment, and its JSON form.
type Snapshot struct {
	// At is when the snapshot was taken.
	At time.Time `json:"at"`
	// UptimeSeconds is the time since the Handler was created.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// WindowSeconds is the span of the request rates: the last minute, or
	// the uptime while it is shorter.
	WindowSeconds float64 `json:"window_seconds"`
	// Caches has one entry per Recorder, in the order they were made.
	Caches []CacheView `json:"caches"`
}

// CacheView is one Cache's section: its rows, their total, the server
// and the largest tags.
type CacheView struct {
	// Namespace is the Cache's (runtime.Cache.Namespace), or "cache N"
	// for a Recorder that was not given a Cache with Watch.
	Namespace string `json:"namespace"`
	// Watched reports that the Recorder was given its Cache (Watch):
	// without it, Server and Tags are absent.
	Watched bool `json:"watched"`
	// Rows has one entry per method (or key shape), busiest first.
	Rows []Row `json:"rows"`
	// Total adds up Rows.
	Total Row `json:"total"`
	// Server is the Cache's view of Redis (Stats).
	Server *Server `json:"server,omitempty"`
	// Tags are the largest tag sets of the namespace.
	Tags *Tags `json:"tags,omitempty"`
}

// Row is the counts of one repository method of one Cache since the
// Handler started (latencies too), except RequestsPerSecond.
type Row struct {
	// Name is the method, e.g. "Repository.FindProject"; for calls that
	// named no method, the shape of their key, e.g. "workspace:{}:members"
	// ("tag ..." for a tag invalidation); "(other)" past WithMaxRows.
	Name string `json:"name"`
	// Method is Event.Method, "" for a row named by its key shape.
	Method string `json:"method"`
	// Requests is Hits + Misses + Bypasses: the reads the cache answered.
	Requests int64 `json:"requests"`
	// RequestsPerSecond is Requests over the last WindowSeconds.
	RequestsPerSecond float64 `json:"requests_per_second"`
	Hits              int64   `json:"hits"`    // values served from the cache
	L1Hits            int64   `json:"l1_hits"` // of Hits, from the in-process tier
	Misses            int64   `json:"misses"`  // reads that found no usable value
	// HitRatio is Hits / (Hits + Misses), absent before any read.
	HitRatio    *float64 `json:"hit_ratio,omitempty"`
	StaleServes int64    `json:"stale_serves"` // of Hits, stale values served while a refresh ran
	Loads       int64    `json:"loads"`        // loader runs
	// NotFound counts the loads that answered runtime.ErrNotFound (and
	// so orm.ErrNotFound): an answer, cached with Negative, not a failure.
	NotFound int64 `json:"not_found"`
	// LoadErrors counts the loads that failed otherwise (Stats.LoadErrors
	// counts both).
	LoadErrors  int64   `json:"load_errors"`
	Sets        int64   `json:"sets"`         // values stored
	Bypasses    int64   `json:"bypasses"`     // calls passed to the source uncached
	HitLatency  Latency `json:"hit_latency"`  // of the hits: Redis round trip and decode
	LoadLatency Latency `json:"load_latency"` // of the loads: the source's time
	// Invalidations counts invalidation calls (of keys or of a tag),
	// TagInvalidations those of a tag, InvalidatedKeys the keys they
	// deleted.
	Invalidations    int64 `json:"invalidations"`
	TagInvalidations int64 `json:"tag_invalidations"`
	InvalidatedKeys  int64 `json:"invalidated_keys"`
	// StaleSetsPrevented counts loaded values not stored because their
	// key or a tag was invalidated while they loaded.
	StaleSetsPrevented int64 `json:"stale_sets_prevented"`
	// Errors counts Redis errors (absorbed or returned); DecodeErrors,
	// EncodeErrors, InvalidateErrors and Unrendered the other failures.
	Errors           int64 `json:"errors"`
	DecodeErrors     int64 `json:"decode_errors"`
	EncodeErrors     int64 `json:"encode_errors"`
	InvalidateErrors int64 `json:"invalidate_errors"`
	Unrendered       int64 `json:"unrendered"`
}

// Latency is the distribution of one kind of duration, read from a
// logarithmic histogram: each percentile is within 6% of the truth.
type Latency struct {
	Count int64   `json:"count"`  // durations observed
	P50   float64 `json:"p50_us"` // microseconds
	P90   float64 `json:"p90_us"` // microseconds
	P99   float64 `json:"p99_us"` // microseconds
}

// Server is a Cache's runtime.Stats, the part about Redis and the cache's
// own health.
type Server struct {
	// Error is why the server could not be read (INFO failed or timed
	// out); the fields from INFO are then zero, the others still hold.
	Error string `json:"error,omitempty"`
	// Masters is the number of servers read (several on a cluster).
	Masters         int    `json:"masters"`
	UsedMemoryBytes int64  `json:"used_memory_bytes"`
	EvictedKeys     int64  `json:"evicted_keys"`
	MaxmemoryPolicy string `json:"maxmemory_policy"`
	// EvictingTagSets: the policy may evict tag sets and it evicted keys
	// since the last reading: invalidations may miss keys until their TTL.
	EvictingTagSets bool `json:"evicting_tag_sets"`
	// Breaker is "closed" (Redis in use) or "open" (Redis failing, the
	// cache bypassed); BreakerOpens counts the openings, BreakerSkips the
	// operations spared.
	Breaker      string `json:"breaker"`
	BreakerOpens int64  `json:"breaker_opens"`
	BreakerSkips int64  `json:"breaker_skips"`
	// Reconnects is absent when the client does not count them.
	Reconnects *int64 `json:"reconnects,omitempty"`
	// PoolConns and PoolIdle are the client's open and idle connections;
	// PoolTimeouts the waits for a connection that timed out.
	PoolConns    uint32 `json:"pool_conns"`
	PoolIdle     uint32 `json:"pool_idle"`
	PoolTimeouts uint32 `json:"pool_timeouts"`
	// InvalidationRetries is the failed invalidations waiting to be retried.
	InvalidationRetries int64 `json:"invalidation_retries"`
}

// Tags are the largest tag sets of a namespace, from a bounded scan.
type Tags struct {
	// At is when the scan ran; the page shows its result until the next.
	At time.Time `json:"at"`
	// Error is why the scan failed or stopped, if it did.
	Error string `json:"error,omitempty"`
	// Scanned is the number of tag sets found and measured.
	Scanned int `json:"scanned"`
	// Partial reports that the scan stopped at its key or time limit
	// (WithTagScan): a larger tag may exist.
	Partial bool `json:"partial"`
	// Top lists the largest, by keys.
	Top []Tag `json:"top"`
}

// Tag is one tag set's size.
type Tag struct {
	Tag  string `json:"tag"`  // as given to Tags(...) and InvalidateTags
	Keys int64  `json:"keys"` // keys carrying it (members of its set)
}

// Snapshot reads every Recorder and, for each watched Cache, its Stats and
// (at most once per WithTagScanInterval) its largest tags.
func (h *Handler) Snapshot(ctx context.Context) Snapshot {
	now := h.now()
	s := Snapshot{At: now, UptimeSeconds: now.Sub(h.start).Seconds()}
	win := time.Duration(window) * time.Second
	if up := now.Sub(h.start); up < win {
		win = max(up, time.Second)
	}
	s.WindowSeconds = win.Seconds()
	recs := h.allRecorders()
	s.Caches = make([]CacheView, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		s.Caches[i] = r.view(now, win)
		if w := r.cache.Load(); w != nil {
			wg.Add(1)
			go func(cv *CacheView) {
				defer wg.Done()
				cv.Server = h.server(ctx, w.c)
				if h.topTags > 0 {
					cv.Tags = h.tags(ctx, w)
				}
			}(&s.Caches[i])
		}
	}
	wg.Wait()
	return s
}

// view reads r's rows.
func (r *Recorder) view(now time.Time, win time.Duration) CacheView {
	cv := CacheView{Namespace: r.label}
	if w := r.cache.Load(); w != nil {
		cv.Namespace, cv.Watched = w.c.Namespace(), true
	}
	cv.Total.Name = "total"
	var hitAll, loadAll [numBuckets]uint64
	var hitN, loadN uint64
	for _, rw := range r.allRows() {
		var hb, lb [numBuckets]uint64
		hn, ln := rw.hitLatency.addTo(&hb), rw.loadLatency.addTo(&lb)
		for i := range hb {
			hitAll[i] += hb[i]
			loadAll[i] += lb[i]
		}
		hitN += hn
		loadN += ln
		v := rw.counts()
		v.HitLatency, v.LoadLatency = latencyOf(&hb, hn), latencyOf(&lb, ln)
		v.RequestsPerSecond = float64(rw.rate.count(now)) / win.Seconds()
		cv.Rows = append(cv.Rows, v)
		cv.Total.add(v)
	}
	sortRows(cv.Rows)
	cv.Total.HitLatency, cv.Total.LoadLatency = latencyOf(&hitAll, hitN), latencyOf(&loadAll, loadN)
	cv.Total.HitRatio = ratio(cv.Total.Hits, cv.Total.Misses)
	return cv
}

func (rw *row) counts() Row {
	op := func(o runtime.Op) int64 { return rw.ops[o].Load() }
	v := Row{
		Name: rw.method, Method: rw.method,
		Hits: op(runtime.OpHit), L1Hits: rw.l1Hits.Load(), Misses: op(runtime.OpMiss),
		StaleServes: op(runtime.OpStale), Loads: op(runtime.OpLoad), NotFound: rw.notFound.Load(), LoadErrors: rw.loadErrors.Load(),
		Sets: op(runtime.OpSet), Bypasses: op(runtime.OpBypass),
		Invalidations: op(runtime.OpInvalidate), TagInvalidations: rw.tagInvalidations.Load(),
		InvalidatedKeys: rw.invalidatedKeys.Load(), StaleSetsPrevented: op(runtime.OpStaleSetPrevented),
		Errors: op(runtime.OpError), DecodeErrors: op(runtime.OpDecodeError), EncodeErrors: op(runtime.OpEncodeError),
		InvalidateErrors: op(runtime.OpInvalidateError), Unrendered: op(runtime.OpUnrendered),
	}
	if rw.method == "" {
		v.Name = rw.shape
	}
	v.Requests = v.Hits + v.Misses + v.Bypasses
	v.HitRatio = ratio(v.Hits, v.Misses)
	return v
}

// add adds o's counts (not its latencies) to t.
func (t *Row) add(o Row) {
	t.Requests += o.Requests
	t.RequestsPerSecond += o.RequestsPerSecond
	t.Hits += o.Hits
	t.L1Hits += o.L1Hits
	t.Misses += o.Misses
	t.StaleServes += o.StaleServes
	t.Loads += o.Loads
	t.NotFound += o.NotFound
	t.LoadErrors += o.LoadErrors
	t.Sets += o.Sets
	t.Bypasses += o.Bypasses
	t.Invalidations += o.Invalidations
	t.TagInvalidations += o.TagInvalidations
	t.InvalidatedKeys += o.InvalidatedKeys
	t.StaleSetsPrevented += o.StaleSetsPrevented
	t.Errors += o.Errors
	t.DecodeErrors += o.DecodeErrors
	t.EncodeErrors += o.EncodeErrors
	t.InvalidateErrors += o.InvalidateErrors
	t.Unrendered += o.Unrendered
}

func ratio(hits, misses int64) *float64 {
	if hits+misses == 0 {
		return nil
	}
	r := float64(hits) / float64(hits+misses)
	return &r
}

func latencyOf(b *[numBuckets]uint64, n uint64) Latency {
	q := quantiles(b, n, 0.5, 0.9, 0.99)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return Latency{Count: int64(n), P50: us(q[0]), P90: us(q[1]), P99: us(q[2])}
}

// server reads c's Stats within the stats timeout.
func (h *Handler) server(ctx context.Context, c *runtime.Cache) *Server {
	ctx, cancel := context.WithTimeout(ctx, h.statsTimeout)
	defer cancel()
	st, err := c.Stats(ctx)
	s := &Server{
		Masters: st.Server.Masters, UsedMemoryBytes: st.Server.UsedMemory, EvictedKeys: st.Server.EvictedKeys,
		MaxmemoryPolicy: st.Server.MaxmemoryPolicy, EvictingTagSets: st.Server.EvictingTagSets,
		Breaker: "closed", BreakerOpens: st.BreakerOpens, BreakerSkips: st.BreakerSkips,
		PoolConns: st.Pool.TotalConns, PoolIdle: st.Pool.IdleConns, PoolTimeouts: st.Pool.Timeouts,
		InvalidationRetries: st.InvalidationRetries,
	}
	if st.BreakerOpen {
		s.Breaker = "open"
	}
	if st.Reconnects >= 0 {
		s.Reconnects = &st.Reconnects
	}
	if err != nil {
		s.Error = err.Error()
	}
	return s
}
