package orm

import (
	"context"
	"testing"

	"github.com/repocache/repocache/runtime"
)

// TestTxHandleCarriesTransaction checks that the transaction's own *gorm.DB
// (the handle DB gives out) has a context that carries the transaction, so
// that code given only tx.Statement.Context sees it.
func TestTxHandleCarriesTransaction(t *testing.T) {
	db, _, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			_ = s.Close()
		}
	}()
	err = Transaction(context.Background(), db, func(ctx context.Context) error {
		st := ctx.Value(txKey{}).(*txState)
		if got, ok := st.tx.Statement.Context.Value(txKey{}).(*txState); !ok || got != st {
			t.Errorf("the transaction's *gorm.DB has a context without the orm transaction")
		}
		if tx, ok := runtime.TxFromContext(st.tx.Statement.Context); !ok || tx != st {
			t.Errorf("runtime.TxFromContext(tx.Statement.Context) = %v, %v; want the transaction", tx, ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
