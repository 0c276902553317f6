package directive

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Helpers that build expected templates; offsets are byte offsets in the line.

func tmpl(raw string, off int, segs ...Segment) *Template {
	return &Template{Raw: raw, Offset: off, Segments: segs}
}

func lit(s string) Segment { return Segment{Literal: s} }

func ref(off int, root string, fields ...string) Segment {
	return Segment{Ref: &Ref{Root: root, Fields: fields, Offset: off}}
}

func each(off int, root string, fields ...string) Segment {
	return Segment{Ref: &Ref{Root: root, Each: true, Fields: fields, Offset: off}}
}

func TestParseNotADirective(t *testing.T) {
	for _, line := range []string{
		"",
		"//",
		"// cache:get key={id} ttl=1m",
		"//go:generate go run ./cachegen",
		"//Cache:get key={id} ttl=1m",
		"/cache:get",
		"/*cache:get key={id} ttl=1m*/",
		" //cache:get key={id} ttl=1m",
		"//cach",
	} {
		t.Run(line, func(t *testing.T) {
			d, errs := Parse(line)
			if d != nil || errs != nil {
				t.Errorf("Parse(%q) = %+v, %v; want nil, nil", line, d, errs)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		line string
		want *Directive
	}{
		{
			name: "repo",
			line: "//cache:repo",
			want: &Directive{Kind: KindRepo},
		},
		{
			name: "repo strict",
			line: "//cache:repo strict ",
			want: &Directive{Kind: KindRepo, Strict: true},
		},
		{
			name: "skip with trailing blanks",
			line: "//cache:skip \t ",
			want: &Directive{Kind: KindSkip},
		},
		{
			name: "get with every option",
			//     0         1         2         3         4         5         6         7         8         9         10
			//     01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123
			line: "//cache:get key=user:{id} ttl=5m jitter=30s tags=user:{id},users swr=1m negative=10s lock=distributed by=UserID",
			want: &Directive{
				Kind:     KindGet,
				Key:      tmpl("user:{id}", 16, lit("user:"), ref(22, "id")),
				Tags:     []*Template{tmpl("user:{id}", 49, lit("user:"), ref(55, "id")), tmpl("users", 59, lit("users"))},
				TTL:      5 * time.Minute,
				Jitter:   30 * time.Second,
				SWR:      time.Minute,
				Negative: 10 * time.Second,
				Lock:     LockDistributed,
				LockSet:  true,
				By:       "UserID",
			},
		},
		{
			name: "get with tabs, selectors and result tags",
			line: "//cache:get\tkey=page:{in.OwnerID}:{in.Cursor}\t\tttl=1h30m   tags={result[].ID},page:{result.Next}",
			want: &Directive{
				Kind: KindGet,
				Key: tmpl("page:{in.OwnerID}:{in.Cursor}", 16,
					lit("page:"), ref(22, "in", "OwnerID"), lit(":"), ref(35, "in", "Cursor")),
				TTL: 90 * time.Minute,
				Tags: []*Template{
					tmpl("{result[].ID}", 64, each(65, "result", "ID")),
					tmpl("page:{result.Next}", 78, lit("page:"), ref(84, "result", "Next")),
				},
			},
		},
		{
			name: "batch get",
			//     0         1         2         3         4         5
			//     0123456789012345678901234567890123456789012345678901234567
			line: "//cache:get key=user:{ids[]}:{ids[].Region} ttl=1h by=ID",
			want: &Directive{
				Kind: KindGet,
				Key: tmpl("user:{ids[]}:{ids[].Region}", 16,
					lit("user:"), each(22, "ids"), lit(":"), each(30, "ids", "Region")),
				TTL: time.Hour,
				By:  "ID",
			},
		},
		{
			name: "get with unkeyed",
			//     0         1         2         3         4
			//     012345678901234567890123456789012345678901234
			line: "//cache:get key=k ttl=1s unkeyed=limit,trace",
			want: &Directive{Kind: KindGet, Key: tmpl("k", 16, lit("k")), TTL: time.Second,
				Unkeyed: []Name{{"limit", 33}, {"trace", 39}}},
		},
		{
			name: "get lock=local is explicit",
			line: "//cache:get key=k ttl=1s lock=local",
			want: &Directive{Kind: KindGet, Key: tmpl("k", 16, lit("k")), TTL: time.Second, Lock: LockLocal, LockSet: true},
		},
		{
			name: "get lock=none",
			line: "//cache:get key=k ttl=1s lock=none",
			want: &Directive{Kind: KindGet, Key: tmpl("k", 16, lit("k")), TTL: time.Second, Lock: LockNone, LockSet: true},
		},
		{
			name: "get key with literal =, comma and adjacent refs",
			//     0         1         2         3
			//     0123456789012345678901234567890123
			line: "//cache:get key=a=b,c{x}{y.Z} ttl=2h",
			want: &Directive{
				Kind: KindGet,
				Key:  tmpl("a=b,c{x}{y.Z}", 16, lit("a=b,c"), ref(22, "x"), ref(25, "y", "Z")),
				TTL:  2 * time.Hour,
			},
		},
		{
			name: "unicode identifiers",
			line: "//cache:get key=k:{größe.Ünï_2} ttl=1ms",
			want: &Directive{
				Kind: KindGet,
				Key:  tmpl("k:{größe.Ünï_2}", 16, lit("k:"), ref(19, "größe", "Ünï_2")),
				TTL:  time.Millisecond,
			},
		},
		{
			name: "put with every option",
			//     0         1         2         3         4         5         6         7         8         9         10        11
			//     0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234
			line: "//cache:put key=user:{result.ID} ttl=1h jitter=1m tags=user:{result.ID},team:{in.TeamID} invalidate=users,team:{result[].TeamID}",
			want: &Directive{
				Kind:   KindPut,
				Key:    tmpl("user:{result.ID}", 16, lit("user:"), ref(22, "result", "ID")),
				TTL:    time.Hour,
				Jitter: time.Minute,
				Tags: []*Template{
					tmpl("user:{result.ID}", 55, lit("user:"), ref(61, "result", "ID")),
					tmpl("team:{in.TeamID}", 72, lit("team:"), ref(78, "in", "TeamID")),
				},
				Invalidate: []*Template{
					tmpl("users", 100, lit("users")),
					tmpl("team:{result[].TeamID}", 106, lit("team:"), each(112, "result", "TeamID")),
				},
			},
		},
		{
			name: "put with constant key",
			line: "//cache:put key=config ttl=10m",
			want: &Directive{Kind: KindPut, Key: tmpl("config", 16, lit("config")), TTL: 10 * time.Minute},
		},
		{
			name: "put with parameter key",
			line: "//cache:put key={u.ID} ttl=10m",
			want: &Directive{Kind: KindPut, Key: tmpl("{u.ID}", 16, ref(17, "u", "ID")), TTL: 10 * time.Minute},
		},
		{
			name: "invalidate keys and tags",
			//     0         1         2         3         4         5         6
			//     0123456789012345678901234567890123456789012345678901234567890123
			line: "//cache:invalidate keys=user:{id},email:{in.Email} tags=user:{id}",
			want: &Directive{
				Kind: KindInvalidate,
				Keys: []*Template{
					tmpl("user:{id}", 24, lit("user:"), ref(30, "id")),
					tmpl("email:{in.Email}", 34, lit("email:"), ref(41, "in", "Email")),
				},
				Tags: []*Template{tmpl("user:{id}", 56, lit("user:"), ref(62, "id"))},
			},
		},
		{
			name: "invalidate with results, slices and transforms",
			//     0         1         2         3         4         5         6         7
			//     0123456789012345678901234567890123456789012345678901234567890123456789012345
			line: "//cache:invalidate keys=u:{result.ID},u:{ids[]},e:{in.Email|lower|hash} tags={result[].ID}",
			want: &Directive{
				Kind: KindInvalidate,
				Keys: []*Template{
					tmpl("u:{result.ID}", 24, lit("u:"), ref(27, "result", "ID")),
					tmpl("u:{ids[]}", 38, lit("u:"), each(41, "ids")),
					{Raw: "e:{in.Email|lower|hash}", Offset: 48, Segments: []Segment{lit("e:"),
						{Ref: &Ref{Root: "in", Fields: []string{"Email"}, Transforms: []string{"lower", "hash"}, TransformOffsets: []int{60, 66}, Offset: 51}}}},
				},
				Tags: []*Template{tmpl("{result[].ID}", 77, each(78, "result", "ID"))},
			},
		},
		{
			name: "put invalidates per element",
			line: "//cache:put key=k ttl=1s invalidate=u:{ids[]},{result[].ID}",
			want: &Directive{Kind: KindPut, Key: tmpl("k", 16, lit("k")), TTL: time.Second,
				Invalidate: []*Template{tmpl("u:{ids[]}", 36, lit("u:"), each(39, "ids")), tmpl("{result[].ID}", 46, each(47, "result", "ID"))}},
		},
		{
			name: "notfound variable",
			//     0         1         2         3         4         5
			//     0123456789012345678901234567890123456789012345678901234567
			line: "//cache:get key=k ttl=1s negative=5s notfound=ErrNotFound",
			want: &Directive{Kind: KindGet, Key: tmpl("k", 16, lit("k")), TTL: time.Second, Negative: 5 * time.Second,
				NotFound: &NotFound{Name: "ErrNotFound", Offset: 46}},
		},
		{
			name: "notfound qualified",
			line: "//cache:get key=k ttl=1s notfound=gorm.ErrRecordNotFound negative=5s",
			want: &Directive{Kind: KindGet, Key: tmpl("k", 16, lit("k")), TTL: time.Second, Negative: 5 * time.Second,
				NotFound: &NotFound{Qual: "gorm", Name: "ErrRecordNotFound", Offset: 34}},
		},
		{
			name: "notfound pointer type",
			line: "//cache:get key=k ttl=1s notfound=*errs.NotExist negative=5s",
			want: &Directive{Kind: KindGet, Key: tmpl("k", 16, lit("k")), TTL: time.Second, Negative: 5 * time.Second,
				NotFound: &NotFound{Pointer: true, Qual: "errs", Name: "NotExist", Offset: 34}},
		},
		{
			name: "put attaches without invalidating",
			//     0         1         2         3         4         5
			//     012345678901234567890123456789012345678901234567890123
			line: "//cache:put key=k ttl=1s tags=u:{id} attach=users,{result[].ID}",
			want: &Directive{Kind: KindPut, Key: tmpl("k", 16, lit("k")), TTL: time.Second,
				Tags:   []*Template{tmpl("u:{id}", 30, lit("u:"), ref(33, "id"))},
				Attach: []*Template{tmpl("users", 44, lit("users")), tmpl("{result[].ID}", 50, each(51, "result", "ID"))}},
		},
		{
			name: "get with l1 below ttl, with swr and jitter",
			line: "//cache:get key=k ttl=5m jitter=30s swr=1m l1=30s",
			want: &Directive{Kind: KindGet, Key: tmpl("k", 16, lit("k")), TTL: 5 * time.Minute, Jitter: 30 * time.Second,
				SWR: time.Minute, L1: 30 * time.Second},
		},
		{
			name: "get with l1 equal to ttl",
			line: "//cache:get key=k ttl=1m l1=60s",
			want: &Directive{Kind: KindGet, Key: tmpl("k", 16, lit("k")), TTL: time.Minute, L1: time.Minute},
		},
		{
			name: "batch get with l1",
			line: "//cache:get l1=1s key=u:{ids[]} ttl=1h",
			want: &Directive{Kind: KindGet, Key: tmpl("u:{ids[]}", 22, lit("u:"), each(25, "ids")), TTL: time.Hour, L1: time.Second},
		},
		{
			name: "invalidate keys only",
			line: "//cache:invalidate keys=users",
			want: &Directive{Kind: KindInvalidate, Keys: []*Template{tmpl("users", 24, lit("users"))}},
		},
		{
			name: "invalidate tags only",
			line: "//cache:invalidate tags=users ",
			want: &Directive{Kind: KindInvalidate, Tags: []*Template{tmpl("users", 24, lit("users"))}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := Parse(tt.line)
			if len(errs) > 0 {
				t.Fatalf("Parse(%q) errors: %v", tt.line, errs)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

// wantErr is one expected error: a substring of its message and its offset,
// marked by the '^' in a caret line written under the test line.
type wantErr struct {
	caret string
	msg   string
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []wantErr
	}{
		// Directive names.
		{"missing verb", "//cache:", []wantErr{
			{"        ^", `missing directive name after "//cache:"; want one of cache:repo, cache:get, cache:put, cache:invalidate, cache:skip`}}},
		{"space before verb", "//cache: get key=k ttl=1s", []wantErr{
			{"        ^", "missing directive name"}}},
		{"unknown verb", "//cache:fetch key=k", []wantErr{
			{"        ^", `unknown directive "cache:fetch"; want one of cache:repo, cache:get, cache:put, cache:invalidate, cache:skip`}}},
		{"verb glued to option", "//cache:get=1", []wantErr{
			{"        ^", `unknown directive "cache:get=1"`}}},
		{"repo with options", "//cache:repo name=x  y", []wantErr{
			{"             ^", `cache:repo takes only the option strict, found "name=x"`},
			{"                     ^", `cache:repo takes only the option strict, found "y"`}}},
		{"repo strict twice", "//cache:repo strict strict", []wantErr{
			{"                    ^", `duplicate option "strict"`}}},
		{"skip with option", "//cache:skip ttl=1s", []wantErr{
			{"             ^", `cache:skip takes no options`}}},

		// Option syntax.
		{"option without =", "//cache:get key=k ttl=1s lock", []wantErr{
			{"                         ^", `malformed option "lock": want name=value`}}},
		{"option without name", "//cache:get key=k ttl=1s =x", []wantErr{
			{"                         ^", `malformed option "=x": missing name before "="`}}},
		{"option with empty value", "//cache:get key=k ttl=", []wantErr{
			{"                  ^", `option "ttl" has an empty value`}}},
		{"unknown option for get", "//cache:get key=k ttl=1s invalidate=x", []wantErr{
			{"                         ^", `unknown option "invalidate" for cache:get; allowed: key, ttl, jitter, tags, swr, l1, negative, notfound, lock, by, unkeyed`}}},
		{"unknown option for put", "//cache:put key=k ttl=1s lock=none", []wantErr{
			{"                         ^", `unknown option "lock" for cache:put; allowed: key, ttl, jitter, tags, attach, invalidate`}}},
		{"unknown option for invalidate", "//cache:invalidate key=k", []wantErr{
			{"        ^", `cache:invalidate requires keys= or tags=`},
			{"                   ^", `unknown option "key" for cache:invalidate: did you mean keys=? (allowed: keys, tags)`}}},
		{"misspelt verb", "//cache:gets key=k ttl=1s", []wantErr{
			{"        ^", `unknown directive "cache:gets": did you mean cache:get?`}}},
		{"misspelt option", "//cache:get key=k ttl=1s tag=x", []wantErr{
			{"                         ^", `unknown option "tag" for cache:get: did you mean tags=?`}}},
		{"quoted key", `//cache:get key="user:{id}" ttl=1s`, []wantErr{
			{"                ^", `quoted value in key=: write the value without quotes (key=user:{id})`}}},
		{"quoted tag", "//cache:invalidate tags=a,'b'", []wantErr{
			{"                          ^", `quoted value in tags=`}}},
		{"jitter not below ttl", "//cache:get key=k ttl=1m jitter=1m", []wantErr{
			{"                                ^", `jitter=1m must be below ttl=1m`}}},
		{"jitter above ttl", "//cache:put key=k jitter=2m ttl=1m", []wantErr{
			{"                         ^", `jitter=2m must be below ttl=1m`}}},
		{"key starts with #", "//cache:get key=#user:{id} ttl=1s", []wantErr{
			{"                ^", `a key may not start with "#"`}}},
		{"invalidate key starts with #", "//cache:invalidate keys=a,#b", []wantErr{
			{"                          ^", `a key may not start with "#" (keys=#b)`}}},
		{"bad unkeyed", "//cache:get key=k ttl=1s unkeyed=a,,b.c", []wantErr{
			{"                                   ^", `empty element in unkeyed= list`},
			{"                                    ^", `invalid unkeyed element "b.c"`}}},
		{"unkeyed on put", "//cache:put key=k ttl=1s unkeyed=a", []wantErr{
			{"                         ^", `unknown option "unkeyed" for cache:put`}}},
		{"option names are case-sensitive", "//cache:get key=k TTL=1s", []wantErr{
			{"        ^", `cache:get requires ttl=`},
			{"                  ^", `unknown option "TTL" for cache:get`}}},
		{"duplicate option", "//cache:get key=k ttl=1s ttl=2s", []wantErr{
			{"                         ^", `duplicate option "ttl"`}}},

		// Required options.
		{"get without key and ttl", "//cache:get", []wantErr{
			{"        ^", `cache:get requires key=`},
			{"        ^", `cache:get requires ttl=`}}},
		{"put without ttl", "//cache:put key=k", []wantErr{
			{"        ^", `cache:put requires ttl=`}}},
		{"invalidate without options", "//cache:invalidate  ", []wantErr{
			{"        ^", `cache:invalidate requires keys= or tags=`}}},

		// Durations.
		{"bad duration", "//cache:get key=k ttl=5", []wantErr{
			{"                      ^", `invalid ttl "5": want a Go duration such as 90s, 5m or 1h30m`}}},
		{"zero ttl", "//cache:put key=k ttl=0s", []wantErr{
			{"                      ^", `ttl must be > 0, got "0s"`}}},
		{"negative ttl", "//cache:get key=k ttl=-5m", []wantErr{
			{"                      ^", `ttl must be > 0, got "-5m"`}}},
		{"zero jitter", "//cache:get key=k ttl=1s jitter=0", []wantErr{
			{"                                ^", `jitter must be > 0 when given, got "0"`}}},
		{"negative swr", "//cache:get key=k ttl=1s swr=-1s", []wantErr{
			{"                             ^", `swr must be > 0 when given, got "-1s"`}}},
		{"bad negative", "//cache:get key=k ttl=1s negative=forever", []wantErr{
			{"                                  ^", `invalid negative "forever"`}}},
		{"overflowing duration", "//cache:get key=k ttl=9999999999h", []wantErr{
			{"                      ^", `invalid ttl "9999999999h"`}}},

		// lock= and by=.
		{"bad lock", "//cache:get key=k ttl=1s lock=global", []wantErr{
			{"                              ^", `invalid lock "global"; want local, distributed or none`}}},
		{"by not an identifier", "//cache:get key={ids[]} ttl=1s by=in.ID", []wantErr{
			{"                                  ^", `invalid by "in.ID": want a Go identifier (a field name)`}}},
		{"by is a keyword", "//cache:get key={ids[]} ttl=1s by=type", []wantErr{
			{"                                  ^", `invalid by "type"`}}},

		// Lists.
		{"empty list element", "//cache:get key=k ttl=1s tags=a,,b", []wantErr{
			{"                                ^", `empty element in tags= list`}}},
		{"trailing comma", "//cache:put key=k ttl=1s invalidate=a,", []wantErr{
			{"                                     ^", `empty element in invalidate= list`}}},
		{"leading comma", "//cache:invalidate keys=,a", []wantErr{
			{"                        ^", `empty element in keys= list`}}},
		{"comma inside braces", "//cache:invalidate tags={a,b}", []wantErr{
			{"                          ^", `unexpected "," in placeholder; want "." and a field name, or "}"`}}},

		// Template braces.
		{"stray close brace", "//cache:get key=a}b ttl=1s", []wantErr{
			{"                 ^", `unexpected "}" without a matching "{"`}}},
		{"unterminated brace", "//cache:get key=user:{id ttl=1s", []wantErr{
			{"                     ^", `unterminated "{": missing "}"`}}},
		{"nested brace", "//cache:get key={a{b}} ttl=1s", []wantErr{
			{"                  ^", `nested "{" inside a placeholder`}}},
		{"empty placeholder", "//cache:get key=x{} ttl=1s", []wantErr{
			{"                 ^", `empty placeholder "{}"`}}},
		{"several template errors", "//cache:get key=}{}{1} ttl=1s", []wantErr{
			{"                ^", `unexpected "}"`},
			{"                 ^", `empty placeholder`},
			{"                    ^", `expected a parameter name or result in placeholder, found "1"`}}},

		// Ref syntax.
		{"leading dot", "//cache:get key={.a} ttl=1s", []wantErr{
			{"                 ^", `expected a parameter name or result in placeholder, found "."`}}},
		{"trailing dot", "//cache:get key={a.} ttl=1s", []wantErr{
			{"                   ^", `expected a field name after "." in placeholder, found "}"`}}},
		{"double dot", "//cache:get key={a..b} ttl=1s", []wantErr{
			{"                   ^", `expected a field name after "." in placeholder, found "."`}}},
		{"index", "//cache:get key={a[0]} ttl=1s", []wantErr{
			{"                   ^", `expected "]" after "[" in placeholder, found "0"`}}},
		{"open bracket at end", "//cache:get key={a[} ttl=1s", []wantErr{
			{"                   ^", `expected "]" after "[" in placeholder, found "}"`}}},
		{"ident after brackets", "//cache:get key={a[]b} ttl=1s", []wantErr{
			{"                    ^", `unexpected "b" in placeholder; want "." and a field name, or "}"`}}},
		{"brackets after field", "//cache:get key=k ttl=1s tags={result.Items[]}", []wantErr{
			{"                                           ^", `unexpected "[" in placeholder`}}},
		{"digit first", "//cache:get key={1a} ttl=1s", []wantErr{
			{"                 ^", `found "1"`}}},
		{"keyword root", "//cache:get key={type} ttl=1s", []wantErr{
			{"                 ^", `"type" is a Go keyword, not an identifier`}}},
		{"keyword field", "//cache:get key={in.func} ttl=1s", []wantErr{
			{"                    ^", `"func" is a Go keyword`}}},
		{"punctuation", "//cache:get key={a-b} ttl=1s", []wantErr{
			{"                  ^", `unexpected "-" in placeholder`}}},
		{"invalid utf-8", "//cache:get key={a\xffb} ttl=1s", []wantErr{
			{"                  ^", `unexpected "\xff" in placeholder`}}},

		// Where result and [] refs may appear.
		{"result in get key", "//cache:get key=user:{result.ID} ttl=1s", []wantErr{
			{"                      ^", `result is not known before the call; a get key may use only parameters`}}},
		{"result[] in get key", "//cache:get key={result[]} ttl=1s", []wantErr{
			{"                 ^", `result is not known before the call`}}},
		{"two slice roots in get key", "//cache:get key={a[]}:{b[].X}:{a[].Y} ttl=1s", []wantErr{
			{"                       ^", `a get key may use at most one slice parameter with []; found "a[]" and "b[]"`}}},
		{"slice param in get tag", "//cache:get key={ids[]} ttl=1s tags=x:{ids[]}", []wantErr{
			{"                                       ^", `a slice parameter with [] may appear in a get key (a batch get), in invalidate keys and tags and in a put's invalidate=, but not in the tags of a cache:get`}}},
		{"result[] in put key", "//cache:put key=u:{result[].ID} ttl=1s", []wantErr{
			{"                   ^", `result[] is not allowed in the key of a cache:put: the key names one value`}}},
		{"slice param in put key", "//cache:put key=u:{ids[]} ttl=1s", []wantErr{
			{"                   ^", `but not in the key of a cache:put`}}},
		{"slice param in put tags", "//cache:put key=k ttl=1s tags={ids[].X}", []wantErr{
			{"                               ^", `but not in the tags of a cache:put`}}},
		{"notfound without negative", "//cache:get key=k ttl=1s notfound=ErrNotFound", []wantErr{
			{"                                  ^", `notfound=ErrNotFound without negative=: only negative caching stores a not-found answer, so notfound= alone changes nothing; add negative=D`}}},
		{"notfound on a put", "//cache:put key=k ttl=1s notfound=ErrNotFound", []wantErr{
			{"                         ^", `unknown option "notfound" for cache:put`}}},
		{"notfound not a name", "//cache:get key=k ttl=1s negative=1s notfound=a.b.c", []wantErr{
			{"                                              ^", `invalid notfound "a.b.c": want an error variable`}}},
		{"notfound empty qualifier", "//cache:get key=k ttl=1s negative=1s notfound=.Err", []wantErr{
			{"                                              ^", `invalid notfound ".Err"`}}},
		{"notfound double pointer", "//cache:get key=k ttl=1s negative=1s notfound=**E", []wantErr{
			{"                                              ^", `invalid notfound "**E"`}}},
		{"slice param in put attach", "//cache:put key=k ttl=1s attach=a,{ids[]}", []wantErr{
			{"                                   ^", `but not in the attach= of a cache:put`}}},
		{"attach on a get", "//cache:get key=k ttl=1s attach=a", []wantErr{
			{"                         ^", `unknown option "attach" for cache:get`}}},
		{"empty attach", "//cache:put key=k ttl=1s attach=", []wantErr{
			{"                         ^", `option "attach" has an empty value`}}},
		{"two loops in an invalidate key", "//cache:invalidate keys={ids[]}:{result[].ID}", []wantErr{
			{"                                 ^", `a template may use at most one slice with [] (it names one key or tag per element); found "ids[]" and "result[]"`}}},
		{"unknown transform", "//cache:get key={id|upper} ttl=1s", []wantErr{
			{"                    ^", `unknown transform "upper"; want |hash (SHA-256, for secrets) or |lower`}}},
		{"field after transform", "//cache:get key={id|lower.X} ttl=1s", []wantErr{
			{"                         ^", `unexpected "." in placeholder after a transform`}}},
		{"empty transform", "//cache:get key={id|} ttl=1s", []wantErr{
			{"                    ^", `expected a transform (hash or lower) after "|" in placeholder, found "}"`}}},
		{"l1 not a duration", "//cache:get key=k ttl=1m l1=10", []wantErr{
			{"                            ^", `invalid l1 "10": want a Go duration such as 90s, 5m or 1h30m`}}},
		{"l1 zero", "//cache:get key=k ttl=1m l1=0s", []wantErr{
			{"                            ^", `l1 must be > 0 when given, got "0s": l1= caps how long a value may live in process memory; drop l1=`}}},
		{"l1 negative", "//cache:get key=k ttl=1m l1=-5s", []wantErr{
			{"                            ^", `l1 must be > 0 when given, got "-5s"`}}},
		{"l1 above ttl", "//cache:get key=k l1=10m ttl=5m swr=1h", []wantErr{
			{"                     ^", `l1=10m must not exceed ttl=5m: a value kept in process memory must never outlive the one in Redis, which an invalidation deletes; use l1=5m or less, or drop l1=`}}},
		{"l1 twice", "//cache:get key=k ttl=1m l1=1s l1=2s", []wantErr{
			{"                               ^", `duplicate option "l1"`}}},
		{"l1 on a put", "//cache:put key=k ttl=1m l1=1s", []wantErr{
			{"                         ^", `unknown option "l1" for cache:put: l1= belongs to cache:get, where it caps how long a value read through the cache may live in process memory; drop it here (allowed: key, ttl, jitter, tags, attach, invalidate)`}}},
		{"l1 on an invalidate", "//cache:invalidate tags=a l1=1s", []wantErr{
			{"                          ^", `unknown option "l1" for cache:invalidate: l1= belongs to cache:get`}}},
		{"l1 on a skip", "//cache:skip l1=1s", []wantErr{
			{"             ^", `cache:skip takes no options, found "l1=1s"`}}},
		{"misspelt l1", "//cache:get key=k ttl=1m L1=1s", []wantErr{
			{"                         ^", `unknown option "L1" for cache:get: did you mean l1=?`}}},
		// Several problems on one line are all reported, in offset order.
		{"many problems", "//cache:put key={result[]} ttl=0 jitter=x tags=a,", []wantErr{
			{"                 ^", `result[] is not allowed in the key`},
			{"                               ^", `ttl must be > 0`},
			{"                                        ^", `invalid jitter "x"`},
			{"                                                ^", `empty element in tags= list`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, errs := Parse(tt.line)
			if d != nil {
				t.Errorf("Parse(%q) directive = %+v; want nil with errors", tt.line, d)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("Parse(%q) returned %d errors, want %d: %v", tt.line, len(errs), len(tt.want), errs)
			}
			for i, w := range tt.want {
				off := strings.IndexByte(w.caret, '^')
				if off < 0 {
					t.Fatalf("want[%d]: caret line %q has no '^'", i, w.caret)
				}
				if errs[i].Offset != off || !strings.Contains(errs[i].Msg, w.msg) {
					t.Errorf("error %d = {%d, %q}; want offset %d and a message containing %q\n%s\n%s",
						i, errs[i].Offset, errs[i].Msg, off, w.msg, tt.line, w.caret)
				}
			}
		})
	}
}

func TestMisspelt(t *testing.T) {
	for _, tc := range []struct {
		line string
		off  int
		verb string
	}{
		{"// cache:get key=k ttl=1s", 3, "get"},
		{"//  cache:invalidate keys=k", 4, "invalidate"},
		{"//\tcache:repo", 3, "repo"},
		{"//Cache:get key=k", 2, "get"},
		{"//CACHE:SKIP", 2, "skip"},
		{"// cache:gets key=k", 3, "get"},
		{"/*cache:put key=k ttl=1s*/", 2, "put"},
		{"//cache:get key=k ttl=1s", 0, ""},
		{"// cache: the values are shared", 0, ""},
		{"// cache:xyz is not a verb", 0, ""},
		{"// the cache:get directive", 0, ""},
		{"//\t//cache:get key=k", 0, ""},
		{"// cache", 0, ""},
	} {
		off, msg := Misspelt(tc.line)
		if tc.verb == "" {
			if msg != "" {
				t.Errorf("Misspelt(%q) = %d, %q; want nothing", tc.line, off, msg)
			}
			continue
		}
		if off != tc.off || !strings.Contains(msg, "write it as //cache:"+tc.verb+",") {
			t.Errorf("Misspelt(%q) = %d, %q; want offset %d and //cache:%s", tc.line, off, msg, tc.off, tc.verb)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{KindRepo.String(), "repo"},
		{KindGet.String(), "get"},
		{KindPut.String(), "put"},
		{KindInvalidate.String(), "invalidate"},
		{KindSkip.String(), "skip"},
		{KindNone.String(), "none"},
		{Kind(42).String(), "Kind(42)"},
		{LockLocal.String(), "local"},
		{LockDistributed.String(), "distributed"},
		{LockNone.String(), "none"},
		{LockMode(-1).String(), "LockMode(-1)"},
		{(&Ref{Root: "id"}).String(), "id"},
		{(&Ref{Root: "result", Each: true, Fields: []string{"Owner", "ID"}}).String(), "result[].Owner.ID"},
		{(&Error{Offset: 12, Msg: "boom"}).Error(), "offset 12: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
