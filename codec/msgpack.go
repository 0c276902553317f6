package codec

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Msgpack is the default codec: MessagePack through
// github.com/vmihailenco/msgpack/v5. Values are stored whole: struct fields
// are named by their Go name or their `msgpack` tag, and `json` tags are
// ignored, so a field hidden from JSON (`json:"-"`) survives the round trip.
// time.Time keeps its instant (its location comes back as time.Local).
type Msgpack struct{}

// Format implements Codec.
func (Msgpack) Format() Format { return FormatMsgpack }

// Marshal implements Codec.
func (Msgpack) Marshal(v any) ([]byte, error) { return msgpack.Marshal(v) }

type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// decoders keeps a decoder and its reader together, so that a decode
// allocates nothing of its own (msgpack.Unmarshal allocates a bytes.Reader
// on every call).
var decoders = sync.Pool{New: func() any {
	d := &msgpackDecoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

// Unmarshal implements Codec.
func (Msgpack) Unmarshal(data []byte, v any) error {
	d := decoders.Get().(*msgpackDecoder)
	d.r.Reset(data)
	d.dec.Reset(&d.r)
	d.dec.UsePreallocateValues(true)
	err := d.dec.Decode(v)
	d.r.Reset(nil)
	decoders.Put(d)
	return err
}
