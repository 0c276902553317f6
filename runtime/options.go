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
	kind       optKind
	d          time.Duration
	tags       []string
	lock       LockMode
	resultTags func(any) []string
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
)

// TTL sets how long a stored value lives. It is required wherever a value
// is stored.
func TTL(d time.Duration) CallOption { return CallOption{kind: optTTL, d: d} }

// Jitter adds a uniform random duration in [0, d) to the TTL, so that keys
// written together do not expire together.
func Jitter(d time.Duration) CallOption { return CallOption{kind: optJitter, d: d} }

// Tags attaches tags to the stored value: InvalidateTags(tag) deletes it.
// Several Tags options add up.
func Tags(tags ...string) CallOption { return CallOption{kind: optTags, tags: tags} }

// SWR serves a value up to d past its freshness while one refresh runs in
// the background (stale-while-revalidate).
func SWR(d time.Duration) CallOption { return CallOption{kind: optSWR, d: d} }

// Negative caches a not-found answer for d.
func Negative(d time.Duration) CallOption { return CallOption{kind: optNegative, d: d} }

// Lock sets how concurrent misses on one key are collapsed; the default is
// LockLocal.
func Lock(m LockMode) CallOption { return CallOption{kind: optLock, lock: m} }

// ResultTags attaches tags computed from the loaded value, e.g. one tag per
// element of a list so that a change to any element drops the list. In a
// GetBatch it is called for each element, which is tagged on its own key.
func ResultTags[T any](f func(T) []string) CallOption {
	return CallOption{kind: optResultTags, resultTags: func(v any) []string {
		t, _ := v.(T)
		return f(t)
	}}
}

// AlsoInvalidate adds tags that Put invalidates without attaching them to
// the stored value.
func AlsoInvalidate(tags ...string) CallOption {
	return CallOption{kind: optAlsoInvalidate, tags: tags}
}

// callOptions is the resolved set of a call's options.
type callOptions struct {
	ttl, jitter, swr, negative time.Duration
	tags                       []string
	tagsOwned                  bool
	lock                       LockMode
	resultTags                 []func(any) []string
	invalidate                 []string
}

func (o *callOptions) apply(opts []CallOption) {
	for i := range opts {
		op := &opts[i]
		switch op.kind {
		case optTTL:
			o.ttl = op.d
		case optJitter:
			o.jitter = op.d
		case optTags:
			if o.tags == nil {
				o.tags = op.tags
			} else {
				if !o.tagsOwned {
					o.tags = append([]string(nil), o.tags...)
					o.tagsOwned = true
				}
				o.tags = append(o.tags, op.tags...)
			}
		case optSWR:
			o.swr = op.d
		case optNegative:
			o.negative = op.d
		case optLock:
			o.lock = op.lock
		case optResultTags:
			o.resultTags = append(o.resultTags, op.resultTags)
		case optAlsoInvalidate:
			o.invalidate = append(o.invalidate, op.tags...)
		}
	}
}

// check reports misuse: a missing TTL, a bad key or tag, or an option this
// version does not implement yet.
func (o *callOptions) check(key string) error {
	if !validKey(key) {
		return fmt.Errorf("%w %q: keys must be non-empty and must not start with '#'", ErrInvalidKey, key)
	}
	if o.ttl <= 0 {
		return fmt.Errorf("%w (key %q)", ErrNoTTL, key)
	}
	if o.jitter < 0 {
		return fmt.Errorf("%w: negative jitter for key %q", ErrInvalidKey, key)
	}
	if err := checkTags(key, o.tags); err != nil {
		return err
	}
	if err := checkTags(key, o.invalidate); err != nil {
		return err
	}
	switch {
	case o.swr != 0:
		return fmt.Errorf("%w: SWR (stale-while-revalidate) is not implemented yet", ErrUnsupported)
	case o.negative != 0:
		return fmt.Errorf("%w: Negative (not-found caching) is not implemented yet", ErrUnsupported)
	case o.lock == LockDistributed:
		return fmt.Errorf("%w: LockDistributed is not implemented yet", ErrUnsupported)
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

func checkTags(key string, tags []string) error {
	for _, t := range tags {
		if t == "" {
			return fmt.Errorf("%w: empty tag for key %q", ErrInvalidKey, key)
		}
	}
	return nil
}

// tagsFor returns the static tags plus those computed from v.
func (o *callOptions) tagsFor(v any) []string {
	if len(o.resultTags) == 0 {
		return o.tags
	}
	tags := append([]string(nil), o.tags...)
	for _, f := range o.resultTags {
		for _, t := range f(v) {
			if t != "" {
				tags = append(tags, t)
			}
		}
	}
	return tags
}
