package runtime_test

import (
	"strings"
	"testing"

	"github.com/repocache/repocache/runtime"
)

func TestKeyEscapingCannotCollide(t *testing.T) {
	pairs := [][2][]string{
		{{"x:y", "z"}, {"x", "y:z"}},
		{{"a%3Ab"}, {"a:b"}},
		{{"{tag}"}, {"%7Btag%7D"}},
		{{"a", ""}, {"a:"}},
		{{"*"}, {"%2A"}},
	}
	for _, p := range pairs {
		a, b := runtime.Key(p[0]...), runtime.Key(p[1]...)
		if a == b {
			t.Errorf("Key(%q) == Key(%q) == %q", p[0], p[1], a)
		}
	}
	if got := runtime.Key("workspace", "42"); got != "workspace:42" {
		t.Errorf("Key(workspace, 42) = %q: plain values must stay readable", got)
	}
	if got := runtime.Key("user", "ada@example.com", "é"); got != "user:ada@example.com:é" {
		t.Errorf("got %q", got)
	}
	if got := runtime.EscapeKeyPart("a:b{c}*? \n%"); got != "a%3Ab%7Bc%7D%2A%3F%20%0A%25" {
		t.Errorf("EscapeKeyPart = %q", got)
	}
}

// unescape reverses EscapeKeyPart, to show that it loses nothing.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var v byte
			for _, c := range []byte(s[i+1 : i+3]) {
				v <<= 4
				switch {
				case c >= '0' && c <= '9':
					v |= c - '0'
				default:
					v |= c - 'A' + 10
				}
			}
			b.WriteByte(v)
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FuzzEscapeKeyPart: escaping is reversible (so injective) and its output
// never contains a separator, a brace, a glob character or a control byte.
func FuzzEscapeKeyPart(f *testing.F) {
	for _, s := range []string{"", "42", "x:y", "{a}", "%3A", "a b", "\x00\x7f", "é*?[]\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := runtime.EscapeKeyPart(s)
		if u := unescape(e); u != s {
			t.Fatalf("unescape(EscapeKeyPart(%q)) = %q", s, u)
		}
		for i := 0; i < len(e); i++ {
			c := e[i]
			if strings.IndexByte(":{}*?[]\\ ", c) >= 0 || c < 0x20 || c == 0x7f {
				t.Fatalf("EscapeKeyPart(%q) = %q keeps byte %q", s, e, c)
			}
		}
	})
}
