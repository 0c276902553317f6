package extract

import (
	"fmt"
	"go/token"
	"go/types"
	"slices"
	"strings"

	"github.com/repocache/repocache/cachegen/internal/gen/model"
)

var errorIface = types.Universe.Lookup("error").Type().Underlying().(*types.Interface)

// notFound resolves a get's notfound= to an error variable or an error
// type, in the scope of the package that declares the interface: an
// unqualified name is one of the package's own, a qualified one
// (gorm.ErrRecordNotFound) is one of a package imported by the file that
// holds the directive, or else by another file of the package.
func (r *resolver) notFound(out *model.Directive) {
	nf := r.d.NotFound
	if nf == nil {
		return
	}
	off := nf.Offset
	if r.batch != nil {
		r.errorf(off, "notfound=%s: a batch get caches no not-found answer (ids that the method did not return are left out of its result); drop notfound= and negative=", nf)
		return
	}
	if r.errs == 0 {
		r.errorf(off, "notfound=%s: the method returns no error, so it has no not-found answer to cache; drop notfound= and negative=", nf)
		return
	}
	own := r.x.pkg.Types
	pkg := own
	if nf.Qual != "" {
		if pkg = r.x.importNamed(r.c.c.Slash, nf.Qual); pkg == nil {
			r.errorf(off, "notfound=%s: package %s imports no package named %s; import it in the file that declares the interface (a blank import does not count), or name an error of package %s",
				nf, own.Name(), nf.Qual, own.Name())
			return
		}
	}
	obj := pkg.Scope().Lookup(nf.Name)
	if obj != nil && pkg != own && !obj.Exported() {
		r.errorf(off, "notfound=%s: %s is not exported by package %s, so the generated code cannot refer to it", nf, nf.Name, pkg.Name())
		return
	}
	if obj == nil && nf.Qual == "" && nf.Name == "error" {
		r.errorf(off, "notfound=%s: error is the interface that every error implements, so every failure would be cached as a not-found; name an error variable (notfound=ErrNotFound) or a concrete error type (notfound=*ErrUserNotExist)", nf)
		return
	}
	if obj == nil {
		hint := ""
		if c := errorsOf(pkg, pkg == own); len(c) > 0 {
			hint = fmt.Sprintf(" (the error variables and types of package %s: %s)", pkg.Name(), strings.Join(c, ", "))
		}
		r.errorf(off, "notfound=%s: package %s declares no %s; want an error variable (notfound=ErrNotFound, notfound=gorm.ErrRecordNotFound) or an error type (notfound=ErrUserNotExist, notfound=*ErrUserNotExist)%s",
			nf, pkg.Name(), nf.Name, hint)
		return
	}
	ref := &model.Named{Pkg: pkg.Path(), PkgName: pkg.Name(), Name: obj.Name()}
	switch obj := obj.(type) {
	case *types.Var:
		switch {
		case nf.Pointer:
			r.errorf(off, "notfound=%s: %s is a variable, not a type; write notfound=%s without the *", nf, nf.Name, strings.TrimPrefix(nf.String(), "*"))
		case !types.AssignableTo(obj.Type(), errorIface):
			r.errorf(off, "notfound=%s: %s is a variable of type %s, which is not an error; name an error variable (var %s = errors.New(...)) or an error type",
				nf, nf.Name, r.typeString(obj.Type()), nf.Name)
		default:
			out.NotFound = &model.NotFound{Var: ref}
		}
	case *types.TypeName:
		t := obj.Type()
		if n, ok := types.Unalias(t).(*types.Named); ok && n.TypeParams().Len() > 0 && n.TypeArgs().Len() == 0 {
			r.errorf(off, "notfound=%s: %s is generic; declare an alias of one instantiation (type NotFound = %s[...]) and name that", nf, nf.Name, nf.Name)
			return
		}
		if nf.Pointer {
			t = types.NewPointer(t)
		}
		if _, ok := t.Underlying().(*types.Interface); ok {
			r.errorf(off, "notfound=%s: %s is an interface type; notfound= wants a concrete error type (errors.As into an interface matches every error that implements it, and a cached not-found could not be rebuilt as its dynamic type) or an error variable",
				nf, nf.Name)
			return
		}
		if !types.Implements(t, errorIface) {
			if !nf.Pointer && types.Implements(types.NewPointer(t), errorIface) {
				r.errorf(off, "notfound=%s: %s has its Error method on the pointer receiver, so only *%s is an error: write notfound=*%s", nf, nf.Name, nf.Name, nf)
			} else {
				r.errorf(off, "notfound=%s: %s has no method Error() string, so it is not an error type; name an error variable or a type that implements error", nf, r.typeString(t))
			}
			return
		}
		if msg := (&storeCheck{pkg: own, seen: map[types.Type]bool{}}).check(t, "err"); msg != "" {
			r.errorf(off, "notfound=%s: a cached not-found stores the error's value, but %s; tag the field `msgpack:\"-\"` if the error may go without it, or use an error variable", nf, msg)
			return
		}
		mt, err := r.x.conv.convert(t)
		if err != nil {
			r.errorf(off, "notfound=%s: cannot generate code for %s: %v", nf, r.typeString(t), err)
			return
		}
		out.NotFound = &model.NotFound{Type: mt}
	default:
		kind := "a constant"
		switch obj.(type) {
		case *types.Func:
			kind = "a function"
		case *types.PkgName:
			kind = "a package"
		}
		r.errorf(off, "notfound=%s: %s is %s, neither an error variable nor an error type", nf, nf.Name, kind)
	}
}

// importNamed returns the package imported under name by the file that
// holds pos, or else the one package of that name that another file of the
// package imports; nil when there is none.
func (x *extractor) importNamed(pos token.Pos, name string) *types.Package {
	for _, f := range x.pkg.Files {
		if f.FileStart <= pos && pos <= f.FileEnd && x.pkg.Info != nil {
			if s := x.pkg.Info.Scopes[f]; s != nil {
				if pn, ok := s.Lookup(name).(*types.PkgName); ok {
					return pn.Imported()
				}
			}
		}
	}
	var found *types.Package
	for _, imp := range x.pkg.Types.Imports() {
		if imp.Name() == name {
			if found != nil && found != imp {
				return nil // ambiguous
			}
			found = imp
		}
	}
	return found
}

// errorsOf lists the error variables and error types that pkg declares,
// for a message: at most eight, exported ones only unless own.
func errorsOf(pkg *types.Package, own bool) []string {
	var out []string
	for _, name := range pkg.Scope().Names() {
		obj := pkg.Scope().Lookup(name)
		if !own && !obj.Exported() {
			continue
		}
		switch obj := obj.(type) {
		case *types.Var:
			if types.AssignableTo(obj.Type(), errorIface) {
				out = append(out, name)
			}
		case *types.TypeName:
			t := obj.Type()
			if _, ok := t.Underlying().(*types.Interface); ok {
				continue
			}
			if types.Implements(t, errorIface) {
				out = append(out, name)
			} else if types.Implements(types.NewPointer(t), errorIface) {
				out = append(out, "*"+name)
			}
		}
	}
	slices.Sort(out)
	if len(out) > 8 {
		out = append(out[:8], "...")
	}
	return out
}
