package runtime

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/repocache/repocache/codec"
)

type rvInner struct {
	S []string
	M map[string][]int
}

type rvEmb struct {
	rvInner
	P  *rvInner
	Ar [2][]int
}

type rvNode struct {
	V    int
	Next *rvNode
	Kids []*rvNode
}

type rvNil struct {
	NilS, EmpS []int
	NilM, EmpM map[string]int
	NilB, EmpB []byte
	NilP       *int
}

type rvIDs []int

func (r rvIDs) Len() int { return len(r) }

type rvName string

func (n rvName) String() string { return string(n) }

type rvflat struct{ X int }

type rvPromoted struct {
	rvflat
	Y []int
}

type rvMisc struct {
	MS   map[string]struct{ X []int }
	IDs  rvIDs
	Name rvName
	B    []byte
	PA   *[3][]int
	T    time.Time
	Prom rvPromoted
}

type rvRaw struct{ Raw json.RawMessage }

type rvEmb2 struct {
	RvInner
	P  *RvInner
	Ar [2][]int
}

type RvInner = rvInner

func rvCheck[T any](t *testing.T, cd codec.Codec, v T) {
	t.Helper()
	frame, err := codec.Marshal(cd, v)
	if err != nil {
		t.Fatal(err)
	}
	m := newL1Memo[T](cd, reflect.TypeFor[T](), frame)
	if m == nil {
		t.Logf("%T (%T): not memoised", v, cd)
		return
	}
	fresh, err := codec.Unmarshal[T](cd, frame)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cloneMemo[T](m), cloneMemo[T](m)
	if !reflect.DeepEqual(a, fresh) {
		t.Fatalf("%T (%T): clone %#v != decode %#v", v, cd, a, fresh)
	}
	disjoint(t, "clone vs clone", a, b)
	disjoint(t, "clone vs memo", a, m.v)
}

func TestL1CloneMatchesDecode(t *testing.T) {
	one := 1
	now := time.Now()
	for _, cd := range []codec.Codec{codec.Msgpack{}, codec.JSON{}} {
		rvCheck(t, cd, rvEmb{rvInner{[]string{"a"}, map[string][]int{"k": {1}}}, &rvInner{S: []string{}}, [2][]int{{1}, nil}})
		n := &rvNode{V: 1, Next: &rvNode{V: 2}, Kids: []*rvNode{{V: 3}, nil}}
		rvCheck(t, cd, n)
		rvCheck(t, cd, rvNil{EmpS: []int{}, EmpM: map[string]int{}, EmpB: []byte{}})
		misc := rvMisc{
			MS: map[string]struct{ X []int }{"a": {[]int{1}}, "b": {}}, IDs: rvIDs{1, 2}, Name: "n",
			B: []byte("xy"), PA: &[3][]int{{1}, {}, nil},
			T: now, Prom: rvPromoted{rvflat{7}, []int{1}},
		}
		rvCheck(t, cd, misc)
		if _, ok := cd.(codec.Msgpack); ok {
			rvCheck(t, cd, map[[2]int]*int{{1, 2}: &one, {3, 4}: nil})
		}
		rvCheck(t, cd, rvRaw{json.RawMessage(`{"a":1}`)})
		rvCheck(t, cd, rvEmb2{rvInner{[]string{"a"}, map[string][]int{"k": {1}}}, &rvInner{S: []string{}}, [2][]int{{1}, nil}})
		rvCheck(t, cd, rvPromoted{rvflat{7}, []int{1}})
		rvCheck(t, cd, [][]*[]map[string][]byte{{{{"a": []byte("b")}}}})
	}
}
