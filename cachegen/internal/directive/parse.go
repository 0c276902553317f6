// Package directive parses the //cache: comment directives that cachegen reads
// from the doc comments of repository interfaces and their methods.
//
// It is the syntactic stage of the generator: it knows the closed grammar of
// the directives and of key and tag templates, and the rules that can be
// checked without Go types (where result and slice refs may appear). Resolving
// refs against parameters and result types is left to a later stage.
//
// Every position this package reports is a byte offset into the line given to
// Parse, so that a caller can turn it into file:line:col.
package directive

import (
	"cmp"
	"fmt"
	"go/token"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// prefix starts every directive line, like //go: for compiler directives.
const prefix = "//cache:"

// Kind is the verb of a directive.
type Kind int

// The directive kinds. KindNone is the zero value and is never returned by Parse.
const (
	KindNone       Kind = iota
	KindRepo            // //cache:repo, on an interface
	KindGet             // //cache:get, cache-aside read
	KindPut             // //cache:put, write-through
	KindInvalidate      // //cache:invalidate
	KindSkip            // //cache:skip, pass through on purpose
)

var kindNames = [...]string{"none", "repo", "get", "put", "invalidate", "skip"}

// String returns the verb as written after "//cache:", e.g. "get".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// verbs maps each directive verb to its kind; verbList names them for messages.
var (
	verbs    = map[string]Kind{"repo": KindRepo, "get": KindGet, "put": KindPut, "invalidate": KindInvalidate, "skip": KindSkip}
	verbList = "cache:repo, cache:get, cache:put, cache:invalidate, cache:skip"
)

// LockMode is how a get collapses concurrent misses.
type LockMode int

// The lock modes of a get. LockLocal is the default.
const (
	LockLocal       LockMode = iota // collapse misses within one process
	LockDistributed                 // also collapse them across processes with a Redis lock
	LockNone                        // do not collapse misses
)

var lockNames = [...]string{"local", "distributed", "none"}

// String returns the mode as written in lock=, e.g. "distributed".
func (m LockMode) String() string {
	if m >= 0 && int(m) < len(lockNames) {
		return lockNames[m]
	}
	return fmt.Sprintf("LockMode(%d)", int(m))
}

// Directive is one parsed //cache: line.
type Directive struct {
	// Kind is the verb.
	Kind Kind
	// Key is the key= template of a get or put; nil for other kinds.
	Key *Template
	// Keys are the keys= templates of an invalidate.
	Keys []*Template
	// Tags are the tags= templates of a get, put or invalidate.
	Tags []*Template
	// Invalidate are the invalidate= tag templates of a put: invalidated
	// after the write, not attached to the stored value.
	Invalidate []*Template
	// Attach are the attach= tag templates of a put: attached to the
	// stored value, not invalidated (a put's Tags are both).
	Attach []*Template
	// TTL, Jitter, SWR and Negative are the ttl=, jitter=, swr= and
	// negative= durations; zero when absent. TTL is set for every get and put.
	TTL, Jitter, SWR, Negative time.Duration
	// L1 is the l1= duration of a get: how long a value it reads may live
	// in the Cache's in-process tier, at most TTL; zero when absent.
	L1 time.Duration
	// Lock is the lock= mode of a get; LockLocal when absent.
	Lock LockMode
	// LockSet reports whether lock= was given explicitly.
	LockSet bool
	// By is the by= field name of a get (a Go identifier); "" when absent.
	By string
	// Strict is set by //cache:repo strict: every method of the interface
	// must carry a directive.
	Strict bool
	// NotFound is the notfound= value of a get: the error variable or the
	// error type that is its not-found answer; nil when absent.
	NotFound *NotFound
	// Unkeyed are the unkeyed= parameter names of a get: parameters that do
	// not change the result, and so may be left out of the key.
	Unkeyed []Name
	// Col is the byte offset in the line where "//cache:" starts. Parse
	// accepts only lines that begin with it, so Col is 0; it is kept so that
	// callers compute every position the same way.
	Col int
}

// Name is an identifier in an option's value and its offset in the line.
type Name struct {
	Name   string
	Offset int
}

// NotFound is the value of notfound=: a name, possibly qualified by a
// package name (gorm.ErrRecordNotFound), possibly behind a pointer
// (*ErrUserNotExist). Whether it names a variable or a type is left to a
// later stage, which has the types.
type NotFound struct {
	// Pointer reports a leading "*": a pointer to the named type.
	Pointer bool
	// Qual is the package name before the dot; "" when unqualified.
	Qual string
	// Name is the variable's or the type's name.
	Name string
	// Offset is the byte offset of the value within the line.
	Offset int
}

// String renders the value as written, e.g. "*errs.NotExist".
func (n *NotFound) String() string {
	s := n.Name
	if n.Qual != "" {
		s = n.Qual + "." + s
	}
	if n.Pointer {
		s = "*" + s
	}
	return s
}

// Template is a key or tag text with {ref} placeholders.
type Template struct {
	// Raw is the template as written.
	Raw string
	// Offset is the byte offset of Raw within the line given to Parse.
	Offset int
	// Segments are the literal and ref segments in order; adjacent literals
	// are merged, so no two literal segments are neighbours.
	Segments []Segment
}

// Segment is one part of a template: a literal text or a ref.
type Segment struct {
	// Literal is the text of a literal segment; set when Ref is nil.
	Literal string
	// Ref is the placeholder of a ref segment.
	Ref *Ref
}

// Ref is the content of a placeholder: root, root.F.G, root[] or root[].F.G.
type Ref struct {
	// Root is a Go identifier: a parameter name or "result".
	Root string
	// Each reports root[]: one value per element of a slice.
	Each bool
	// Fields are the selectors after the root, in order.
	Fields []string
	// Transforms are the |name suffixes, in order: {token|hash}.
	Transforms []string
	// TransformOffsets are the byte offsets of each transform's name.
	TransformOffsets []int
	// Offset is the byte offset of the ref's first character (after '{')
	// within the line given to Parse.
	Offset int
}

// String renders the ref as written inside the braces, e.g. "result[].ID".
func (r *Ref) String() string {
	var b strings.Builder
	b.WriteString(r.Root)
	if r.Each {
		b.WriteString("[]")
	}
	for _, f := range r.Fields {
		b.WriteByte('.')
		b.WriteString(f)
	}
	for _, t := range r.Transforms {
		b.WriteByte('|')
		b.WriteString(t)
	}
	return b.String()
}

// Transforms lists the names a ref may end in, after "|".
var Transforms = []string{"hash", "lower"}

// Error is a problem at a byte offset in the line given to Parse.
type Error struct {
	// Offset is the byte offset of the offending text; 0 <= Offset <= len(line).
	Offset int
	// Msg describes the problem.
	Msg string
}

// Error returns the message prefixed with the offset.
func (e *Error) Error() string {
	return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg)
}

// options lists, per verb, the options it accepts, in the order of the docs.
var options = map[Kind][]string{
	KindGet:        {"key", "ttl", "jitter", "tags", "swr", "l1", "negative", "notfound", "lock", "by", "unkeyed"},
	KindPut:        {"key", "ttl", "jitter", "tags", "attach", "invalidate"},
	KindInvalidate: {"keys", "tags"},
}

// Options returns the names of the options that directives of kind k
// accept, in the order of the docs; //cache:repo accepts strict.
func Options(k Kind) []string {
	if k == KindRepo {
		return []string{"strict"}
	}
	return slices.Clone(options[k])
}

var lockModes = map[string]LockMode{"local": LockLocal, "distributed": LockDistributed, "none": LockNone}

// Parse parses one comment line as found in ast.Comment.Text, e.g.
//
//	//cache:get key=user:{id} ttl=5m tags=user:{id}
//
// Like //go: directives, the line must begin exactly with "//cache:"; if it
// does not, Parse returns (nil, nil). Options are name=value tokens separated
// by spaces or tabs; trailing blanks are allowed.
//
// Parse reports every problem it finds on the line, sorted by offset. When it
// reports any, the directive is nil.
func Parse(line string) (*Directive, []*Error) {
	if !strings.HasPrefix(line, prefix) {
		return nil, nil
	}
	p := &parser{}
	d := p.parse(line)
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return cmp.Compare(a.Offset, b.Offset) })
		return nil, p.errs
	}
	return d, nil
}

type parser struct {
	errs []*Error
}

func (p *parser) errorf(off int, format string, args ...any) {
	p.errs = append(p.errs, &Error{Offset: off, Msg: fmt.Sprintf(format, args...)})
}

// word is a blank-separated word of the line and its offset.
type word struct {
	text string
	off  int
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// words splits line[i:] into blank-separated words.
func words(line string, i int) []word {
	var ws []word
	for i < len(line) {
		if isBlank(line[i]) {
			i++
			continue
		}
		start := i
		for i < len(line) && !isBlank(line[i]) {
			i++
		}
		ws = append(ws, word{line[start:i], start})
	}
	return ws
}

func (p *parser) parse(line string) *Directive {
	verbOff := len(prefix)
	end := verbOff
	for end < len(line) && !isBlank(line[end]) {
		end++
	}
	verb := line[verbOff:end]
	if verb == "" {
		p.errorf(verbOff, "missing directive name after %q; want one of %s", prefix, verbList)
		return nil
	}
	kind, ok := verbs[verb]
	if !ok {
		if s := suggest(verb, []string{"repo", "get", "put", "invalidate", "skip"}); s != "" {
			p.errorf(verbOff, "unknown directive %q: did you mean cache:%s? (want one of %s)", "cache:"+verb, s, verbList)
		} else {
			p.errorf(verbOff, "unknown directive %q; want one of %s", "cache:"+verb, verbList)
		}
		return nil
	}
	d := &Directive{Kind: kind}
	allowed := options[kind]
	seen := map[string]bool{}
	jitterOff, jitterRaw, ttlRaw := 0, "", ""
	l1Off, l1Raw := 0, ""
	for _, w := range words(line, end) {
		if kind == KindRepo {
			switch {
			case w.text != "strict":
				p.errorf(w.off, "cache:repo takes only the option strict, found %q", w.text)
			case d.Strict:
				p.errorf(w.off, "duplicate option %q", w.text)
			default:
				d.Strict = true
			}
			continue
		}
		if len(allowed) == 0 {
			p.errorf(w.off, "cache:%s takes no options, found %q", kind, w.text)
			continue
		}
		name, value, ok := strings.Cut(w.text, "=")
		switch {
		case !ok:
			p.errorf(w.off, "malformed option %q: want name=value", w.text)
			continue
		case name == "":
			p.errorf(w.off, "malformed option %q: missing name before \"=\"", w.text)
			continue
		case name == "attach" && kind == KindGet:
			p.errorf(w.off, "unknown option \"attach\" for cache:get: attach= belongs to cache:put; a get's tags= are attached to the value and never invalidated, so write tags=%s", value)
			continue
		case name == "l1" && kind != KindGet:
			p.errorf(w.off, "unknown option \"l1\" for cache:%s: l1= belongs to cache:get, where it caps how long a value read through the cache may live in process memory; drop it here (allowed: %s)", kind, strings.Join(allowed, ", "))
			continue
		case !slices.Contains(allowed, name):
			if s := suggest(name, allowed); s != "" {
				p.errorf(w.off, "unknown option %q for cache:%s: did you mean %s=? (allowed: %s)", name, kind, s, strings.Join(allowed, ", "))
			} else {
				p.errorf(w.off, "unknown option %q for cache:%s; allowed: %s", name, kind, strings.Join(allowed, ", "))
			}
			continue
		case seen[name]:
			p.errorf(w.off, "duplicate option %q", name)
			continue
		}
		seen[name] = true
		if value == "" {
			p.errorf(w.off, "option %q has an empty value", name)
			continue
		}
		if q := strings.IndexAny(value, "\"'`"); q >= 0 {
			p.errorf(w.off+len(name)+1+q, "quoted value in %s=: write the value without quotes (%s=%s); quotes would become part of it, and a value ends at the first blank",
				name, name, strings.Trim(value, "\"'`"))
			continue
		}
		switch name {
		case "jitter":
			jitterOff, jitterRaw = w.off+len(name)+1, value
		case "ttl":
			ttlRaw = value
		case "l1":
			l1Off, l1Raw = w.off+len(name)+1, value
		}
		p.option(d, name, value, w.off+len(name)+1)
	}
	if d.Jitter > 0 && d.TTL > 0 && d.Jitter >= d.TTL {
		p.errorf(jitterOff, "jitter=%s must be below ttl=%s: jitter adds a random part of itself to the ttl, to spread expiries; use a small part of the ttl, such as jitter=%s",
			jitterRaw, ttlRaw, (d.TTL / 10).String())
	}
	if d.L1 > 0 && d.TTL > 0 && d.L1 > d.TTL {
		p.errorf(l1Off, "l1=%s must not exceed ttl=%s: a value kept in process memory must never outlive the one in Redis, which an invalidation deletes; use l1=%s or less, or drop l1=",
			l1Raw, ttlRaw, ttlRaw)
	}
	if d.NotFound != nil && !seen["negative"] {
		p.errorf(d.NotFound.Offset, "notfound=%s without negative=: only negative caching stores a not-found answer, so notfound= alone changes nothing; add negative=D (negative=30s, say), or drop notfound=", d.NotFound)
	}
	switch kind {
	case KindGet, KindPut:
		for _, name := range []string{"key", "ttl"} {
			if !seen[name] {
				p.errorf(verbOff, "cache:%s requires %s=", kind, name)
			}
		}
	case KindInvalidate:
		if !seen["keys"] && !seen["tags"] {
			p.errorf(verbOff, "cache:invalidate requires keys= or tags=")
		}
	}
	return d
}

// option parses the value v, at offset off, of the option name into d.
func (p *parser) option(d *Directive, name, v string, off int) {
	switch name {
	case "key":
		d.Key = p.template(v, off, use{d.Kind, true, false, name})
		p.hashKey(name, d.Key)
	case "keys":
		d.Keys = p.list(name, v, off, use{d.Kind, true, false, name})
		for _, t := range d.Keys {
			p.hashKey(name, t)
		}
	case "unkeyed":
		for _, w := range strings.Split(v, ",") {
			switch {
			case w == "":
				p.errorf(off, "empty element in unkeyed= list")
			case !token.IsIdentifier(w):
				p.errorf(off, "invalid unkeyed element %q: want a parameter name", w)
			default:
				d.Unkeyed = append(d.Unkeyed, Name{Name: w, Offset: off})
			}
			off += len(w) + 1
		}
	case "tags", "invalidate", "attach":
		l := p.list(name, v, off, use{d.Kind, false, name == "invalidate", name})
		switch name {
		case "tags":
			d.Tags = l
		case "invalidate":
			d.Invalidate = l
		default:
			d.Attach = l
		}
	case "ttl":
		d.TTL = p.duration(name, v, off)
	case "jitter":
		d.Jitter = p.duration(name, v, off)
	case "swr":
		d.SWR = p.duration(name, v, off)
	case "l1":
		d.L1 = p.duration(name, v, off)
	case "negative":
		d.Negative = p.duration(name, v, off)
	case "lock":
		m, ok := lockModes[v]
		if !ok {
			p.errorf(off, "invalid lock %q; want local, distributed or none", v)
		}
		d.Lock, d.LockSet = m, true
	case "notfound":
		d.NotFound = p.notFound(v, off)
	case "by":
		if !token.IsIdentifier(v) {
			p.errorf(off, "invalid by %q: want a Go identifier (a field name)", v)
		}
		d.By = v
	}
}

// notFound parses the value of notfound=: [*][pkg.]Name.
func (p *parser) notFound(v string, off int) *NotFound {
	n := &NotFound{Offset: off}
	rest := v
	if r, ok := strings.CutPrefix(rest, "*"); ok {
		n.Pointer, rest = true, r
	}
	qual, name, dotted := strings.Cut(rest, ".")
	if !dotted {
		qual, name = "", rest
	}
	ids := []string{name}
	if dotted {
		ids = append(ids, qual)
	}
	for _, id := range ids {
		if !token.IsIdentifier(id) {
			p.errorf(off, "invalid notfound %q: want an error variable (ErrNotFound, gorm.ErrRecordNotFound) or an error type (ErrUserNotExist, *ErrUserNotExist, errs.NotExist)", v)
			return nil
		}
	}
	n.Qual, n.Name = qual, name
	return n
}

// hashKey rejects a key that starts with '#': such names are the cache's
// own records (a tag set's version, say), and every call would fail.
func (p *parser) hashKey(name string, t *Template) {
	if t != nil && strings.HasPrefix(t.Raw, "#") {
		p.errorf(t.Offset, "a key may not start with \"#\" (%s=%s): the runtime reserves such names and rejects the key on every call; drop the \"#\" or put a prefix before it", name, t.Raw)
	}
}

// suggest returns the word of known closest to w, if it is close enough to
// be a misspelling of it: a prefix or an extension of it, or at most two
// edits away.
func suggest(w string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		d := editDistance(strings.ToLower(w), k)
		if (strings.HasPrefix(k, w) || strings.HasPrefix(strings.ToLower(w), k)) && len(w) > 1 {
			d = min(d, 1)
		}
		limit := 1
		if len(k) > 4 {
			limit = 2
		}
		if d <= limit && d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Misspelt reports a comment line that looks like a directive but is not
// one, so that cachegen would silently ignore it: "// cache:get" (a blank
// after the slashes), "//Cache:get", "/*cache:get*/". It returns the offset
// of the text at fault and a message saying how to write it; "" when the
// line does not look like a directive (or is one: Parse reads those).
func Misspelt(line string) (int, string) {
	if strings.HasPrefix(line, prefix) {
		return 0, ""
	}
	var rest string
	switch {
	case strings.HasPrefix(line, "//"):
		rest = line[2:]
	case strings.HasPrefix(line, "/*"):
		rest = strings.TrimSuffix(line[2:], "*/")
	default:
		return 0, ""
	}
	body := strings.TrimLeft(rest, " \t")
	if len(body) < len("cache:x") || !strings.EqualFold(body[:len("cache:")], "cache:") {
		return 0, ""
	}
	verb := body[len("cache:"):]
	if i := strings.IndexAny(verb, " \t"); i >= 0 {
		verb = verb[:i]
	}
	known := []string{"repo", "get", "put", "invalidate", "skip"}
	v := strings.ToLower(verb)
	if !slices.Contains(known, v) && suggest(v, known) == "" {
		return 0, "" // prose that happens to begin with "cache:"
	}
	if !slices.Contains(known, v) {
		v = suggest(v, known)
	}
	off := 2 + len(rest) - len(body)
	return off, fmt.Sprintf("%q looks like a cache:%s directive but is not read as one: write it as %scache:%s, with no blank between \"//\" and \"cache:\", in lower case, in a // comment",
		strings.TrimSpace(line), v, "//", v)
}

func (p *parser) duration(name, v string, off int) time.Duration {
	dur, err := time.ParseDuration(v)
	switch {
	case err != nil:
		p.errorf(off, "invalid %s %q: want a Go duration such as 90s, 5m or 1h30m", name, v)
	case dur <= 0 && name == "ttl":
		p.errorf(off, "ttl must be > 0, got %q", v)
	case dur <= 0 && name == "l1":
		p.errorf(off, "l1 must be > 0 when given, got %q: l1= caps how long a value may live in process memory; drop l1= to keep the Cache's default (see runtime.WithL1)", v)
	case dur <= 0:
		p.errorf(off, "%s must be > 0 when given, got %q", name, v)
	}
	return dur
}

// use is where a template appears: the directive kind, and whether it is a
// key (key=, keys=) or a tag (tags=, invalidate=).
type use struct {
	kind Kind
	key  bool
	inv  bool   // a put's invalidate=
	opt  string // the option's name, for messages
}

// what names the option in messages: "key" or "tags", or "attach=".
func (u use) what() string {
	switch {
	case u.key:
		return "key"
	case u.opt == "attach":
		return "attach="
	}
	return "tags"
}

// loops reports whether templates used so may loop over a slice: {result[]}
// in tags and invalidations, {ids[]} in invalidations (and in a get key,
// where it makes a batch get).
func (u use) loops() bool { return u.kind == KindInvalidate || u.inv }

// list parses the comma-separated templates v of the option name, at offset
// off. Commas inside braces do not separate; the template parser rejects them.
func (p *parser) list(name, v string, off int, u use) []*Template {
	var ts []*Template
	start, inBraces := 0, false
	for i := 0; i <= len(v); i++ {
		if i < len(v) {
			switch v[i] {
			case '{':
				inBraces = true
			case '}':
				inBraces = false
			}
			if v[i] != ',' || inBraces {
				continue
			}
		}
		if start == i {
			at := i // the comma that ends the empty element
			if i == len(v) {
				at = i - 1 // the trailing comma
			}
			p.errorf(off+at, "empty element in %s= list", name)
		} else {
			ts = append(ts, p.template(v[start:i], off+start, u))
		}
		start = i + 1
	}
	return ts
}

// template parses raw, found at offset off, used as u.
func (p *parser) template(raw string, off int, u use) *Template {
	t := &Template{Raw: raw, Offset: off}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.Segments = append(t.Segments, Segment{Literal: lit.String()})
			lit.Reset()
		}
	}
	var slice *Ref // the first root[] ref of a get key
	var loop *Ref  // the first root[] ref of another template
	for i := 0; i < len(raw); {
		if raw[i] == '}' {
			p.errorf(off+i, "unexpected \"}\" without a matching \"{\"")
			i++
			continue
		}
		if raw[i] != '{' {
			lit.WriteByte(raw[i])
			i++
			continue
		}
		end := strings.IndexAny(raw[i+1:], "{}")
		if end < 0 {
			p.errorf(off+i, "unterminated \"{\": missing \"}\"")
			return t // the rest of raw is inside the open brace
		}
		end += i + 1
		if raw[end] == '{' {
			p.errorf(off+end, "nested \"{\" inside a placeholder")
			return t // where this placeholder ends is unclear
		}
		if end == i+1 {
			p.errorf(off+i, "empty placeholder \"{}\"")
			i = end + 1
			continue
		}
		flush()
		if r := p.ref(raw[i+1:end], off+i+1); r != nil {
			p.check(r, u)
			if u.kind == KindGet && u.key && r.Each && r.Root != "result" {
				if slice == nil {
					slice = r
				} else if slice.Root != r.Root {
					p.errorf(r.Offset, "a get key may use at most one slice parameter with []; found %q and %q", slice.Root+"[]", r.Root+"[]")
				}
			} else if r.Each {
				if loop == nil {
					loop = r
				} else if loop.Root != r.Root {
					p.errorf(r.Offset, "a template may use at most one slice with [] (it names one key or tag per element); found %q and %q", loop.Root+"[]", r.Root+"[]")
				}
			}
			t.Segments = append(t.Segments, Segment{Ref: r})
		}
		i = end + 1
	}
	flush()
	return t
}

// ref parses the placeholder content s, found at offset off. The byte that
// follows s in the line is its closing '}'.
func (p *parser) ref(s string, off int) *Ref {
	root, i, ok := p.ident(s, 0, off, "a parameter name or result")
	if !ok {
		return nil
	}
	r := &Ref{Root: root, Offset: off}
	if i < len(s) && s[i] == '[' {
		if i+1 >= len(s) || s[i+1] != ']' {
			p.errorf(off+i+1, "expected \"]\" after \"[\" in placeholder, found %s", found(s, i+1))
			return nil
		}
		r.Each = true
		i += 2
	}
	for i < len(s) {
		if s[i] == '|' {
			var t string
			at := i + 1
			if t, i, ok = p.ident(s, i+1, off, "a transform (hash or lower) after \"|\""); !ok {
				return nil
			}
			if !slices.Contains(Transforms, t) {
				p.errorf(off+at, "unknown transform %q; want |hash (SHA-256, for secrets) or |lower", t)
				return nil
			}
			r.Transforms = append(r.Transforms, t)
			r.TransformOffsets = append(r.TransformOffsets, off+at)
			continue
		}
		if len(r.Transforms) > 0 {
			p.errorf(off+i, "unexpected %s in placeholder after a transform; want another |transform or \"}\"", found(s, i))
			return nil
		}
		if s[i] != '.' {
			p.errorf(off+i, "unexpected %s in placeholder; want \".\" and a field name, or \"}\"", found(s, i))
			return nil
		}
		var f string
		if f, i, ok = p.ident(s, i+1, off, "a field name after \".\""); !ok {
			return nil
		}
		r.Fields = append(r.Fields, f)
	}
	return r
}

// ident reads a Go identifier at s[i:], where s is at offset off, and returns
// it with the index that follows it. what names the expected identifier.
func (p *parser) ident(s string, i, off int, what string) (string, int, bool) {
	start := i
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r != '_' && !unicode.IsLetter(r) && (i == start || !unicode.IsDigit(r)) {
			break
		}
		i += n
	}
	if i == start {
		p.errorf(off+i, "expected %s in placeholder, found %s", what, found(s, i))
		return "", i, false
	}
	name := s[start:i]
	if token.IsKeyword(name) {
		p.errorf(off+start, "%q is a Go keyword, not an identifier", name)
		return "", i, false
	}
	return name, i, true
}

// found quotes the character at s[i:], or the closing brace after s.
func found(s string, i int) string {
	if i >= len(s) {
		return `"}"`
	}
	_, n := utf8.DecodeRuneInString(s[i:])
	return fmt.Sprintf("%q", s[i:i+n])
}

// check applies the rules on where result and root[] refs may appear.
func (p *parser) check(r *Ref, u use) {
	switch {
	case r.Root == "result" && u.kind == KindGet && u.key:
		p.errorf(r.Offset, "result is not known before the call; a get key may use only parameters")
	case r.Root == "result" && u.key && r.Each && !u.loops():
		p.errorf(r.Offset, "result[] is not allowed in the key of a cache:%s: the key names one value", u.kind)
	case r.Root != "result" && r.Each && !(u.kind == KindGet && u.key) && !u.loops():
		p.errorf(r.Offset, "a slice parameter with [] may appear in a get key (a batch get), in invalidate keys and tags and in a put's invalidate=, but not in the %s of a cache:%s", u.what(), u.kind)
	}
}
