package codec_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/repocache/repocache/codec"
)

// stamped is a value as the previous version of this package framed it; see
// TestTimeOldFramesAreForeign.
type stamped struct {
	ID int64
	At time.Time
}

// zoned holds times in every kind of location, in every shape a value can
// take: a field, a pointer, a slice, a map value and key, an interface.
type zoned struct {
	UTC       time.Time
	Fixed     time.Time
	Unnamed   time.Time
	Named     time.Time
	Local     time.Time
	Zero      time.Time
	Mono      time.Time
	MonoLater time.Time
	Ptr       *time.Time
	NilPtr    *time.Time
	Slice     []time.Time
	Map       map[string]time.Time
	Keys      map[time.Time]string
	Any       any
	Nested    []*stamped
}

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Logf("no tzdata for Europe/Berlin (%v): the named zone is tested as UTC", err)
		return time.UTC
	}
	return loc
}

func sampleZoned(t *testing.T) zoned {
	base := time.Date(2026, 12, 1, 9, 30, 0, 123456789, time.UTC)
	fixed := time.FixedZone("X", 3600)
	named := berlin(t)
	summer := time.Date(2026, 7, 1, 9, 30, 0, 1, named) // CEST, not CET
	ptr := base.In(fixed)
	now := time.Now() // Local, with a monotonic reading
	return zoned{
		UTC:       base,
		Fixed:     base.In(fixed),
		Unnamed:   base.In(time.FixedZone("", -5*3600-1800)),
		Named:     base.In(named),
		Local:     time.Date(2026, 12, 1, 9, 30, 0, 0, time.Local),
		Zero:      time.Time{},
		Mono:      now,
		MonoLater: now.Add(time.Hour),
		Ptr:       &ptr,
		Slice:     []time.Time{base, base.In(fixed), summer, {}, time.Unix(-1e10, 7).UTC(), time.Unix(1<<40, 999999999).In(fixed)},
		Map:       map[string]time.Time{"utc": base, "named": summer},
		Keys:      map[time.Time]string{base: "utc"},
		Any:       base,
		Nested:    []*stamped{{ID: 1, At: base.In(named)}, nil},
	}
}

// stripMono is what a round trip through any store must give back: the
// monotonic reading belongs to one process and is never stored.
func stripMono(z zoned) zoned {
	z.Mono = z.Mono.Round(0)
	z.MonoLater = z.MonoLater.Round(0)
	return z
}

// TestTimeKeepsLocation (issue 11, item 8): a time.Time came back in Local
// where the database gave UTC (same instant, reflect.DeepEqual false).
func TestTimeKeepsLocation(t *testing.T) {
	// Local is UTC on many test machines: make it a zone of its own, so that
	// a time that comes back in Local cannot pass for one in UTC.
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.FixedZone("L", 2*3600)
	in := sampleZoned(t)
	b, err := codec.Marshal(codec.Msgpack{}, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := codec.Unmarshal[zoned](codec.Msgpack{}, b)
	if err != nil {
		t.Fatal(err)
	}
	want := stripMono(in)
	rv, ro := reflect.ValueOf(want), reflect.ValueOf(out)
	for i := range rv.NumField() {
		name := rv.Type().Field(i).Name
		if !reflect.DeepEqual(rv.Field(i).Interface(), ro.Field(i).Interface()) {
			t.Errorf("%s: got %v, want %v", name, ro.Field(i).Interface(), rv.Field(i).Interface())
		}
	}
	for name, pair := range map[string][2]time.Time{
		"Mono": {in.Mono, out.Mono}, "MonoLater": {in.MonoLater, out.MonoLater},
	} {
		if !pair[0].Equal(pair[1]) || pair[1].Location() != pair[0].Location() {
			t.Errorf("%s: got %v in %v, want %v in %v", name, pair[1], pair[1].Location(), pair[0], pair[0].Location())
		}
	}
	if out.UTC.Location() != time.UTC || out.Zero.Location() != time.UTC {
		t.Errorf("UTC came back in %v and %v", out.UTC.Location(), out.Zero.Location())
	}
	if name, off := out.Fixed.Zone(); name != "X" || off != 3600 {
		t.Errorf("fixed zone came back as %q %d", name, off)
	}
	if got, want := out.Named.Location().String(), in.Named.Location().String(); got != want {
		t.Errorf("named zone came back as %q, want %q", got, want)
	}
}

// TestTimeShapes: a time.Time at the top of a value, and behind pointers.
func TestTimeShapes(t *testing.T) {
	fixed := time.Date(2026, 12, 1, 9, 30, 0, 1, time.FixedZone("X", 3600))
	utc := fixed.UTC()
	exact(t, utc)
	exact(t, fixed)
	exact(t, time.Time{})
	exact(t, &utc)
	exact(t, (*time.Time)(nil))
	exact(t, []*time.Time{&fixed, nil})
	exact(t, map[int]time.Time{1: utc, 2: fixed})
	exact(t, []any{utc, fixed, "s"})
	exact(t, struct{ A, B any }{utc, fixed})
	exact(t, time.Now().Round(0))
	exact(t, time.Date(-300, 1, 1, 0, 0, 0, 0, time.UTC))
	exact(t, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("Y", -12*3600)))
}

func exact[T any](t *testing.T, in T) {
	t.Helper()
	b, err := codec.Marshal(codec.Msgpack{}, in)
	if err != nil {
		t.Fatalf("%T: %v", in, err)
	}
	out, err := codec.Unmarshal[T](codec.Msgpack{}, b)
	if err != nil {
		t.Fatalf("%T: %v", in, err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("%T: got %v, want %v", in, out, in)
	}
}

// TestTimeOldFramesAreForeign: the previous version of this package wrote
// times without their location. Its frames must be a miss, not a hit that
// hands back a time in Local.
func TestTimeOldFramesAreForeign(t *testing.T) {
	for name, tc := range map[string]struct {
		c     codec.Codec
		frame string
	}{
		"msgpack": {codec.Msgpack{}, "c15201013a4ae124a0d29b6f82a24944d30000000000000007a24174d7ff000000146b0e9398"},
		"json":    {codec.JSON{}, "c15201023a4ae124a0d29b6f7b224944223a372c224174223a22323032362d31322d30315430393a33303a30302e3030303030303030355a227d"},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			v, err := codec.Unmarshal[stamped](tc.c, b)
			if !errors.Is(err, codec.ErrForeign) {
				t.Fatalf("got %v, %v; want ErrForeign", v, err)
			}
		})
	}
}

// TestTimeOtherMsgpackUsersUnchanged: the codec changes how its own frames
// store a time, not how the rest of the program's MessagePack does.
func TestTimeOtherMsgpackUsersUnchanged(t *testing.T) {
	// Make sure the codec has been used before.
	if _, err := codec.Marshal(codec.Msgpack{}, stamped{At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 9, 30, 0, 5, time.UTC)
	// The standard timestamp extension (-1), 8 bytes: nanoseconds<<34 | seconds.
	wantTime := []byte{0xd7, 0xff, 0x00, 0x00, 0x00, 0x14, 0x6b, 0x0e, 0x93, 0x98}
	for _, v := range []any{at, stamped{At: at}, &stamped{At: at}, []time.Time{at}, map[string]any{"At": at}} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, wantTime) {
			t.Errorf("msgpack.Marshal(%T) = %x, want the standard timestamp %x in it", v, b, wantTime)
		}
	}
	b, _ := msgpack.Marshal(stamped{ID: 1, At: at})
	var s stamped
	if err := msgpack.Unmarshal(b, &s); err != nil || !s.At.Equal(at) || s.ID != 1 {
		t.Errorf("msgpack.Unmarshal = %v, %v", s, err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil || !m["At"].(time.Time).Equal(at) {
		t.Errorf("msgpack.Unmarshal into a map = %v, %v", m, err)
	}
	var tm time.Time
	if err := msgpack.Unmarshal(wantTime, &tm); err != nil || !tm.Equal(at) {
		t.Errorf("msgpack.Unmarshal into a time = %v, %v", tm, err)
	}
}

// TestTimeJSON: encoding/json keeps the instant and the offset, not the
// zone's name; UTC stays UTC.
func TestTimeJSON(t *testing.T) {
	base := time.Date(2026, 12, 1, 9, 30, 0, 123456789, time.UTC)
	in := stamped{ID: 1, At: base}
	b, err := codec.Marshal(codec.JSON{}, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := codec.Unmarshal[stamped](codec.JSON{}, b)
	if err != nil || !reflect.DeepEqual(in, out) || out.At.Location() != time.UTC {
		t.Fatalf("UTC: got %v in %v, %v; want %v", out, out.At.Location(), err, in)
	}
	for _, at := range []time.Time{base.In(time.FixedZone("X", 3600)), base.In(berlin(t)), time.Now()} {
		b, err := codec.Marshal(codec.JSON{}, stamped{At: at})
		if err != nil {
			t.Fatal(err)
		}
		out, err := codec.Unmarshal[stamped](codec.JSON{}, b)
		if err != nil {
			t.Fatal(err)
		}
		_, wantOff := at.Zone()
		if _, off := out.At.Zone(); !out.At.Equal(at) || off != wantOff {
			t.Errorf("%v: got %v, want the same instant and offset", at, out.At)
		}
	}
}

// TestTimeNilIsCorrupt: msgpack panicked on a nil where a time.Time was
// expected (the fuzz test found it); it is a damaged value, not a zero time.
func TestTimeNilIsCorrupt(t *testing.T) {
	payload := []byte{0x82, 0xa2, 'I', 'D', 0x07, 0xa2, 'A', 't', 0xc0} // {"ID": 7, "At": nil}
	framed := codec.AppendHeader(nil, codec.FormatMsgpack, reflect.TypeFor[stamped]())
	v, err := codec.Unmarshal[stamped](codec.Msgpack{}, append(framed, payload...))
	if !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("got %v, %v; want ErrCorrupt", v, err)
	}
	var s stamped
	if err := msgpack.Unmarshal(payload, &s); err == nil {
		t.Fatalf("msgpack.Unmarshal = %v, want an error", s)
	}
}
