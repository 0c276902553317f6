package extract

import "github.com/repocache/repocache/cachegen/internal/gen/model"

// A key template is a regular language over bytes: its literals, and for
// each ref the texts its value can render to. overlap decides whether two
// templates have a text in common by walking the product of their automata.

// byteSet is a set of bytes.
type byteSet [256]bool

// element is one step of a template's automaton: a literal byte (set has
// one member) matched once, or a class matched any number of times (star).
type element struct {
	set  *byteSet
	star bool
}

var (
	// escapedText is what runtime.EscapeKeyPart can produce: every byte
	// but the escaped ones, and '%' (which starts an escape).
	escapedText = func() *byteSet {
		var s byteSet
		for c := range 256 {
			s[c] = true
		}
		for _, c := range []byte(":{}*?[]\\ ") {
			s[c] = false
		}
		for c := range 0x20 {
			s[c] = false
		}
		s[0x7f] = false
		return &s
	}()
	signedDigits = set("-0123456789")
	digits       = set("0123456789")
	boolLetters  = set("truefals")
	lowerHex     = set("0123456789abcdef")
)

func set(chars string) *byteSet {
	var s byteSet
	for i := range len(chars) {
		s[chars[i]] = true
	}
	return &s
}

// refClass is what a ref can render to, and whether it is never empty.
func refClass(r *model.Ref) (*byteSet, bool) {
	for _, t := range r.Transforms {
		if t == model.Hash {
			return lowerHex, true
		}
	}
	switch r.Render.Kind {
	case model.RenderInt:
		return signedDigits, true
	case model.RenderUint:
		return digits, true
	case model.RenderBool:
		return boolLetters, true
	}
	return escapedText, false
}

func elements(t *model.Template) []element {
	var out []element
	for _, p := range t.Parts {
		if p.Ref == nil {
			for i := range len(p.Literal) {
				out = append(out, element{set: set(p.Literal[i : i+1])})
			}
			continue
		}
		s, nonEmpty := refClass(p.Ref)
		if nonEmpty {
			out = append(out, element{set: s})
		}
		out = append(out, element{set: s, star: true})
	}
	return out
}

// closure adds to states every state reachable by skipping star elements.
func closure(es []element, i int) []int {
	out := []int{i}
	for i < len(es) && es[i].star {
		i++
		out = append(out, i)
	}
	return out
}

// overlap reports whether some text matches both a and b.
func overlap(a, b *model.Template) bool {
	ea, eb := elements(a), elements(b)
	type pair struct{ i, j int }
	seen := map[pair]bool{}
	var queue []pair
	push := func(i, j int) {
		for _, ci := range closure(ea, i) {
			for _, cj := range closure(eb, j) {
				p := pair{ci, cj}
				if !seen[p] {
					seen[p] = true
					queue = append(queue, p)
				}
			}
		}
	}
	push(0, 0)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p.i == len(ea) && p.j == len(eb) {
			return true
		}
		if p.i == len(ea) || p.j == len(eb) {
			continue
		}
		x, y := ea[p.i], eb[p.j]
		common := false
		for c := range 256 {
			if x.set[c] && y.set[c] {
				common = true
				break
			}
		}
		if !common {
			continue
		}
		ni, nj := p.i+1, p.j+1
		if x.star {
			ni = p.i
		}
		if y.star {
			nj = p.j
		}
		push(ni, nj)
	}
	return false
}
