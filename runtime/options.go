package runtime

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// LockMode says how concurrent misses on one key are collapsed.
type LockMode uint8

// Lock modes of a get.
const (
	// LockLocal collapses concurrent misses of one key in this process
	// into one load. It is the default.
	LockLocal LockMode = iota
	// LockDistributed also collapses them across processes with a short
	// Redis lock.
	LockDistributed
	// LockNone lets every miss load.
	LockNone
)

// CallOption configures one GetCached or Set call. Options are plain
// values, so passing them allocates nothing.
type CallOption struct {
	kind optKind
	lock LockMode
	n    uint8 // tags held inline
	d    time.Duration
	// Up to four tags are held inline, so that an option refers to no
	// array of the caller's: a copy of the options that outlives the call
	// (a stale-while-revalidate refresh) then moves nothing of the
	// caller's to the heap.
	inline [4]string
	more   []string
	fn     any // ResultTags: a func(T) []string
}

func tagOption(kind optKind, tags []string) CallOption {
	o := CallOption{kind: kind}
	o.n = uint8(copy(o.inline[:], tags))
	if len(tags) > len(o.inline) {
		o.more = append([]string(nil), tags[len(o.inline):]...)
	}
	return o
}

// tagList appends the option's tags to dst.
func (o *CallOption) tagList(dst []string) []string {
	dst = append(dst, o.inline[:o.n]...)
	return append(dst, o.more...)
}

type optKind uint8

const (
	optTTL optKind = iota + 1
	optJitter
	optTags
	optSWR
	optNegative
	optLock
	optResultTags
	optAlsoInvalidate
	optAttach
	optNotFound
	optMethod
	optL1
)

// TTL sets how long a stored value lives. It is required wherever a value
// is stored.
func TTL(d time.Duration) CallOption { return CallOption{kind: optTTL, d: d} }

// Jitter adds a uniform random duration in [0, d) to the TTL, so that keys
// written together do not expire together.
func Jitter(d time.Duration) CallOption { return CallOption{kind: optJitter, d: d} }

// Tags attaches tags to the stored value: InvalidateTags(tag) deletes it.
// Several Tags options add up.
func Tags(tags ...string) CallOption { return tagOption(optTags, tags) }

// SWR serves a value up to d past its freshness while one refresh runs in
// the background (stale-while-revalidate).
func SWR(d time.Duration) CallOption { return CallOption{kind: optSWR, d: d} }

// Negative caches a not-found answer for d.
func Negative(d time.Duration) CallOption { return CallOption{kind: optNegative, d: d} }

// Lock sets how concurrent misses on one key are collapsed; the default is
// LockLocal.
func Lock(m LockMode) CallOption { return CallOption{kind: optLock, lock: m} }

// ResultTags attaches tags computed from the loaded value, e.g. one tag per
// element of a list so that a change to any element drops the list. T must
// be the type of the value (for GetBatch, of one element: each element is
// tagged on its own key); a function of another type is ignored.
func ResultTags[T any](f func(T) []string) CallOption {
	return CallOption{kind: optResultTags, fn: f}
}

// AlsoInvalidate adds tags that Put invalidates without attaching them to
// the stored value.
func AlsoInvalidate(tags ...string) CallOption {
	return tagOption(optAlsoInvalidate, tags)
}

// Attach attaches tags to the value Put stores without invalidating them
// first (a put's Tags are invalidated, then attached): a global tag such as
// "users" that a later InvalidateTags("users") drops, where invalidating it
// on every put would flush every user. On a get it is the same as Tags.
func Attach(tags ...string) CallOption { return tagOption(optAttach, tags) }

// methodIn returns the method that opts name, or "".
func methodIn(opts []CallOption) string {
	for i := range opts {
		if opts[i].kind == optMethod {
			return opts[i].inline[0]
		}
	}
	return ""
}

// Method names the repository method a call serves, such as
// "Repository.FindProject": every event of the call carries it
// (Event.Method), so that metrics, logs and traces can be grouped by method
// without parsing keys. Generated decorators pass it; keep the set of names
// small and fixed (never a key or an id), since it becomes a metric label.
func Method(name string) CallOption { return CallOption{kind: optMethod, inline: [4]string{name}} }

// L1 caps how long a value read by this call may live in the Cache's
// in-process tier (see WithL1); d <= 0 keeps it out of that tier. Without
// WithL1 it is accepted and has no effect. It is what //cache:get ...
// l1=D generates.
func L1(d time.Duration) CallOption { return CallOption{kind: optL1, d: d} }

// callOptions holds the scalar options of a call. The tags stay in the
// caller's []CallOption, which is passed down the store path and only read:
// storing a reference to it (or to a ResultTags function) in a struct would
// make the compiler move every caller's options and Tags(...) arguments to
// the heap, an allocation on each hit.
type callOptions struct {
	ttl, jitter, swr, negative time.Duration
	lock                       LockMode
	method                     string
	l1                         time.Duration // the L1 cap; see L1
	l1Set                      bool
	// leaseHit, set by a read that skipped its GET (leaseFirst), is
	// filled in when the lease script found a value: the read was a hit.
	leaseHit *leaseAnswer
}

// leaseAnswer is a value the lease script found for a read that skipped
// its GET: what GET would have returned, and whether it was past its
// freshness.
type leaseAnswer struct {
	hit, stale bool
	val        string
	// missed is set once the miss is counted, as the lease script answers
	// (so that the miss event comes before the load's); start is the
	// read's.
	missed bool
	start  time.Time
}

func resolve(opts []CallOption) callOptions {
	var o callOptions
	for i := range opts {
		op := &opts[i]
		switch op.kind {
		case optTTL:
			o.ttl = op.d
		case optJitter:
			o.jitter = op.d
		case optSWR:
			o.swr = op.d
		case optNegative:
			o.negative = op.d
		case optLock:
			o.lock = op.lock
		case optMethod:
			o.method = op.inline[0]
		case optL1:
			o.l1, o.l1Set = op.d, true
		}
	}
	return o
}

// check reports misuse: a missing TTL, a bad key or tag, or an option this
// version does not implement yet.
func (o *callOptions) check(key string, opts []CallOption) error {
	if !validKey(key) {
		return fmt.Errorf("%w %q: keys must be non-empty and must not start with '#'", ErrInvalidKey, key)
	}
	if o.ttl <= 0 {
		return fmt.Errorf("%w (key %q)", ErrNoTTL, key)
	}
	if o.jitter < 0 {
		return fmt.Errorf("%w: negative jitter for key %q", ErrInvalidKey, key)
	}
	for i := range opts {
		if op := &opts[i]; op.kind == optTags || op.kind == optAlsoInvalidate || op.kind == optAttach {
			for _, t := range op.inline[:op.n] {
				if t == "" {
					return fmt.Errorf("%w: empty tag for key %q", ErrInvalidKey, key)
				}
			}
			for _, t := range op.more {
				if t == "" {
					return fmt.Errorf("%w: empty tag for key %q", ErrInvalidKey, key)
				}
			}
		}
	}
	switch {
	case o.swr < 0 || o.negative < 0:
		return fmt.Errorf("%w: negative SWR or Negative duration for key %q", ErrInvalidKey, key)
	case o.lock > LockNone:
		return fmt.Errorf("%w: lock mode %d", ErrUnsupported, o.lock)
	}
	return nil
}

// expiry is the TTL plus a uniform random jitter in [0, jitter).
func (o *callOptions) expiry() time.Duration {
	if o.jitter <= 0 {
		return o.ttl
	}
	return o.ttl + rand.N(o.jitter)
}

// tagsFor returns the tags to attach to v: those of Tags options and those
// that ResultTags functions of v's type compute from it.
func tagsFor[T any](opts []CallOption, v T) []string {
	var tags []string
	for i := range opts {
		switch op := &opts[i]; op.kind {
		case optTags, optAttach:
			tags = op.tagList(tags)
		case optResultTags:
			if f, ok := op.fn.(func(T) []string); ok {
				for _, t := range f(v) {
					if t != "" {
						tags = append(tags, t)
					}
				}
			}
		}
	}
	return tags
}

// staticTags returns the tags of Tags and Attach options only.
func staticTags(opts []CallOption) []string {
	var tags []string
	for i := range opts {
		if op := &opts[i]; op.kind == optTags || op.kind == optAttach {
			tags = op.tagList(tags)
		}
	}
	return tags
}

// dropTags returns the tags Put invalidates: those of Tags, ResultTags and
// AlsoInvalidate options, not those of Attach.
func dropTags[T any](opts []CallOption, v T) []string {
	var tags []string
	for i := range opts {
		switch op := &opts[i]; op.kind {
		case optTags, optAlsoInvalidate:
			tags = op.tagList(tags)
		case optResultTags:
			if f, ok := op.fn.(func(T) []string); ok {
				for _, t := range f(v) {
					if t != "" {
						tags = append(tags, t)
					}
				}
			}
		}
	}
	return tags
}
