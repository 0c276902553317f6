package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/repocache/repocache/codec"
	"github.com/repocache/repocache/internal/redistest"
)

// Tests of the near cache's decoded-value memo (l1clone.go): every caller
// still gets its own value.

type memoInner struct {
	Name  string
	Nums  []int
	Attrs map[string]string
}

type MemoBase struct {
	BaseTags []string
}

type memoValue struct {
	MemoBase
	ID     string
	Tags   []string
	Counts map[string]int
	Inner  *memoInner
	Items  []memoInner
	ByName map[string]*memoInner
	Grid   [2][]int
	Blob   []byte
	PP     **int
	When   time.Time
	Empty  []string
	NoMap  map[string]int
	//lint:ignore U1000 a plain unexported field: decodes leave it zero, so does a copy
	private int
}

func newMemoValue() memoValue {
	n := 7
	p := &n
	return memoValue{
		MemoBase: MemoBase{BaseTags: []string{"b1", "b2"}},
		ID:       "42",
		Tags:     []string{"a", "b", "c"},
		Counts:   map[string]int{"x": 1, "y": 2},
		Inner:    &memoInner{Name: "in", Nums: []int{1, 2, 3}, Attrs: map[string]string{"k": "v"}},
		Items:    []memoInner{{Name: "i0", Nums: []int{4}, Attrs: map[string]string{"k0": "v0"}}, {Name: "i1"}},
		ByName:   map[string]*memoInner{"a": {Name: "a", Nums: []int{5, 6}}, "nil": nil},
		Grid:     [2][]int{{1, 2}, {3}},
		Blob:     []byte("blob"),
		PP:       &p,
		When:     time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Empty:    []string{},
	}
}

// mutate changes everything v refers to.
func mutate(v *memoValue) {
	v.BaseTags[0] = "X"
	v.Tags[0] = "X"
	v.Counts["x"] = 100
	v.Counts["new"] = 1
	v.Inner.Name = "X"
	v.Inner.Nums[0] = 100
	v.Inner.Attrs["k"] = "X"
	v.Items[0].Nums[0] = 100
	v.Items[0].Attrs["k0"] = "X"
	v.ByName["a"].Nums[1] = 100
	v.ByName["a"].Name = "X"
	v.Grid[0][0] = 100
	v.Blob[0] = 'X'
	**v.PP = 100
	v.Empty = append(v.Empty, "X")
}

// refs collects the memory v refers to, but strings and a time.Time's
// location (immutable, shared by design): pointer targets, slices' arrays,
// maps, by address.
func refs(v reflect.Value, into map[uintptr]string, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			into[v.Pointer()] = path
			refs(v.Elem(), into, "*"+path)
		}
	case reflect.Slice:
		if v.Cap() > 0 {
			into[v.Pointer()] = path
		}
		for i := range v.Len() {
			refs(v.Index(i), into, fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if !v.IsNil() {
			into[v.Pointer()] = path
		}
		for it := v.MapRange(); it.Next(); {
			refs(it.Value(), into, fmt.Sprintf("%s[%v]", path, it.Key()))
		}
	case reflect.Array:
		for i := range v.Len() {
			refs(v.Index(i), into, fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Struct:
		if v.Type() == timeType {
			return
		}
		for i := range v.NumField() {
			refs(v.Field(i), into, path+"."+v.Type().Field(i).Name)
		}
	case reflect.Interface:
		if !v.IsNil() {
			refs(v.Elem(), into, path)
		}
	}
}

// disjoint fails t if a and b refer to any of the same memory.
func disjoint(t *testing.T, what string, a, b any) {
	t.Helper()
	ra, rb := map[uintptr]string{}, map[uintptr]string{}
	refs(reflect.ValueOf(a), ra, "v")
	refs(reflect.ValueOf(b), rb, "v")
	for p, path := range rb {
		if other, ok := ra[p]; ok {
			t.Fatalf("%s: %s shares its memory with %s", what, path, other)
		}
	}
}

// TestL1CloneCloneable: what the cloner copies, what it leaves to the
// decoder, and which types are copied by an assignment.
func TestL1CloneCloneable(t *testing.T) {
	type tree struct {
		Name string
		Kids []*tree
	}
	type flatT struct {
		ID   string
		N    int
		F    float64
		When time.Time
		Arr  [3]int16
		//lint:ignore U1000 a flat unexported field does not stop a copy
		inner struct{ A, B string }
	}
	type base struct{ Tags []string }
	for _, tc := range []struct {
		name           string
		t              reflect.Type
		cloneable, flt bool
	}{
		{"int", reflect.TypeFor[int](), true, true},
		{"string", reflect.TypeFor[string](), true, true},
		{"time", reflect.TypeFor[time.Time](), true, true},
		{"flat struct", reflect.TypeFor[flatT](), true, true},
		{"array of flat", reflect.TypeFor[[4]flatT](), true, true},
		{"pointer", reflect.TypeFor[*flatT](), true, false},
		{"slice", reflect.TypeFor[[]string](), true, false},
		{"map", reflect.TypeFor[map[string]int](), true, false},
		{"rich", reflect.TypeFor[memoValue](), true, false},
		{"pointer to rich", reflect.TypeFor[*memoValue](), true, false},
		{"recursive", reflect.TypeFor[tree](), true, false},
		{"map with a struct key", reflect.TypeFor[map[struct{ A, B int }][]int](), true, false},
		{"interface", reflect.TypeFor[any](), false, false},
		{"interface field", reflect.TypeFor[memoIface](), false, false},
		{"interface deep", reflect.TypeFor[map[string][]*memoIface](), false, false},
		{"error", reflect.TypeFor[struct{ Err error }](), false, false},
		{"chan", reflect.TypeFor[struct{ C chan int }](), false, false},
		{"func", reflect.TypeFor[struct{ F func() }](), false, false},
		{"unsafe.Pointer", reflect.TypeFor[struct{ P unsafe.Pointer }](), false, false},
		{"map keyed by a pointer", reflect.TypeFor[map[*int]int](), false, false},
		{"unexported slice", reflect.TypeFor[memoPrivate](), false, false},
		{"unexported map", reflect.TypeFor[struct{ m map[string]int }](), false, false},
		{"unexported pointer", reflect.TypeFor[struct{ p *int }](), false, false},
		{"unexported embedded slice", reflect.TypeFor[struct{ base }](), false, false},
		{"msgpack.CustomDecoder", reflect.TypeFor[memoCustom](), false, false},
		{"msgpack.CustomDecoder under a slice", reflect.TypeFor[[]countingString](), false, false},
		{"msgpack.Unmarshaler", reflect.TypeFor[msgpackUnmarshaler](), false, false},
		{"encoding.TextUnmarshaler", reflect.TypeFor[textUnmarshaler](), false, false},
		{"encoding.BinaryUnmarshaler", reflect.TypeFor[binaryUnmarshaler](), false, false},
		{"json.Unmarshaler", reflect.TypeFor[jsonUnmarshaler](), false, false},
		{"json.RawMessage", reflect.TypeFor[json.RawMessage](), false, false},
		{"a struct embedding time.Time", reflect.TypeFor[struct{ time.Time }](), false, false},
	} {
		p := clonePlanFor(tc.t)
		if (p != nil) != tc.cloneable {
			t.Errorf("%s: cloneable %v, want %v", tc.name, p != nil, tc.cloneable)
			continue
		}
		if p != nil && p.flat != tc.flt {
			t.Errorf("%s: flat %v, want %v", tc.name, p.flat, tc.flt)
		}
	}
}

// cloneOf copies v as a memo of it is copied.
func cloneOf[T any](t *testing.T, v T) T {
	t.Helper()
	p := clonePlanFor(reflect.TypeFor[T]())
	if p == nil {
		t.Fatalf("%T is not cloneable", v)
	}
	return cloneMemo[T](&l1Memo{typ: reflect.TypeFor[T](), v: v, plan: p})
}

// TestL1CloneDeep: a copy equals its original, nil and empty alike, and
// shares none of its memory; a recursive type is copied whole.
func TestL1CloneDeep(t *testing.T) {
	v := newMemoValue()
	got := cloneOf(t, v)
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("copy differs:\n%+v\n%+v", got, v)
	}
	if got.Empty == nil || got.NoMap != nil || got.ByName["nil"] != nil {
		t.Fatal("nil and empty are not kept apart")
	}
	disjoint(t, "struct", v, got)
	mutate(&got)
	if want := newMemoValue(); !reflect.DeepEqual(v, want) {
		t.Fatalf("changing the copy changed the original:\n%+v", v)
	}

	pv := &v
	pgot := cloneOf(t, pv)
	if pgot == pv || !reflect.DeepEqual(pgot, pv) {
		t.Fatal("a pointer is not copied deeply")
	}
	disjoint(t, "pointer", pv, pgot)

	type tree struct {
		Name string
		Kids []*tree
		Next *tree
	}
	root := &tree{Name: "r", Kids: []*tree{{Name: "a", Next: &tree{Name: "n"}}, {Name: "b", Kids: []*tree{{Name: "c"}}}}}
	groot := cloneOf(t, root)
	if !reflect.DeepEqual(groot, root) {
		t.Fatal("a tree is not copied whole")
	}
	disjoint(t, "tree", root, groot)

	m := map[string][][2][]int{"a": {{{1}, {2, 3}}}}
	gm := cloneOf(t, m)
	if !reflect.DeepEqual(gm, m) {
		t.Fatal("a map of slices of arrays of slices is not copied whole")
	}
	disjoint(t, "nested", m, gm)
}

// TestL1CloneFlatIsACopy: a flat type is handed out by assignment, and a
// time keeps its location.
func TestL1CloneFlatIsACopy(t *testing.T) {
	type flatT struct {
		ID   string
		When time.Time
		Arr  [2]int
	}
	v := flatT{ID: "1", When: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600)), Arr: [2]int{1, 2}}
	got := cloneOf(t, v)
	if got != v || got.When.Location() != v.When.Location() {
		t.Fatalf("got %+v, want %+v", got, v)
	}
}

// memoIface holds an interface: decoded on every hit.
type memoIface struct {
	ID    string
	Extra any
}

// memoPrivate has an unexported slice: decoded on every hit.
type memoPrivate struct {
	ID   string
	tags []string
}

// decodes counts countingString's decodes.
var decodes atomic.Int64

// countingString decodes itself, and counts how often it does.
type countingString string

// EncodeMsgpack implements msgpack.CustomEncoder.
func (s countingString) EncodeMsgpack(e *msgpack.Encoder) error { return e.EncodeString(string(s)) }

// DecodeMsgpack implements msgpack.CustomDecoder.
func (s *countingString) DecodeMsgpack(d *msgpack.Decoder) error {
	decodes.Add(1)
	v, err := d.DecodeString()
	*s = countingString(v)
	return err
}

type memoCustom struct {
	ID string
	S  countingString
}

type msgpackUnmarshaler struct{ A string }

func (*msgpackUnmarshaler) UnmarshalMsgpack([]byte) error { return nil }

type textUnmarshaler struct{ A string }

func (*textUnmarshaler) UnmarshalText([]byte) error { return nil }

type binaryUnmarshaler struct{ A string }

func (binaryUnmarshaler) UnmarshalBinary([]byte) error { return nil }

type jsonUnmarshaler struct{ A string }

func (*jsonUnmarshaler) UnmarshalJSON([]byte) error { return nil }

// memoCache is a Cache with a watched near cache on the standalone server.
func memoCache(t *testing.T, opts ...Option) *Cache {
	t.Helper()
	b := redistest.Standalone(t)
	b.RequireReal(t)
	c := l1Cache(t, b, opts...)
	waitWatched(t, c)
	return c
}

// memoGet reads key through c, loading v; opts add to a TTL of a minute.
func memoGet[T any](t testing.TB, c *Cache, key string, v T, opts ...CallOption) T {
	t.Helper()
	got, err := GetCached(context.Background(), c, key, func(context.Context) (T, error) { return v, nil },
		append([]CallOption{TTL(time.Minute)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// memoHeld reads key until the near cache holds it, and returns its entry,
// not read from memory yet.
func memoHeld[T any](t *testing.T, c *Cache, key string, v T, opts ...CallOption) *l1Item {
	t.Helper()
	for range 20 {
		memoGet(t, c, key, v, opts...)
		syncL1(t, c)
		sh := c.l1.shard(c.prefix + key)
		sh.mu.RLock()
		it := sh.m[c.prefix+key]
		sh.mu.RUnlock()
		if it != nil {
			return it
		}
	}
	t.Fatalf("the near cache never held %q", key)
	return nil
}

// TestL1MemoCallersOwnTheirValues: hits from memory decode once, and
// hand out values that share nothing with each other or with the memo:
// a caller that changes what it got changes nothing for the next.
func TestL1MemoCallersOwnTheirValues(t *testing.T) {
	c := memoCache(t)
	want := newMemoValue()
	it := memoHeld(t, c, "memo", want)
	if it.memo.Load() != nil {
		t.Fatal("a memo before any hit from memory")
	}
	var first memoValue
	for i := range 5 {
		got := memoGet(t, c, "memo", memoValue{ID: "loaded"})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("hit %d: got %+v, want %+v", i, got, want)
		}
		m := it.memo.Load()
		if m == nil {
			t.Fatal("no memo after a hit from memory")
		}
		disjoint(t, "memo", m.v, got)
		if i > 0 {
			disjoint(t, "previous hit", first, got)
		}
		mutate(&got)
		if i == 0 {
			first = got
		}
	}
	if s, _ := c.Stats(context.Background()); s.L1.Hits < 5 {
		t.Fatalf("%d hits from memory, want 5", s.L1.Hits)
	}

	// The same entry read as a pointer (T and *T share a type id):
	// decoded, and still one's own.
	p1 := memoGet(t, c, "memo", &memoValue{ID: "loaded"})
	mutate(p1)
	if p2 := memoGet(t, c, "memo", &memoValue{ID: "loaded"}); !reflect.DeepEqual(*p2, want) {
		t.Fatalf("read as a pointer: got %+v", *p2)
	}
	if got := memoGet(t, c, "memo", memoValue{}); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
}

// TestL1MemoPointer: a value cached as a pointer is copied to a new
// pointee on every hit.
func TestL1MemoPointer(t *testing.T) {
	c := memoCache(t)
	want := newMemoValue()
	it := memoHeld(t, c, "memo:p", &want)
	a := memoGet(t, c, "memo:p", &memoValue{})
	b := memoGet(t, c, "memo:p", &memoValue{})
	m := it.memo.Load()
	if m == nil {
		t.Fatal("no memo")
	}
	if a == b || a == m.v.(*memoValue) {
		t.Fatal("two hits share a pointer")
	}
	disjoint(t, "memo", m.v, a)
	disjoint(t, "other hit", a, b)
	mutate(a)
	if !reflect.DeepEqual(*b, want) || !reflect.DeepEqual(*memoGet(t, c, "memo:p", &memoValue{}), want) {
		t.Fatal("changing one hit's value changed another's")
	}
}

// TestL1MemoBatch: GetBatch's hits from memory are memoised and copied
// too, one copy per element.
func TestL1MemoBatch(t *testing.T) {
	c := memoCache(t)
	ctx := context.Background()
	ids := []string{"1", "2"}
	key := func(id string) string { return "memo:b:" + id }
	idOf := func(v memoValue) string { return v.ID }
	load := func(_ context.Context, ids []string) ([]memoValue, error) {
		out := make([]memoValue, len(ids))
		for i, id := range ids {
			out[i] = newMemoValue()
			out[i].ID = id
		}
		return out, nil
	}
	wants, _ := load(ctx, ids)
	var items []*l1Item
	for _, w := range wants {
		items = append(items, memoHeld(t, c, key(w.ID), w))
	}
	for i := range 3 {
		got, err := GetBatch(ctx, c, ids, key, idOf, load, TTL(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, wants) {
			t.Fatalf("batch %d: got %+v", i, got)
		}
		for j, it := range items {
			m := it.memo.Load()
			if m == nil {
				t.Fatalf("batch %d: no memo for %s", i, ids[j])
			}
			disjoint(t, "memo", m.v, got[j])
			mutate(&got[j])
		}
	}
}

// TestL1MemoConcurrentHits: callers that hit one entry at once, its first
// hit included, each change their own value (run with -race).
func TestL1MemoConcurrentHits(t *testing.T) {
	c := memoCache(t)
	want := newMemoValue()
	it := memoHeld(t, c, "memo:race", want)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load := func(context.Context) (memoValue, error) { return memoValue{ID: "loaded"}, nil }
			for range 200 {
				got, err := GetCached(context.Background(), c, "memo:race", load, TTL(time.Minute))
				if err != nil || !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("got %+v", got)
					return
				}
				mutate(&got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if it.memo.Load() == nil {
		t.Fatal("no memo")
	}
}

// TestL1MemoFallsBackToDecoding: types the cloner cannot copy, and other
// codecs, are decoded on every hit from memory, and still served from it.
func TestL1MemoFallsBackToDecoding(t *testing.T) {
	t.Run("interface", func(t *testing.T) {
		c := memoCache(t)
		want := memoIface{ID: "1", Extra: "x"}
		it := memoHeld(t, c, "memo:iface", want)
		for range 3 {
			if got := memoGet(t, c, "memo:iface", memoIface{}); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		}
		if it.memo.Load() != nil {
			t.Fatal("an interface was memoised")
		}
	})
	t.Run("custom decoder", func(t *testing.T) {
		c := memoCache(t)
		want := memoCustom{ID: "1", S: "s"}
		it := memoHeld(t, c, "memo:custom", want)
		before := decodes.Load()
		for range 3 {
			if got := memoGet(t, c, "memo:custom", memoCustom{}); got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		}
		if n := decodes.Load() - before; n != 3 || it.memo.Load() != nil {
			t.Fatalf("%d decodes for 3 hits (memo %v), want 3", n, it.memo.Load())
		}
	})
	t.Run("unexported slice", func(t *testing.T) {
		c := memoCache(t)
		it := memoHeld(t, c, "memo:private", memoPrivate{ID: "1", tags: []string{"a"}})
		for range 3 {
			if got := memoGet(t, c, "memo:private", memoPrivate{}); got.ID != "1" || got.tags != nil {
				t.Fatalf("got %+v", got)
			}
		}
		if it.memo.Load() != nil {
			t.Fatal("a type with an unexported slice was memoised")
		}
	})
	t.Run("other codec", func(t *testing.T) {
		c := memoCache(t, WithCodec(otherCodec{}))
		want := newMemoValue()
		it := memoHeld(t, c, "memo:codec", want)
		for range 3 {
			if got := memoGet(t, c, "memo:codec", memoValue{}); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v", got)
			}
		}
		if it.memo.Load() != nil {
			t.Fatal("a value of a custom codec was memoised")
		}
	})
	t.Run("not found", func(t *testing.T) {
		c := memoCache(t)
		notFound := func(context.Context) (memoValue, error) { return memoValue{}, ErrNotFound }
		var it *l1Item
		for range 20 {
			if _, err := GetCached(context.Background(), c, "memo:nf", notFound, TTL(time.Minute), Negative(time.Minute)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("err %v", err)
			}
			syncL1(t, c)
			if it = c.l1.get(c.prefix+"memo:nf", time.Now().UnixNano()); it != nil {
				break
			}
		}
		if it == nil {
			t.Fatal("the not-found was never held")
		}
		for range 3 {
			if _, err := GetCached(context.Background(), c, "memo:nf", notFound, TTL(time.Minute), Negative(time.Minute)); !errors.Is(err, ErrNotFound) {
				t.Fatalf("err %v", err)
			}
		}
		if it.memo.Load() != nil {
			t.Fatal("a not-found was memoised")
		}
	})
}

// otherCodec is Msgpack under another format: not a built-in codec.
type otherCodec struct{ codec.Msgpack }

func (otherCodec) Format() codec.Format { return 64 }

// TestL1MemoJSON: the JSON codec's values are memoised and copied too.
func TestL1MemoJSON(t *testing.T) {
	c := memoCache(t, WithCodec(codec.JSON{}))
	want := newMemoValue()
	it := memoHeld(t, c, "memo:json", want)
	for range 3 {
		got := memoGet(t, c, "memo:json", memoValue{})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		m := it.memo.Load()
		if m == nil {
			t.Fatal("no memo")
		}
		disjoint(t, "memo", m.v, got)
		mutate(&got)
	}
}

// TestL1MemoSWR: a value in a stale-while-revalidate envelope is memoised,
// and a hit still reports it stale after its freshness.
func TestL1MemoSWR(t *testing.T) {
	c := memoCache(t)
	want := newMemoValue()
	it := memoHeld(t, c, "memo:swr", want, SWR(time.Minute))
	got := memoGet(t, c, "memo:swr", memoValue{}, SWR(time.Minute))
	if !reflect.DeepEqual(got, want) || it.memo.Load() == nil {
		t.Fatalf("got %+v, memo %v", got, it.memo.Load())
	}
	mutate(&got)
	if v, stale, ok, _ := decodeL1[memoValue](context.Background(), c, "memo:swr", c.prefix+"memo:swr", it, nil); !ok || stale || !reflect.DeepEqual(v, want) {
		t.Fatalf("fresh: ok %v stale %v", ok, stale)
	}
	// The same entry and memo, fresh until 1970.
	old := &l1Item{val: it.val[:11] + "\x00\x00\x00\x00\x00\x00\x00\x01" + it.val[19:], expires: it.expires}
	old.memo.Store(it.memo.Load())
	if _, stale, ok, _ := decodeL1[memoValue](context.Background(), c, "memo:swr", c.prefix+"memo:swr", old, nil); !ok || !stale {
		t.Fatalf("past its freshness: ok %v stale %v", ok, stale)
	}
}

// TestL1MemoTimeKeepsItsLocation: a time read from memory is in the
// location it was stored in.
func TestL1MemoTimeKeepsItsLocation(t *testing.T) {
	type times struct{ UTC, Local, Fixed, Named time.Time }
	at := time.Date(2026, 7, 1, 12, 30, 0, 123, time.UTC)
	want := times{UTC: at, Local: at.In(time.Local), Fixed: at.In(time.FixedZone("X", 5400)), Named: at}
	if berlin, err := time.LoadLocation("Europe/Berlin"); err == nil {
		want.Named = at.In(berlin)
	}
	c := memoCache(t)
	it := memoHeld(t, c, "memo:time", want)
	for range 2 {
		got := memoGet(t, c, "memo:time", times{})
		for _, p := range [][2]time.Time{{got.UTC, want.UTC}, {got.Local, want.Local}, {got.Fixed, want.Fixed}, {got.Named, want.Named}} {
			gotName, gotOff := p[0].Zone()
			wantName, wantOff := p[1].Zone()
			if !p[0].Equal(p[1]) || gotName != wantName || gotOff != wantOff || p[0].Location().String() != p[1].Location().String() {
				t.Fatalf("got %v (%s), want %v (%s)", p[0], p[0].Location(), p[1], p[1].Location())
			}
		}
		if got.Local.Location() != time.Local || got.UTC.Location() != time.UTC {
			t.Fatal("UTC or Local is not itself")
		}
	}
	if it.memo.Load() == nil {
		t.Fatal("no memo")
	}
}

// TestL1MemoCounted: a memo counts in the tier's bytes, and leaves with
// its entry.
func TestL1MemoCounted(t *testing.T) {
	c := memoCache(t)
	ctx := context.Background()
	memoHeld(t, c, "memo:n", newMemoValue())
	s0, _ := c.Stats(ctx)
	memoGet(t, c, "memo:n", memoValue{})
	s1, _ := c.Stats(ctx)
	if s1.L1.Bytes <= s0.L1.Bytes {
		t.Fatalf("%d bytes with the memo, %d without", s1.L1.Bytes, s0.L1.Bytes)
	}
	if err := c.Invalidate(ctx, "memo:n"); err != nil {
		t.Fatal(err)
	}
	if s2, _ := c.Stats(ctx); s2.L1.Entries != 0 || s2.L1.Bytes != 0 {
		t.Fatalf("after the drop: %+v", s2.L1)
	}
}

// TestL1MemoCountsWhatItDecodesTo: a value that decodes larger than its
// encoding (a short string: two bytes in MessagePack, a 16-byte header and
// its byte in memory) is counted at its decoded size, so that L1MaxBytes
// bounds the memos.
func TestL1MemoCountsWhatItDecodesTo(t *testing.T) {
	c := memoCache(t)
	ctx := context.Background()
	words := make([]string, 4096)
	for i := range words {
		words[i] = string(rune('a' + i%26))
	}
	it := memoHeld(t, c, "memo:words", words)
	s0, _ := c.Stats(ctx)
	memoGet(t, c, "memo:words", []string(nil))
	s1, _ := c.Stats(ctx)
	if it.memo.Load() == nil {
		t.Fatal("no memo: the read did not come from memory")
	}
	if grew, decoded := s1.L1.Bytes-s0.L1.Bytes, int64(17*len(words)); grew < decoded {
		t.Fatalf("the memo counts %d bytes, its slice alone holds %d", grew, decoded)
	}
}

// TestL1MemoFlatHitAllocs: a hit from memory on a flat value decodes
// nothing: it allocates only what every call does (the full key).
func TestL1MemoFlatHitAllocs(t *testing.T) {
	type flatT struct {
		ID, Name, Slug, Plan, Email, Description string
		Members                                  int
		Created, Updated                         time.Time
	}
	c := memoCache(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	want := flatT{"42", "Acme", "acme", "enterprise", "o@acme.example", strings.Repeat("d", 140), 128, at, at}
	memoHeld(t, c, "memo:flat", want)
	ctx := context.Background()
	load := func(context.Context, int) (flatT, error) { return flatT{}, nil }
	opts := []CallOption{TTL(time.Minute)}
	got := testing.AllocsPerRun(100, func() {
		v, err := GetCachedWith(ctx, c, "memo:flat", 0, load, opts...)
		if err != nil || v != want {
			t.Fatalf("got %+v, %v", v, err)
		}
	})
	if got > 1 {
		t.Fatalf("%v allocations per hit from memory, want 1", got)
	}
}

// TestL1MemoTakesPointerToTime: a *time.Time field (DeletedAt *time.Time)
// has time's decoders, and must not turn the memo off for its type.
func TestL1MemoTakesPointerToTime(t *testing.T) {
	type user struct {
		Name      string
		DeletedAt *time.Time
	}
	if clonePlanFor(reflect.TypeFor[user]()) == nil {
		t.Fatal("a struct with a *time.Time field is not memoised: every L1 hit decodes")
	}
}
