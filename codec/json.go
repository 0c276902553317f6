package codec

import "encoding/json"

// JSON encodes values with encoding/json. It is readable in redis-cli, but
// it follows `json` tags: fields tagged `json:"-"` are not stored and come
// back as zero values. Prefer Msgpack unless the values are shared with
// programs that read JSON.
type JSON struct{}

// Format implements Codec.
func (JSON) Format() Format { return FormatJSON }

// Marshal implements Codec.
func (JSON) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal implements Codec.
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
