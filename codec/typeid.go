package codec

import (
	"encoding"
	"encoding/json"
	"hash/fnv"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// typeIDs memoises TypeID: the fingerprint of a type never changes within a
// process, and computing it walks the whole type.
var typeIDs sync.Map // reflect.Type -> uint64

// TypeID returns a fingerprint of t's layout as codecs see it: type names,
// exported fields with their names, struct tags and types, element, key and
// array types, walked recursively. Two builds of a program agree on it as
// long as the layout is the same; adding, removing, renaming or retyping an
// exported field, or changing its struct tag, changes it. Types that marshal
// themselves (time.Time, anything implementing json.Marshaler,
// msgpack.CustomEncoder, encoding.BinaryMarshaler or TextMarshaler) count by
// name only; time.Time counts with the version of its wire form (see
// timeFingerprint).
//
// A pointer counts as its element: *T, **T and T have one id, so that a
// value cached as *Post (`post:{id}`) decodes as a Post (`post:{ids[]}`)
// and back, as both codecs encode a non-nil *T exactly as they encode T
// (a nil *T decoded as a T is refused by Unmarshal). Only pointers at the
// top are stripped: []*T and []T, or a field *T and a field T, stay apart.
func TypeID(t reflect.Type) uint64 {
	if id, ok := typeIDs.Load(t); ok {
		return id.(uint64)
	}
	e := t
	for e != nil && e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	var sb strings.Builder
	describe(&sb, e, map[reflect.Type]bool{})
	h := fnv.New64a()
	h.Write([]byte(sb.String()))
	id := h.Sum64()
	typeIDs.Store(t, id)
	return id
}

var (
	jsonMarshaler    = reflect.TypeFor[json.Marshaler]()
	msgpackEncoder   = reflect.TypeFor[msgpack.CustomEncoder]()
	msgpackMarshaler = reflect.TypeFor[msgpack.Marshaler]()
	binaryMarshaler  = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshaler    = reflect.TypeFor[encoding.TextMarshaler]()
)

func selfMarshaling(t reflect.Type) bool {
	for _, i := range []reflect.Type{jsonMarshaler, msgpackEncoder, msgpackMarshaler, binaryMarshaler, textMarshaler} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

// timeFingerprint stands for time.Time in a type's description. Msgpack
// used to store a time without its location, and decoded it in time.Local;
// it now stores the location (time.go). A frame written by the previous
// version for a type that holds a time.Time has another type id, and so is
// a miss (ErrForeign) rather than a hit in the wrong location, both for this
// version and, during a rolling deploy, for the previous one reading the
// new frames. (JSON's form of a time did not change: its frames of such
// types are a miss once, too.)
const timeFingerprint = "time.Time+location"

func describe(sb *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	if t == nil {
		sb.WriteString("nil")
		return
	}
	if t == timeType {
		sb.WriteString(timeFingerprint)
		return
	}
	if t.Name() != "" {
		sb.WriteString(t.PkgPath())
		sb.WriteByte('.')
		sb.WriteString(t.Name())
		if t.Kind() != reflect.Interface && selfMarshaling(t) {
			return
		}
		if seen[t] {
			return
		}
		seen[t] = true
		sb.WriteByte('=')
	}
	switch t.Kind() {
	case reflect.Pointer:
		sb.WriteByte('*')
		describe(sb, t.Elem(), seen)
	case reflect.Slice:
		sb.WriteString("[]")
		describe(sb, t.Elem(), seen)
	case reflect.Array:
		sb.WriteString("[" + strconv.Itoa(t.Len()) + "]")
		describe(sb, t.Elem(), seen)
	case reflect.Map:
		sb.WriteString("map[")
		describe(sb, t.Key(), seen)
		sb.WriteByte(']')
		describe(sb, t.Elem(), seen)
	case reflect.Struct:
		sb.WriteString("struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			sb.WriteString(f.Name)
			if f.Anonymous {
				sb.WriteString(",embedded")
			}
			sb.WriteByte(' ')
			describe(sb, f.Type, seen)
			if f.Tag != "" {
				sb.WriteString(" " + strconv.Quote(string(f.Tag)))
			}
			sb.WriteByte(';')
		}
		sb.WriteByte('}')
	case reflect.Interface:
		sb.WriteString(t.String())
	default:
		sb.WriteString(t.Kind().String())
	}
}
