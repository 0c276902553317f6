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
// dropped if the savepoint rolls back.
func Transaction(ctx context.Context, db *gorm.DB, fn func(ctx context.Context) error) error {
	outer, nested := ctx.Value(txKey{}).(*txState)
	base := db
	if nested {
		base = outer.tx
	}
	st := &txState{}
	err := base.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		st.tx = tx
		return fn(runtime.WithTx(context.WithValue(ctx, txKey{}, st), st))
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
