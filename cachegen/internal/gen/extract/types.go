package extract

import (
	"errors"
	"fmt"
	"go/types"

	"github.com/repocache/repocache/cachegen/internal/gen/model"
)

// errInvalid reports an invalid type: the package has type errors.
var errInvalid = errors.New("invalid type (the package has type errors)")

// typeConv converts go/types types into model types as the generated file
// (in package pkg) can spell them.
type typeConv struct {
	pkg *types.Package
}

// convert returns the model type of t, or an error saying why the generated
// code cannot name t.
func (c typeConv) convert(t types.Type) (model.Type, error) {
	switch t := t.(type) {
	case *types.Alias:
		obj := t.Obj()
		if obj.Pkg() == nil { // any
			return model.Predeclared(obj.Name()), nil
		}
		if obj.Parent() == obj.Pkg().Scope() && (obj.Exported() || obj.Pkg() == c.pkg) && t.TypeParams().Len() == t.TypeArgs().Len() {
			args, err := c.list(t.TypeArgs())
			if err != nil {
				return nil, err
			}
			return &model.Named{Pkg: obj.Pkg().Path(), PkgName: obj.Pkg().Name(), Name: obj.Name(), Args: args}, nil
		}
		return c.convert(types.Unalias(t))
	case *types.Basic:
		switch t.Kind() {
		case types.Invalid:
			return nil, errInvalid
		case types.UnsafePointer:
			return &model.Named{Pkg: "unsafe", PkgName: "unsafe", Name: "Pointer"}, nil
		}
		if t.Info()&types.IsUntyped != 0 {
			return nil, fmt.Errorf("untyped %s", t.Name())
		}
		return model.Predeclared(t.Name()), nil
	case *types.Named:
		obj := t.Obj()
		if obj.Pkg() == nil { // error, comparable
			return model.Predeclared(obj.Name()), nil
		}
		if obj.Parent() != obj.Pkg().Scope() {
			return nil, fmt.Errorf("type %s is declared inside a function", obj.Name())
		}
		if !obj.Exported() && obj.Pkg() != c.pkg {
			return nil, fmt.Errorf("type %s.%s is not exported", obj.Pkg().Name(), obj.Name())
		}
		if t.TypeParams().Len() != t.TypeArgs().Len() {
			return nil, fmt.Errorf("generic type %s is not instantiated", obj.Name())
		}
		args, err := c.list(t.TypeArgs())
		if err != nil {
			return nil, err
		}
		return &model.Named{Pkg: obj.Pkg().Path(), PkgName: obj.Pkg().Name(), Name: obj.Name(), Args: args}, nil
	case *types.Pointer:
		e, err := c.convert(t.Elem())
		return &model.Pointer{Elem: e}, err
	case *types.Slice:
		e, err := c.convert(t.Elem())
		return &model.Slice{Elem: e}, err
	case *types.Array:
		e, err := c.convert(t.Elem())
		return &model.Array{Len: t.Len(), Elem: e}, err
	case *types.Map:
		k, err := c.convert(t.Key())
		if err != nil {
			return nil, err
		}
		e, err := c.convert(t.Elem())
		return &model.Map{Key: k, Elem: e}, err
	case *types.Chan:
		e, err := c.convert(t.Elem())
		dir := model.Both
		switch t.Dir() {
		case types.SendOnly:
			dir = model.SendOnly
		case types.RecvOnly:
			dir = model.RecvOnly
		}
		return &model.Chan{Dir: dir, Elem: e}, err
	case *types.Signature:
		return c.sig(t)
	case *types.Struct:
		s := &model.Struct{}
		for i := range t.NumFields() {
			f := t.Field(i)
			if !f.Exported() && f.Pkg() != c.pkg {
				return nil, fmt.Errorf("struct literal with unexported field %s of package %s", f.Name(), f.Pkg().Name())
			}
			ft, err := c.convert(f.Type())
			if err != nil {
				return nil, err
			}
			s.Fields = append(s.Fields, model.Field{Name: f.Name(), Type: ft, Embedded: f.Embedded(), Tag: t.Tag(i)})
		}
		return s, nil
	case *types.Interface:
		it := &model.InterfaceType{}
		for i := range t.NumExplicitMethods() {
			m := t.ExplicitMethod(i)
			if !m.Exported() && m.Pkg() != c.pkg {
				return nil, fmt.Errorf("interface literal with unexported method %s of package %s", m.Name(), m.Pkg().Name())
			}
			sig, err := c.sig(m.Type().(*types.Signature))
			if err != nil {
				return nil, err
			}
			it.Methods = append(it.Methods, model.IfaceMethod{Name: m.Name(), Sig: sig})
		}
		for i := range t.NumEmbeddeds() {
			e, err := c.convert(t.EmbeddedType(i))
			if err != nil {
				return nil, err
			}
			it.Embeds = append(it.Embeds, e)
		}
		return it, nil
	case *types.TypeParam:
		return nil, fmt.Errorf("type parameter %s", t.Obj().Name())
	case *types.Union:
		return nil, fmt.Errorf("type union %s", t)
	}
	return nil, fmt.Errorf("unsupported type %s", t)
}

func (c typeConv) list(l *types.TypeList) ([]model.Type, error) {
	var out []model.Type
	for i := range l.Len() {
		t, err := c.convert(l.At(i))
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (c typeConv) sig(s *types.Signature) (*model.Func, error) {
	if s.TypeParams().Len() > 0 {
		return nil, fmt.Errorf("generic function type")
	}
	f := &model.Func{Variadic: s.Variadic()}
	for i := range s.Params().Len() {
		t, err := c.convert(s.Params().At(i).Type())
		if err != nil {
			return nil, err
		}
		f.Params = append(f.Params, t)
	}
	for i := range s.Results().Len() {
		t, err := c.convert(s.Results().At(i).Type())
		if err != nil {
			return nil, err
		}
		f.Results = append(f.Results, t)
	}
	return f, nil
}
