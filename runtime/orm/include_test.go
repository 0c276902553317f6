package orm_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/repocache/repocache/runtime/orm"
	"github.com/repocache/repocache/runtime/orm/ormtest"
)

// Writer, Profile, Post and Label cover the four kinds of GORM relation:
// a post belongs to a writer, a writer has one profile and many posts, and
// posts and labels are many to many.
type Writer struct {
	ID      int64  `gorm:"primaryKey"`
	Email   string `gorm:"uniqueIndex;size:64"`
	Name    string
	Profile *Profile
	Posts   []Post
}

type Profile struct {
	ID       int64 `gorm:"primaryKey"`
	WriterID int64 `gorm:"uniqueIndex"`
	Bio      string
}

type Post struct {
	ID       int64  `gorm:"primaryKey"`
	Slug     string `gorm:"uniqueIndex;size:64"`
	Title    string
	WriterID int64
	Writer   *Writer
	Labels   []Label `gorm:"many2many:post_labels"`
}

type Label struct {
	ID   int64  `gorm:"primaryKey"`
	Name string `gorm:"uniqueIndex;size:32"`
}

func setupBlog(t *testing.T, db *gorm.DB) (*orm.Model[Writer], *orm.Model[Post]) {
	t.Helper()
	if err := db.AutoMigrate(&Writer{}, &Profile{}, &Post{}, &Label{}); err != nil {
		t.Fatal(err)
	}
	go1 := Label{Name: "go"}
	db1 := Label{Name: "db"}
	ada := Writer{Email: "ada@example.com", Name: "Ada", Profile: &Profile{Bio: "engines"}, Posts: []Post{
		{Slug: "notes", Title: "Notes", Labels: []Label{go1, db1}},
		{Slug: "loops", Title: "Loops"},
	}}
	if err := db.Create(&ada).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Create(&Writer{Email: "bob@example.com", Name: "Bob", Posts: []Post{{Slug: "bits", Title: "Bits"}}}).Error; err != nil {
		t.Fatal(err)
	}
	writers, err := orm.NewModel[Writer](db)
	if err != nil {
		t.Fatal(err)
	}
	posts, err := orm.NewModel[Post](db)
	if err != nil {
		t.Fatal(err)
	}
	return writers, posts
}

func TestInclude(t *testing.T) {
	ormtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		writers, posts := setupBlog(t, db)

		// Belongs to, through FindManyArgs.
		list, err := posts.FindMany(ctx, orm.FindManyArgs{Include: []string{"Writer"}, OrderBy: []orm.Order{{Column: "slug"}}})
		if err != nil || len(list) != 3 {
			t.Fatalf("FindMany include Writer = %+v, %v", list, err)
		}
		for _, p := range list {
			want := map[string]string{"bits": "Bob", "loops": "Ada", "notes": "Ada"}[p.Slug]
			if p.Writer == nil || p.Writer.Name != want {
				t.Errorf("post %s: writer %+v, want %s", p.Slug, p.Writer, want)
			}
		}
		// Without include, no relation is loaded (and the model with
		// includes did not change the one it came from).
		withWriter := posts.Include("Writer")
		plain, err := posts.FindUniqueOrThrow(ctx, orm.Where{"slug": "notes"})
		if err != nil || plain.Writer != nil || plain.Labels != nil {
			t.Fatalf("FindUniqueOrThrow without include = %+v, %v", plain, err)
		}

		// Prisma's lower-case names, nested paths and many to many, on a
		// unique lookup.
		p, err := posts.Include("writer.profile", "Labels").FindUniqueOrThrow(ctx, orm.Where{"slug": "notes"})
		if err != nil {
			t.Fatal(err)
		}
		if p.Writer == nil || p.Writer.Name != "Ada" || p.Writer.Profile == nil || p.Writer.Profile.Bio != "engines" {
			t.Errorf("nested include: writer %+v", p.Writer)
		}
		if len(p.Labels) != 2 {
			t.Errorf("many-to-many include: labels %+v", p.Labels)
		}
		if p, err := withWriter.FindUnique(ctx, orm.Where{"slug": "nope"}); p != nil || err != nil {
			t.Errorf("FindUnique of a missing row with include = %+v, %v", p, err)
		}

		// Has many and has one, from the other side.
		w, err := writers.FindFirst(ctx, orm.FindManyArgs{Where: orm.Where{"email": "ada@example.com"}, Include: []string{"Posts", "Profile"}})
		if err != nil || w == nil || len(w.Posts) != 2 || w.Profile == nil {
			t.Fatalf("FindFirst include Posts, Profile = %+v, %v", w, err)
		}

		// A select keeps the columns the relations join on.
		sel, err := posts.FindMany(ctx, orm.FindManyArgs{Select: []string{"title"}, Include: []string{"Writer", "Labels"}, Where: orm.Where{"slug": "notes"}})
		if err != nil || len(sel) != 1 || sel[0].Title != "Notes" || sel[0].Writer == nil || sel[0].Writer.Name != "Ada" || len(sel[0].Labels) != 2 {
			t.Fatalf("select title with include = %+v, %v", sel, err)
		}
		ws, err := writers.FindMany(ctx, orm.FindManyArgs{Select: []string{"name"}, Include: []string{"Posts"}, Where: orm.Where{"email": "bob@example.com"}})
		if err != nil || len(ws) != 1 || len(ws[0].Posts) != 1 {
			t.Fatalf("select name with has-many include = %+v, %v", ws, err)
		}

		// The rows that writes return carry the relations too.
		bob, _ := writers.FindUniqueOrThrow(ctx, orm.Where{"email": "bob@example.com"})
		created, err := withWriter.Create(ctx, &Post{Slug: "bytes", Title: "Bytes", WriterID: bob.ID})
		if err != nil || created.Writer == nil || created.Writer.Name != "Bob" {
			t.Fatalf("Create with include = %+v, %v", created, err)
		}
		updated, err := withWriter.Update(ctx, orm.Where{"slug": "bytes"}, orm.Data{"title": "Bytes!"})
		if err != nil || updated.Title != "Bytes!" || updated.Writer == nil || updated.Writer.Name != "Bob" {
			t.Fatalf("Update with include = %+v, %v", updated, err)
		}
		up, err := withWriter.Upsert(ctx, orm.Where{"slug": "nibbles"}, &Post{Slug: "nibbles", WriterID: bob.ID}, orm.Data{"title": "x"})
		if err != nil || up.Writer == nil || up.Writer.Name != "Bob" {
			t.Fatalf("Upsert (create) with include = %+v, %v", up, err)
		}
		deleted, err := withWriter.Delete(ctx, orm.Where{"slug": "nibbles"})
		if err != nil || deleted.Writer == nil || deleted.Writer.Name != "Bob" {
			t.Fatalf("Delete with include = %+v, %v", deleted, err)
		}
	})
}

func TestIncludeUnknownRelation(t *testing.T) {
	ormtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		_, posts := setupBlog(t, db)
		for _, name := range []string{"Wrter", "Title", "writer_id", "Writer.Nope", "Writer.", ""} {
			_, err := posts.FindMany(ctx, orm.FindManyArgs{Include: []string{name}})
			if !errors.Is(err, orm.ErrUnknownRelation) {
				t.Errorf("FindMany include %q: err = %v, want ErrUnknownRelation", name, err)
			}
			bad := posts.Include("Writer", name)
			_, err = bad.FindUnique(ctx, orm.Where{"slug": "notes"})
			if !errors.Is(err, orm.ErrUnknownRelation) {
				t.Errorf("Include(%q).FindUnique: err = %v, want ErrUnknownRelation", name, err)
			}
			if _, err := bad.UpdateMany(ctx, orm.Where{"slug": "notes"}, orm.Data{"title": "x"}); !errors.Is(err, orm.ErrUnknownRelation) {
				t.Errorf("Include(%q).UpdateMany: err = %v, want ErrUnknownRelation", name, err)
			}
		}
		if n, _ := posts.Count(ctx, orm.Where{"title": "x"}); n != 0 {
			t.Fatal("a call with a bad include wrote")
		}
		_, err := posts.FindMany(ctx, orm.FindManyArgs{Include: []string{"Writer.Nope"}})
		if err == nil || !strings.Contains(err.Error(), "Posts, Profile") {
			t.Errorf("error %q does not list the relations of Writer", err)
		}
	})
}
