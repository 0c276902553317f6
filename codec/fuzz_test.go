package codec_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/repocache/repocache/codec"
)

func reflectType(v any) reflect.Type { return reflect.TypeOf(v) }

// FuzzUnmarshal feeds arbitrary bytes, with and without a valid header, to
// both codecs: decoding must return a value or an error, never panic or hang,
// and every error must be ErrForeign or ErrCorrupt.
func FuzzUnmarshal(f *testing.F) {
	for _, c := range []codec.Codec{codec.Msgpack{}, codec.JSON{}} {
		b, _ := codec.Marshal(c, sample())
		f.Add(b, true)
		f.Add(b[codec.HeaderSize:], true)
		s, _ := codec.Marshal(c, []string{"a", "b"})
		f.Add(s[codec.HeaderSize:], false)
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, false) // array32 claiming 4G elements
	f.Add([]byte{0xdf, 0x7f, 0xff, 0xff, 0xff}, true)  // map32 claiming 2G entries
	f.Add([]byte(`[[[[[[[[[[`), false)
	f.Fuzz(func(t *testing.T, payload []byte, asUser bool) {
		for _, c := range []codec.Codec{codec.Msgpack{}, codec.JSON{}} {
			check := func(err error) {
				if err != nil && !errors.Is(err, codec.ErrForeign) && !errors.Is(err, codec.ErrCorrupt) {
					t.Fatalf("unexpected error class: %v", err)
				}
			}
			// The payload behind a valid header exercises the codec itself.
			var framed []byte
			if asUser {
				framed = codec.AppendHeader(nil, c.Format(), reflect.TypeFor[user]())
				_, err := codec.Unmarshal[user](c, append(framed, payload...))
				check(err)
				_, err = codec.Unmarshal[user](c, payload)
				check(err)
			} else {
				framed = codec.AppendHeader(nil, c.Format(), reflect.TypeFor[[]string]())
				_, err := codec.Unmarshal[[]string](c, append(framed, payload...))
				check(err)
				_, err = codec.Unmarshal[map[string]any](c, payload)
				check(err)
			}
		}
	})
}
