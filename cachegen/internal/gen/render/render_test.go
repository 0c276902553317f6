package render

import (
	"go/parser"
	"go/token"
	"strings"
	"testing"
	"time"

	"github.com/dave/jennifer/jen"

	"github.com/repocache/repocache/cachegen/internal/gen/model"
)

func named(pkg, name string) *model.Named {
	pkgName := pkg[strings.LastIndex(pkg, "/")+1:]
	if pkg == "" {
		pkgName = ""
	}
	return &model.Named{Pkg: pkg, PkgName: pkgName, Name: name}
}

// TestRenderHandBuiltModel renders a model built by hand, without loading
// any Go code: a get whose key has a nil-able path and whose tags use the
// result, and a pass-through with a parameter named like an import.
func TestRenderHandBuiltModel(t *testing.T) {
	ctxType := named("context", "Context")
	user := &model.Pointer{Elem: named("example.com/app", "User")}
	in := &model.Pointer{Elem: named("example.com/app", "Query")}
	p := &model.Package{
		Name: "app", Path: "example.com/app", Scope: []string{"User", "Query", "Repo"},
		Interfaces: []*model.Interface{{
			Name: "Repo",
			Methods: []*model.Method{
				{
					Name:    "Find",
					Params:  []*model.Param{{Name: "ctx", Type: ctxType}, {Name: "in", Type: in}},
					Results: []model.Type{user, model.Predeclared("error")},
					Source:  "//cache:get key=u:{in.ID} ttl=5m tags=u:{result.ID}",
					Directive: &model.Directive{
						Kind: model.Get, TTL: 5 * time.Minute,
						Key: &model.Template{Parts: []model.Part{{Literal: "u:"}, {Ref: &model.Ref{
							Source: model.FromParam, Param: 1, Path: []model.Step{{Field: "ID", Nil: true}},
							Render: model.Render{Kind: model.RenderInt},
						}}}},
						Tags: []*model.Template{{Parts: []model.Part{{Literal: "u:"}, {Ref: &model.Ref{
							Source: model.FromResult, Path: []model.Step{{Field: "ID", Nil: true}},
							Render: model.Render{Kind: model.RenderInt},
						}}}}},
					},
				},
				{
					Name:    "Close",
					Params:  []*model.Param{{Name: "runtime", Type: model.Predeclared("int")}},
					Results: nil,
				},
			},
		}},
	}
	src, err := Render(p, Options{Command: "cachegen -type Repo"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.ParseFile(token.NewFileSet(), "x.go", src, 0); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, src)
	}
	for _, want := range []string{
		Header + "\n// cachegen -type Repo\n\npackage app\n",
		"type RepoCache struct {",
		"func NewRepoCache(next Repo, c *runtime.Cache) *RepoCache {",
		"var _ Repo = (*RepoCache)(nil)",
		`if in == nil {
		c.cache.Bypass("Repo.Find", "in is nil")
		return c.next.Find(ctx, in)
	}`,
		`"u:"+strconv.FormatInt(in.ID, 10)`,
		"runtime.ResultTags(func(v *User) []string {",
		`runtime.Method("Repo.Find"))`,
		"if v != nil {",
		"func (c *RepoCache) Close(runtime2 int) {\n\tc.next.Close(runtime2)\n}",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("output lacks %q:\n%s", want, src)
		}
	}
}

// TestRenderInternalError turns a broken model into an error, not a panic.
func TestRenderInternalError(t *testing.T) {
	p := &model.Package{Name: "app", Path: "example.com/app", Interfaces: []*model.Interface{{
		Name: "Repo",
		Methods: []*model.Method{{
			Name:    "Find",
			Params:  []*model.Param{{Name: "ctx", Type: named("context", "Context")}, {Name: "id", Type: model.Predeclared("string")}},
			Results: []model.Type{model.Predeclared("string"), model.Predeclared("error")},
			Directive: &model.Directive{Kind: model.Get, TTL: time.Minute, Key: &model.Template{Parts: []model.Part{
				{Ref: &model.Ref{Source: model.FromParam, Param: 1}}, // no render kind
			}}},
		}},
	}}}
	if _, err := Render(p, Options{}); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("Render = %v, want an internal error", err)
	}
}

func TestDurExpr(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{5 * time.Minute, "5 * time.Minute"},
		{90 * time.Second, "90 * time.Second"},
		{time.Hour, "time.Hour"},
		{90 * time.Minute, "90 * time.Minute"},
		{1500 * time.Millisecond, "1500 * time.Millisecond"},
		{time.Microsecond, "time.Microsecond"},
		{1234, "time.Duration(1234)"},
	} {
		f := jen.NewFile("p")
		f.Var().Id("d").Op("=").Add(durExpr(tc.d))
		got := f.GoString()
		if !strings.Contains(got, "d = "+tc.want+"\n") {
			t.Errorf("durExpr(%v) renders\n%s\nwant d = %s", tc.d, got, tc.want)
		}
	}
}
