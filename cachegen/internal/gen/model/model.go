// Package model is the plain description of what cachegen generates: the
// interfaces to decorate, their methods, and each method's resolved
// directive. It holds no go/types values, so that the renderer can be tested
// with models built by hand, and so that every decision that needs type
// information (which refs resolve, how a value is rendered into a key, where
// a nil pointer can stop a key from being built) is taken before rendering.
package model

import "time"

// Package is the package that the generated file belongs to.
type Package struct {
	// Name is the package name, Path its import path.
	Name, Path string
	// Scope lists the package-level names declared by the package's own
	// files (cachegen output excluded). Generated identifiers, import names
	// and local names avoid them.
	Scope []string
	// Interfaces are the interfaces to decorate, in source order.
	Interfaces []*Interface
}

// Interface is one //cache:repo interface.
type Interface struct {
	// Name is the interface's name, e.g. UserRepo.
	Name string
	// Methods are all methods of the interface, embedded ones included, in
	// a stable order: the interface's own methods in source order, then
	// those of each embedded interface, depth first.
	Methods []*Method
}

// Method is one method of an interface.
type Method struct {
	// Name is the method name.
	Name string
	// Params are the parameters in order. Names are as declared; "" or
	// "_" for unnamed ones. The renderer chooses collision-free names.
	Params []*Param
	// Variadic reports that the last parameter is variadic (its Type is
	// then the slice type).
	Variadic bool
	// Results are the result types in order, error included.
	Results []Type
	// Directive is the resolved directive; nil for methods that pass
	// through (no directive, or //cache:skip).
	Directive *Directive
	// Skip reports an explicit //cache:skip.
	Skip bool
	// Source is the directive line as written, for the doc comment of the
	// generated method; "" when there is none.
	Source string
}

// Param is a method parameter.
type Param struct {
	Name string
	Type Type
}

// Kind is the verb of a resolved directive.
type Kind int

// The directive kinds that generate code.
const (
	Get Kind = iota + 1
	Put
	Invalidate
)

// LockMode mirrors runtime.LockMode.
type LockMode int

// The lock modes.
const (
	LockLocal LockMode = iota
	LockDistributed
	LockNone
)

// Directive is a directive whose refs are resolved against the method.
//
// For Get and Put the method takes a context.Context first and returns an
// error last; Get returns at least one value before the error (several are
// cached together in a generated struct), Put exactly one.
type Directive struct {
	Kind Kind
	// Key is the key of a Get or Put.
	Key *Template
	// Keys are the keys of an Invalidate.
	Keys []*Template
	// Tags are the tags of any kind.
	Tags []*Template
	// Invalidate are the invalidate= tags of a Put: invalidated, not
	// attached.
	Invalidate []*Template
	// Attach are the attach= tags of a Put: attached to the stored value,
	// not invalidated.
	Attach []*Template
	// TTL and Jitter are set for Get and Put; SWR, Negative and Lock only
	// when the directive sets them (LockSet).
	TTL, Jitter, SWR, Negative time.Duration
	// L1 is the l1= cap of a Get on how long a value may live in the
	// Cache's in-process tier (runtime.L1); zero when not set. At most TTL.
	L1      time.Duration
	Lock    LockMode
	LockSet bool
	// NotFound is the not-found answer of a Get (notfound=); nil for the
	// default, runtime.ErrNotFound. Only set with Negative.
	NotFound *NotFound
	// Batch is set for a batch get (a {ids[]} ref in the key).
	Batch *Batch
	// NoCtx reports a get or invalidate on a method that takes no
	// context.Context first: the generated code uses context.Background().
	NoCtx bool
	// NoErr reports a get or invalidate on a method that returns no error
	// last: every result is a value.
	NoErr bool
}

// NotFound is what a get's not-found answer is: an error variable,
// matched with errors.Is (runtime.NotFoundIs), or an error type, matched
// with errors.As (runtime.NotFoundAs). Exactly one is set.
type NotFound struct {
	// Var is a package-level variable of an error type; Var.Pkg is its
	// package's import path, Var.Name the variable's name.
	Var *Named
	// Type is a concrete type that implements error.
	Type Type
}

// Batch describes a batch get: the slice parameter of ids, the element of
// the slice result, and how to read an element's id.
type Batch struct {
	// Param is the index of the slice parameter.
	Param int
	// ID is the element type of the slice parameter.
	ID Type
	// Elem is the element type of the slice result.
	Elem Type
	// ElemPointer reports that Elem is a pointer (idOf must check nil).
	ElemPointer bool
	// By is the path from an element to its id field (embedded fields
	// spelt out); By[i].Nil as for Ref.
	By []Step
}

// Template is a key or tag template.
type Template struct {
	// Raw is the template as written.
	Raw   string
	Parts []Part
}

// Part is a literal text or a ref.
type Part struct {
	Literal string
	Ref     *Ref
}

// Source says where a ref's root value comes from.
type Source int

// The sources of a ref.
const (
	// FromParam is a parameter, Ref.Param.
	FromParam Source = iota + 1
	// FromResult is the (first) result; in a batch get, one element.
	FromResult
	// FromResultEach is each element of the slice result: result[].
	FromResultEach
	// FromID is one id of a batch get: ids[].
	FromID
	// FromParamEach is each element of the slice parameter Param, in an
	// invalidation: {ids[]} names one key or tag per element.
	FromParamEach
)

// Ref is a resolved placeholder.
type Ref struct {
	// Text is the ref as written between the braces, e.g. in.Owner.ID.
	Text string
	// Source and Param locate the root value.
	Source Source
	Param  int
	// Path selects fields from the root (for FromResultEach and FromID:
	// from the element). Embedded fields are spelt out.
	Path []Step
	// Nil reports that the final value is a pointer or an interface that
	// must be checked for nil before it is rendered.
	Nil bool
	// Render says how the final value becomes text.
	Render Render
	// Transforms are applied, in order, to the rendered text: {x|lower},
	// {x|hash}.
	Transforms []Transform
}

// Transform is a function applied to a ref's rendered text.
type Transform int

// The transforms.
const (
	// Lower is strings.ToLower, before the text is escaped.
	Lower Transform = iota + 1
	// Hash is the lowercase hex SHA-256 of the unescaped text.
	Hash
)

// Step is one field selection. Nil reports that the value it selects
// from is a pointer, which must be checked for nil first.
type Step struct {
	Field string
	Nil   bool
}

// Render says how a value is turned into key text.
type Render struct {
	Kind RenderKind
	// Convert reports that the value needs a conversion to string, int64
	// or uint64 first (a named type, or a narrower integer).
	Convert bool
	// Deref reports that the value is a pointer to dereference first
	// (RenderString and RenderInt kinds).
	Deref bool
}

// RenderKind is how a value becomes text.
type RenderKind int

// The render kinds.
const (
	// RenderString: a string kind, escaped.
	RenderString RenderKind = iota + 1
	// RenderInt: a signed integer, in decimal.
	RenderInt
	// RenderUint: an unsigned integer, in decimal.
	RenderUint
	// RenderStringer: a fmt.Stringer, String() escaped.
	RenderStringer
	// RenderBool: a boolean, true or false.
	RenderBool
)

// Type is a Go type as the generated code spells it.
type Type interface{ isType() }

// Named is a named type: a defined type or an alias, possibly generic and
// instantiated, or a predeclared type (Pkg == "").
type Named struct {
	// Pkg is the import path, "" for predeclared types (int, error, any).
	Pkg string
	// PkgName is the package's name, for the import.
	PkgName string
	Name    string
	Args    []Type
}

// Pointer is *Elem.
type Pointer struct{ Elem Type }

// Slice is []Elem.
type Slice struct{ Elem Type }

// Array is [Len]Elem.
type Array struct {
	Len  int64
	Elem Type
}

// Map is map[Key]Elem.
type Map struct{ Key, Elem Type }

// ChanDir is a channel's direction.
type ChanDir int

// Channel directions.
const (
	Both ChanDir = iota
	SendOnly
	RecvOnly
)

// Chan is a channel type.
type Chan struct {
	Dir  ChanDir
	Elem Type
}

// Func is a function type.
type Func struct {
	Params   []Type
	Results  []Type
	Variadic bool
}

// Struct is a struct type literal.
type Struct struct{ Fields []Field }

// Field is a field of a struct literal.
type Field struct {
	Name     string
	Type     Type
	Embedded bool
	Tag      string
}

// InterfaceType is an interface type literal.
type InterfaceType struct {
	Methods []IfaceMethod
	Embeds  []Type
}

// IfaceMethod is a method of an interface literal.
type IfaceMethod struct {
	Name string
	Sig  *Func
}

func (*Named) isType()         {}
func (*Pointer) isType()       {}
func (*Slice) isType()         {}
func (*Array) isType()         {}
func (*Map) isType()           {}
func (*Chan) isType()          {}
func (*Func) isType()          {}
func (*Struct) isType()        {}
func (*InterfaceType) isType() {}

// Predeclared returns the predeclared type name, e.g. Predeclared("error").
func Predeclared(name string) *Named { return &Named{Name: name} }

// Walk calls fn for t and every type inside it.
func Walk(t Type, fn func(Type)) {
	if t == nil {
		return
	}
	fn(t)
	switch t := t.(type) {
	case *Named:
		for _, a := range t.Args {
			Walk(a, fn)
		}
	case *Pointer:
		Walk(t.Elem, fn)
	case *Slice:
		Walk(t.Elem, fn)
	case *Array:
		Walk(t.Elem, fn)
	case *Map:
		Walk(t.Key, fn)
		Walk(t.Elem, fn)
	case *Chan:
		Walk(t.Elem, fn)
	case *Func:
		for _, p := range t.Params {
			Walk(p, fn)
		}
		for _, r := range t.Results {
			Walk(r, fn)
		}
	case *Struct:
		for _, f := range t.Fields {
			Walk(f.Type, fn)
		}
	case *InterfaceType:
		for _, m := range t.Methods {
			Walk(m.Sig, fn)
		}
		for _, e := range t.Embeds {
			Walk(e, fn)
		}
	}
}
