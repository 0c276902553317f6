package extract

import (
	"fmt"
	"go/token"
	"go/types"
	"reflect"
	"strings"

	"github.com/repocache/repocache/cachegen/internal/gen/model"
)

// unstorable says why a value of type t cannot round-trip through the
// codec, or returns "": an interface (the codec cannot tell which concrete
// type to decode into), a channel or a function, directly or anywhere in
// its exported fields, elements, keys or pointees. Unexported fields and
// fields tagged `msgpack:"-"` are not encoded, and types that marshal
// themselves (MarshalMsgpack, EncodeMsgpack, MarshalBinary, MarshalText)
// are taken at their word. Recursive types are walked once.
func unstorable(t types.Type, pkg *types.Package) string {
	return (&storeCheck{pkg: pkg, seen: map[types.Type]bool{}}).check(t, "result")
}

type storeCheck struct {
	pkg  *types.Package
	seen map[types.Type]bool
}

var selfMarshalers = []string{"MarshalMsgpack", "EncodeMsgpack", "MarshalBinary", "MarshalText"}

// check walks t, found at path (a Go-like expression such as
// result[i].Meta[k], "result" for the value itself).
func (c *storeCheck) check(t types.Type, path string) string {
	t = types.Unalias(t)
	if n, ok := t.(*types.Named); ok {
		if c.seen[n] {
			return ""
		}
		c.seen[n] = true
		if _, isIface := n.Underlying().(*types.Interface); !isIface {
			for _, m := range selfMarshalers {
				if obj, _, _ := types.LookupFieldOrMethod(types.NewPointer(n), false, c.pkg, m); obj != nil {
					if _, ok := obj.(*types.Func); ok {
						return ""
					}
				}
			}
		}
	}
	where := "it is"
	if path != "result" {
		where = path + " is"
	}
	switch u := t.Underlying().(type) {
	case *types.Interface:
		return fmt.Sprintf("%s an interface (%s), which the codec cannot decode into its concrete type: a hit would come back as another type or fail to decode", where, types.TypeString(t, types.RelativeTo(c.pkg)))
	case *types.Chan:
		return where + " a channel, which the codec cannot encode"
	case *types.Signature:
		return where + " a function, which the codec cannot encode"
	case *types.Pointer:
		return c.check(u.Elem(), path)
	case *types.Slice:
		return c.check(u.Elem(), path+"[i]")
	case *types.Array:
		return c.check(u.Elem(), path+"[i]")
	case *types.Map:
		if msg := c.check(u.Key(), "a key of "+path); msg != "" {
			return msg
		}
		return c.check(u.Elem(), path+"[k]")
	case *types.Struct:
		for i := range u.NumFields() {
			f := u.Field(i)
			if !f.Exported() && !f.Embedded() {
				continue
			}
			if tag, ok := reflect.StructTag(u.Tag(i)).Lookup("msgpack"); ok && strings.Split(tag, ",")[0] == "-" {
				continue
			}
			if msg := c.check(f.Type(), path+"."+f.Name()); msg != "" {
				return msg
			}
		}
	}
	return ""
}

// storedKey is the key a get reads and fills, or a put writes, with the
// types of the value stored under it.
type storedKey struct {
	where string // "cache:get on Repo.Find"
	pos   token.Position
	raw   string
	key   *model.Template
	types []types.Type
	// generic is the generic interface that declares the method, if any.
	generic string
}

// sameValue reports whether two stored values have the same type, a pointer
// and its element type counting as one (the codec stores them alike).
func sameValue(a, b []types.Type) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !types.Identical(deref(a[i]), deref(b[i])) {
			return false
		}
	}
	return true
}

func deref(t types.Type) types.Type {
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}

// keyClashes reports two stored keys that can be equal while the values
// under them have different types: each call of one would find the other's
// value undecodable, delete it and reload.
func (x *extractor) keyClashes() {
	for j, b := range x.stored {
		for _, a := range x.stored[:j] {
			if a.generic != "" && a.generic == b.generic {
				// Instantiations of one generic repository share their
				// templates; its parameters (a name, say) keep them apart.
				continue
			}
			if sameValue(a.types, b.types) || !overlap(a.key, b.key) {
				continue
			}
			x.diags.Add(b.pos, "%s: key=%s can be equal to key=%s of %s (%s), but the values differ in type (%s and %s): each would evict the other as undecodable on every call; give one of them a distinct prefix, such as %s",
				b.where, b.raw, a.raw, strings.TrimPrefix(strings.TrimPrefix(a.where, "cache:get on "), "cache:put on "),
				a.pos, x.typeList(b.types), x.typeList(a.types), prefixHint(b))
		}
	}
}

func (x *extractor) typeList(ts []types.Type) string {
	var s []string
	for _, t := range ts {
		s = append(s, types.TypeString(t, types.RelativeTo(x.pkg.Types)))
	}
	if len(s) == 1 {
		return s[0]
	}
	return "(" + strings.Join(s, ", ") + ")"
}

func prefixHint(k *storedKey) string {
	name := "other"
	if len(k.types) == 1 {
		t := deref(k.types[0])
		if s, ok := t.Underlying().(*types.Slice); ok {
			t = deref(s.Elem())
		}
		if n, ok := types.Unalias(t).(*types.Named); ok {
			name = strings.ToLower(n.Obj().Name())
		}
	}
	return name + ":" + k.raw
}
