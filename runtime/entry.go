package runtime

import (
	"crypto/rand"
	"encoding/binary"
	"time"
	"unsafe"
)

// What a cache key can hold. Every form starts with 0xC1, a byte that never
// starts MessagePack, JSON or UTF-8 text; the second byte says which:
//
//	value        a codec frame: 0xC1 'R' … (see package codec)
//	envelope     0xC1 'E' flags(1) stamp(8) freshUntil(8, unix ms, big endian) [codec frame]
//	             for values with stale-while-revalidate, and for cached not-found answers
//	placeholder  0xC1 'L' token(16): a loader holds the lease on this key
//
// A placeholder is the lease of Facebook's memcache paper and the lock of
// rueidisaside: the loader writes it with SET NX before loading, and stores
// its value only if the placeholder is still there (compare-and-set). An
// invalidation deletes the key, placeholder included, so a value loaded
// before the invalidation can never be stored after it.
const (
	entryMagic       = 0xC1
	entryValue       = 'R'
	entryEnvelope    = 'E'
	entryPlaceholder = 'L'

	envelopeHeader = 2 + 1 + 8 + 8
	stampEnd       = 11 // bytes [0, stampEnd) identify one envelope: magic, kind, flags, stamp

	flagNotFound  = 1 << 0 // a cached not-found error (negative=)
	flagNilResult = 1 << 1 // a cached nil pointer result (negative=)
)

// entry kinds returned by parseEntry
type entryKind uint8

const (
	kindForeign entryKind = iota
	kindValue
	kindEnvelope
	kindPlaceholder
)

// parsedEntry is a stored entry split into its parts.
type parsedEntry struct {
	kind       entryKind
	flags      byte
	freshUntil int64 // unix ms; 0 for plain values
	frame      []byte
}

func parseEntry(s string) parsedEntry {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	if len(b) < 2 || b[0] != entryMagic {
		return parsedEntry{kind: kindForeign}
	}
	switch b[1] {
	case entryValue:
		return parsedEntry{kind: kindValue, frame: b}
	case entryPlaceholder:
		return parsedEntry{kind: kindPlaceholder}
	case entryEnvelope:
		if len(b) < envelopeHeader {
			return parsedEntry{kind: kindForeign}
		}
		return parsedEntry{kind: kindEnvelope, flags: b[2],
			freshUntil: int64(binary.BigEndian.Uint64(b[11:19])), frame: b[envelopeHeader:]}
	}
	return parsedEntry{kind: kindForeign}
}

// makeEnvelope wraps a codec frame (nil for a not-found answer).
func makeEnvelope(flags byte, freshUntil time.Time, frame []byte) []byte {
	out := make([]byte, envelopeHeader, envelopeHeader+len(frame))
	out[0], out[1], out[2] = entryMagic, entryEnvelope, flags
	_, _ = rand.Read(out[3:11])
	binary.BigEndian.PutUint64(out[11:19], uint64(freshUntil.UnixMilli()))
	return append(out, frame...)
}

// newPlaceholder returns a fresh lease token as stored in the key.
func newPlaceholder() string {
	var b [18]byte
	b[0], b[1] = entryMagic, entryPlaceholder
	_, _ = rand.Read(b[2:])
	return string(b[:])
}
