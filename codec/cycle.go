package codec

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// ErrCycle reports a value that refers to itself (a pointer, map or slice
// reachable from inside itself) or that nests deeper than MaxDepth. Neither
// codec can encode one: MessagePack would recurse until the Go runtime
// kills the process with a stack overflow, which no recover can catch.
var ErrCycle = errors.New("codec: value refers to itself or nests too deep")

// MaxDepth bounds how deeply a value may nest pointers, maps, slices and
// interfaces before Marshal refuses it with ErrCycle.
const MaxDepth = 1000

// mayCycle caches, per type, whether a value of it can refer to itself:
// only types that reach themselves through a pointer, map or slice, or that
// hold an interface (which can hold anything), can. Values of every other
// type are not walked, so checking them costs one map read.
var mayCycle sync.Map // reflect.Type → bool

func typeMayCycle(t reflect.Type) bool {
	if v, ok := mayCycle.Load(t); ok {
		return v.(bool)
	}
	r := reaches(t, map[reflect.Type]bool{})
	mayCycle.Store(t, r)
	return r
}

// reaches reports whether t holds an interface or reaches a type already on
// the path (a recursive type).
func reaches(t reflect.Type, path map[reflect.Type]bool) bool {
	if path[t] {
		return true
	}
	path[t] = true
	defer delete(path, t)
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return reaches(t.Elem(), path)
	case reflect.Map:
		return reaches(t.Key(), path) || reaches(t.Elem(), path)
	case reflect.Struct:
		for i := range t.NumField() {
			if reaches(t.Field(i).Type, path) {
				return true
			}
		}
	}
	return false
}

// checkCycles reports ErrCycle for a value that refers to itself or nests
// deeper than MaxDepth.
func checkCycles(v any) error {
	if v == nil {
		return nil
	}
	rv := reflect.ValueOf(v)
	if !typeMayCycle(rv.Type()) {
		return nil
	}
	w := walker{onPath: map[visit]bool{}}
	return w.walk(rv, 0)
}

type visit struct {
	ptr uintptr
	typ reflect.Type
}

type walker struct{ onPath map[visit]bool }

func (w *walker) walk(v reflect.Value, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: deeper than %d", ErrCycle, MaxDepth)
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return w.walk(v.Elem(), depth+1)
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if v.IsNil() {
			return nil
		}
		if v.Kind() == reflect.Slice && v.Len() == 0 {
			return nil
		}
		k := visit{v.Pointer(), v.Type()}
		if w.onPath[k] {
			return fmt.Errorf("%w: a %v refers to itself", ErrCycle, v.Type())
		}
		w.onPath[k] = true
		defer delete(w.onPath, k)
		switch v.Kind() {
		case reflect.Pointer:
			return w.walk(v.Elem(), depth+1)
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				if err := w.walk(it.Key(), depth+1); err != nil {
					return err
				}
				if err := w.walk(it.Value(), depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		return w.elems(v, depth)
	case reflect.Array:
		return w.elems(v, depth)
	case reflect.Struct:
		for i := range v.NumField() {
			if err := w.walk(v.Field(i), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *walker) elems(v reflect.Value, depth int) error {
	if !typeMayCycle(v.Type().Elem()) {
		return nil
	}
	for i := range v.Len() {
		if err := w.walk(v.Index(i), depth+1); err != nil {
			return err
		}
	}
	return nil
}
