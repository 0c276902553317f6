package orm

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// FindUnique returns the row that where's unique column selects, or nil
// (and no error) if there is none.
func (m *Model[T]) FindUnique(ctx context.Context, where Where, selectCols ...string) (*T, error) {
	v, err := m.FindUniqueOrThrow(ctx, where, selectCols...)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// FindUniqueOrThrow is FindUnique that returns ErrNotFound when no row
// matches.
func (m *Model[T]) FindUniqueOrThrow(ctx context.Context, where Where, selectCols ...string) (*T, error) {
	if m.includeErr != nil {
		return nil, m.includeErr
	}
	exprs, err := m.uniqueWhere("FindUnique", where)
	if err != nil {
		return nil, err
	}
	q, err := m.load(m.conn(ctx).Clauses(clause.Where{Exprs: exprs}), selectCols, m.include)
	if err != nil {
		return nil, err
	}
	var v T
	if err := q.Take(&v).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, notFound(m.schema.Table, where)
		}
		return nil, fmt.Errorf("orm: find %s: %w", m.schema.Table, err)
	}
	return &v, nil
}

// FindFirst returns the first row FindMany would return, or nil (and no
// error) if there is none.
func (m *Model[T]) FindFirst(ctx context.Context, args FindManyArgs) (*T, error) {
	args.Take = 1
	rows, err := m.FindMany(ctx, args)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

// FindMany returns the rows that match args.Where (all rows when it is
// empty), ordered, paged, with the selected columns and the included
// relations. It returns an empty, non-nil slice when no row matches.
func (m *Model[T]) FindMany(ctx context.Context, args FindManyArgs) ([]T, error) {
	q, err := m.query(ctx, args.Where)
	if err != nil {
		return nil, err
	}
	include, err := m.relations(args.Include)
	if err != nil {
		return nil, err
	}
	if q, err = m.load(q, args.Select, mergePaths(m.include, include)); err != nil {
		return nil, err
	}
	for _, o := range args.OrderBy {
		col, err := m.column(o.Column)
		if err != nil {
			return nil, err
		}
		q = q.Order(clause.OrderByColumn{Column: clause.Column{Table: clause.CurrentTable, Name: col}, Desc: o.Desc})
	}
	if args.Take < 0 || args.Skip < 0 {
		return nil, fmt.Errorf("orm: find many %s: negative take or skip", m.schema.Table)
	}
	if args.Take > 0 {
		q = q.Limit(args.Take)
	}
	if args.Skip > 0 {
		q = q.Offset(args.Skip)
	}
	rows := []T{}
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("orm: find many %s: %w", m.schema.Table, err)
	}
	return rows, nil
}

// Count returns the number of rows that match where (all rows when where
// is empty: counting is harmless).
func (m *Model[T]) Count(ctx context.Context, where Where) (int64, error) {
	q, err := m.query(ctx, where)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		return 0, fmt.Errorf("orm: count %s: %w", m.schema.Table, err)
	}
	return n, nil
}

func (m *Model[T]) query(ctx context.Context, where Where) (*gorm.DB, error) {
	if m.includeErr != nil {
		return nil, m.includeErr
	}
	var zero T
	q := m.conn(ctx).Model(&zero)
	if len(where) == 0 {
		return q, nil
	}
	exprs, err := m.conds(where)
	if err != nil {
		return nil, err
	}
	return q.Clauses(clause.Where{Exprs: exprs}), nil
}
