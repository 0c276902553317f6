package cachemetrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/repocache/repocache/runtime"
)

const (
	// UnknownMethod is the method of an event whose call named none
	// (runtime.Method, runtime.WithMethod).
	UnknownMethod = "unknown"
	// OtherMethod is the method of the events of the methods seen after
	// the first maxMethods ones (see NewHooks).
	OtherMethod = "other"
)

// DefaultBuckets returns the upper bounds of the latency histograms: 10µs
// to 10s in 1, 2.5, 5 steps, which covers an in-process hit (µs), a Redis
// round trip (100µs to a few ms) and a slow loader (seconds).
func DefaultBuckets() []time.Duration {
	var b []time.Duration
	for d := 10 * time.Microsecond; d <= 10*time.Second; d *= 10 {
		b = append(b, d, d*5/2, d*5)
	}
	return b[:len(b)-2] // up to 10s, not 25s and 50s
}

// Buckets returns bounds sorted and deduplicated, without the bounds that
// are not positive; nil if none is left.
func Buckets(bounds []time.Duration) []time.Duration {
	var b []time.Duration
	for _, d := range bounds {
		if d > 0 {
			b = append(b, d)
		}
	}
	slices.Sort(b)
	return slices.Compact(b)
}

// ValidUTF8 returns s with its invalid UTF-8 sequences replaced by U+FFFD:
// a valid label or attribute value.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Hooks holds an exporter's hooks, one per namespace, and the method
// values they share: at most maxMethods distinct ones, across namespaces,
// after which events of other methods go to OtherMethod. It is safe for
// concurrent use.
type Hooks[T any] struct {
	sink       Sink[T]
	newSeries  func(ns, method string) *T
	maxMethods int

	mu      sync.Mutex
	byNS    map[string]*Hook[T] // guarded by mu
	list    []*Hook[T]          // in creation order, guarded by mu
	methods map[string]struct{} // method values in use, guarded by mu
	// full is set once len(methods) == maxMethods; known is then a copy
	// of methods, which no longer changes and is read without the lock.
	full  atomic.Bool
	known atomic.Pointer[map[string]struct{}]
}

// NewHooks returns Hooks whose series newSeries makes, for a namespace and
// a method value, when a hook first sees that method, and whose events
// sink records. maxMethods < 1 counts as 1.
func NewHooks[T any](sink Sink[T], maxMethods int, newSeries func(ns, method string) *T) *Hooks[T] {
	return &Hooks[T]{
		sink:       sink,
		newSeries:  newSeries,
		maxMethods: max(maxMethods, 1),
		byNS:       map[string]*Hook[T]{},
		methods:    map[string]struct{}{},
	}
}

// Hook returns the hook of namespace (made valid UTF-8): the same one for
// the same namespace.
func (hs *Hooks[T]) Hook(namespace string) *Hook[T] {
	ns := ValidUTF8(namespace)
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h, ok := hs.byNS[ns]; ok {
		return h
	}
	h := &Hook[T]{hooks: hs, ns: ns, byLabel: map[string]*T{}}
	h.byMethod.Store(&map[string]*T{})
	hs.byNS[ns] = h
	hs.list = append(hs.list, h)
	return h
}

// Namespace is the series of one hook, as Snapshot returns them.
type Namespace[T any] struct {
	// Name is the hook's namespace.
	Name string
	// Series are its series, in creation order.
	Series []*T
}

// Snapshot returns the series of every hook, hooks in creation order.
func (hs *Hooks[T]) Snapshot() []Namespace[T] {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	out := make([]Namespace[T], len(hs.list))
	for i, h := range hs.list {
		out[i] = Namespace[T]{h.ns, slices.Clone(h.list)}
	}
	return out
}

// methodValue returns the value for method, registering it if there is
// room. hs.mu must be held.
func (hs *Hooks[T]) methodValue(method string) string {
	v := UnknownMethod
	if method != "" {
		v = ValidUTF8(method)
	}
	if _, ok := hs.methods[v]; ok {
		return v
	}
	if len(hs.methods) >= hs.maxMethods {
		return OtherMethod
	}
	hs.methods[v] = struct{}{}
	if len(hs.methods) == hs.maxMethods {
		known := maps.Clone(hs.methods)
		hs.known.Store(&known)
		hs.full.Store(true)
	}
	return v
}

// hasValue reports whether method has a value of its own; only once full.
func (hs *Hooks[T]) hasValue(method string) bool {
	v := UnknownMethod
	if method != "" {
		v = ValidUTF8(method)
	}
	_, ok := (*hs.known.Load())[v]
	return ok
}

// Hook is the runtime.Metrics of one namespace (see Hooks.Hook).
type Hook[T any] struct {
	hooks *Hooks[T]
	ns    string
	// byMethod maps an event's method to its series, copy on write: the
	// hot path reads it without a lock, a new method replaces it under
	// hooks.mu. A method counted as OtherMethod is not in it.
	byMethod atomic.Pointer[map[string]*T]
	other    atomic.Pointer[T] // OtherMethod's, once used
	byLabel  map[string]*T     // guarded by hooks.mu
	list     []*T              // every series, guarded by hooks.mu
}

// Namespace returns the hook's namespace, valid UTF-8.
func (h *Hook[T]) Namespace() string { return h.ns }

// Observe implements runtime.Metrics: it records e into the series of its
// method (see Record). The near cache's events (OpL1Invalidate, one per key
// another process changed, and OpL1Flush) carry no method and are counted
// from Stats.L1: they are dropped here, before they could make a series of
// their own.
func (h *Hook[T]) Observe(e runtime.Event) {
	if e.Op == runtime.OpL1Invalidate || e.Op == runtime.OpL1Flush {
		return
	}
	Record(h.hooks.sink, h.series(e.Method), e)
}

// series returns the series of method: from the copy-on-write map, without
// a lock or an allocation, but for a method's first event.
func (h *Hook[T]) series(method string) *T {
	if s, ok := (*h.byMethod.Load())[method]; ok {
		return s
	}
	if h.hooks.full.Load() {
		// No more methods get a value of their own: one that has none
		// goes to OtherMethod without taking the lock.
		if s := h.other.Load(); s != nil && !h.hooks.hasValue(method) {
			return s
		}
	}
	return h.add(method)
}

func (h *Hook[T]) add(method string) *T {
	hs := h.hooks
	hs.mu.Lock()
	defer hs.mu.Unlock()
	old := *h.byMethod.Load()
	if s, ok := old[method]; ok {
		return s
	}
	v := hs.methodValue(method)
	s, ok := h.byLabel[v]
	if !ok {
		s = hs.newSeries(h.ns, v)
		h.byLabel[v] = s
		h.list = append(h.list, s)
	}
	if v == OtherMethod && method != OtherMethod {
		h.other.Store(s)
		return s
	}
	next := make(map[string]*T, len(old)+1)
	maps.Copy(next, old)
	next[method] = s
	h.byMethod.Store(&next)
	return s
}
