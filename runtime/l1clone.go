package runtime

import (
	"context"
	"encoding"
	"encoding/json"
	"reflect"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/repocache/repocache/codec"
)

// Near-cache hits without a decode.
//
// Decoding an entry is most of what an L1 hit costs. So the first hit of an
// entry for a type T decodes it once into a memo that the entry owns (and
// that dies with it), and every hit, that first one included, hands out a
// deep copy of the memo, never the memo itself: as with a decode, every
// caller gets its own value, and shares no pointer, slice or map with
// another caller or with the cache. A copy of a type with no slice, map or
// pointer in it (strings, numbers, times, and structs and arrays of them)
// is a plain assignment.
//
// The copy is made by a plan compiled once per type with reflection
// (clonePlanFor). Where it could differ from a decode, the hit decodes as
// before: a type that holds an interface, a chan, a func or an
// unsafe.Pointer, one that decodes itself (other than time.Time), one with
// an unexported field that is not a plain value, a codec other than the
// built-in ones, a cached not-found.

// l1Memo is an entry's value decoded once, for one type.
type l1Memo struct {
	typ  reflect.Type
	v    any // a typ; never handed out, only copied
	plan *clonePlan
	size int64 // bytes held: v's box and what it refers to (heapSize)
}

// decodeL1 is decodeHit for an entry that the near cache holds: a value,
// plain or in an envelope, is decoded on the entry's first hit only, and
// every hit returns a deep copy of that decoding.
func decodeL1[T any](ctx context.Context, c *Cache, key, full string, it *l1Item, opts []CallOption) (v T, stale, ok bool, cached error) {
	e := parseEntry(it.val)
	switch {
	case e.kind == kindValue:
	case e.kind == kindEnvelope && e.flags&(flagNotFound|flagNilResult) == 0:
		stale = e.freshUntil < time.Now().UnixMilli()
	default:
		return decodeHit[T](ctx, c, key, full, it.val, opts)
	}
	t := reflect.TypeFor[T]()
	m := it.memo.Load()
	if m == nil {
		if m = newL1Memo[T](c.codec, t, e.frame); m == nil {
			return decodeHit[T](ctx, c, key, full, it.val, opts)
		}
		if it.memo.CompareAndSwap(nil, m) {
			c.l1.grow(full, it, m.size)
		}
	}
	if m.typ != t {
		return decodeHit[T](ctx, c, key, full, it.val, opts)
	}
	return cloneMemo[T](m), stale, true, nil
}

// newL1Memo decodes frame as a T for a memo, or returns nil if a T read by
// codec cd cannot be memoised, or the frame does not decode (decodeHit then
// deals with it).
func newL1Memo[T any](cd codec.Codec, t reflect.Type, frame []byte) *l1Memo {
	switch cd.(type) {
	case codec.Msgpack, codec.JSON:
	default:
		return nil // another codec may decode in ways a copy does not
	}
	p := clonePlanFor(t)
	if p == nil {
		return nil
	}
	v, err := codec.Unmarshal[T](cd, frame)
	if err != nil {
		return nil
	}
	return &l1Memo{typ: t, v: v, plan: p, size: int64(t.Size()) + heapSize(reflect.ValueOf(v))}
}

// heapSize estimates the memory v refers to beyond its own size: string
// bytes, slices' backing arrays (their capacity), maps' entries, pointees,
// and what those refer to in turn. A time's location is shared, and not
// counted. It walks the value once, when its memo is made, so that
// L1MaxBytes bounds what the memos hold, whatever their values decode to
// (a slice of small numbers decodes to about eight times its encoding).
func heapSize(v reflect.Value) int64 {
	switch v.Kind() {
	case reflect.String:
		return int64(v.Len())
	case reflect.Slice:
		if v.IsNil() {
			return 0
		}
		n := int64(v.Cap()) * int64(v.Type().Elem().Size())
		for i := range v.Len() {
			n += heapSize(v.Index(i))
		}
		return n
	case reflect.Array:
		var n int64
		for i := range v.Len() {
			n += heapSize(v.Index(i))
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return 0
		}
		// Keys and values, plus about 16 bytes of buckets and hashes each.
		per := int64(v.Type().Key().Size()+v.Type().Elem().Size()) + 16
		n := int64(v.Len()) * per
		for it := v.MapRange(); it.Next(); {
			n += heapSize(it.Key()) + heapSize(it.Value())
		}
		return n
	case reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		return int64(v.Type().Elem().Size()) + heapSize(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			return 0
		}
		var n int64
		for i := range v.NumField() {
			n += heapSize(v.Field(i))
		}
		return n
	}
	return 0
}

// cloneMemo returns a deep copy of m's value, whose type is T.
func cloneMemo[T any](m *l1Memo) T {
	if m.plan.flat {
		return m.v.(T)
	}
	var out T
	m.plan.copy(reflect.ValueOf(&out).Elem(), reflect.ValueOf(m.v))
	return out
}

// grow adds by (an estimate of its memo) to the size of it, if full still
// holds it, and evicts while the shard is over its bound.
func (n *nearCache) grow(full string, it *l1Item, by int64) {
	sh := n.shard(full)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[full] != it {
		return
	}
	it.size += by
	sh.bytes += by
	for sh.bytes > n.maxBytes {
		sh.evictOne(full)
	}
}

// clonePlan is how to copy a value of one type deeply.
type clonePlan struct {
	// flat: nothing in the type is a slice, map or pointer (a time.Time's
	// location is immutable), so an assignment is a deep copy.
	flat bool
	// copy sets dst (settable) to a deep copy of src; nil when flat.
	copy func(dst, src reflect.Value)
}

// into sets dst to a deep copy of src.
func (p *clonePlan) into(dst, src reflect.Value) {
	if p.flat {
		dst.Set(src)
		return
	}
	p.copy(dst, src)
}

// clonePlans caches clonePlanFor: reflect.Type → *clonePlan, nil for a
// type that cannot be copied.
var clonePlans sync.Map

// clonePlanFor returns the copy plan of t, or nil if a copy of a decoded t
// might differ from a decode (see cloneable).
func clonePlanFor(t reflect.Type) *clonePlan {
	if p, ok := clonePlans.Load(t); ok {
		return p.(*clonePlan)
	}
	var p *clonePlan
	if cloneable(t, map[reflect.Type]bool{}) {
		p = compileClone(t, map[reflect.Type]*clonePlan{})
	}
	clonePlans.Store(t, p)
	return p
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	selfDecoders = []reflect.Type{
		reflect.TypeFor[msgpack.CustomDecoder](),
		reflect.TypeFor[msgpack.Unmarshaler](),
		reflect.TypeFor[encoding.BinaryUnmarshaler](),
		reflect.TypeFor[encoding.TextUnmarshaler](),
		reflect.TypeFor[json.Unmarshaler](),
	}
)

// cloneable reports whether a copy of any decoded t is what a decode would
// return: t holds no interface, chan, func or unsafe.Pointer, no type that
// decodes itself (but time.Time and *time.Time), no map keyed by anything but a flat type,
// and no unexported field that is not flat (a decode leaves unexported
// fields zero; an assignment keeps them so only if they are plain values).
// seen holds the types on the path: a recursive type is judged where it
// starts.
func cloneable(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == timeType || seen[t] {
		return true
	}
	if t.Kind() == reflect.Pointer && t.Elem() == timeType {
		return true // *time.Time has time's decoders; a copy of its time is a decode's
	}
	seen[t] = true
	for _, d := range selfDecoders {
		if t.Implements(d) || reflect.PointerTo(t).Implements(d) {
			return false
		}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.Array, reflect.Slice, reflect.Pointer:
		return cloneable(t.Elem(), seen)
	case reflect.Map:
		return flat(t.Key()) && cloneable(t.Key(), seen) && cloneable(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if (!f.IsExported() && !flat(f.Type)) || !cloneable(f.Type, seen) {
				return false
			}
		}
		return true
	}
	return false // interface, chan, func, unsafe.Pointer
}

// flat reports whether an assignment of a t is a deep copy: t is a bool, a
// number, a string, a time.Time, or an array or struct of those.
func flat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.Array:
		return flat(t.Elem())
	case reflect.Struct:
		if t == timeType {
			return true
		}
		for i := range t.NumField() {
			if !flat(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// compileClone builds the plan of t, which is cloneable. plans holds the
// plans built so far, so that a recursive type's plan refers to itself.
func compileClone(t reflect.Type, plans map[reflect.Type]*clonePlan) *clonePlan {
	if p := plans[t]; p != nil {
		return p
	}
	p := &clonePlan{flat: flat(t)}
	plans[t] = p
	if p.flat {
		return p
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := compileClone(t.Elem(), plans)
		p.copy = func(dst, src reflect.Value) {
			if src.IsNil() {
				dst.SetZero()
				return
			}
			n := reflect.New(t.Elem())
			elem.into(n.Elem(), src.Elem())
			dst.Set(n)
		}
	case reflect.Slice:
		elem := compileClone(t.Elem(), plans)
		p.copy = func(dst, src reflect.Value) {
			n := src.Len()
			switch {
			case src.IsNil():
				dst.SetZero()
				return
			case n == 0:
				dst.Set(reflect.MakeSlice(t, 0, 0))
				return
			}
			// A new array grown in dst's own header (MakeSlice would
			// allocate a header too).
			dst.SetZero()
			dst.Grow(n)
			dst.SetLen(n)
			if elem.flat {
				reflect.Copy(dst, src)
				return
			}
			for i := range n {
				elem.copy(dst.Index(i), src.Index(i))
			}
		}
	case reflect.Map:
		elem := compileClone(t.Elem(), plans)
		p.copy = func(dst, src reflect.Value) {
			if src.IsNil() {
				dst.SetZero()
				return
			}
			m := reflect.MakeMapWithSize(t, src.Len())
			// Scratch values, set in place (MapIter.Key and Value
			// allocate a copy of each).
			k, v := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			sv := v
			if !elem.flat {
				sv = reflect.New(t.Elem()).Elem()
			}
			for iter := src.MapRange(); iter.Next(); {
				k.SetIterKey(iter)
				sv.SetIterValue(iter)
				if !elem.flat {
					elem.copy(v, sv)
				}
				m.SetMapIndex(k, v)
			}
			dst.Set(m)
		}
	case reflect.Array:
		elem := compileClone(t.Elem(), plans)
		p.copy = func(dst, src reflect.Value) {
			for i := range t.Len() {
				elem.copy(dst.Index(i), src.Index(i))
			}
		}
	case reflect.Struct:
		// Copied whole, then the fields that are not flat (all exported:
		// see cloneable) copied deeply.
		var fields []int
		var fplans []*clonePlan
		for i := range t.NumField() {
			if fp := compileClone(t.Field(i).Type, plans); !fp.flat {
				fields = append(fields, i)
				fplans = append(fplans, fp)
			}
		}
		p.copy = func(dst, src reflect.Value) {
			dst.Set(src)
			for j, i := range fields {
				fplans[j].copy(dst.Field(i), src.Field(i))
			}
		}
	}
	return p
}
