package extract

import (
	"testing"

	"github.com/repocache/repocache/cachegen/internal/gen/model"
)

// tpl builds a template: strings are literals, model.RenderKind values refs.
func tpl(parts ...any) *model.Template {
	t := &model.Template{}
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			t.Parts = append(t.Parts, model.Part{Literal: p})
		case model.RenderKind:
			t.Parts = append(t.Parts, model.Part{Ref: &model.Ref{Render: model.Render{Kind: p}}})
		case model.Transform:
			t.Parts = append(t.Parts, model.Part{Ref: &model.Ref{Render: model.Render{Kind: model.RenderString}, Transforms: []model.Transform{p}}})
		}
	}
	return t
}

func TestOverlap(t *testing.T) {
	s, i, u, b := model.RenderString, model.RenderInt, model.RenderUint, model.RenderBool
	for _, tc := range []struct {
		a, b *model.Template
		want bool
	}{
		{tpl("post:", i), tpl("post:", i), true},
		{tpl("post:", i), tpl("post:", s), true},
		{tpl("post:", i), tpl("post:", i, ":comments"), false},
		{tpl("post:", s), tpl("post:", s, ":comments"), false},
		{tpl("user:", s), tpl("users"), false},
		{tpl("user:", s), tpl("user:"), true}, // the empty string
		{tpl("user:", i), tpl("user:"), false},
		{tpl("a:", s, ":", s), tpl("a:", s), false},
		{tpl("a:", s, s), tpl("a:", s), true},
		{tpl("n:", u), tpl("n:-", i), false},
		{tpl("n:", u), tpl("n:", i), true},
		{tpl("f:", b), tpl("f:", i), false},
		{tpl("f:", b), tpl("f:true"), true},
		{tpl("f:", b), tpl("f:", s), true},
		{tpl("t:", model.Hash), tpl("t:", i), true},
		{tpl("t:", model.Hash), tpl("t:", s, ":x"), false},
		{tpl("t:", model.Hash), tpl("t:-1"), false},
		{tpl("x"), tpl("y"), false},
		{tpl("x"), tpl("x"), true},
	} {
		if got := overlap(tc.a, tc.b); got != tc.want {
			t.Errorf("overlap(%v, %v) = %v, want %v", tc.a.Parts, tc.b.Parts, got, tc.want)
		}
		if got := overlap(tc.b, tc.a); got != tc.want {
			t.Errorf("overlap(%v, %v) = %v, want %v (swapped)", tc.b.Parts, tc.a.Parts, got, tc.want)
		}
	}
}
