package orm_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/repocache/repocache/runtime/orm"
	"github.com/repocache/repocache/runtime/orm/ormtest"
)

// Article has fields that GORM stores through its JSON serializer.
type Article struct {
	ID    int64             `gorm:"primaryKey"`
	Slug  string            `gorm:"uniqueIndex;size:64"`
	Tags  []string          `gorm:"serializer:json"`
	Attrs map[string]string `gorm:"serializer:json"`
}

// rawColumns returns the tags and attrs columns of the row with slug as the
// database stores them.
func rawColumns(t *testing.T, db *gorm.DB, slug string) (tags, attrs *string) {
	t.Helper()
	row := db.Raw("SELECT tags, attrs FROM articles WHERE slug = ?", slug).Row()
	if err := row.Scan(&tags, &attrs); err != nil {
		t.Fatalf("raw read of %s: %v", slug, err)
	}
	return tags, attrs
}

// TestSerializerWrites checks that Update, UpdateMany and Upsert write a
// serializer field as a plain GORM Save writes it, so that it reads back.
func TestSerializerWrites(t *testing.T) {
	ormtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		if err := db.AutoMigrate(&Article{}); err != nil {
			t.Fatal(err)
		}
		m, err := orm.NewModel[Article](db)
		if err != nil {
			t.Fatal(err)
		}
		tags := []string{"go", "orm"}
		attrs := map[string]string{"lang": "en"}
		// The reference: what GORM itself writes.
		if err := db.Save(&Article{Slug: "ref", Tags: tags, Attrs: attrs}).Error; err != nil {
			t.Fatal(err)
		}
		wantTags, wantAttrs := rawColumns(t, db, "ref")
		check := func(what, slug string, got *Article) {
			t.Helper()
			if !reflect.DeepEqual(got.Tags, tags) || !reflect.DeepEqual(got.Attrs, attrs) {
				t.Errorf("%s returned tags %q attrs %v; want %q %v", what, got.Tags, got.Attrs, tags, attrs)
			}
			gotTags, gotAttrs := rawColumns(t, db, slug)
			if gotTags == nil || gotAttrs == nil || *gotTags != *wantTags || *gotAttrs != *wantAttrs {
				t.Errorf("%s stored tags %v attrs %v; GORM's Save stores %q %q", what, deref(gotTags), deref(gotAttrs), *wantTags, *wantAttrs)
			}
			var plain Article
			if err := db.Where("slug = ?", slug).Take(&plain).Error; err != nil || !reflect.DeepEqual(plain.Tags, tags) || !reflect.DeepEqual(plain.Attrs, attrs) {
				t.Errorf("%s: plain GORM reads %+v, %v", what, plain, err)
			}
		}

		if _, err := m.Create(ctx, &Article{Slug: "a"}); err != nil {
			t.Fatal(err)
		}
		// The case of issue 14: one tag was written as the bare string
		// events, which the read-back then failed to parse as JSON.
		one, err := m.Update(ctx, orm.Where{"slug": "a"}, orm.Data{"tags": []string{"events"}})
		if err != nil || !reflect.DeepEqual(one.Tags, []string{"events"}) {
			t.Fatalf("Update of one tag = %+v, %v", one, err)
		}
		got, err := m.Update(ctx, orm.Where{"slug": "a"}, orm.Data{"tags": tags})
		if err != nil || !reflect.DeepEqual(got.Tags, tags) {
			t.Fatalf("Update of tags = %+v, %v", got, err)
		}
		got, err = m.Update(ctx, orm.Where{"slug": "a"}, orm.Data{"Attrs": attrs})
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		check("Update", "a", got)

		if _, err := m.Create(ctx, &Article{Slug: "b", Tags: []string{"old"}}); err != nil {
			t.Fatal(err)
		}
		if n, err := m.UpdateMany(ctx, orm.Where{"slug": "b"}, orm.Data{"tags": tags, "attrs": attrs}); err != nil || n != 1 {
			t.Fatalf("UpdateMany = %d, %v", n, err)
		}
		got, err = m.FindUniqueOrThrow(ctx, orm.Where{"slug": "b"})
		if err != nil {
			t.Fatalf("read after UpdateMany: %v", err)
		}
		check("UpdateMany", "b", got)

		got, err = m.Upsert(ctx, orm.Where{"slug": "a"}, &Article{Slug: "a"}, orm.Data{"tags": tags, "attrs": attrs})
		if err != nil {
			t.Fatalf("Upsert: %v", err)
		}
		check("Upsert", "a", got)

		// A value the field cannot hold is an error, not a stored string.
		if _, err := m.Update(ctx, orm.Where{"slug": "a"}, orm.Data{"tags": 5}); err == nil || !strings.Contains(err.Error(), "Tags") {
			t.Errorf("Update of tags to 5: err = %v; want an error naming the field", err)
		}
		// nil clears a serializer field as Save of a nil slice does.
		got, err = m.Update(ctx, orm.Where{"slug": "a"}, orm.Data{"tags": nil})
		if err != nil || got.Tags != nil {
			t.Fatalf("Update to nil = %+v, %v", got, err)
		}
	})
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
