// Package codec turns cached values into bytes and back, and frames every
// stored value with a small header so that foreign bytes are recognised.
//
// A frame is
//
//	0xC1 'R'  magic (0xC1 is never the first byte of MessagePack, JSON or UTF-8 text)
//	version   frame layout version, currently 1
//	format    the Codec's Format: 1 msgpack, 2 JSON
//	type id   8 bytes, little endian: a fingerprint of the Go type's layout
//	payload   what the Codec produced
//
// Decode refuses (with ErrForeign) a frame whose magic, version or format
// differ, or whose type id is not the one of the type being decoded into: a
// value written by another codec, by an older layout of the Go type (a field
// added, removed, renamed or retyped) or by anything else is a miss for the
// cache, never a panic and never a zero value passed off as a hit.
package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
)

// Format identifies a Codec's wire format in every frame header. Values 1-63
// are reserved for this package; custom codecs use 64-255.
type Format byte

// Formats of the codecs that ship with this package.
const (
	FormatMsgpack Format = 1
	FormatJSON    Format = 2
)

// Codec marshals values to bytes and back. Implementations must be safe for
// concurrent use and must not retain data passed to Unmarshal.
type Codec interface {
	// Format is written into every frame so that a value written by another
	// codec is recognised as foreign.
	Format() Format
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into the value v points to.
	Unmarshal(data []byte, v any) error
}

// HeaderSize is the number of bytes a frame adds in front of the payload.
const HeaderSize = 12

const (
	magic0       = 0xC1
	magic1       = 'R'
	frameVersion = 1
)

var (
	// ErrForeign reports bytes that were not written by this codec for this
	// Go type: another codec, an older layout of the type, or not a frame.
	ErrForeign = errors.New("codec: foreign value")
	// ErrCorrupt reports a frame whose header is ours but whose payload does
	// not decode.
	ErrCorrupt = errors.New("codec: corrupt value")
)

// Marshal encodes v with c and frames it for the type T.
//
// A value that refers to itself, or nests deeper than MaxDepth, is refused
// with ErrCycle before the codec sees it.
func Marshal[T any](c Codec, v T) ([]byte, error) {
	if err := checkCycles(v); err != nil {
		return nil, fmt.Errorf("codec: marshal %v: %w", reflect.TypeFor[T](), err)
	}
	payload, err := c.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec: marshal %v: %w", reflect.TypeFor[T](), err)
	}
	out := make([]byte, HeaderSize+len(payload))
	putHeader(out, c.Format(), TypeID(reflect.TypeFor[T]()))
	copy(out[HeaderSize:], payload)
	return out, nil
}

// Unmarshal decodes a frame written by Marshal[T] with a codec of the same
// format. Errors match ErrForeign or ErrCorrupt. A panic inside the codec
// (MessagePack's decoder panics on some malformed input) is an ErrCorrupt.
//
// T and *T share a type id (see TypeID): a frame written for a nil *T,
// decoded as a T that cannot be nil, is an ErrForeign, not a zero T.
func Unmarshal[T any](c Codec, data []byte) (v T, err error) {
	t := reflect.TypeFor[T]()
	payload, err := Payload(c.Format(), t, data)
	if err != nil {
		return v, err
	}
	if isNil(c.Format(), payload) && !canBeNil(t) {
		return v, fmt.Errorf("%w: a nil pointer, read as a %v", ErrForeign, t)
	}
	defer func() {
		if p := recover(); p != nil {
			var zero T
			v, err = zero, fmt.Errorf("%w: %v: decoder panicked: %v", ErrCorrupt, reflect.TypeFor[T](), p)
		}
	}()
	if err := c.Unmarshal(payload, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("%w: %v: %w", ErrCorrupt, reflect.TypeFor[T](), err)
	}
	return v, nil
}

// isNil reports whether payload is the built-in codec f's encoding of nil.
func isNil(f Format, payload []byte) bool {
	switch f {
	case FormatMsgpack:
		return len(payload) == 1 && payload[0] == 0xc0
	case FormatJSON:
		return string(bytes.TrimSpace(payload)) == "null"
	}
	return false
}

// canBeNil reports whether a nil payload is a value of t: a nil pointer,
// slice, map or interface, or whatever a type that decodes itself makes of
// it (but time.Time, which Msgpack refuses to read from a nil).
func canBeNil(t reflect.Type) bool {
	if t == timeType {
		return false
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func:
		return true
	}
	return selfMarshaling(t)
}

// Payload checks data's header against the format and the type and returns
// the payload that follows it. The error matches ErrForeign.
func Payload(f Format, t reflect.Type, data []byte) ([]byte, error) {
	if len(data) < HeaderSize || data[0] != magic0 || data[1] != magic1 {
		return nil, fmt.Errorf("%w: no frame header", ErrForeign)
	}
	if data[2] != frameVersion {
		return nil, fmt.Errorf("%w: frame version %d, want %d", ErrForeign, data[2], frameVersion)
	}
	if Format(data[3]) != f {
		return nil, fmt.Errorf("%w: format %d, want %d", ErrForeign, data[3], f)
	}
	if binary.LittleEndian.Uint64(data[4:HeaderSize]) != TypeID(t) {
		return nil, fmt.Errorf("%w: written for another layout of %v", ErrForeign, t)
	}
	return data[HeaderSize:], nil
}

// AppendHeader appends a frame header for format f and type t to dst.
func AppendHeader(dst []byte, f Format, t reflect.Type) []byte {
	var h [HeaderSize]byte
	putHeader(h[:], f, TypeID(t))
	return append(dst, h[:]...)
}

func putHeader(b []byte, f Format, id uint64) {
	b[0], b[1], b[2], b[3] = magic0, magic1, frameVersion, byte(f)
	binary.LittleEndian.PutUint64(b[4:HeaderSize], id)
}
