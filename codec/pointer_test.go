package codec_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/repocache/repocache/codec"
)

type post struct {
	ID     int64
	Title  string
	Author *user
}

// TestPointerAndElementShareAFrame (issue 11, item 7): `post:{id}` cached
// as *Post and `post:{ids[]}` cached as Post elements evicted each other on
// every call as undecodable. A pointer and its element count as one type.
func TestPointerAndElementShareAFrame(t *testing.T) {
	for _, c := range []codec.Codec{codec.Msgpack{}, codec.JSON{}} {
		t.Run(formatName(c), func(t *testing.T) {
			in := post{ID: 7, Title: "hello", Author: &user{ID: 1, Name: "Ada"}}
			asPtr, err := codec.Marshal(c, &in)
			if err != nil {
				t.Fatal(err)
			}
			asVal, err := codec.Marshal(c, in)
			if err != nil {
				t.Fatal(err)
			}
			v, err := codec.Unmarshal[post](c, asPtr)
			if err != nil {
				t.Fatalf("*post frame as post: %v", err)
			}
			if diff := cmp.Diff(in, v, timeEqual); diff != "" {
				t.Errorf("*post frame as post (-want +got):\n%s", diff)
			}
			p, err := codec.Unmarshal[*post](c, asVal)
			if err != nil {
				t.Fatalf("post frame as *post: %v", err)
			}
			if diff := cmp.Diff(&in, p, timeEqual); diff != "" {
				t.Errorf("post frame as *post (-want +got):\n%s", diff)
			}
			pp, err := codec.Unmarshal[**post](c, asVal)
			if err != nil || pp == nil || *pp == nil || (*pp).ID != 7 {
				t.Fatalf("post frame as **post: %v, %v", pp, err)
			}

			// A nil *post has no post to give: a miss, not a zero post, and
			// no panic.
			nilFrame, err := codec.Marshal(c, (*post)(nil))
			if err != nil {
				t.Fatal(err)
			}
			if v, err := codec.Unmarshal[post](c, nilFrame); !errors.Is(err, codec.ErrForeign) {
				t.Errorf("nil *post frame as post: %+v, %v; want ErrForeign", v, err)
			}
			if p, err := codec.Unmarshal[*post](c, nilFrame); err != nil || p != nil {
				t.Errorf("nil *post frame as *post: %v, %v; want nil, nil", p, err)
			}
			// The same for a value with nothing but basic kinds.
			n := int64(3)
			b, _ := codec.Marshal(c, &n)
			if got, err := codec.Unmarshal[int64](c, b); err != nil || got != 3 {
				t.Errorf("*int64 frame as int64: %v, %v", got, err)
			}
			b, _ = codec.Marshal(c, (*int64)(nil))
			if got, err := codec.Unmarshal[int64](c, b); !errors.Is(err, codec.ErrForeign) {
				t.Errorf("nil *int64 frame as int64: %v, %v; want ErrForeign", got, err)
			}
			b, _ = codec.Marshal(c, (*time.Time)(nil))
			if got, err := codec.Unmarshal[time.Time](c, b); !errors.Is(err, codec.ErrForeign) {
				t.Errorf("nil *time.Time frame as time.Time: %v, %v; want ErrForeign", got, err)
			}
			// A nil slice is a slice: it decodes as one.
			b, _ = codec.Marshal(c, []string(nil))
			if got, err := codec.Unmarshal[[]string](c, b); err != nil || got != nil {
				t.Errorf("nil []string: %v, %v", got, err)
			}
		})
	}
}

// TestTypeIDStripsTopLevelPointers: only the pointers at the top of a type
// are stripped; every other type keeps the fingerprint it had, so that
// values already cached stay hits.
func TestTypeIDStripsTopLevelPointers(t *testing.T) {
	id := codec.TypeID
	if id(reflect.TypeFor[*post]()) != id(reflect.TypeFor[post]()) || id(reflect.TypeFor[**post]()) != id(reflect.TypeFor[post]()) {
		t.Error("*post, **post and post have different type ids")
	}
	if id(reflect.TypeFor[[]*post]()) == id(reflect.TypeFor[[]post]()) {
		t.Error("[]*post and []post share a type id: only top-level pointers are one type with their element")
	}
	for _, tc := range []struct {
		t  reflect.Type
		id uint64
	}{
		// Fingerprints before pointers were stripped.
		{reflect.TypeFor[user](), 0x158404fc26f9905e},
		{reflect.TypeFor[[]*user](), 0xaaa9a0683e4bd6},
		{reflect.TypeFor[map[string]*user](), 0x37f2eb16fbc06a13},
		{reflect.TypeFor[[]user](), 0x254bbdc1215da7de},
		{reflect.TypeFor[int64](), 0xb637fd00ae23d042},
		{reflect.TypeFor[string](), 0x72e6fda2e5c083c6},
		{reflect.TypeFor[node](), 0xa58e517c647c2a76},
		// Was 0x376654b961fd1c16: now the id of []user.
		{reflect.TypeFor[*[]user](), 0x254bbdc1215da7de},
	} {
		if got := id(tc.t); got != tc.id {
			t.Errorf("TypeID(%v) = %#x, want %#x", tc.t, got, tc.id)
		}
	}
}
