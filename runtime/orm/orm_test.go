package orm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/orm"
	"github.com/repocache/repocache/runtime/orm/ormtest"
)

type Team struct {
	ID        int64  `gorm:"primaryKey"`
	Slug      string `gorm:"uniqueIndex;size:64"`
	Name      string
	Plan      string
	Seats     int
	DeletedAt *time.Time
}

func setup(t *testing.T, db *gorm.DB) *orm.Model[Team] {
	t.Helper()
	if err := db.AutoMigrate(&Team{}); err != nil {
		t.Fatal(err)
	}
	m, err := orm.NewModel[Team](db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := m.CreateMany(ctx, []Team{
		{Slug: "acme", Name: "Acme", Plan: "pro", Seats: 10},
		{Slug: "globex", Name: "Globex", Plan: "free", Seats: 3},
		{Slug: "initech", Name: "Initech", Plan: "pro", Seats: 7},
	})
	if err != nil || n != 3 {
		t.Fatalf("CreateMany = %d, %v", n, err)
	}
	return m
}

func TestFind(t *testing.T) {
	ormtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		m := setup(t, db)
		acme, err := m.FindUniqueOrThrow(ctx, orm.Where{"slug": "acme"})
		if err != nil || acme.Name != "Acme" || acme.ID == 0 {
			t.Fatalf("FindUniqueOrThrow = %+v, %v", acme, err)
		}
		// Go field names work as well as column names.
		if got, err := m.FindUnique(ctx, orm.Where{"ID": acme.ID}); err != nil || got.Slug != "acme" {
			t.Fatalf("FindUnique by ID = %+v, %v", got, err)
		}
		if got, err := m.FindUnique(ctx, orm.Where{"slug": "nope"}); got != nil || err != nil {
			t.Fatalf("FindUnique of a missing row = %+v, %v; want nil, nil", got, err)
		}
		_, err = m.FindUniqueOrThrow(ctx, orm.Where{"slug": "nope"})
		if !errors.Is(err, orm.ErrNotFound) || !errors.Is(err, gorm.ErrRecordNotFound) || !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("not-found err = %v; want it to match orm, gorm and runtime not-found", err)
		}
		sel, err := m.FindUniqueOrThrow(ctx, orm.Where{"slug": "acme"}, "id", "name")
		if err != nil || sel.Name != "Acme" || sel.Plan != "" {
			t.Fatalf("select id,name = %+v, %v", sel, err)
		}
		pro, err := m.FindMany(ctx, orm.FindManyArgs{Where: orm.Where{"plan": "pro"}, OrderBy: []orm.Order{{Column: "seats", Desc: true}}})
		if err != nil || len(pro) != 2 || pro[0].Slug != "acme" || pro[1].Slug != "initech" {
			t.Fatalf("FindMany pro by seats desc = %+v, %v", pro, err)
		}
		page, err := m.FindMany(ctx, orm.FindManyArgs{OrderBy: []orm.Order{{Column: "slug"}}, Take: 1, Skip: 1})
		if err != nil || len(page) != 1 || page[0].Slug != "globex" {
			t.Fatalf("page = %+v, %v", page, err)
		}
		in, err := m.FindMany(ctx, orm.FindManyArgs{Where: orm.Where{"slug": []string{"acme", "initech", "x"}}})
		if err != nil || len(in) != 2 {
			t.Fatalf("IN = %+v, %v", in, err)
		}
		null, err := m.Count(ctx, orm.Where{"deleted_at": nil})
		if err != nil || null != 3 {
			t.Fatalf("IS NULL count = %d, %v", null, err)
		}
		first, err := m.FindFirst(ctx, orm.FindManyArgs{Where: orm.Where{"plan": "free"}})
		if err != nil || first == nil || first.Slug != "globex" {
			t.Fatalf("FindFirst = %+v, %v", first, err)
		}
		if none, err := m.FindFirst(ctx, orm.FindManyArgs{Where: orm.Where{"plan": "gold"}}); none != nil || err != nil {
			t.Fatalf("FindFirst of nothing = %+v, %v", none, err)
		}
		if empty, err := m.FindMany(ctx, orm.FindManyArgs{Where: orm.Where{"plan": "gold"}}); err != nil || empty == nil || len(empty) != 0 {
			t.Fatalf("empty FindMany = %#v, %v; want an empty, non-nil slice", empty, err)
		}
	})
}

func TestMutations(t *testing.T) {
	ormtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		m := setup(t, db)
		created, err := m.Create(ctx, &Team{Slug: "umbrella", Name: "Umbrella", Plan: "free"})
		if err != nil || created.ID == 0 {
			t.Fatalf("Create = %+v, %v", created, err)
		}
		up, err := m.Update(ctx, orm.Where{"id": created.ID}, orm.Data{"name": "Umbrella Corp", "Seats": 5})
		if err != nil || up.Name != "Umbrella Corp" || up.Seats != 5 {
			t.Fatalf("Update = %+v, %v", up, err)
		}
		if _, err := m.Update(ctx, orm.Where{"id": 999999}, orm.Data{"name": "x"}); !errors.Is(err, orm.ErrNotFound) {
			t.Fatalf("Update of a missing row: %v", err)
		}
		n, err := m.UpdateMany(ctx, orm.Where{"plan": "free"}, orm.Data{"seats": 1})
		if err != nil || n != 2 {
			t.Fatalf("UpdateMany = %d, %v", n, err)
		}
		u1, err := m.Upsert(ctx, orm.Where{"slug": "hooli"}, &Team{Slug: "hooli", Name: "Hooli"}, orm.Data{"name": "Hooli XYZ"})
		if err != nil || u1.Name != "Hooli" {
			t.Fatalf("Upsert (create) = %+v, %v", u1, err)
		}
		u2, err := m.Upsert(ctx, orm.Where{"slug": "hooli"}, &Team{Slug: "hooli", Name: "Hooli"}, orm.Data{"name": "Hooli XYZ"})
		if err != nil || u2.Name != "Hooli XYZ" || u2.ID != u1.ID {
			t.Fatalf("Upsert (update) = %+v, %v", u2, err)
		}
		del, err := m.Delete(ctx, orm.Where{"slug": "hooli"})
		if err != nil || del.ID != u1.ID {
			t.Fatalf("Delete = %+v, %v", del, err)
		}
		if _, err := m.Delete(ctx, orm.Where{"slug": "hooli"}); !errors.Is(err, orm.ErrNotFound) {
			t.Fatalf("second Delete: %v", err)
		}
		n, err = m.DeleteMany(ctx, orm.Where{"plan": "free"})
		if err != nil || n != 2 {
			t.Fatalf("DeleteMany = %d, %v", n, err)
		}
		if left, _ := m.Count(ctx, nil); left != 2 {
			t.Fatalf("%d rows left, want 2", left)
		}
	})
}

func TestBadInputIsAnError(t *testing.T) {
	ormtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		m := setup(t, db)
		check := func(what string, err, want error) {
			t.Helper()
			if !errors.Is(err, want) {
				t.Errorf("%s: err = %v, want %v", what, err, want)
			}
		}
		_, err := m.FindMany(ctx, orm.FindManyArgs{Where: orm.Where{"plna": "pro"}})
		check("unknown where column", err, orm.ErrUnknownColumn)
		_, err = m.FindMany(ctx, orm.FindManyArgs{Select: []string{"name", "passwd"}})
		check("unknown select column", err, orm.ErrUnknownColumn)
		_, err = m.FindMany(ctx, orm.FindManyArgs{OrderBy: []orm.Order{{Column: "nope"}}})
		check("unknown order column", err, orm.ErrUnknownColumn)
		_, err = m.FindUnique(ctx, orm.Where{"id": 0})
		check("zero unique where", err, orm.ErrUnsafeWhere)
		_, err = m.FindUnique(ctx, orm.Where{"plan": "pro"})
		check("non-unique where on a unique lookup", err, orm.ErrUnsafeWhere)
		_, err = m.Update(ctx, orm.Where{}, orm.Data{"plan": "x"})
		check("empty where on Update", err, orm.ErrUnsafeWhere)
		_, err = m.UpdateMany(ctx, nil, orm.Data{"plan": "x"})
		check("empty where on UpdateMany", err, orm.ErrUnsafeWhere)
		_, err = m.DeleteMany(ctx, orm.Where{})
		check("empty where on DeleteMany", err, orm.ErrUnsafeWhere)
		_, err = m.Delete(ctx, orm.Where{"slug": ""})
		check("zero slug on Delete", err, orm.ErrUnsafeWhere)
		_, err = m.Update(ctx, orm.Where{"id": 1}, orm.Data{"bogus": 1})
		check("unknown update column", err, orm.ErrUnknownColumn)
		// Nothing was touched.
		if n, _ := m.Count(ctx, orm.Where{"plan": "x"}); n != 0 {
			t.Fatalf("%d rows changed by rejected calls", n)
		}
		if n, _ := m.Count(ctx, nil); n != 3 {
			t.Fatalf("%d rows left after rejected deletes", n)
		}
	})
}

func TestTransactionAfterCommit(t *testing.T) {
	ormtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		m := setup(t, db)
		var ran []string
		err := orm.Transaction(ctx, db, func(ctx context.Context) error {
			if _, ok := runtime.TxFromContext(ctx); !ok {
				t.Error("the transaction's context carries no runtime.Tx")
			}
			if _, err := m.Update(ctx, orm.Where{"slug": "acme"}, orm.Data{"plan": "enterprise"}); err != nil {
				return err
			}
			orm.AfterCommit(ctx, func() { ran = append(ran, "outer") })
			// A savepoint that rolls back drops its hooks.
			_ = orm.Transaction(ctx, db, func(ctx context.Context) error {
				orm.AfterCommit(ctx, func() { ran = append(ran, "rolled back") })
				return errors.New("inner fails")
			})
			_ = orm.Transaction(ctx, db, func(ctx context.Context) error {
				orm.AfterCommit(ctx, func() { ran = append(ran, "inner") })
				return nil
			})
			if len(ran) != 0 {
				t.Error("after-commit hook ran before the commit")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ran) != 2 || ran[0] != "outer" || ran[1] != "inner" {
			t.Fatalf("hooks ran: %v", ran)
		}
		ran = nil
		boom := errors.New("boom")
		err = orm.Transaction(ctx, db, func(ctx context.Context) error {
			if _, err := m.Update(ctx, orm.Where{"slug": "globex"}, orm.Data{"plan": "enterprise"}); err != nil {
				return err
			}
			orm.AfterCommit(ctx, func() { ran = append(ran, "never") })
			return boom
		})
		if err != boom || len(ran) != 0 {
			t.Fatalf("rollback: err %v, hooks %v", err, ran)
		}
		g, _ := m.FindUniqueOrThrow(ctx, orm.Where{"slug": "globex"})
		if g.Plan != "free" {
			t.Fatal("the rolled-back update is visible")
		}
	})
}

func TestIdentity(t *testing.T) {
	for url, want := range map[string]string{
		"postgres://app:secret@db.internal:5432/shop?sslmode=disable": "postgres://db.internal:5432/shop",
		"postgresql://db/shop": "postgresql://db/shop",
	} {
		if got := orm.Identity(url); got != want {
			t.Errorf("Identity(%q) = %q, want %q", url, got, want)
		}
	}
	if got := orm.Identity("sqlite:/tmp/x.db?_pragma=1"); got != "sqlite:/tmp/x.db" {
		t.Errorf("sqlite file: %q", got)
	}
	if a, b := orm.Identity(""), orm.Identity(""); a == b || !strings.HasPrefix(a, "sqlite-memory-") {
		t.Errorf("in-memory identities %q and %q: want distinct, since each is its own database", a, b)
	}
	if strings.Contains(orm.Identity("postgres://u:hunter2@h/db"), "hunter2") {
		t.Error("identity leaks the password")
	}
}
