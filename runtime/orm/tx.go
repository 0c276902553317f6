package orm

import (
	"context"
	"sync"

	"gorm.io/gorm"

	"github.com/repocache/repocache/runtime"
)

type txKey struct{}

// txState is one transaction (or savepoint) and the functions to run after
// it commits. It implements runtime.Tx.
type txState struct {
	tx    *gorm.DB
	mu    sync.Mutex
	after []func()
}

// AfterCommit implements runtime.Tx.
func (s *txState) AfterCommit(fn func()) {
	s.mu.Lock()
	s.after = append(s.after, fn)
	s.mu.Unlock()
}

// Transaction runs fn in a transaction on db. The context passed to fn
// carries the transaction: Model methods called with it use it, cached
// reads bypass the cache, and functions registered with AfterCommit
// (runtime.Put, Cache.AfterWrite) run after the commit, in order, and not
// at all if fn returns an error or panics (the transaction rolls back).
//
// Called inside another Transaction, it runs fn in a savepoint; its
// after-commit functions then wait for the outermost commit, and are
// dropped if the savepoint rolls back. Plain GORM code in fn runs on
// DB(ctx, db), the transaction's handle; see DB for transactions begun with
// GORM itself.
func Transaction(ctx context.Context, db *gorm.DB, fn func(ctx context.Context) error) error {
	outer, nested := ctx.Value(txKey{}).(*txState)
	base := db
	if nested {
		base = outer.tx
	}
	st := &txState{}
	// The transaction's *gorm.DB gets the context that carries the
	// transaction, so that code handed tx.Statement.Context (GORM hooks,
	// plain GORM code given DB's handle) sees it too.
	txCtx := runtime.WithTx(context.WithValue(ctx, txKey{}, st), st)
	err := base.WithContext(txCtx).Transaction(func(tx *gorm.DB) error {
		st.tx = tx
		return fn(txCtx)
	})
	if err != nil {
		return err
	}
	if nested {
		for _, f := range st.after {
			outer.AfterCommit(f)
		}
		return nil
	}
	for _, f := range st.after {
		f()
	}
	return nil
}

// AfterCommit runs fn after the transaction that ctx carries commits, or at
// once if ctx carries none.
func AfterCommit(ctx context.Context, fn func()) {
	if st, ok := ctx.Value(txKey{}).(*txState); ok {
		st.AfterCommit(fn)
		return
	}
	fn()
}

// DB returns the *gorm.DB for plain GORM calls made with ctx: inside a
// Transaction (ctx carries one), the transaction's handle, so that the
// calls commit or roll back with it; otherwise db. Either way the handle is
// bound to ctx, so its Statement.Context carries the transaction:
// AfterCommit, runtime.TxFromContext and Model methods called with it all
// see the transaction. db may be nil when ctx is known to carry a
// transaction. Inside a transaction, db itself is outside it: its writes do
// not roll back, and on a single-connection database (Open("")) it waits
// for the transaction forever.
//
//	err := orm.Transaction(ctx, db, func(ctx context.Context) error {
//		if err := orm.DB(ctx, db).Exec("UPDATE counters SET n = n + 1").Error; err != nil {
//			return err
//		}
//		_, err := posts.Update(ctx, orm.Where{"id": 1}, orm.Data{"title": "Hi"})
//		return err
//	})
//
// Transactions begun with GORM itself (db.Begin, db.Transaction) are not
// seen by this package through a context. To use Model methods inside one,
// pass its handle to Transaction, which then runs in a savepoint of it:
// orm.Transaction(tx.Statement.Context, tx, fn). This package cannot see
// that outer commit, so after-commit functions then run when the savepoint
// is released; start transactions with Transaction where cached data is
// written.
func DB(ctx context.Context, db *gorm.DB) *gorm.DB {
	if st, ok := ctx.Value(txKey{}).(*txState); ok {
		return st.tx.WithContext(ctx)
	}
	return db.WithContext(ctx)
}
