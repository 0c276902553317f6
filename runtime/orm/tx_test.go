package orm_test

import (
	"context"
	"errors"
	"testing"

	"gorm.io/gorm"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/orm"
	"github.com/repocache/repocache/runtime/orm/ormtest"
)

// Note is a model whose GORM hook registers an after-commit function
// through the context of the *gorm.DB GORM hands the hook, as a cached
// repository called from plain GORM code would.
type Note struct {
	ID   int64 `gorm:"primaryKey"`
	Text string
	ran  *[]string
}

// AfterCreate registers an after-commit function through the hook's context.
func (n *Note) AfterCreate(tx *gorm.DB) error {
	if n.ran != nil {
		orm.AfterCommit(tx.Statement.Context, func() { *n.ran = append(*n.ran, "hook:"+n.Text) })
	}
	return nil
}

func TestPlainGORMInTransaction(t *testing.T) {
	ormtest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		m := setup(t, db)
		if err := db.AutoMigrate(&Note{}); err != nil {
			t.Fatal(err)
		}
		notes := func() int64 {
			t.Helper()
			var n int64
			if err := db.Model(&Note{}).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}

		// Rolled back: plain GORM writes made with DB's handle go with
		// the transaction, and so do Model methods called with the
		// handle's context.
		var ran []string
		boom := errors.New("boom")
		err := orm.Transaction(ctx, db, func(ctx context.Context) error {
			tx := orm.DB(ctx, db)
			if err := tx.Create(&Note{Text: "a", ran: &ran}).Error; err != nil {
				return err
			}
			if err := tx.Model(&Team{}).Where("slug = ?", "acme").Update("plan", "gold").Error; err != nil {
				return err
			}
			hctx := tx.Statement.Context
			if _, ok := runtime.TxFromContext(hctx); !ok {
				t.Error("runtime.TxFromContext(DB(ctx, db).Statement.Context) sees no transaction")
			}
			if _, err := m.Update(hctx, orm.Where{"slug": "globex"}, orm.Data{"plan": "gold"}); err != nil {
				return err
			}
			orm.AfterCommit(hctx, func() { ran = append(ran, "never") })
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Transaction = %v, want boom", err)
		}
		if n := notes(); n != 0 {
			t.Errorf("%d notes after the rollback; plain GORM wrote outside the transaction", n)
		}
		if n, _ := m.Count(ctx, orm.Where{"plan": "gold"}); n != 0 {
			t.Errorf("%d gold teams after the rollback", n)
		}
		if len(ran) != 0 {
			t.Errorf("after-commit functions of a rolled-back transaction ran: %v", ran)
		}

		// Committed: the hook's and the handle's after-commit functions
		// wait for the commit.
		err = orm.Transaction(ctx, db, func(ctx context.Context) error {
			tx := orm.DB(ctx, db)
			if err := tx.Create(&Note{Text: "b", ran: &ran}).Error; err != nil {
				return err
			}
			orm.AfterCommit(tx.Statement.Context, func() { ran = append(ran, "handle") })
			if len(ran) != 0 {
				t.Errorf("after-commit functions ran before the commit: %v", ran)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ran) != 2 || ran[0] != "hook:b" || ran[1] != "handle" {
			t.Errorf("after commit ran %v; want [hook:b handle]", ran)
		}
		if n := notes(); n != 1 {
			t.Errorf("%d notes after the commit, want 1", n)
		}

		// Outside a transaction, DB is db bound to ctx.
		type key struct{}
		vctx := context.WithValue(ctx, key{}, "v")
		if h := orm.DB(vctx, db); h.Statement.Context.Value(key{}) != "v" {
			t.Error("DB outside a transaction is not bound to ctx")
		}

		// A transaction begun with GORM itself: Transaction on its handle
		// runs in it, and rolls back with it.
		err = db.Transaction(func(tx *gorm.DB) error {
			err := orm.Transaction(tx.Statement.Context, tx, func(ctx context.Context) error {
				_, err := m.Update(ctx, orm.Where{"slug": "initech"}, orm.Data{"plan": "gold"})
				return err
			})
			if err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("db.Transaction = %v, want boom", err)
		}
		if n, _ := m.Count(ctx, orm.Where{"plan": "gold"}); n != 0 {
			t.Errorf("%d gold teams after GORM's rollback", n)
		}
	})
}
