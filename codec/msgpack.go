package codec

import (
	"bytes"
	"reflect"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Msgpack is the default codec: MessagePack through
// github.com/vmihailenco/msgpack/v5. Values are stored whole: struct fields
// are named by their Go name or their `msgpack` tag, and `json` tags are
// ignored, so a field hidden from JSON (`json:"-"`) survives the round trip.
//
// A time.Time keeps its instant and its location: UTC stays UTC, Local
// stays Local, a fixed zone keeps its name and offset, and a named location
// ("Europe/Berlin") comes back as that location where the reader's zone
// database knows it (as a fixed zone with the same offset and abbreviation
// where it does not). The monotonic clock reading is not stored. See
// time.go for the wire form and for what it changes in the rest of the
// program's use of msgpack (nothing on the wire).
type Msgpack struct{}

// Format implements Codec.
func (Msgpack) Format() Format { return FormatMsgpack }

// Marshal implements Codec.
func (Msgpack) Marshal(v any) ([]byte, error) {
	w := &frameWriter{}
	enc := msgpack.GetEncoder()
	enc.Reset(w)
	var err error
	if t, ok := v.(time.Time); ok {
		// Encode writes a time.Time itself, without asking the encoder
		// registered for its type.
		err = enc.EncodeValue(reflect.ValueOf(t))
	} else {
		err = enc.Encode(v)
	}
	enc.Reset(nil)
	msgpack.PutEncoder(enc)
	if err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// frameReader is the reader of every Decoder this codec runs; its scratch
// space holds a time's extension while it is decoded.
type frameReader struct {
	bytes.Reader
	scratch [64]byte
}

type msgpackDecoder struct {
	r   frameReader
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
	var err error
	if t, ok := v.(*time.Time); ok && t != nil {
		// Decode reads a *time.Time itself, as a standard timestamp only.
		err = d.dec.DecodeValue(reflect.ValueOf(t).Elem())
	} else {
		err = d.dec.Decode(v)
	}
	d.r.Reset(nil)
	decoders.Put(d)
	return err
}
