package runtime

import "context"

// Tx is what a transaction-aware data layer (runtime/orm) puts in the
// context of a transaction. Inside it, GetCached and GetBatch neither read
// nor fill the cache (the transaction may see its own uncommitted writes),
// and Put and AfterWrite run after the commit, never after a rollback.
type Tx interface {
	// AfterCommit registers fn to run once the transaction has committed.
	// A rolled-back transaction never runs it.
	AfterCommit(fn func())
}

type txKey struct{}

// WithTx returns a context that carries tx.
func WithTx(ctx context.Context, tx Tx) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

// TxFromContext returns the transaction ctx carries, if any.
func TxFromContext(ctx context.Context) (Tx, bool) {
	tx, ok := ctx.Value(txKey{}).(Tx)
	return tx, ok && tx != nil
}

func inTx(ctx context.Context) bool {
	_, ok := TxFromContext(ctx)
	return ok
}

// afterCommit is the context that deferred work runs with: the request's
// values, neither its cancellation nor its (finished) transaction.
func afterCommit(ctx context.Context) context.Context {
	return context.WithValue(context.WithoutCancel(ctx), txKey{}, nil)
}
