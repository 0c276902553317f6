package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// How the Msgpack codec stores a time.Time.
//
// MessagePack's timestamp extension (-1) holds an instant and nothing else,
// so a time in UTC, in a fixed zone or in a named zone came back in
// time.Local. Inside its own frames the codec writes a time as the
// extension timeExtID instead, whose body is
//
//	kind      1 byte: 0 UTC, 1 Local, 2 another location
//	seconds   zigzag varint, seconds since 1970-01-01 UTC
//	nanos     uvarint, 0-999999999
//	and, for kind 2:
//	offset    zigzag varint, seconds east of UTC at that instant
//	abbr      uvarint length + bytes, the zone's abbreviation at that instant ("CET")
//	name      uvarint length + bytes, the location's name ("Europe/Berlin")
//
// A location whose name is its abbreviation is a fixed zone and comes back
// as time.FixedZone(name, offset). Any other comes back as
// time.LoadLocation(name) if that location has the same abbreviation and
// offset at that instant, and as time.FixedZone(abbr, offset) otherwise (a
// reader without tzdata, or a location made by LoadLocationFromTZData): the
// instant and the offset always survive.
//
// Why a global registration: msgpack v5 chooses the encoder and decoder of
// a type from process-wide tables (msgpack.Register, RegisterExt*), with no
// per-Encoder or per-Decoder hook. The codec therefore replaces the entry of
// time.Time once, in init (not lazily: msgpack caches the field encoders of
// every struct it meets, so an entry replaced after some struct holding a
// time.Time was encoded would not be used for that struct), and keeps the
// rest of the program's MessagePack as it was:
//
//   - an Encoder that does not write into this codec's buffer writes the
//     standard timestamp, byte for byte what msgpack writes without this
//     package (msgpack.Encoder.EncodeTime);
//   - every Decoder reads the standard timestamp exactly as msgpack does and
//     also reads timeExtID; where msgpack panics (a nil where a time.Time
//     is expected) it returns an error.
//
// timeExtID is registered with msgpack.RegisterExtDecoder so that a time
// held in an interface (an `any` field, a []any) decodes as a time.Time.
// It is one of the type ids the MessagePack spec reserves for itself
// (-128..-2) rather than one of the application ids (0..127), so that it
// cannot collide with an extension the program registers: a program that
// registered -82 itself (msgpack.RegisterExt) would unregister this one.
//
// One path keeps msgpack's behaviour: a time.Time stored directly as a value
// of a map[string]any is written by msgpack's Encode fast path as the
// standard timestamp and comes back in time.Local (same instant).
const timeExtID int8 = -82

const (
	timeUTC   = 0
	timeLocal = 1
	timeZone  = 2
)

// timeType is counted with its location in TypeID; see there.
var timeType = reflect.TypeFor[time.Time]()

//nolint:gochecknoinits // see "Why a global registration" above
func init() {
	// RegisterExtDecoder also sets time.Time's decoder; Register replaces it
	// (and the encoder) with the ones below.
	msgpack.RegisterExtDecoder(timeExtID, time.Time{}, decodeTimeExt)
	msgpack.Register(time.Time{}, encodeTime, decodeTime)
}

// frameWriter is the writer of every Encoder this codec runs: encodeTime
// recognises its own Encoders by it.
type frameWriter struct {
	bytes.Buffer
	scratch [48]byte
}

func timeOf(v reflect.Value) time.Time {
	if v.CanAddr() {
		return *v.Addr().Interface().(*time.Time)
	}
	return v.Interface().(time.Time)
}

func setTime(v reflect.Value, t time.Time) {
	if v.CanAddr() {
		*v.Addr().Interface().(*time.Time) = t
		return
	}
	v.Set(reflect.ValueOf(t))
}

func encodeTime(e *msgpack.Encoder, v reflect.Value) error {
	t := timeOf(v)
	w, ours := e.Writer().(*frameWriter)
	if !ours {
		return e.EncodeTime(t)
	}
	b := appendTime(w.scratch[:0], t)
	if err := e.EncodeExtHeader(timeExtID, len(b)); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func appendTime(b []byte, t time.Time) []byte {
	loc := t.Location()
	kind := byte(timeZone)
	switch loc {
	case time.UTC:
		kind = timeUTC
	case time.Local:
		kind = timeLocal
	}
	b = append(b, kind)
	b = binary.AppendVarint(b, t.Unix())
	b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	if kind == timeZone {
		abbr, offset := t.Zone()
		name := loc.String()
		b = binary.AppendVarint(b, int64(offset))
		b = binary.AppendUvarint(b, uint64(len(abbr)))
		b = append(b, abbr...)
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
	}
	return b
}

func decodeTime(d *msgpack.Decoder, v reflect.Value) error {
	c, err := d.PeekCode()
	if err != nil {
		return err
	}
	if c == msgpcode.Nil {
		// msgpack panics here (decodeNilValue calls IsNil on a struct). No
		// encoder writes a nil for a time.Time: the value is damaged.
		return errNilTime
	}
	id, n, err := d.DecodeExtHeader()
	if err != nil {
		return err
	}
	switch id {
	case timeExtID:
		return decodeTimeExt(d, v, n)
	case -1:
		t, err := decodeTimestamp(d, n)
		if err != nil {
			return err
		}
		setTime(v, t)
		return nil
	}
	return fmt.Errorf("msgpack: got ext type=%d, wanted %d", id, -1)
}

// readExt reads an extension's body of n bytes, into the scratch space of
// this codec's reader when the Decoder is one of the codec's.
func readExt(d *msgpack.Decoder, n int) ([]byte, error) {
	var b []byte
	if r, ok := d.Buffered().(*frameReader); ok && n <= len(r.scratch) {
		b = r.scratch[:n]
	} else {
		if n > maxTimeExt {
			return nil, fmt.Errorf("msgpack: a time of %d bytes", n)
		}
		b = make([]byte, n)
	}
	if err := d.ReadFull(b); err != nil {
		return nil, err
	}
	return b, nil
}

// maxTimeExt bounds a time's body: 1+10+5+10 bytes and two names.
const maxTimeExt = 1024

// decodeTimestamp reads MessagePack's standard timestamp as msgpack does:
// in time.Local, the zero time in UTC.
func decodeTimestamp(d *msgpack.Decoder, n int) (time.Time, error) {
	if n != 4 && n != 8 && n != 12 {
		return time.Time{}, fmt.Errorf("msgpack: invalid ext len=%d decoding time", n)
	}
	b, err := readExt(d, n)
	if err != nil {
		return time.Time{}, err
	}
	var t time.Time
	switch n {
	case 4:
		t = time.Unix(int64(binary.BigEndian.Uint32(b)), 0)
	case 8:
		sec := binary.BigEndian.Uint64(b)
		t = time.Unix(int64(sec&0x00000003ffffffff), int64(sec>>34))
	case 12:
		t = time.Unix(int64(binary.BigEndian.Uint64(b[4:])), int64(binary.BigEndian.Uint32(b)))
	}
	if t.IsZero() {
		t = t.UTC()
	}
	return t, nil
}

var (
	errBadTime = errors.New("msgpack: malformed time")
	errNilTime = errors.New("msgpack: nil for a time.Time")
)

// decodeTimeExt reads the body of a timeExtID extension.
func decodeTimeExt(d *msgpack.Decoder, v reflect.Value, n int) error {
	b, err := readExt(d, n)
	if err != nil {
		return err
	}
	t, err := parseTime(b)
	if err != nil {
		return err
	}
	setTime(v, t)
	return nil
}

func parseTime(b []byte) (time.Time, error) {
	if len(b) == 0 {
		return time.Time{}, errBadTime
	}
	kind, b := b[0], b[1:]
	sec, k := binary.Varint(b)
	if k <= 0 {
		return time.Time{}, errBadTime
	}
	b = b[k:]
	nsec, k := binary.Uvarint(b)
	if k <= 0 || nsec > 999999999 {
		return time.Time{}, errBadTime
	}
	b = b[k:]
	t := time.Unix(sec, int64(nsec))
	switch kind {
	case timeUTC:
		if len(b) != 0 {
			return time.Time{}, errBadTime
		}
		return t.UTC(), nil
	case timeLocal:
		if len(b) != 0 {
			return time.Time{}, errBadTime
		}
		return t, nil
	case timeZone:
	default:
		return time.Time{}, errBadTime
	}
	offset, k := binary.Varint(b)
	if k <= 0 || offset != int64(int32(offset)) {
		return time.Time{}, errBadTime
	}
	b = b[k:]
	abbr, b, ok := cutString(b)
	if !ok {
		return time.Time{}, errBadTime
	}
	name, b, ok := cutString(b)
	if !ok || len(b) != 0 {
		return time.Time{}, errBadTime
	}
	return t.In(location(name, abbr, int(offset), t)), nil
}

func cutString(b []byte) (s string, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}

// location returns the location a time at instant t was written in.
func location(name, abbr string, offset int, t time.Time) *time.Location {
	if name != abbr && name != "" && name != "UTC" && name != "Local" {
		if loc := loadLocation(name); loc != nil {
			if a, o := t.In(loc).Zone(); a == abbr && o == offset {
				return loc
			}
		}
	}
	return fixedZone(abbr, offset)
}

// locations caches time.LoadLocation (which reads the zone database on
// every call) and time.FixedZone, a location per name and per fixed zone.
// The names come from stored values: past maxLocations entries (which only
// values crafted to fill it reach) nothing more is cached.
var (
	locations    sync.Map // locationKey → *time.Location (nil: no such location)
	nLocations   atomic.Int64
	maxLocations = int64(1024)
)

type locationKey struct {
	name   string
	offset int
	fixed  bool
}

func cachedLocation(k locationKey, load func() *time.Location) *time.Location {
	if l, ok := locations.Load(k); ok {
		return l.(*time.Location)
	}
	l := load()
	if nLocations.Load() < maxLocations {
		if _, loaded := locations.LoadOrStore(k, l); !loaded {
			nLocations.Add(1)
		}
	}
	return l
}

func loadLocation(name string) *time.Location {
	return cachedLocation(locationKey{name: name}, func() *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			return nil
		}
		return loc
	})
}

func fixedZone(name string, offset int) *time.Location {
	return cachedLocation(locationKey{name: name, offset: offset, fixed: true}, func() *time.Location {
		return time.FixedZone(name, offset)
	})
}
