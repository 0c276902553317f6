package codec

import "encoding/json"

// JSON encodes values with encoding/json. It is readable in redis-cli, but
// it follows `json` tags: fields tagged `json:"-"` are not stored and come
// back as zero values. Prefer Msgpack unless the values are shared with
// programs that read JSON.
//
// A time.Time is stored as RFC 3339 text (time.Time.MarshalJSON): its
// instant and its offset from UTC, not its location. UTC (and any zone at
// offset zero) comes back as UTC; any other comes back in time.Local if
// Local has that offset at that instant, and as an unnamed fixed zone of
// that offset otherwise, so "Europe/Berlin" or time.FixedZone("X", 3600)
// keep the instant and the offset but not the name. The monotonic clock
// reading is not stored.
type JSON struct{}

// Format implements Codec.
func (JSON) Format() Format { return FormatJSON }

// Marshal implements Codec.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
