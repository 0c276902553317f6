package debughandler

import (
	"errors"
	"math"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/repocache/repocache/runtime"
)

// Recorder collects one Cache's events for the page: pass it to
// runtime.WithMetrics, then to Recorder.Watch with the Cache it built.
// Observe is lock-free on the path of every event a row already exists
// for: a few atomic adds, no allocation.
type Recorder struct {
	h     *Handler
	label string // until Watch: "cache N"

	cache atomic.Pointer[watched]

	mu    sync.Mutex                      // serialises row creation
	rows  atomic.Pointer[map[uint64]*row] // copy on write
	order []*row                          // creation order, under mu
	other *row                            // past the row cap, under mu
}

// Watch names the Cache whose events r receives: its namespace heads r's
// section, and its Stats (server memory, evictions, breaker) and tag sets
// (the largest tags) are shown there. Call it once, after runtime.New.
func (r *Recorder) Watch(c *runtime.Cache) {
	if c == nil {
		return
	}
	r.cache.Store(&watched{c: c})
}

// Observe implements runtime.Metrics.
func (r *Recorder) Observe(e runtime.Event) {
	if e.Op == 0 || int(e.Op) >= numOps {
		return
	}
	rw := r.row(e)
	rw.ops[e.Op].Add(1)
	switch e.Op {
	case runtime.OpHit:
		if e.L1 {
			rw.l1Hits.Add(1)
		}
		rw.hitLatency.observe(e.Duration)
		rw.rate.add(r.h.now())
	case runtime.OpMiss, runtime.OpBypass:
		rw.rate.add(r.h.now())
	case runtime.OpLoad:
		switch {
		case e.Err == nil:
		case errors.Is(e.Err, runtime.ErrNotFound):
			rw.notFound.Add(1)
		default:
			rw.loadErrors.Add(1)
		}
		rw.loadLatency.observe(e.Duration)
	case runtime.OpInvalidate:
		rw.invalidatedKeys.Add(int64(e.Count))
		if e.Tag {
			rw.tagInvalidations.Add(1)
		}
	}
}

// numOps bounds the Op values counted: those up to runtime.OpUnrendered.
// The near cache's notices (OpL1Invalidate, OpL1Flush) come one per key
// another process changed, without a method, and the page shows the near
// cache from Stats.L1: they are ignored, as is any later Op until this
// grows.
const numOps = int(runtime.OpUnrendered) + 1

// row is one line of the page: one method of one Cache.
type row struct {
	method string // Event.Method; "" for a row by key shape
	shape  string // the key or tag shape of a row without a method

	ops                                                             [numOps]atomic.Int64
	l1Hits, notFound, loadErrors, invalidatedKeys, tagInvalidations atomic.Int64
	hitLatency, loadLatency                                         histogram
	rate                                                            rateRing
}

// otherRow names the row that gathers the events past the row cap.
const otherRow = "(other)"

// row returns the row of e, creating it on first sight.
func (r *Recorder) row(e runtime.Event) *row {
	h := rowHash(e)
	if m := r.rows.Load(); m != nil {
		if rw, ok := (*m)[h]; ok {
			return rw
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.rows.Load()
	if old != nil {
		if rw, ok := (*old)[h]; ok {
			return rw
		}
	}
	if len(r.order) >= r.h.maxRows {
		if r.other == nil {
			r.other = &row{method: otherRow}
		}
		return r.other
	}
	rw := &row{method: e.Method}
	if e.Method == "" {
		rw.shape = shapeOf(e)
	}
	next := make(map[uint64]*row, len(r.order)+1)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[h] = rw
	r.order = append(r.order, rw)
	r.rows.Store(&next)
	return rw
}

// allRows returns every row, the overflow row last.
func (r *Recorder) allRows() []*row {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]*row(nil), r.order...)
	if r.other != nil {
		out = append(out, r.other)
	}
	return out
}

// FNV-1a, 64 bits.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * fnvPrime }

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = fnvByte(h, s[i])
	}
	return h
}

// rowHash identifies the row of e without allocating: its method, or when
// the call named none, the shape of its key (see shapeOf), hashed as the
// shape is built.
func rowHash(e runtime.Event) uint64 {
	h := uint64(fnvOffset)
	if e.Method != "" {
		return fnvString(fnvByte(h, 'm'), e.Method)
	}
	kind, key := shapeSource(e)
	h = fnvByte(h, kind)
	forEachShapePart(key, func(part string, variable bool) {
		if variable {
			h = fnvString(h, "{}")
		} else {
			h = fnvString(h, part)
		}
		h = fnvByte(h, ':')
	})
	return h
}

// shapeSource returns what a row without a method is named by: 'k' and a
// key, or 't' and a tag.
func shapeSource(e runtime.Event) (byte, string) {
	switch {
	case e.Tag:
		return 't', e.Key
	case e.Op == runtime.OpInvalidate || e.Op == runtime.OpInvalidateError:
		// Several keys are joined with commas: the first one names them.
		for i := 0; i < len(e.Key); i++ {
			if e.Key[i] == ',' {
				return 'k', e.Key[:i]
			}
		}
	}
	return 'k', e.Key
}

// shapeOf is the name of a row without a method: the event's key (or
// tag) with each part that holds a value replaced by "{}", so that
// "workspace:42:projects" and "workspace:7:projects" share the row
// "workspace:{}:projects". A part holds a value when it has a digit, an
// escape ('%'), '@' or '.'.
func shapeOf(e runtime.Event) string {
	kind, key := shapeSource(e)
	var b []byte
	if kind == 't' {
		b = append(b, "tag "...)
	}
	first := true
	forEachShapePart(key, func(part string, variable bool) {
		if !first {
			b = append(b, ':')
		}
		first = false
		if variable {
			b = append(b, "{}"...)
		} else {
			b = append(b, part...)
		}
	})
	return string(b)
}

// forEachShapePart calls fn with each ':'-separated part of key and
// whether it holds a value.
func forEachShapePart(key string, fn func(part string, variable bool)) {
	start := 0
	for i := 0; i <= len(key); i++ {
		if i < len(key) && key[i] != ':' {
			continue
		}
		part := key[start:i]
		variable := false
		for j := 0; j < len(part); j++ {
			if c := part[j]; c >= '0' && c <= '9' || c == '%' || c == '@' || c == '.' {
				variable = true
				break
			}
		}
		fn(part, variable)
		start = i + 1
	}
}

// histogram counts durations in logarithmic buckets: 8 a power of two,
// so a percentile read from it is within 6% of the truth (the middle of
// a bucket at most an eighth wide), from a nanosecond to 18 minutes.
type histogram struct {
	buckets [numBuckets]atomic.Uint64
}

const (
	subBits    = 3
	sub        = 1 << subBits
	numBuckets = 38 * sub // up to 2^40 ns
)

func bucketOf(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	n := uint64(d)
	if n < sub {
		return int(n)
	}
	e := bits.Len64(n) - 1
	i := (e-subBits+1)*sub + int((n>>(e-subBits))&(sub-1))
	if i >= numBuckets {
		return numBuckets - 1
	}
	return i
}

// bucketBounds returns the durations bucket i holds, [lo, hi).
func bucketBounds(i int) (lo, hi float64) {
	if i < sub {
		return float64(i), float64(i + 1)
	}
	g, m := i/sub, i%sub
	scale := math.Ldexp(1, g-1)
	return float64(sub+m) * scale, float64(sub+m+1) * scale
}

func (h *histogram) observe(d time.Duration) { h.buckets[bucketOf(d)].Add(1) }

// counts copies the buckets into dst (adding to it) and returns the total.
func (h *histogram) addTo(dst *[numBuckets]uint64) uint64 {
	var n uint64
	for i := range h.buckets {
		c := h.buckets[i].Load()
		dst[i] += c
		n += c
	}
	return n
}

// quantiles reads the qs (ascending, 0 to 1) from bucket counts totalling
// n: the middle of the bucket holding each rank.
func quantiles(b *[numBuckets]uint64, n uint64, qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	if n == 0 {
		return out
	}
	var cum uint64
	j := 0
	for i := range b {
		cum += b[i]
		for j < len(qs) && float64(cum) >= math.Ceil(qs[j]*float64(n)) && cum > 0 {
			lo, hi := bucketBounds(i)
			out[j] = time.Duration((lo + hi) / 2)
			j++
		}
		if j == len(qs) {
			break
		}
	}
	return out
}

// rateRing counts requests in one-second buckets over the last window
// seconds. Each bucket packs its second (low 32 bits of the Unix time)
// and its count in one word, so that a new second resets it atomically.
type rateRing struct {
	slots [window]atomic.Uint64
}

// window is the span, in seconds, of the request rate.
const window = 60

func (r *rateRing) add(now time.Time) {
	sec := uint64(uint32(now.Unix()))
	s := &r.slots[sec%window]
	for {
		v := s.Load()
		next := sec<<32 | 1
		if v>>32 == sec {
			next = v + 1
		}
		if s.CompareAndSwap(v, next) {
			return
		}
	}
}

// count returns the requests of the seconds in (now-window, now].
func (r *rateRing) count(now time.Time) int64 {
	cur := uint32(now.Unix())
	var n int64
	for i := range r.slots {
		v := r.slots[i].Load()
		if age := cur - uint32(v>>32); age < window && v != 0 {
			n += int64(v & math.MaxUint32)
		}
	}
	return n
}

// sortRows orders rows by requests, busiest first, then by name; the
// overflow row stays last.
func sortRows(rs []Row) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if (a.Method == otherRow) != (b.Method == otherRow) {
			return b.Method == otherRow
		}
		if a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		return a.Name < b.Name
	})
}
