package orm

import (
	"context"
	"fmt"

	"gorm.io/gorm/clause"
)

// Create inserts v (its primary key and defaults are filled in) and returns
// it; with Include, v is read back with its relations.
func (m *Model[T]) Create(ctx context.Context, v *T) (*T, error) {
	if v == nil {
		return nil, fmt.Errorf("orm: create %s: nil value", m.schema.Table)
	}
	if m.includeErr != nil {
		return nil, m.includeErr
	}
	if len(m.include) == 0 {
		if err := m.conn(ctx).Create(v).Error; err != nil {
			return nil, fmt.Errorf("orm: create %s: %w", m.schema.Table, err)
		}
		return v, nil
	}
	// Insert and load the relations in one transaction, so that the row
	// returned is the row inserted.
	err := m.inTx(ctx, func(ctx context.Context) error {
		if err := m.conn(ctx).Create(v).Error; err != nil {
			return fmt.Errorf("orm: create %s: %w", m.schema.Table, err)
		}
		return m.reload(ctx, v)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// CreateMany inserts vs in one statement and returns how many rows it
// inserted.
func (m *Model[T]) CreateMany(ctx context.Context, vs []T) (int64, error) {
	if m.includeErr != nil {
		return 0, m.includeErr
	}
	if len(vs) == 0 {
		return 0, nil
	}
	res := m.conn(ctx).Create(&vs)
	if res.Error != nil {
		return 0, fmt.Errorf("orm: create many %s: %w", m.schema.Table, res.Error)
	}
	return res.RowsAffected, nil
}

// Update sets data on the row where's unique column selects and returns the
// updated row; ErrNotFound if there is none.
func (m *Model[T]) Update(ctx context.Context, where Where, data Data) (*T, error) {
	if m.includeErr != nil {
		return nil, m.includeErr
	}
	exprs, err := m.uniqueWhere("Update", where)
	if err != nil {
		return nil, err
	}
	cols, err := m.data(ctx, data)
	if err != nil {
		return nil, err
	}
	var out *T
	err = m.inTx(ctx, func(ctx context.Context) error {
		var zero T
		res := m.conn(ctx).Model(&zero).Clauses(clause.Where{Exprs: exprs}).Updates(cols)
		if res.Error != nil {
			return fmt.Errorf("orm: update %s: %w", m.schema.Table, res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound(m.schema.Table, where)
		}
		out, err = m.FindUniqueOrThrow(ctx, where)
		return err
	})
	return out, err
}

// UpdateMany sets data on every row that matches where, which must not be
// empty, and returns how many rows changed.
func (m *Model[T]) UpdateMany(ctx context.Context, where Where, data Data) (int64, error) {
	if m.includeErr != nil {
		return 0, m.includeErr
	}
	exprs, err := m.manyWhere("UpdateMany", where)
	if err != nil {
		return 0, err
	}
	cols, err := m.data(ctx, data)
	if err != nil {
		return 0, err
	}
	var zero T
	res := m.conn(ctx).Model(&zero).Clauses(clause.Where{Exprs: exprs}).Updates(cols)
	if res.Error != nil {
		return 0, fmt.Errorf("orm: update many %s: %w", m.schema.Table, res.Error)
	}
	return res.RowsAffected, nil
}

// Upsert updates the row that where's unique column selects with update, or
// creates create if there is none, and returns the row.
func (m *Model[T]) Upsert(ctx context.Context, where Where, create *T, update Data) (*T, error) {
	if m.includeErr != nil {
		return nil, m.includeErr
	}
	if _, err := m.uniqueWhere("Upsert", where); err != nil {
		return nil, err
	}
	var out *T
	err := m.inTx(ctx, func(ctx context.Context) error {
		existing, err := m.FindUnique(ctx, where)
		if err != nil {
			return err
		}
		if existing == nil {
			out, err = m.Create(ctx, create)
			return err
		}
		out, err = m.Update(ctx, where, update)
		return err
	})
	return out, err
}

// Delete deletes the row that where's unique column selects and returns it;
// ErrNotFound if there is none.
func (m *Model[T]) Delete(ctx context.Context, where Where) (*T, error) {
	if m.includeErr != nil {
		return nil, m.includeErr
	}
	exprs, err := m.uniqueWhere("Delete", where)
	if err != nil {
		return nil, err
	}
	var out *T
	err = m.inTx(ctx, func(ctx context.Context) error {
		if out, err = m.FindUniqueOrThrow(ctx, where); err != nil {
			return err
		}
		var zero T
		if err := m.conn(ctx).Clauses(clause.Where{Exprs: exprs}).Delete(&zero).Error; err != nil {
			return fmt.Errorf("orm: delete %s: %w", m.schema.Table, err)
		}
		return nil
	})
	return out, err
}

// DeleteMany deletes every row that matches where, which must not be
// empty, and returns how many it deleted.
func (m *Model[T]) DeleteMany(ctx context.Context, where Where) (int64, error) {
	if m.includeErr != nil {
		return 0, m.includeErr
	}
	exprs, err := m.manyWhere("DeleteMany", where)
	if err != nil {
		return 0, err
	}
	var zero T
	res := m.conn(ctx).Clauses(clause.Where{Exprs: exprs}).Delete(&zero)
	if res.Error != nil {
		return 0, fmt.Errorf("orm: delete many %s: %w", m.schema.Table, res.Error)
	}
	return res.RowsAffected, nil
}

// inTx runs fn in the context's transaction, or in a new one.
func (m *Model[T]) inTx(ctx context.Context, fn func(context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*txState); ok {
		return fn(ctx)
	}
	return Transaction(ctx, m.db, fn)
}
