package render

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/repocache/repocache/cachegen/internal/gen/model"
)

// methodRenderer renders one method of a decorator.
type methodRenderer struct {
	r                  *renderer
	it                 *model.Interface
	m                  *model.Method
	d                  *model.Directive
	typeName, next, cc string // the decorator type and its two fields
	scope              map[string]bool
	recv               string
	params             []string        // the parameters' names in the generated code
	label              string          // "UserRepo.Find": for Bypass, Unrendered, runtime.Method and WithMethod
	checked            map[string]bool // expressions known not to be nil
	// first is the index of the first parameter after the context: 1, or
	// 0 for a method without one, whose context is ctxName, a local set
	// to context.Background().
	first   int
	ctxName string
}

func newMethodRenderer(r *renderer, it *model.Interface, m *model.Method, typeName, next, cache string) *methodRenderer {
	mr := &methodRenderer{r: r, it: it, m: m, d: m.Directive, typeName: typeName, next: next, cc: cache,
		scope: maps.Clone(r.taken), label: it.Name + "." + m.Name, checked: map[string]bool{}}
	mr.recv = unique(mr.scope, "c")
	// Declared names first, so that a parameter keeps its name when it can
	// and a generated name for an unnamed one moves out of its way.
	mr.params = make([]string, len(m.Params))
	for i, p := range m.Params {
		if p.Name != "" && p.Name != "_" {
			mr.params[i] = unique(mr.scope, p.Name)
		}
	}
	for i, p := range m.Params {
		if mr.params[i] != "" {
			continue
		}
		base := fmt.Sprintf("p%d", i)
		if i == 0 && isContext(p.Type) {
			base = "ctx"
		}
		mr.params[i] = unique(mr.scope, base)
	}
	if mr.d != nil && !m.Skip {
		if mr.d.NoCtx {
			mr.ctxName = mr.local("ctx")
		} else {
			mr.first, mr.ctxName = 1, mr.params[0]
		}
	}
	return mr
}

func isContext(t model.Type) bool {
	n, ok := t.(*model.Named)
	return ok && n.Pkg == contextPkg && n.Name == "Context"
}

func (mr *methodRenderer) local(base string) string { return unique(mr.scope, base) }

func (mr *methodRenderer) render() {
	m := mr.m
	var params []jen.Code
	for i, p := range m.Params {
		if m.Variadic && i == len(m.Params)-1 {
			params = append(params, jen.Id(mr.params[i]).Op("...").Add(mr.r.typ(p.Type.(*model.Slice).Elem)))
			continue
		}
		params = append(params, jen.Id(mr.params[i]).Add(mr.r.typ(p.Type)))
	}
	var body []jen.Code
	switch {
	case m.Skip:
		mr.r.file.Commentf("%s passes the call through to the wrapped %s (cache:skip).", m.Name, mr.it.Name)
		body = mr.passThrough()
	case mr.d == nil:
		mr.r.file.Commentf("%s passes the call through to the wrapped %s.", m.Name, mr.it.Name)
		body = mr.passThrough()
	default:
		mr.r.file.Commentf("%s implements %s with %s.", m.Name, mr.label, strings.TrimPrefix(m.Source, "//"))
		if mr.d.NoCtx {
			body = append(body, jen.Id(mr.ctxName).Op(":=").Qual(contextPkg, "Background").Call())
		}
		switch mr.d.Kind {
		case model.Get:
			if mr.d.Batch != nil {
				body = append(body, mr.batchGet()...)
			} else {
				body = append(body, mr.get()...)
			}
		case model.Put:
			body = append(body, mr.put()...)
		case model.Invalidate:
			body = append(body, mr.invalidate()...)
		}
	}
	mr.r.file.Func().Params(jen.Id(mr.recv).Op("*").Id(mr.typeName)).Id(m.Name).Params(params...).
		Add(mr.r.results(m.Results)).Block(body...)
}

// call is the call of the wrapped method, with the parameters' names
// replaced as given.
func (mr *methodRenderer) call(replace map[int]string) *jen.Statement {
	var args []jen.Code
	for i := range mr.m.Params {
		name := mr.params[i]
		if v, ok := replace[i]; ok {
			name = v
		}
		a := jen.Id(name)
		if mr.m.Variadic && i == len(mr.m.Params)-1 {
			a = a.Op("...")
		}
		args = append(args, a)
	}
	return jen.Id(mr.recv).Dot(mr.next).Dot(mr.m.Name).Call(args...)
}

func (mr *methodRenderer) passThrough() []jen.Code {
	if len(mr.m.Results) == 0 {
		return []jen.Code{mr.call(nil)}
	}
	return []jen.Code{jen.Return(mr.call(nil))}
}

func (mr *methodRenderer) cache() *jen.Statement { return jen.Id(mr.recv).Dot(mr.cc) }

func (mr *methodRenderer) ctx() string { return mr.ctxName }

// roots are the expressions that refs start from.
type roots struct {
	result string // {result}: the result, a batch element, or v.R0
	each   string // {result[]} and {ids[]} in invalidations: the element in a loop
	id     string // {ids[]} of a batch get: one id
	// params includes the nil checks of parameter refs; they are done
	// before the call, so builders that run after it leave them out.
	params bool
	// report makes a list report each template it cannot render (a nil
	// pointer on its path) through Cache.Unrendered: an invalidation
	// drops what it can and says what it could not.
	report bool
	// missed, if set, names a bool that a list sets when it reports a
	// template it cannot render.
	missed string
}

// check is a nil check: the expression in the code and as the user wrote it.
type check struct{ expr, user string }

// value renders ref: the nil checks it needs, in order, and the text.
func (mr *methodRenderer) value(ref *model.Ref, rt roots) ([]check, jen.Code) {
	var expr, user string
	withChecks := true
	switch ref.Source {
	case model.FromParam:
		expr, user = mr.params[ref.Param], mr.m.Params[ref.Param].Name
		withChecks = rt.params
	case model.FromResult:
		expr, user = rt.result, "result"
	case model.FromResultEach:
		expr, user = rt.each, "result[]"
	case model.FromID:
		expr, user = rt.id, mr.m.Params[ref.Param].Name+"[]"
	case model.FromParamEach:
		expr, user = rt.each, mr.m.Params[ref.Param].Name+"[]"
	}
	var checks []check
	for _, st := range ref.Path {
		if st.Nil {
			checks = append(checks, check{expr, user})
		}
		expr += "." + st.Field
		user += "." + st.Field
	}
	if ref.Nil {
		checks = append(checks, check{expr, user})
	}
	if !withChecks {
		checks = nil
	}
	x := jen.Id(expr)
	if ref.Render.Deref && ref.Render.Kind != model.RenderStringer {
		x = jen.Op("*").Id(expr)
	}
	// text is the value as text, unescaped; escape says whether it can
	// hold bytes that must be escaped.
	var text *jen.Statement
	escape := false
	switch ref.Render.Kind {
	case model.RenderString:
		if ref.Render.Convert {
			x = jen.String().Call(x)
		}
		text, escape = jen.Add(x), true
	case model.RenderInt:
		if ref.Render.Convert {
			x = jen.Int64().Call(x)
		}
		text = jen.Qual(strconvPkg, "FormatInt").Call(x, jen.Lit(10))
	case model.RenderUint:
		if ref.Render.Convert {
			x = jen.Uint64().Call(x)
		}
		text = jen.Qual(strconvPkg, "FormatUint").Call(x, jen.Lit(10))
	case model.RenderBool:
		if ref.Render.Convert {
			x = jen.Bool().Call(x)
		}
		text = jen.Qual(strconvPkg, "FormatBool").Call(x)
	case model.RenderStringer:
		text, escape = jen.Id(expr).Dot("String").Call(), true
	default:
		panic(fmt.Sprintf("ref %s: unknown render kind %d", ref.Text, ref.Render.Kind))
	}
	for _, t := range ref.Transforms {
		switch t {
		case model.Lower:
			text = jen.Qual(stringsPkg, "ToLower").Call(text)
		case model.Hash:
			text, escape = jen.Id(mr.r.hashFunc).Call(text), false // hex digits only
		}
	}
	var v jen.Code = text
	if escape {
		v = jen.Qual(runtimePkg, "EscapeKeyPart").Call(text)
	}
	return checks, v
}

// template renders t as a string expression and returns its nil checks.
func (mr *methodRenderer) template(t *model.Template, rt roots) ([]check, jen.Code) {
	var checks []check
	var parts []jen.Code
	for _, p := range t.Parts {
		if p.Ref == nil {
			parts = append(parts, jen.Lit(p.Literal))
			continue
		}
		cs, v := mr.value(p.Ref, rt)
		checks = append(checks, cs...)
		parts = append(parts, v)
	}
	if len(parts) == 0 {
		return nil, jen.Lit("")
	}
	s := jen.Add(parts[0])
	for _, p := range parts[1:] {
		s = s.Op("+").Add(p)
	}
	return dedupe(checks), s
}

func dedupe(cs []check) []check {
	var out []check
	seen := map[string]bool{}
	for _, c := range cs {
		if !seen[c.expr] {
			seen[c.expr] = true
			out = append(out, c)
		}
	}
	return out
}

func fromResult(t *model.Template) bool {
	for _, p := range t.Parts {
		if p.Ref != nil && (p.Ref.Source == model.FromResult || p.Ref.Source == model.FromResultEach) {
			return true
		}
	}
	return false
}

// eachRef is the ref of t that loops over a slice ({result[]}, or {ids[]}
// in an invalidation), or nil.
func eachRef(t *model.Template) *model.Ref {
	for _, p := range t.Parts {
		if p.Ref != nil && (p.Ref.Source == model.FromResultEach || p.Ref.Source == model.FromParamEach) {
			return p.Ref
		}
	}
	return nil
}

// split separates templates that use the result from those that do not.
func split(ts []*model.Template) (static, dynamic []*model.Template) {
	for _, t := range ts {
		if fromResult(t) {
			dynamic = append(dynamic, t)
		} else {
			static = append(static, t)
		}
	}
	return static, dynamic
}

// paramChecks are the nil checks of the parameter refs of ts, in order.
func (mr *methodRenderer) paramChecks(ts ...*model.Template) []check {
	var out []check
	for _, t := range ts {
		if t == nil {
			continue
		}
		for _, p := range t.Parts {
			if p.Ref != nil && p.Ref.Source == model.FromParam {
				cs, _ := mr.value(p.Ref, roots{params: true})
				out = append(out, cs...)
			}
		}
	}
	return dedupe(out)
}

// bypass renders, for each check, the pass-through taken when it fails.
// ret is what the pass-through returns.
func (mr *methodRenderer) bypass(checks []check, ret []jen.Code) []jen.Code {
	return mr.bypassWith(checks, jen.Return(ret...))
}

// bypassWith is bypass with the statements that pass the call through.
func (mr *methodRenderer) bypassWith(checks []check, pass ...jen.Code) []jen.Code {
	var out []jen.Code
	for _, c := range checks {
		mr.checked[c.expr] = true
		out = append(out, jen.If(jen.Id(c.expr).Op("==").Nil()).Block(
			append([]jen.Code{mr.cache().Dot("Bypass").Call(jen.Lit(mr.label), jen.Lit(c.user+" is nil"))}, pass...)...,
		))
	}
	return out
}

// list renders templates as a []string: an expression when none needs a
// check or a loop, otherwise statements that build the variable name and
// the expression naming it.
func (mr *methodRenderer) list(ts []*model.Template, rt roots, name string) ([]jen.Code, jen.Code) {
	type item struct {
		checks []check
		expr   jen.Code
		each   *model.Ref
		raw    string
	}
	var items []item
	simple := true
	for _, t := range ts {
		it := item{each: eachRef(t), raw: t.Raw}
		it.checks, it.expr = mr.template(t, rt)
		it.checks = slices.DeleteFunc(it.checks, func(c check) bool { return mr.checked[c.expr] })
		if it.each != nil || len(it.checks) > 0 {
			simple = false
		}
		items = append(items, it)
	}
	if simple {
		var exprs []jen.Code
		for _, it := range items {
			exprs = append(exprs, it.expr)
		}
		return nil, jen.Index().String().Values(exprs...)
	}
	var stmts []jen.Code
	stmts = append(stmts, jen.Id(name).Op(":=").Make(jen.Index().String(), jen.Lit(0), jen.Lit(len(items))))
	for _, it := range items {
		s := jen.Id(name).Op("=").Append(jen.Id(name), it.expr)
		if len(it.checks) > 0 {
			var cond *jen.Statement
			for i, c := range it.checks {
				if i > 0 {
					cond = cond.Op("&&")
				} else {
					cond = jen.Null()
				}
				cond = cond.Id(c.expr).Op("!=").Nil()
			}
			s = jen.If(cond).Block(s)
			if rt.report {
				unrendered := []jen.Code{mr.cache().Dot("Unrendered").Call(jen.Lit(mr.label), jen.Lit(it.raw))}
				if rt.missed != "" {
					unrendered = append(unrendered, jen.Id(rt.missed).Op("=").True())
				}
				s = s.Else().Block(unrendered...)
			}
		}
		if it.each != nil {
			over := rt.result
			if it.each.Source == model.FromParamEach {
				over = mr.params[it.each.Param]
			}
			s = jen.For(jen.List(jen.Id("_"), jen.Id(rt.each)).Op(":=").Range().Id(over)).Block(s)
		}
		stmts = append(stmts, s)
	}
	return stmts, jen.Id(name)
}

// dropShape describes the lists of ts for the fallback of a write that
// renders nothing (Cache.AfterUnrenderedWrite). empty: every template has
// a nil check on its path or loops over a slice, so every list is a
// variable that may come out empty. loops: some template loops, so an
// empty list may also mean an empty slice, which is nothing to drop.
// checks: some template has a nil check.
func (mr *methodRenderer) dropShape(rt roots, ts ...[]*model.Template) (empty, loops, checks bool) {
	n := 0
	empty = true
	for _, list := range ts {
		for _, t := range list {
			n++
			cs, _ := mr.template(t, rt)
			checked := slices.ContainsFunc(cs, func(c check) bool { return !mr.checked[c.expr] })
			checks = checks || checked
			switch {
			case eachRef(t) != nil:
				loops = true
			case !checked:
				empty = false
			}
		}
	}
	return empty && n > 0, loops, checks
}

// emptyLists is the condition that every list named is empty.
func emptyLists(names ...jen.Code) jen.Code {
	var cond *jen.Statement
	for _, n := range names {
		if cond == nil {
			cond = jen.Len(n).Op("==").Lit(0)
		} else {
			cond = cond.Op("&&").Len(n).Op("==").Lit(0)
		}
	}
	return cond
}

// resultTags renders runtime.ResultTags for the templates that use the
// result; typ is the type of the value it receives and field selects the
// first result from it ("" or ".R0").
func (mr *methodRenderer) resultTags(ts []*model.Template, typ jen.Code, field string) jen.Code {
	v := mr.local("v")
	rt := roots{result: v + field, each: mr.local("e")}
	stmts, expr := mr.list(ts, rt, mr.local("tags"))
	body := append(stmts, jen.Return(expr))
	return jen.Qual(runtimePkg, "ResultTags").Call(jen.Func().Params(jen.Id(v).Add(typ)).Index().String().Block(body...))
}

func exprs(ts []*model.Template, mr *methodRenderer, rt roots) []jen.Code {
	var out []jen.Code
	for _, t := range ts {
		_, e := mr.template(t, rt)
		out = append(out, e)
	}
	return out
}

// opts renders the call options of a get. typ and field are as for
// resultTags.
func (mr *methodRenderer) opts(typ jen.Code, field string) []jen.Code {
	return append(mr.optsWith(typ, field, true), mr.method())
}

// method renders runtime.Method, which names the method on every event of
// a get or a put.
func (mr *methodRenderer) method() jen.Code {
	return jen.Qual(runtimePkg, "Method").Call(jen.Lit(mr.label))
}

// withMethod renders the context of an invalidation (AfterWrite), which
// names the method on its events.
func (mr *methodRenderer) withMethod() jen.Code {
	return jen.Qual(runtimePkg, "WithMethod").Call(jen.Id(mr.ctx()), jen.Lit(mr.label))
}

// optsWith is opts, with the tags left out unless withTags is set.
func (mr *methodRenderer) optsWith(typ jen.Code, field string, withTags bool) []jen.Code {
	d := mr.d
	rt := func(name string, args ...jen.Code) jen.Code { return jen.Qual(runtimePkg, name).Call(args...) }
	out := []jen.Code{rt("TTL", durExpr(d.TTL))}
	if d.Jitter > 0 {
		out = append(out, rt("Jitter", durExpr(d.Jitter)))
	}
	static, dynamic := split(d.Tags)
	if !withTags {
		static, dynamic = nil, nil
	}
	if len(static) > 0 {
		out = append(out, rt("Tags", exprs(static, mr, roots{})...))
	}
	if len(dynamic) > 0 {
		out = append(out, mr.resultTags(dynamic, typ, field))
	}
	if d.SWR > 0 {
		out = append(out, rt("SWR", durExpr(d.SWR)))
	}
	if d.L1 > 0 {
		out = append(out, rt("L1", durExpr(d.L1)))
	}
	if d.Negative > 0 {
		out = append(out, rt("Negative", durExpr(d.Negative)))
	}
	switch nf := d.NotFound; {
	case nf == nil:
	case nf.Var != nil:
		out = append(out, rt("NotFoundIs", jen.Qual(nf.Var.Pkg, nf.Var.Name)))
	default:
		out = append(out, jen.Qual(runtimePkg, "NotFoundAs").Types(mr.r.typ(nf.Type)).Call())
	}
	if d.LockSet {
		mode := map[model.LockMode]string{model.LockLocal: "LockLocal", model.LockDistributed: "LockDistributed", model.LockNone: "LockNone"}[d.Lock]
		out = append(out, rt("Lock", jen.Qual(runtimePkg, mode)))
	}
	return out
}

// argNext is the field of an argument struct that holds the wrapped
// repository; the parameters keep their names, which are unique and never
// this one (a parameter named so is renamed when the method is set up).
func (mr *methodRenderer) argNext() string {
	name := "next"
	for taken := true; taken; {
		taken = false
		for _, p := range mr.params[mr.first:] {
			if p == name {
				name += "_"
				taken = true
			}
		}
	}
	return name
}

// argFields are the fields of the method's argument struct: the wrapped
// repository, then every parameter but the context.
func (mr *methodRenderer) argFields() []jen.Code {
	fields := []jen.Code{jen.Id(mr.argNext()).Id(mr.it.Name)}
	for i, p := range mr.m.Params[mr.first:] {
		fields = append(fields, jen.Id(mr.params[i+mr.first]).Add(mr.r.typ(p.Type)))
	}
	return fields
}

// argLoad returns the argument struct's value and the loader that takes
// it: a function literal that captures nothing, so that a hit allocates
// nothing for it. results renders what the loader returns from the call.
func (mr *methodRenderer) argLoad(typ jen.Code, results func(call *jen.Statement) []jen.Code) (jen.Code, jen.Code) {
	an := mr.r.argStructs[mr.m]
	vals := []jen.Code{jen.Id(mr.recv).Dot(mr.next)}
	a := mr.local("a")
	var args []jen.Code
	if mr.first == 1 {
		args = append(args, jen.Id(mr.ctx()))
	}
	for i := range mr.m.Params[mr.first:] {
		vals = append(vals, jen.Id(mr.params[i+mr.first]))
		arg := jen.Id(a).Dot(mr.params[i+mr.first])
		if mr.m.Variadic && i+mr.first == len(mr.m.Params)-1 {
			arg = arg.Op("...")
		}
		args = append(args, arg)
	}
	call := jen.Id(a).Dot(mr.argNext()).Dot(mr.m.Name).Call(args...)
	ctxParam := jen.Id(mr.ctx()).Qual(contextPkg, "Context")
	load := jen.Func().Params(ctxParam, jen.Id(a).Id(an)).Params(typ, jen.Error()).Block(results(call)...)
	return jen.Id(an).Values(vals...), load
}

func (mr *methodRenderer) get() []jen.Code {
	d, m := mr.d, mr.m
	body := mr.bypass(mr.paramChecks(append([]*model.Template{d.Key}, d.Tags...)...), []jen.Code{mr.call(nil)})
	_, key := mr.template(d.Key, roots{})
	values := valueTypes(m)
	errName := mr.local("err")
	// finish returns the cached value; without an error result, a call
	// that the cache could not serve (the context ended, say) goes to the
	// wrapped repository.
	finish := func(ret ...jen.Code) []jen.Code {
		if d.NoErr {
			return []jen.Code{
				jen.If(jen.Id(errName).Op("!=").Nil()).Block(jen.Return(mr.call(nil))),
				jen.Return(ret...),
			}
		}
		return []jen.Code{jen.Return(append(ret, jen.Id(errName))...)}
	}
	if len(values) == 1 {
		typ := mr.r.typ(values[0])
		arg, load := mr.argLoad(typ, func(call *jen.Statement) []jen.Code {
			if d.NoErr {
				return []jen.Code{jen.Return(call, jen.Nil())}
			}
			return []jen.Code{jen.Return(call)}
		})
		args := append([]jen.Code{jen.Id(mr.ctx()), mr.cache(), key, arg, load}, mr.opts(mr.r.typ(values[0]), "")...)
		if !d.NoErr {
			return append(body, jen.Return(jen.Qual(runtimePkg, "GetCachedWith").Call(args...)))
		}
		v := mr.local("v")
		body = append(body, jen.List(jen.Id(v), jen.Id(errName)).Op(":=").Qual(runtimePkg, "GetCachedWith").Call(args...))
		return append(body, finish(jen.Id(v))...)
	}
	// Several values: cached together in the result struct.
	sn := mr.r.resultStructs[m]
	var rs []jen.Code
	dict := jen.Dict{}
	for i := range values {
		n := mr.local(fmt.Sprintf("r%d", i))
		rs = append(rs, jen.Id(n))
		dict[jen.Id(fmt.Sprintf("R%d", i))] = jen.Id(n)
	}
	loadErr := errName
	if d.NoErr {
		loadErr = "nil"
	}
	arg, load := mr.argLoad(jen.Id(sn), func(call *jen.Statement) []jen.Code {
		lhs := rs
		if !d.NoErr {
			lhs = append(rs, jen.Id(errName))
		}
		return []jen.Code{
			jen.List(lhs...).Op(":=").Add(call),
			jen.Return(jen.Id(sn).Values(dict), jen.Id(loadErr)),
		}
	})
	v := mr.local("v")
	args := append([]jen.Code{jen.Id(mr.ctx()), mr.cache(), key, arg, load}, mr.opts(jen.Id(sn), ".R0")...)
	var ret []jen.Code
	for i := range values {
		ret = append(ret, jen.Id(v).Dot(fmt.Sprintf("R%d", i)))
	}
	body = append(body, jen.List(jen.Id(v), jen.Id(errName)).Op(":=").Qual(runtimePkg, "GetCachedWith").Call(args...))
	return append(body, finish(ret...)...)
}

func (mr *methodRenderer) batchGet() []jen.Code {
	d, b := mr.d, mr.d.Batch
	body := mr.bypass(mr.paramChecks(append([]*model.Template{d.Key}, d.Tags...)...), []jen.Code{mr.call(nil)})
	idType, elemType := mr.r.typ(b.ID), mr.r.typ(b.Elem)
	id := mr.local("id")
	_, key := mr.template(d.Key, roots{id: id})
	keyFn := jen.Func().Params(jen.Id(id).Add(idType)).String().Block(jen.Return(key))

	v := mr.local("v")
	var checks []string
	expr := v
	if b.ElemPointer {
		checks = append(checks, v)
	}
	for _, st := range b.By {
		if st.Nil {
			checks = append(checks, expr)
		}
		expr += "." + st.Field
	}
	var idOfBody []jen.Code
	if len(checks) > 0 {
		var cond *jen.Statement
		for i, c := range checks {
			if i == 0 {
				cond = jen.Id(c).Op("==").Nil()
			} else {
				cond = cond.Op("||").Id(c).Op("==").Nil()
			}
		}
		zero := mr.local("zero")
		idOfBody = append(idOfBody, jen.If(cond).Block(
			jen.Var().Id(zero).Add(idType),
			jen.Return(jen.Id(zero)),
		))
	}
	idOfBody = append(idOfBody, jen.Return(jen.Id(expr)))
	idOf := jen.Func().Params(jen.Id(v).Add(elemType)).Add(idType).Block(idOfBody...)

	ids := mr.params[b.Param]
	ret := []jen.Code{mr.call(nil)}
	if d.NoErr {
		ret = append(ret, jen.Nil())
	}
	load := jen.Func().Params(jen.Id(mr.ctx()).Qual(contextPkg, "Context"), jen.Id(ids).Index().Add(idType)).
		Params(jen.Index().Add(elemType), jen.Error()).Block(jen.Return(ret...))
	args := append([]jen.Code{jen.Id(mr.ctx()), mr.cache(), jen.Id(ids), keyFn, idOf, load}, mr.opts(elemType, "")...)
	call := jen.Qual(runtimePkg, "GetBatch").Types(idType, elemType).Call(args...)
	if !d.NoErr {
		return append(body, jen.Return(call))
	}
	vs, errName := mr.local("vs"), mr.local("err")
	return append(body,
		jen.List(jen.Id(vs), jen.Id(errName)).Op(":=").Add(call),
		jen.If(jen.Id(errName).Op("!=").Nil()).Block(jen.Return(mr.call(nil))),
		jen.Return(jen.Id(vs)),
	)
}

// resultNames chooses names for the wrapped call's results: the values,
// as names and as code, then err.
func (mr *methodRenderer) resultNames() ([]string, []jen.Code, string) {
	var names []string
	var vs []jen.Code
	for i := range valueTypes(mr.m) {
		n := mr.local(fmt.Sprintf("r%d", i))
		names = append(names, n)
		vs = append(vs, jen.Id(n))
	}
	return names, vs, mr.local("err")
}

// put renders a write-through: tags= are invalidated and attached,
// invalidate= only invalidated, attach= only attached. Nothing stops the invalidation once the
// write has succeeded: every tag and invalidate= template that can be
// rendered is dropped, and each one that cannot (a nil pointer on its path)
// is reported through Cache.Unrendered. When the key itself cannot be
// rendered, nothing is stored, and the tags are still dropped.
func (mr *methodRenderer) put() []jen.Code {
	d, m := mr.d, mr.m
	names, vs, errName := mr.resultNames()
	r0 := vs[0]
	body := []jen.Code{
		jen.List(append(vs, jen.Id(errName))...).Op(":=").Add(mr.call(nil)),
		jen.If(jen.Id(errName).Op("!=").Nil()).Block(jen.Return(append(vs, jen.Id(errName))...)),
	}
	rt := roots{result: names[0], each: mr.local("e"), params: true, report: true}
	keyChecks, key := mr.template(d.Key, rt)
	// lists renders templates as the arguments of a call (args...), and as
	// a []string for the drop when the key cannot be rendered.
	lists := func(ts []*model.Template, name string) (args []jen.Code, all jen.Code) {
		if len(ts) == 0 {
			return nil, nil
		}
		rt := rt
		if name == "attach" {
			// An attach= tag that cannot be rendered is left off the
			// stored value: nothing goes without its invalidation.
			rt.report = false
		}
		stmts, expr := mr.list(ts, rt, mr.local(name))
		if len(stmts) == 0 {
			return exprs(ts, mr, rt), expr
		}
		body = append(body, stmts...)
		return []jen.Code{jen.Add(expr).Op("...")}, expr
	}
	tagArgs, tags := lists(d.Tags, "tags")
	invArgs, inv := lists(d.Invalidate, "invalidate")
	attachArgs, _ := lists(d.Attach, "attach")
	if len(keyChecks) > 0 {
		var cond *jen.Statement
		for i, c := range keyChecks {
			if i == 0 {
				cond = jen.Id(c.expr).Op("==").Nil()
			} else {
				cond = cond.Op("||").Id(c.expr).Op("==").Nil()
			}
		}
		var fail []jen.Code
		if !slices.ContainsFunc(d.Tags, func(t *model.Template) bool { return t.Raw == d.Key.Raw }) {
			// (a tag written like the key has been reported already)
			fail = append(fail, mr.cache().Dot("Unrendered").Call(jen.Lit(mr.label), jen.Lit(d.Key.Raw)))
		}
		var drop jen.Code
		var lists []jen.Code
		switch {
		case tags != nil && inv != nil:
			drop, lists = jen.Append(tags, jen.Add(inv).Op("...")), []jen.Code{tags, inv}
		case tags != nil:
			drop, lists = tags, []jen.Code{tags}
		case inv != nil:
			drop, lists = inv, []jen.Code{inv}
		}
		switch {
		case drop == nil:
			// Neither the key nor a tag: drop the namespace rather
			// than nothing.
			fail = append(fail, mr.cache().Dot("AfterUnrenderedWrite").Call(mr.withMethod()))
		case func() bool { empty, _, _ := mr.dropShape(rt, d.Tags, d.Invalidate); return empty }():
			// The key is not rendered: an empty drop, whatever the
			// reason, leaves the write with no invalidation.
			fail = append(fail, jen.If(emptyLists(lists...)).Block(mr.cache().Dot("AfterUnrenderedWrite").Call(mr.withMethod())).
				Else().Block(mr.cache().Dot("AfterWrite").Call(mr.withMethod(), jen.Nil(), drop)))
		default:
			fail = append(fail, mr.cache().Dot("AfterWrite").Call(mr.withMethod(), jen.Nil(), drop))
		}
		fail = append(fail, jen.Return(append(vs, jen.Nil())...))
		body = append(body, jen.If(cond).Block(fail...))
	}
	opts := mr.optsWith(mr.r.typ(m.Results[0]), "", false) // TTL and Jitter
	if len(tagArgs) > 0 {
		opts = append(opts, jen.Qual(runtimePkg, "Tags").Call(tagArgs...))
	}
	if len(invArgs) > 0 {
		opts = append(opts, jen.Qual(runtimePkg, "AlsoInvalidate").Call(invArgs...))
	}
	if len(attachArgs) > 0 {
		opts = append(opts, jen.Qual(runtimePkg, "Attach").Call(attachArgs...))
	}
	opts = append(opts, mr.method())
	args := append([]jen.Code{jen.Id(mr.ctx()), mr.cache(), key, r0}, opts...)
	return append(body,
		jen.Qual(runtimePkg, "Put").Call(args...),
		jen.Return(append(vs, jen.Nil())...),
	)
}

// invalidate renders an invalidation. As for put, a template that cannot
// be rendered never cancels the others: they are dropped, and it is
// reported through Cache.Unrendered.
func (mr *methodRenderer) invalidate() []jen.Code {
	d := mr.d
	var body []jen.Code
	names, vs, errName := mr.resultNames()
	switch {
	case !d.NoErr:
		body = append(body,
			jen.List(append(vs, jen.Id(errName))...).Op(":=").Add(mr.call(nil)),
			jen.If(jen.Id(errName).Op("!=").Nil()).Block(jen.Return(append(vs, jen.Id(errName))...)),
		)
	case len(vs) > 0:
		body = append(body, jen.List(vs...).Op(":=").Add(mr.call(nil)))
	default:
		body = append(body, mr.call(nil))
	}
	rt := roots{each: mr.local("e"), params: true, report: true}
	if len(names) > 0 {
		rt.result = names[0]
	}
	keys, tags := jen.Code(jen.Nil()), jen.Code(jen.Nil())
	// With loops, an empty list may be an empty slice: the fallback then
	// needs to know that a template was not rendered.
	empty, loops, checks := mr.dropShape(rt, d.Keys, d.Tags)
	fallback := empty && (!loops || checks)
	if fallback && loops {
		rt.missed = mr.local("missed")
		body = append(body, jen.Id(rt.missed).Op(":=").False())
	}
	if len(d.Keys) > 0 {
		var stmts []jen.Code
		stmts, keys = mr.list(d.Keys, rt, mr.local("keys"))
		body = append(body, stmts...)
	}
	if len(d.Tags) > 0 {
		var stmts []jen.Code
		stmts, tags = mr.list(d.Tags, rt, mr.local("tags"))
		body = append(body, stmts...)
	}
	ret := vs
	if !d.NoErr {
		ret = append(vs, jen.Nil())
	}
	drop := mr.cache().Dot("AfterWrite").Call(mr.withMethod(), keys, tags)
	if fallback {
		// Nothing rendered: drop the namespace rather than nothing.
		var lists []jen.Code
		if len(d.Keys) > 0 {
			lists = append(lists, keys)
		}
		if len(d.Tags) > 0 {
			lists = append(lists, tags)
		}
		cond := emptyLists(lists...)
		if rt.missed != "" {
			cond = jen.Id(rt.missed).Op("&&").Add(cond)
		}
		drop = jen.If(cond).Block(mr.cache().Dot("AfterUnrenderedWrite").Call(mr.withMethod())).
			Else().Block(drop)
	}
	body = append(body, drop)
	if len(ret) > 0 {
		body = append(body, jen.Return(ret...))
	}
	return body
}
