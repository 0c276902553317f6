package codec_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/repocache/repocache/codec"
)

type address struct {
	Street string
	Zip    *string
}

type user struct {
	ID           int64
	Name         string
	PasswordHash string `json:"-"`
	CreatedAt    time.Time
	DeletedAt    *time.Time
	Manager      *user
	Tags         []string
	Scores       map[string]float64
	Home         address
	Others       []address
	Nothing      []int
}

// userV2 is user with one more field: an older frame must not decode into it.
type userV2 struct {
	ID           int64
	Name         string
	PasswordHash string `json:"-"`
	CreatedAt    time.Time
	DeletedAt    *time.Time
	Manager      *user
	Tags         []string
	Scores       map[string]float64
	Home         address
	Others       []address
	Nothing      []int
	Email        string
}

func sample() user {
	zip := "75001"
	created := time.Date(2026, 11, 25, 18, 31, 51, 123456789, time.FixedZone("X", 3600))
	return user{
		ID: 42, Name: "Ada", PasswordHash: "$2a$10$secret",
		CreatedAt: created,
		Manager:   &user{ID: 1, Name: "Boss", CreatedAt: created.Add(-time.Hour)},
		Tags:      []string{"a", "b"},
		Scores:    map[string]float64{"x": 1.5},
		Home:      address{Street: "Rue", Zip: &zip},
		Others:    []address{{Street: "One"}, {Street: "Two", Zip: &zip}},
	}
}

// timeEqual compares instants, not locations: MessagePack keeps the instant.
var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func TestRoundTrip(t *testing.T) {
	for _, c := range []codec.Codec{codec.Msgpack{}, codec.JSON{}} {
		t.Run(formatName(c), func(t *testing.T) {
			in := sample()
			b, err := codec.Marshal(c, in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := codec.Unmarshal[user](c, b)
			if err != nil {
				t.Fatal(err)
			}
			want := in
			if c.Format() == codec.FormatJSON {
				want.PasswordHash = "" // JSON honours json:"-"; that is why it is not the default
			}
			if diff := cmp.Diff(want, out, timeEqual); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTripShapes(t *testing.T) {
	for _, c := range []codec.Codec{codec.Msgpack{}, codec.JSON{}} {
		t.Run(formatName(c), func(t *testing.T) {
			u := sample()
			if c.Format() == codec.FormatJSON {
				u.PasswordHash = "" // see TestRoundTrip
			}
			roundTrip(t, c, (*user)(nil))
			roundTrip(t, c, &u)
			roundTrip(t, c, []user{u, {ID: 2}})
			roundTrip(t, c, []*user{nil, &u})
			roundTrip(t, c, map[string]user{"k": u})
			roundTrip(t, c, "")
			roundTrip(t, c, int64(-7))
			roundTrip(t, c, []string(nil))
			roundTrip(t, c, time.Unix(1700000000, 5).UTC())
		})
	}
}

func roundTrip[T any](t *testing.T, c codec.Codec, in T) {
	t.Helper()
	b, err := codec.Marshal(c, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := codec.Unmarshal[T](c, b)
	if err != nil {
		t.Fatalf("%T: %v", in, err)
	}
	if diff := cmp.Diff(in, out, timeEqual); diff != "" {
		t.Errorf("%T round trip (-want +got):\n%s", in, diff)
	}
}

func TestPasswordHashSurvivesMsgpack(t *testing.T) {
	b, err := codec.Marshal[user](codec.Msgpack{}, user{PasswordHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.Unmarshal[user](codec.Msgpack{}, b)
	if err != nil || got.PasswordHash != "h" {
		t.Fatalf("got %q, %v; want the json:\"-\" field kept", got.PasswordHash, err)
	}
}

func TestForeign(t *testing.T) {
	good, err := codec.Marshal(codec.Msgpack{}, sample())
	if err != nil {
		t.Fatal(err)
	}
	rawMsgpack, _ := msgpack.Marshal(sample())
	badVersion := append([]byte(nil), good...)
	badVersion[2] = 9
	cases := map[string]struct {
		data []byte
		c    codec.Codec
	}{
		"empty":             {nil, codec.Msgpack{}},
		"short":             {good[:5], codec.Msgpack{}},
		"raw msgpack":       {rawMsgpack, codec.Msgpack{}},
		"plain text":        {[]byte(`{"ID":42,"Name":"Ada"}`), codec.JSON{}},
		"other codec":       {good, codec.JSON{}},
		"other version":     {badVersion, codec.Msgpack{}},
		"other type layout": {good, nil}, // decoded as userV2 below
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var err error
			if tc.c == nil {
				var v userV2
				v, err = codec.Unmarshal[userV2](codec.Msgpack{}, tc.data)
				if v.ID != 0 {
					t.Errorf("foreign decode returned a value: %+v", v)
				}
			} else {
				var v user
				v, err = codec.Unmarshal[user](tc.c, tc.data)
				if v.ID != 0 {
					t.Errorf("foreign decode returned a value: %+v", v)
				}
			}
			if !errors.Is(err, codec.ErrForeign) {
				t.Fatalf("err = %v, want ErrForeign", err)
			}
		})
	}
}

func TestCorruptPayload(t *testing.T) {
	good, err := codec.Marshal(codec.Msgpack{}, sample())
	if err != nil {
		t.Fatal(err)
	}
	truncated := good[:len(good)-10]
	v, err := codec.Unmarshal[user](codec.Msgpack{}, truncated)
	if !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if v.ID != 0 || v.Name != "" {
		t.Fatalf("corrupt decode returned a partial value: %+v", v)
	}
}

func TestTypeIDTracksLayout(t *testing.T) {
	type a struct{ X int }
	type b struct{ X int }
	type c struct {
		X int `msgpack:"y"`
	}
	type d struct{ X string }
	type rec struct {
		Next *rec
		V    int
	}
	id := func(v any) uint64 { return codec.TypeID(reflectType(v)) }
	if id(a{}) == id(b{}) {
		t.Error("different type names share an id")
	}
	if id(a{}) == id(c{}) || id(a{}) == id(d{}) {
		t.Error("a changed tag or field type kept the id")
	}
	first := id(a{})
	if again := id(a{}); first != again {
		t.Error("id is not stable")
	}
	if id(rec{}) == 0 || id(&rec{}) != id(rec{}) {
		t.Error("recursive type or pointer id is wrong")
	}
	if id([]*rec{}) == id([]rec{}) {
		t.Error("a slice of pointers shares the id of a slice of values")
	}
}

func formatName(c codec.Codec) string {
	if c.Format() == codec.FormatJSON {
		return "json"
	}
	return "msgpack"
}

type node struct {
	Name string
	Next *node
	Meta map[string]any
}

// TestCyclicValueIsAnError (issue 10, defect 7): a value that refers to
// itself killed the process with a stack overflow inside MessagePack.
func TestCyclicValueIsAnError(t *testing.T) {
	a := &node{Name: "a"}
	a.Next = &node{Name: "b", Next: a}
	m := map[string]any{}
	m["self"] = m
	deep := &node{}
	for n, i := deep, 0; i < codec.MaxDepth+5; i++ {
		n.Next = &node{}
		n = n.Next
	}
	shared := &node{Name: "leaf"}
	for name, v := range map[string]any{"pointer": a, "map": &node{Meta: m}, "deep": deep} {
		for _, c := range []codec.Codec{codec.Msgpack{}, codec.JSON{}} {
			if _, err := codec.Marshal(c, v); !errors.Is(err, codec.ErrCycle) {
				t.Errorf("%s with %T: err = %v, want ErrCycle", name, c, err)
			}
		}
	}
	// The same pointer twice, side by side, is no cycle.
	ok := struct{ A, B *node }{shared, shared}
	if _, err := codec.Marshal(codec.Msgpack{}, ok); err != nil {
		t.Errorf("a shared, acyclic pointer: %v", err)
	}
}
