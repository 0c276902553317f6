package extract

import (
	"fmt"
	"go/types"
	"strings"

	"github.com/repocache/repocache/cachegen/internal/directive"
	"github.com/repocache/repocache/cachegen/internal/gen/model"
)

// resolver resolves one get, put or invalidate directive against its
// method's signature.
type resolver struct {
	x     *extractor
	c     *comment
	d     *directive.Directive
	where string // "cache:get on UserRepo.Find", prefixes every message
	sig   *types.Signature
	// generic names the generic interface that declares the method, if
	// any: its instantiations share the key templates by design.
	generic string
	// loop is set while resolving templates that may name one key or tag
	// per element of a slice: invalidate keys and tags, put invalidate=.
	loop bool
	// errs is 1 when the method returns an error last, else 0.
	errs int

	failed bool
	result types.Type // what {result} means: the first result, or a batch element
	batch  *model.Batch
	ids    string // the root of the ids[] ref of a batch get
}

func (r *resolver) errorf(off int, format string, args ...any) {
	r.x.diags.Add(r.x.at(r.c.c, off), "%s: %s", r.where, fmt.Sprintf(format, args...))
	r.failed = true
}

func (r *resolver) resolve() *model.Directive {
	d := r.d
	params, results := r.sig.Params(), r.sig.Results()
	hasCtx := params.Len() > 0 && r.x.isContext(params.At(0).Type())
	hasErr := results.Len() > 0 && isError(results.At(results.Len()-1).Type())
	for i := 1; i < params.Len(); i++ {
		if r.x.isContext(params.At(i).Type()) {
			r.errorf(0, "the context.Context must be the first parameter, not parameter %d", i+1)
		}
	}
	for i := 0; i < results.Len()-1; i++ {
		if isError(results.At(i).Type()) {
			r.errorf(0, "the error must be the last result, not result %d", i+1)
		}
	}
	if d.Kind == directive.KindPut {
		if !hasCtx {
			r.errorf(0, "the method must take a context.Context as its first parameter (a put runs inside the caller's transaction; gets and invalidations may go without one)")
		}
		if !hasErr {
			r.errorf(0, "the method must return an error as its last result: a put stores the result only when the call succeeded")
		}
	}
	if r.failed {
		return nil
	}
	n := results.Len()
	if hasErr {
		n--
		r.errs = 1
	}
	out := &model.Directive{TTL: d.TTL, Jitter: d.Jitter, SWR: d.SWR, Negative: d.Negative, L1: d.L1, Lock: model.LockMode(d.Lock), LockSet: d.LockSet,
		NoCtx: !hasCtx, NoErr: !hasErr}
	switch d.Kind {
	case directive.KindGet:
		out.Kind = model.Get
		if n == 0 {
			r.errorf(0, "nothing to cache: the method returns %s; use cache:invalidate or cache:skip for it", map[bool]string{true: "only an error", false: "nothing"}[hasErr])
			return nil
		}
		r.result = results.At(0).Type()
	case directive.KindPut:
		out.Kind = model.Put
		switch {
		case n == 0:
			r.errorf(0, "nothing to store: cache:put needs a result before the error; use cache:invalidate for a method that returns only an error")
			return nil
		case n > 1:
			r.errorf(0, "cache:put stores one result, but the method returns %d values before the error", n)
			return nil
		}
		r.result = results.At(0).Type()
	case directive.KindInvalidate:
		out.Kind = model.Invalidate
		if n > 0 {
			r.result = results.At(0).Type()
		}
	}

	if d.Kind == directive.KindGet {
		r.batchGet(out)
		if r.failed {
			return nil
		}
	}
	if d.Key != nil {
		out.Key = r.template(d.Key)
	}
	r.loop = d.Kind == directive.KindInvalidate
	out.Keys = r.templates(d.Keys)
	out.Tags = r.templates(d.Tags)
	out.Attach = r.templates(d.Attach)
	r.loop = true
	out.Invalidate = r.templates(d.Invalidate)
	r.loop = false
	if d.Kind == directive.KindGet && !r.failed {
		r.unkeyed()
		r.notFound(out)
	}
	var stored []types.Type
	switch {
	case d.Kind == directive.KindGet && r.batch != nil:
		stored = []types.Type{r.result}
	case d.Kind == directive.KindGet:
		for i := range n {
			stored = append(stored, results.At(i).Type())
		}
	case d.Kind == directive.KindPut:
		stored = []types.Type{r.result}
	}
	for _, t := range stored {
		if msg := unstorable(t, r.x.pkg.Types); msg != "" {
			r.errorf(0, "%s cannot be cached: %s; return a concrete type, or tag the field `msgpack:\"-\"` if the cached value may go without it", r.typeString(t), msg)
		}
	}
	if r.failed {
		return nil
	}
	if stored != nil {
		r.x.stored = append(r.x.stored, &storedKey{where: r.where, pos: r.x.at(r.c.c, d.Key.Offset), raw: d.Key.Raw, key: out.Key, types: stored, generic: r.generic})
	}
	return out
}

// unkeyed checks that every parameter but the context appears in the key
// of a get, or is listed in unkeyed=: calls that differ only in a
// parameter left out would share one entry.
func (r *resolver) unkeyed() {
	inKey := map[string]bool{}
	for _, s := range r.d.Key.Segments {
		if s.Ref != nil {
			inKey[s.Ref.Root] = true
		}
	}
	params := r.sig.Params()
	first := 0
	if params.Len() > 0 && r.x.isContext(params.At(0).Type()) {
		first = 1
	}
	listed := map[string]bool{}
	for _, u := range r.d.Unkeyed {
		i := -1
		for j := range params.Len() {
			if params.At(j).Name() == u.Name {
				i = j
			}
		}
		switch {
		case i < 0:
			r.errorf(u.Offset, "unkeyed=%s: the method has no parameter %s", u.Name, u.Name)
		case i < first:
			r.errorf(u.Offset, "unkeyed=%s: the context is never part of a key; remove it from unkeyed=", u.Name)
		case inKey[u.Name]:
			r.errorf(u.Offset, "unkeyed=%s: %s is in the key; remove it from unkeyed= or from the key", u.Name, u.Name)
		case listed[u.Name]:
			r.errorf(u.Offset, "unkeyed=%s: listed twice", u.Name)
		}
		listed[u.Name] = true
	}
	for i := first; i < params.Len(); i++ {
		p := params.At(i)
		name := p.Name()
		if inKey[name] || listed[name] {
			continue
		}
		if name == "" || name == "_" {
			r.errorf(r.d.Key.Offset, "key=%s cannot tell calls apart by parameter %d, which has no name: name it and add it to the key (or to unkeyed= if it does not change the result)", r.d.Key.Raw, i+1)
			continue
		}
		r.errorf(r.d.Key.Offset, "key=%s leaves out parameter %s: calls that differ only in %s would share one entry; %s, or list it in unkeyed=%s if it does not change the result",
			r.d.Key.Raw, name, name, r.addHint(name, p.Type()), name)
	}
}

// addHint says how to put a parameter into a key.
func (r *resolver) addHint(name string, t types.Type) string {
	if _, _, msg := r.render(t); msg == "" {
		return fmt.Sprintf("add {%s} to the key", name)
	}
	base := t
	if p, ok := t.Underlying().(*types.Pointer); ok {
		base = p.Elem()
	}
	if st, ok := base.Underlying().(*types.Struct); ok {
		var fields []string
		for i := range st.NumFields() {
			f := st.Field(i)
			if _, _, msg := r.render(f.Type()); msg == "" && (f.Exported() || f.Pkg() == r.x.pkg.Types) {
				fields = append(fields, "{"+name+"."+f.Name()+"}")
			}
		}
		if len(fields) > 0 {
			return "add the fields that select the result to the key, such as " + strings.Join(fields, ":")
		}
	}
	if _, ok := t.Underlying().(*types.Slice); ok {
		return fmt.Sprintf("a slice cannot be part of a single key (a batch get names one key per element with {%s[]})", name)
	}
	return fmt.Sprintf("%s has type %s, which cannot be rendered into a key", name, r.typeString(t))
}

// batchGet recognises a batch get ({ids[]} in the key) and checks its shape.
func (r *resolver) batchGet(out *model.Directive) {
	var idsRef *directive.Ref
	for _, s := range r.d.Key.Segments {
		if s.Ref != nil && s.Ref.Each && s.Ref.Root != "result" {
			idsRef = s.Ref
			break
		}
	}
	byOff := r.d.Key.Offset
	if i := strings.Index(r.c.c.Text, " by="); i >= 0 {
		byOff = i + len(" by=")
	} else if i := strings.Index(r.c.c.Text, "\tby="); i >= 0 {
		byOff = i + len(" by=")
	}
	if idsRef == nil {
		if r.d.By != "" {
			r.errorf(byOff, "by= applies only to a batch get, whose key has a {ids[]} ref")
		}
		return
	}
	pi, ok := r.param(idsRef)
	if !ok {
		return
	}
	p := r.sig.Params().At(pi)
	ps, ok := p.Type().Underlying().(*types.Slice)
	if !ok {
		r.errorf(idsRef.Offset, "{%s[]} needs a slice parameter, but %s has type %s", idsRef.Root, idsRef.Root, r.typeString(p.Type()))
		return
	}
	results := r.sig.Results()
	if n := results.Len() - r.errs; n != 1 {
		r.errorf(0, "a batch get returns one slice (and an error), but the method returns %d values", n)
		return
	}
	rs, ok := results.At(0).Type().Underlying().(*types.Slice)
	if !ok {
		r.errorf(idsRef.Offset, "a batch get must return a slice, but the method returns %s", r.typeString(results.At(0).Type()))
		return
	}
	elem := rs.Elem()
	b := &model.Batch{Param: pi}
	base := elem
	if pt, ok := elem.(*types.Pointer); ok {
		b.ElemPointer = true
		base = pt.Elem()
	}
	if _, ok := base.Underlying().(*types.Struct); !ok {
		r.errorf(idsRef.Offset, "a batch get must return a slice of structs or of pointers to structs, but the element type is %s", r.typeString(elem))
		return
	}
	by := r.d.By
	if by == "" {
		by = "ID"
	}
	steps, ft, msg := r.field(base, by, false)
	if msg != "" {
		r.errorf(byOff, "by=%s: %s (the field holding each element's id; by= names it, default ID)", by, msg)
		return
	}
	if !types.Identical(ft, ps.Elem()) {
		r.errorf(byOff, "by=%s: the id field %s.%s has type %s, but %s has elements of type %s; they must be the same type",
			by, r.typeString(base), by, r.typeString(ft), idsRef.Root, r.typeString(ps.Elem()))
		return
	}
	var err error
	if b.ID, err = r.x.conv.convert(ps.Elem()); err != nil {
		r.errorf(idsRef.Offset, "cannot generate code for %s: %v", r.typeString(ps.Elem()), err)
		return
	}
	if b.Elem, err = r.x.conv.convert(elem); err != nil {
		r.errorf(idsRef.Offset, "cannot generate code for %s: %v", r.typeString(elem), err)
		return
	}
	b.By = steps
	out.Batch = b
	r.batch = b
	r.ids = idsRef.Root
	r.result = elem
}

func (r *resolver) typeString(t types.Type) string {
	return types.TypeString(t, types.RelativeTo(r.x.pkg.Types))
}

func (r *resolver) templates(ts []*directive.Template) []*model.Template {
	var out []*model.Template
	for _, t := range ts {
		out = append(out, r.template(t))
	}
	return out
}

func (r *resolver) template(t *directive.Template) *model.Template {
	out := &model.Template{Raw: t.Raw}
	for _, s := range t.Segments {
		if s.Ref == nil {
			out.Parts = append(out.Parts, model.Part{Literal: s.Literal})
			continue
		}
		if ref := r.ref(s.Ref); ref != nil {
			out.Parts = append(out.Parts, model.Part{Ref: ref})
		}
	}
	return out
}

// param finds the parameter named by ref's root.
func (r *resolver) param(ref *directive.Ref) (int, bool) {
	params := r.sig.Params()
	var names []string
	for i := range params.Len() {
		name := params.At(i).Name()
		if name == ref.Root && name != "_" {
			return i, true
		}
		if name != "" && name != "_" {
			names = append(names, name)
		}
	}
	list := "it has no named parameters"
	if len(names) > 0 {
		list = "parameters: " + strings.Join(names, ", ")
	}
	r.errorf(ref.Offset, "unknown parameter %q in {%s} (%s; result means the result)", ref.Root, ref, list)
	return 0, false
}

func (r *resolver) ref(ref *directive.Ref) *model.Ref {
	out := &model.Ref{Text: ref.String()}
	var t types.Type
	what := ref.Root
	switch {
	case ref.Root == "result" && r.batch != nil:
		if ref.Each {
			r.errorf(ref.Offset, "in a batch get, {result} already means each element: write {%s} without []", strings.Replace(ref.String(), "[]", "", 1))
			return nil
		}
		out.Source, t = model.FromResult, r.result
	case ref.Root == "result" && r.result == nil:
		r.errorf(ref.Offset, "{%s}: the method returns %s, so there is no result to use; name a parameter instead", ref, map[bool]string{true: "only an error", false: "nothing"}[r.sig.Results().Len() > 0])
		return nil
	case ref.Root == "result" && ref.Each:
		s, ok := r.result.Underlying().(*types.Slice)
		if !ok {
			r.errorf(ref.Offset, "{%s} needs a slice result, but the method returns %s", ref, r.typeString(r.result))
			return nil
		}
		out.Source, t, what = model.FromResultEach, s.Elem(), "result[]"
	case ref.Root == "result":
		out.Source, t = model.FromResult, r.result
	default:
		pi, ok := r.param(ref)
		if !ok {
			return nil
		}
		out.Param, t = pi, r.sig.Params().At(pi).Type()
		out.Source = model.FromParam
		if ref.Each && r.loop {
			s, ok := t.Underlying().(*types.Slice)
			if !ok {
				r.errorf(ref.Offset, "{%s} needs a slice parameter, but %s has type %s", ref, ref.Root, r.typeString(t))
				return nil
			}
			out.Source, t, what = model.FromParamEach, s.Elem(), ref.Root+"[]"
		} else if ref.Each {
			if ref.Root != r.ids {
				r.errorf(ref.Offset, "only a batch get key may use %s[]", ref.Root)
				return nil
			}
			out.Source, t, what = model.FromID, r.sig.Params().At(pi).Type().Underlying().(*types.Slice).Elem(), ref.Root+"[]"
			if _, ok := t.Underlying().(*types.Pointer); ok && len(ref.Fields) > 0 {
				r.errorf(ref.Offset, "{%s}: the ids are pointers; a batch key may select fields of struct ids only", ref)
				return nil
			}
		}
	}
	for _, f := range ref.Fields {
		steps, ft, msg := r.field(t, f, true)
		if msg != "" {
			r.errorf(ref.Offset, "{%s}: %s has type %s: %s", ref, what, r.typeString(t), msg)
			return nil
		}
		out.Path = append(out.Path, steps...)
		t = ft
		what += "." + f
	}
	if out.Source == model.FromID && len(out.Path) > 0 {
		for _, s := range out.Path {
			if s.Nil {
				r.errorf(ref.Offset, "{%s}: the path goes through a pointer, which a batch key cannot check for nil", ref)
				return nil
			}
		}
	}
	rn, isNil, msg := r.render(t)
	if msg != "" {
		r.errorf(ref.Offset, "{%s}: %s has type %s, which cannot be rendered into a key: %s", ref, what, r.typeString(t), r.renderHint(ref, what, t, msg))
		return nil
	}
	for i, name := range ref.Transforms {
		switch name {
		case "lower":
			if rn.Kind != model.RenderString && rn.Kind != model.RenderStringer {
				r.errorf(ref.TransformOffsets[i], "{%s}: |lower applies to text, but %s has type %s", ref, what, r.typeString(t))
				return nil
			}
			out.Transforms = append(out.Transforms, model.Lower)
		case "hash":
			out.Transforms = append(out.Transforms, model.Hash)
		}
	}
	if out.Source == model.FromID && isNil {
		r.errorf(ref.Offset, "{%s}: %s has type %s, which can be nil; a batch key cannot check it", ref, what, r.typeString(t))
		return nil
	}
	out.Render, out.Nil = rn, isNil
	return out
}

// field selects field name from a value of type t (a struct or a pointer
// to one). It returns the steps (embedded fields spelt out), the field's
// type, or a message saying why it cannot.
func (r *resolver) field(t types.Type, name string, allowPtr bool) ([]model.Step, types.Type, string) {
	nilable := false
	if p, ok := t.Underlying().(*types.Pointer); ok {
		if !allowPtr {
			return nil, nil, "not a struct"
		}
		nilable, t = true, p.Elem()
	}
	if _, ok := t.Underlying().(*types.Struct); !ok {
		return nil, nil, fmt.Sprintf("not a struct, so it has no field %s", name)
	}
	obj, index, _ := types.LookupFieldOrMethod(t, false, r.x.pkg.Types, name)
	switch obj := obj.(type) {
	case nil:
		return nil, nil, fmt.Sprintf("no field %s%s", name, r.fieldList(t))
	case *types.Func:
		return nil, nil, fmt.Sprintf("%s is a method; a template selects fields only", obj.Name())
	}
	var steps []model.Step
	cur := t
	for j, idx := range index {
		if j > 0 {
			if p, ok := cur.Underlying().(*types.Pointer); ok {
				nilable, cur = true, p.Elem()
			}
		}
		s := cur.Underlying().(*types.Struct)
		f := s.Field(idx)
		steps = append(steps, model.Step{Field: f.Name(), Nil: nilable})
		nilable = false
		cur = f.Type()
	}
	return steps, cur, ""
}

func (r *resolver) fieldList(t types.Type) string {
	s := t.Underlying().(*types.Struct)
	var names []string
	for i := range s.NumFields() {
		f := s.Field(i)
		if f.Exported() || f.Pkg() == r.x.pkg.Types {
			names = append(names, f.Name())
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (fields: " + strings.Join(names, ", ") + ")"
}

// render decides how a value of type t becomes key text: a string kind, an
// integer kind or a fmt.Stringer, possibly behind one pointer.
func (r *resolver) render(t types.Type) (model.Render, bool, string) {
	var rn model.Render
	isNil := false
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		isNil, rn.Deref, t = true, true, p.Elem()
	}
	if isTime(t) {
		return rn, false, "its String() carries the monotonic clock reading and the location, so one instant gives several keys; pass a Unix time (int64) or a formatted string instead"
	}
	if b, ok := t.Underlying().(*types.Basic); ok {
		switch {
		case b.Info()&types.IsString != 0:
			rn.Kind, rn.Convert = model.RenderString, !types.Identical(t, types.Typ[types.String])
			return rn, isNil, ""
		case b.Info()&types.IsUnsigned != 0:
			rn.Kind, rn.Convert = model.RenderUint, !types.Identical(t, types.Typ[types.Uint64])
			return rn, isNil, ""
		case b.Info()&types.IsInteger != 0:
			rn.Kind, rn.Convert = model.RenderInt, !types.Identical(t, types.Typ[types.Int64])
			return rn, isNil, ""
		case b.Info()&types.IsBoolean != 0:
			rn.Kind, rn.Convert = model.RenderBool, !types.Identical(t, types.Typ[types.Bool])
			return rn, isNil, ""
		}
	}
	recv := t
	_, isIface := t.Underlying().(*types.Interface)
	if !isIface {
		recv = types.NewPointer(t)
	}
	if obj, _, _ := types.LookupFieldOrMethod(recv, false, r.x.pkg.Types, "String"); obj != nil {
		if fn, ok := obj.(*types.Func); ok {
			sig := fn.Type().(*types.Signature)
			if sig.Params().Len() == 0 && sig.Results().Len() == 1 && types.Identical(sig.Results().At(0).Type(), types.Typ[types.String]) {
				rn.Kind, rn.Deref = model.RenderStringer, false
				return rn, isNil || isIface, ""
			}
		}
	}
	return rn, false, "want a string, an integer, a bool or a fmt.Stringer"
}

// renderHint is the message for a ref whose value cannot be rendered: the
// fix, where one is clear.
func (r *resolver) renderHint(ref *directive.Ref, what string, t types.Type, msg string) string {
	base := t
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		base = p.Elem()
	}
	if st, ok := base.Underlying().(*types.Struct); ok && !isTime(base) {
		for i := range st.NumFields() {
			f := st.Field(i)
			if _, _, m := r.render(f.Type()); m == "" && (f.Exported() || f.Pkg() == r.x.pkg.Types) {
				plain := *ref
				plain.Transforms = nil
				return fmt.Sprintf("it is a struct; use a field such as {%s.%s}", plain.String(), f.Name())
			}
		}
		return "it is a struct; use one of its fields, which must be a string, an integer, a bool or a fmt.Stringer"
	}
	if _, ok := base.Underlying().(*types.Slice); ok && ref.Root != "result" && !ref.Each && len(ref.Fields) == 0 {
		switch {
		case r.loop:
			return fmt.Sprintf("it is a slice; use {%s[]} for one key or tag per element", ref.Root)
		case r.d.Kind == directive.KindGet && r.d.Key != nil:
			return fmt.Sprintf("it is a slice; a get key with {%s[]} is a batch get, one key per element", ref.Root)
		}
	}
	if _, ok := base.Underlying().(*types.Slice); ok && ref.Root == "result" && !ref.Each && len(ref.Fields) == 0 {
		return "it is a slice; use {result[]} or {result[].Field} for one tag per element"
	}
	return msg
}

func isTime(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "time" && n.Obj().Name() == "Time"
}
