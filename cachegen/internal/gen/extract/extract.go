// Package extract is the second stage of cachegen: it reads the //cache:
// directives of a loaded package, resolves every template ref against the
// method's parameters and results with go/types, and produces the plain
// model that the renderer turns into code.
//
// Every problem is recorded in a diag.List with the position of the exact
// text at fault (a ref inside a directive comment, a method, an embedded
// interface); extraction goes on after a problem so that one run reports
// them all.
package extract

import (
	"cmp"
	"errors"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/repocache/repocache/cachegen/internal/directive"
	"github.com/repocache/repocache/cachegen/internal/gen/diag"
	"github.com/repocache/repocache/cachegen/internal/gen/load"
	"github.com/repocache/repocache/cachegen/internal/gen/model"
)

// MutationPrefixes are the method name prefixes that mark a mutation: such
// a method needs a directive (cache:invalidate, cache:put or cache:skip).
// The first nine are the original contract; the others were added on
// 2026-12-01, after wrapping real services let writes named so through.
var MutationPrefixes = []string{
	"Create", "Update", "Upsert", "Delete", "Remove", "Save", "Set", "Insert", "Patch",
	"Add", "Append", "Archive", "Change", "Clean", "Clear", "Consume", "Decr", "Disable", "Enable",
	"Follow", "Incr", "Increment", "Mark", "Merge", "Move", "Publish", "Purge", "Rename", "Replace", "Reset",
	"Restore", "Revoke", "Star", "Toggle", "Touch", "Unfollow", "Unstar", "Unwatch", "Watch",
}

// IsMutation reports whether name begins with a mutation prefix followed by
// the end of the name or a character that is not a lower-case letter, so
// that SetName and Delete count and Settings or Saved do not.
func IsMutation(name string) bool {
	for _, p := range MutationPrefixes {
		if rest, ok := strings.CutPrefix(name, p); ok {
			r, _ := utf8.DecodeRuneInString(rest)
			if rest == "" || !unicode.IsLower(r) {
				return true
			}
		}
	}
	return false
}

// comment is a parsed directive line with its position.
type comment struct {
	c    *ast.Comment
	d    *directive.Directive
	errs []*directive.Error
}

// methodDecl is a method declared in an interface type of the package.
type methodDecl struct {
	iface string // the declaring interface's name
	name  *ast.Ident
	dirs  []*comment
}

// ifaceDecl is an interface type declared in the package.
type ifaceDecl struct {
	spec   *ast.TypeSpec
	it     *ast.InterfaceType
	repo   *ast.Comment // the //cache:repo line, if any
	strict bool         // //cache:repo strict
	embeds []ast.Expr   // embedded types, in source order
}

type extractor struct {
	pkg                *load.Package
	diags              *diag.List
	conv               typeConv
	ifaces             map[string]*ifaceDecl
	order              []string                  // interface names in source order
	methods            map[token.Pos]*methodDecl // by the position of the method name
	visited            map[token.Pos]bool        // method declarations reached from a repo interface
	consumed           map[*ast.Comment]bool     // directive lines read from a doc comment
	stored             []*storedKey              // the keys that gets and puts store under
	reportedTypeErrors bool
}

// Extract builds the model of the package's //cache:repo interfaces, or of
// those named in typeNames when it is not empty. Problems go to diags; the
// model is complete only when diags stays empty.
func Extract(pkg *load.Package, typeNames []string, diags *diag.List) *model.Package {
	x := &extractor{
		pkg:      pkg,
		diags:    diags,
		conv:     typeConv{pkg: pkg.Types},
		ifaces:   map[string]*ifaceDecl{},
		methods:  map[token.Pos]*methodDecl{},
		visited:  map[token.Pos]bool{},
		consumed: map[*ast.Comment]bool{},
	}
	m := &model.Package{Name: pkg.Name, Path: pkg.Path, Scope: pkg.Types.Scope().Names()}
	x.scan()

	var selected []string
	if len(typeNames) > 0 {
		for _, name := range typeNames {
			d, ok := x.ifaces[name]
			switch {
			case !ok && pkg.Types.Scope().Lookup(name) != nil:
				diags.Add(token.Position{}, "-type %s: %s is not an interface type", name, name)
			case !ok:
				diags.Add(token.Position{}, "-type %s: no interface %s in package %s", name, name, pkg.Path)
			case d.repo == nil:
				diags.Add(x.pos(d.spec.Name.Pos()), "-type %s: interface %s has no //cache:repo line in its doc comment", name, name)
			case slices.Contains(selected, name):
			default:
				selected = append(selected, name)
			}
		}
	} else {
		for _, name := range x.order {
			if x.ifaces[name].repo != nil {
				selected = append(selected, name)
			}
		}
		if len(selected) == 0 && diags.Len() == 0 {
			diags.Add(token.Position{}, "no //cache:repo interface in package %s", pkg.Path)
		}
	}

	// Mark the method declarations reached from any repo interface, so
	// that directives elsewhere can be reported.
	for _, name := range x.order {
		if d := x.ifaces[name]; d.repo != nil {
			if obj, ok := pkg.Types.Scope().Lookup(name).(*types.TypeName); ok {
				if it, ok := obj.Type().Underlying().(*types.Interface); ok {
					x.mark(it)
				}
			}
		}
	}
	for _, md := range x.sortedMethods() {
		if !x.visited[md.name.Pos()] && len(md.dirs) > 0 {
			c := md.dirs[0]
			x.diags.Add(x.pos(c.c.Slash), "%s on %s.%s: %s is not a //cache:repo interface nor embedded in one; add //cache:repo to its doc comment",
				verbOf(c.c.Text), md.iface, md.name.Name, md.iface)
		}
	}

	x.strayComments()

	for _, name := range selected {
		if it := x.iface(name); it != nil {
			m.Interfaces = append(m.Interfaces, it)
		}
	}
	x.keyClashes()
	return m
}

// strayComments reports the comment lines that cachegen would otherwise
// ignore without a word: lines that look like a directive but are not one
// (// cache:get, //Cache:get), and directives outside the doc comment of an
// interface or of an interface method (after a blank line, say, or at the
// end of the method's line).
func (x *extractor) strayComments() {
	for _, f := range x.pkg.Files {
		for _, g := range f.Comments {
			for _, c := range g.List {
				if off, msg := directive.Misspelt(c.Text); msg != "" {
					x.diags.Add(x.at(c, off), "%s", msg)
					continue
				}
				if x.consumed[c] {
					continue
				}
				if d, errs := directive.Parse(c.Text); d != nil || errs != nil {
					what := "an interface method, so it has no effect: put it in the method's doc comment, on the lines directly above the method with no blank line between"
					if d != nil && d.Kind == directive.KindRepo {
						what = "an interface type, so it has no effect: put it in the interface's doc comment, directly above type ... interface with no blank line between"
					}
					x.diags.Add(x.pos(c.Slash), "%s is not in the doc comment of %s", verbOf(c.Text), what)
				}
			}
		}
	}
}

func verbOf(line string) string {
	v, _, _ := strings.Cut(strings.TrimPrefix(line, "//"), " ")
	v, _, _ = strings.Cut(v, "\t")
	return v
}

func (x *extractor) pos(p token.Pos) token.Position { return x.pkg.Fset.Position(p) }

// at is the position of byte offset off in comment c.
func (x *extractor) at(c *ast.Comment, off int) token.Position {
	p := x.pos(c.Slash)
	p.Column += off
	p.Offset += off
	return p
}

func (x *extractor) sortedMethods() []*methodDecl {
	var out []*methodDecl
	for _, md := range x.methods {
		out = append(out, md)
	}
	slices.SortFunc(out, func(a, b *methodDecl) int { return cmp.Compare(a.name.Pos(), b.name.Pos()) })
	return out
}

// directives parses the //cache: lines of a doc comment.
func (x *extractor) directives(doc *ast.CommentGroup) []*comment {
	if doc == nil {
		return nil
	}
	var out []*comment
	for _, c := range doc.List {
		d, errs := directive.Parse(c.Text)
		if d == nil && errs == nil {
			continue
		}
		x.consumed[c] = true
		out = append(out, &comment{c: c, d: d, errs: errs})
	}
	return out
}

// scan finds the interface declarations and the directives of the package.
func (x *extractor) scan() {
	for _, f := range x.pkg.Files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				spec := s.(*ast.TypeSpec)
				doc := spec.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				it, isIface := spec.Type.(*ast.InterfaceType)
				d := &ifaceDecl{spec: spec, it: it}
				for _, c := range x.directives(doc) {
					if len(c.errs) > 0 {
						x.parseErrors(c, "")
						continue
					}
					switch {
					case c.d.Kind != directive.KindRepo:
						x.diags.Add(x.pos(c.c.Slash), "cache:%s belongs in the doc comment of a method of a //cache:repo interface, not of type %s", c.d.Kind, spec.Name.Name)
					case !isIface:
						x.diags.Add(x.pos(c.c.Slash), "cache:repo on %s, which is not an interface type", spec.Name.Name)
					case d.repo != nil:
						x.diags.Add(x.pos(c.c.Slash), "duplicate cache:repo on %s", spec.Name.Name)
					default:
						d.repo, d.strict = c.c, c.d.Strict
					}
				}
				if !isIface {
					continue
				}
				x.ifaces[spec.Name.Name] = d
				x.order = append(x.order, spec.Name.Name)
				for _, fld := range it.Methods.List {
					if len(fld.Names) == 0 {
						d.embeds = append(d.embeds, fld.Type)
						continue
					}
					md := &methodDecl{iface: spec.Name.Name, name: fld.Names[0], dirs: x.directives(fld.Doc)}
					x.methods[md.name.Pos()] = md
				}
			}
		}
	}
}

// parseErrors reports the syntax errors of a directive line; where names
// the method it documents, if any.
func (x *extractor) parseErrors(c *comment, where string) {
	prefix := verbOf(c.c.Text)
	if where != "" {
		prefix += " on " + where
	}
	for _, e := range c.errs {
		x.diags.Add(x.at(c.c, e.Offset), "%s: %s", prefix, e.Msg)
	}
}

// typeErrors reports the package's type errors, once: they are why a type
// of a decorated interface is invalid.
func (x *extractor) typeErrors() {
	if x.reportedTypeErrors {
		return
	}
	x.reportedTypeErrors = true
	for _, e := range x.pkg.Errors {
		x.diags.Add(e.Fset.Position(e.Pos), "%s", e.Msg)
	}
}

// mark records the method declarations reachable from it.
func (x *extractor) mark(it *types.Interface) {
	for i := range it.NumMethods() {
		x.visited[it.Method(i).Origin().Pos()] = true
	}
}

// ifaceMethod is a method of a repo interface and where to report problems
// with it when it is not declared in the package (the embedding site).
type ifaceMethod struct {
	fn  *types.Func
	via token.Pos
}

// collect lists the methods of it: its own in source order, then those of
// each embedded interface, depth first; a name seen earlier wins.
func (x *extractor) collect(it *types.Interface, via token.Pos, embeds []ast.Expr, seen map[string]bool, out *[]ifaceMethod) {
	var own []*types.Func
	for i := range it.NumExplicitMethods() {
		own = append(own, it.ExplicitMethod(i))
	}
	slices.SortStableFunc(own, func(a, b *types.Func) int { return cmp.Compare(a.Origin().Pos(), b.Origin().Pos()) })
	for _, m := range own {
		if !seen[m.Name()] {
			seen[m.Name()] = true
			*out = append(*out, ifaceMethod{fn: m, via: via})
		}
	}
	for i := range it.NumEmbeddeds() {
		e := it.EmbeddedType(i)
		sub, ok := e.Underlying().(*types.Interface)
		if !ok {
			continue
		}
		v := via
		var subEmbeds []ast.Expr
		if i < len(embeds) {
			v = embeds[i].Pos()
		}
		if n, ok := types.Unalias(e).(*types.Named); ok && n.Obj().Pkg() == x.pkg.Types {
			if d := x.ifaces[n.Obj().Name()]; d != nil {
				subEmbeds = d.embeds
			}
		}
		x.collect(sub, v, subEmbeds, seen, out)
	}
}

func (x *extractor) iface(name string) *model.Interface {
	d := x.ifaces[name]
	obj, _ := x.pkg.Types.Scope().Lookup(name).(*types.TypeName)
	if obj == nil {
		return nil
	}
	named, ok := obj.Type().(*types.Named)
	if !ok {
		x.diags.Add(x.pos(d.spec.Name.Pos()), "%s: an alias cannot be decorated; put //cache:repo on the interface it names", name)
		return nil
	}
	if named.TypeParams().Len() > 0 {
		x.diags.Add(x.pos(d.spec.Name.Pos()), "%s is generic, which is not supported: declare a named interface that instantiates it (type UserRepo interface{ %s[User] }) and mark that one //cache:repo", name, name)
		return nil
	}
	for _, gen := range []string{name + "Cache", "New" + name + "Cache"} {
		if o := x.pkg.Types.Scope().Lookup(gen); o != nil {
			x.diags.Add(x.pos(d.spec.Name.Pos()), "cannot generate %s for %s: %s is already declared at %s", gen, name, gen, x.pos(o.Pos()))
		}
	}
	it := named.Underlying().(*types.Interface)
	if !it.IsMethodSet() {
		x.diags.Add(x.pos(d.spec.Name.Pos()), "%s is a constraint interface (it has a type set), which cannot be decorated", name)
		return nil
	}
	var ms []ifaceMethod
	x.collect(it, d.spec.Name.Pos(), d.embeds, map[string]bool{}, &ms)
	out := &model.Interface{Name: name}
	for _, im := range ms {
		if m := x.method(name, im); m != nil {
			out.Methods = append(out.Methods, m)
		}
	}
	return out
}

func (x *extractor) isContext(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}

func isError(t types.Type) bool {
	return types.Identical(t, types.Universe.Lookup("error").Type())
}

func (x *extractor) method(iface string, im ifaceMethod) *model.Method {
	fn := im.fn
	md := x.methods[fn.Origin().Pos()]
	where := fmt.Sprintf("%s.%s", iface, fn.Name())
	blame := im.via
	if md != nil {
		blame = md.name.Pos()
	}
	if !fn.Exported() && fn.Pkg() != x.pkg.Types {
		x.diags.Add(x.pos(blame), "%s: unexported method %s of package %s cannot be implemented outside that package", where, fn.Name(), fn.Pkg().Name())
		return nil
	}
	sig := fn.Type().(*types.Signature)
	m := &model.Method{Name: fn.Name(), Variadic: sig.Variadic()}
	ok := true
	for i := range sig.Params().Len() {
		p := sig.Params().At(i)
		t, err := x.conv.convert(p.Type())
		if err != nil && errors.Is(err, errInvalid) {
			x.typeErrors()
			ok = false
			continue
		}
		if err != nil {
			x.diags.Add(x.pos(blame), "%s: parameter %d: cannot generate code for its type: %v", where, i+1, err)
			ok = false
			continue
		}
		m.Params = append(m.Params, &model.Param{Name: p.Name(), Type: t})
	}
	for i := range sig.Results().Len() {
		t, err := x.conv.convert(sig.Results().At(i).Type())
		if err != nil && errors.Is(err, errInvalid) {
			x.typeErrors()
			ok = false
			continue
		}
		if err != nil {
			x.diags.Add(x.pos(blame), "%s: result %d: cannot generate code for its type: %v", where, i+1, err)
			ok = false
			continue
		}
		m.Results = append(m.Results, t)
	}
	if !ok {
		return nil
	}

	var dirs []*comment
	if md != nil {
		dirs = md.dirs
	}
	for _, c := range dirs[min(1, len(dirs)):] {
		x.diags.Add(x.pos(c.c.Slash), "%s: more than one directive; a method carries at most one", where)
	}
	if len(dirs) == 0 {
		if x.ifaces[iface].strict {
			if md == nil {
				x.diags.Add(x.pos(blame), "%s has no directive, and %s is //cache:repo strict: redeclare it in %s with //cache:get, //cache:put, //cache:invalidate or //cache:skip", where, iface, iface)
			} else {
				x.diags.Add(x.pos(blame), "%s has no directive, and %s is //cache:repo strict: add //cache:get, //cache:put, //cache:invalidate or //cache:skip", where, iface)
			}
			return m
		}
		if IsMutation(fn.Name()) {
			if md == nil {
				x.diags.Add(x.pos(blame), "%s has no directive and its name says it changes data; redeclare it in %s with //cache:invalidate, //cache:put or //cache:skip", where, iface)
			} else {
				x.diags.Add(x.pos(blame), "%s has no directive and its name says it changes data; say what it invalidates (//cache:invalidate or //cache:put) or add //cache:skip", where)
			}
		}
		return m
	}
	c := dirs[0]
	if len(c.errs) > 0 {
		x.parseErrors(c, where)
		return m
	}
	m.Source = c.c.Text
	switch c.d.Kind {
	case directive.KindSkip:
		m.Skip = true
		return m
	case directive.KindRepo:
		x.diags.Add(x.pos(c.c.Slash), "%s: cache:repo belongs in the doc comment of the interface, not of a method", where)
		return m
	}
	r := &resolver{x: x, c: c, d: c.d, where: fmt.Sprintf("cache:%s on %s", c.d.Kind, where), sig: sig}
	if d := x.ifaces[md.iface]; d != nil && d.spec.TypeParams != nil {
		r.generic = md.iface
	}
	m.Directive = r.resolve()
	return m
}
