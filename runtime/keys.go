package runtime

import (
	"strings"
)

// escapeTable marks the bytes EscapeKeyPart replaces with %XX: the separator
// ':', the cluster hash-tag and template braces, the SCAN glob characters,
// '%' itself (so that escaping is reversible and injective), space,
// backslash and ASCII control characters.
var escapeTable = func() (t [256]bool) {
	for _, c := range []byte("%:{}*?[]\\ ") {
		t[c] = true
	}
	for c := range 0x20 {
		t[c] = true
	}
	t[0x7f] = true
	return t
}()

const hexDigits = "0123456789ABCDEF"

// EscapeKeyPart escapes one value for use between the separators of a key or
// a tag, the same way generated code does: a value can never forge a ':'
// separator, a '{…}' placeholder or cluster hash tag, or a SCAN glob. So
// Key("x:y", "z") and Key("x", "y:z") differ. Text without such bytes comes
// back unchanged and without allocating.
func EscapeKeyPart(s string) string {
	i := 0
	for i < len(s) && !escapeTable[s[i]] {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if escapeTable[c] {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Key escapes each part with EscapeKeyPart and joins them with ':':
// Key("workspace", id) is "workspace:42" for id "42". The namespace is not
// part of it: the Cache adds it.
func Key(parts ...string) string {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(EscapeKeyPart(p))
	}
	return b.String()
}

// escapeNamespace escapes what would break the namespace's role as a
// readable prefix on a cluster: braces (a hash tag in the namespace would
// put every key in one slot) and glob characters (SCAN MATCH on the prefix).
// The ':' of a hierarchical namespace such as "app:prod" is kept.
func escapeNamespace(ns string) string {
	parts := strings.Split(ns, ":")
	for i, p := range parts {
		parts[i] = EscapeKeyPart(p)
	}
	return strings.Join(parts, ":")
}
