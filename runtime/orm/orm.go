// Package orm is a small, typed, Prisma-like layer over GORM: the data
// access that cachegen's decorators wrap.
//
//	users, err := orm.NewModel[User](db)
//	u, err := users.FindUniqueOrThrow(ctx, orm.Where{"id": 42})
//	list, err := users.FindMany(ctx, orm.FindManyArgs{
//		Where: orm.Where{"team_id": 7}, OrderBy: []orm.Order{{Column: "name"}}, Take: 20,
//	})
//	err = orm.Transaction(ctx, db, func(ctx context.Context) error {
//		_, err := users.Update(ctx, orm.Where{"id": 42}, orm.Data{"name": "Ada"})
//		return err
//	})
//
// Columns are named by their database name or their Go field name; an
// unknown column is an error (ErrUnknownColumn), never a silently ignored
// condition. Lookups that promise one row (FindUnique, Update, Delete,
// Upsert) need a unique column with a non-zero value in the where, and the
// Many mutations need a non-empty where: a zero value can never turn into a
// full-table update or delete.
//
// Relations load with Include, Prisma's include (GORM's Preload
// underneath): FindManyArgs.Include, or Model.Include for every method that
// returns rows, with Go field names in any case and dotted paths for
// nested relations. An unknown relation is ErrUnknownRelation.
//
//	post, err := posts.Include("Author").FindUniqueOrThrow(ctx, orm.Where{"id": 1})
//	list, err := posts.FindMany(ctx, orm.FindManyArgs{Include: []string{"Author.Profile", "Tags"}})
//
// Data values of fields with a GORM serializer (serializer:json, gob,
// unixtime or a custom one) are Go values of the field's type, written
// through the serializer as a GORM Save writes them:
// orm.Data{"tags": []string{"a", "b"}} on a `gorm:"serializer:json"` field
// stores ["a","b"].
//
// Not-found is ErrNotFound, which is runtime.ErrNotFound (so that a get with
// negative= caches it) and also matches gorm.ErrRecordNotFound.
//
// Transaction runs a function in a database transaction carried by its
// context: every Model method called with that context uses the
// transaction, cached reads bypass the cache, and cache invalidations
// registered with AfterCommit (as the generated decorators do through
// runtime.Put and Cache.AfterWrite) run after the commit, never after a
// rollback. Plain GORM code inside it runs on DB(ctx, db), the
// transaction's *gorm.DB, whose context carries the transaction in turn (so
// GORM hooks and code handed only the *gorm.DB see it too).
package orm

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/repocache/repocache/runtime"
)

// Errors of this package. Each wraps its details with %w.
var (
	// ErrNotFound reports that no row matched. It is runtime.ErrNotFound;
	// errors returned by this package that match it also match
	// gorm.ErrRecordNotFound.
	ErrNotFound = runtime.ErrNotFound
	// ErrUnknownColumn reports a column that the model does not have.
	ErrUnknownColumn = errors.New("orm: unknown column")
	// ErrUnknownRelation reports an include of a relation that the model
	// does not have.
	ErrUnknownRelation = errors.New("orm: unknown relation")
	// ErrUnsafeWhere reports a where that would touch more rows than the
	// call promises: empty for a Many mutation, or without a non-zero
	// unique column for a unique lookup.
	ErrUnsafeWhere = errors.New("orm: unsafe where")
)

// Where selects rows: column = value, column IN (values) for a slice, and
// column IS NULL for nil. Conditions are ANDed.
type Where map[string]any

// Data is the columns to set in an update, by database or Go field name.
// A field with a GORM serializer takes a value of the field's Go type (nil
// for NULL), stored through the serializer as a Save would store it; SQL
// expressions (gorm.Expr) go to the database as they are.
type Data map[string]any

// Order is one ORDER BY term.
type Order struct {
	Column string // database or Go field name
	Desc   bool   // descending
}

// FindManyArgs are the arguments of FindMany and FindFirst.
type FindManyArgs struct {
	Where   Where    // conditions; all rows when empty
	Select  []string // columns to load; all when empty
	OrderBy []Order
	Take    int // LIMIT; none when 0
	Skip    int // OFFSET
	// Include names relations to load with the rows, as Model.Include
	// does (and in addition to the Model's own).
	Include []string
}

// Model is the typed entry point for one GORM model type T. It is safe for
// concurrent use.
type Model[T any] struct {
	db     *gorm.DB
	schema *schema.Schema
	unique map[string]bool // DB names of single-column unique keys

	include    []string // relations to preload with every row returned (Include)
	includeErr error    // Include's error, returned by every method
}

// NewModel parses T's GORM schema.
func NewModel[T any](db *gorm.DB) (*Model[T], error) {
	var zero T
	if reflect.TypeOf(zero) == nil || reflect.TypeOf(zero).Kind() != reflect.Struct {
		return nil, fmt.Errorf("orm: model %T must be a struct type", zero)
	}
	s, err := schema.Parse(&zero, &sync.Map{}, db.NamingStrategy)
	if err != nil {
		return nil, fmt.Errorf("orm: parse model %T: %w", zero, err)
	}
	m := &Model[T]{db: db, schema: s, unique: map[string]bool{}}
	for _, f := range s.Fields {
		if f.DBName != "" && (f.PrimaryKey || f.Unique) {
			m.unique[f.DBName] = true
		}
	}
	for _, idx := range s.ParseIndexes() {
		if idx.Class == "UNIQUE" && len(idx.Fields) == 1 {
			m.unique[idx.Fields[0].DBName] = true
		}
	}
	return m, nil
}

// Table returns the model's table name.
func (m *Model[T]) Table() string { return m.schema.Table }

// column resolves a database or Go field name to the database name.
func (m *Model[T]) column(name string) (string, error) {
	if f := m.schema.LookUpField(name); f != nil && f.DBName != "" {
		return f.DBName, nil
	}
	cols := make([]string, 0, len(m.schema.DBNames))
	cols = append(cols, m.schema.DBNames...)
	sort.Strings(cols)
	return "", fmt.Errorf("%w %q in %s (columns: %s)", ErrUnknownColumn, name, m.schema.Table, strings.Join(cols, ", "))
}

// conds turns a Where into GORM clause expressions, in a stable order.
func (m *Model[T]) conds(w Where) ([]clause.Expression, error) {
	names := make([]string, 0, len(w))
	for k := range w {
		names = append(names, k)
	}
	sort.Strings(names)
	exprs := make([]clause.Expression, 0, len(w))
	for _, k := range names {
		col, err := m.column(k)
		if err != nil {
			return nil, err
		}
		v := w[k]
		c := clause.Column{Table: clause.CurrentTable, Name: col}
		switch rv := reflect.ValueOf(v); {
		case v == nil:
			exprs = append(exprs, clause.Expr{SQL: "? IS NULL", Vars: []any{c}})
		case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() != reflect.Uint8:
			vals := make([]any, rv.Len())
			for i := range vals {
				vals[i] = rv.Index(i).Interface()
			}
			exprs = append(exprs, clause.IN{Column: c, Values: vals})
		default:
			exprs = append(exprs, clause.Eq{Column: c, Value: v})
		}
	}
	return exprs, nil
}

// uniqueWhere checks that w names a unique column with a non-zero value.
func (m *Model[T]) uniqueWhere(op string, w Where) ([]clause.Expression, error) {
	exprs, err := m.conds(w)
	if err != nil {
		return nil, err
	}
	for k, v := range w {
		col, _ := m.column(k)
		if m.unique[col] && v != nil && !reflect.ValueOf(v).IsZero() && reflect.ValueOf(v).Kind() != reflect.Slice {
			return exprs, nil
		}
	}
	keys := make([]string, 0, len(m.unique))
	for k := range m.unique {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return nil, fmt.Errorf("%w: %s on %s needs a non-zero unique column (%s) in its where, got %v", ErrUnsafeWhere, op, m.schema.Table, strings.Join(keys, ", "), map[string]any(w))
}

// manyWhere checks that w is not empty.
func (m *Model[T]) manyWhere(op string, w Where) ([]clause.Expression, error) {
	if len(w) == 0 {
		return nil, fmt.Errorf("%w: %s on %s with an empty where would touch every row", ErrUnsafeWhere, op, m.schema.Table)
	}
	return m.conds(w)
}

func (m *Model[T]) columns(names []string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		col, err := m.column(n)
		if err != nil {
			return nil, err
		}
		out[i] = col
	}
	return out, nil
}

// data resolves d's columns and turns the values of fields with a GORM
// serializer into what the serializer stores, as a Save would write them:
// GORM's Updates with a map sends map values to the driver unserialized (a
// []string became a row value or a bare string).
func (m *Model[T]) data(ctx context.Context, d Data) (map[string]any, error) {
	if len(d) == 0 {
		return nil, fmt.Errorf("orm: update on %s with no data", m.schema.Table)
	}
	out := make(map[string]any, len(d))
	for k, v := range d {
		col, err := m.column(k)
		if err != nil {
			return nil, err
		}
		if f := m.schema.FieldsByDBName[col]; f != nil && f.Serializer != nil {
			if v, err = serialize(ctx, m.schema, f, v); err != nil {
				return nil, err
			}
		}
		out[col] = v
	}
	return out, nil
}

// serialize returns what f's serializer stores for v: v is set on a zero
// model value with f.Set, and the serializer's valuer (the one GORM hands
// the driver on a Create or Save) turns it into a database value. SQL
// expressions and subqueries are left to the database.
func serialize(ctx context.Context, s *schema.Schema, f *schema.Field, v any) (any, error) {
	switch v.(type) {
	case clause.Expression, *gorm.DB:
		return v, nil
	}
	dst := reflect.New(s.ModelType)
	if err := f.Set(ctx, dst, v); err != nil {
		return nil, fmt.Errorf("orm: %s.%s: %w", s.Table, f.Name, err)
	}
	fv, _ := f.ValueOf(ctx, dst)
	valuer, ok := fv.(driver.Valuer)
	if !ok {
		return fv, nil
	}
	dv, err := valuer.Value()
	if err != nil {
		return nil, fmt.Errorf("orm: %s.%s: serialize: %w", s.Table, f.Name, err)
	}
	return dv, nil
}

// conn is the database handle for ctx: its transaction if it carries one.
func (m *Model[T]) conn(ctx context.Context) *gorm.DB { return DB(ctx, m.db) }

// notFound wraps gorm's not-found error so that it matches both.
func notFound(table string, w Where) error {
	return fmt.Errorf("%w: %s where %v: %w", ErrNotFound, table, map[string]any(w), gorm.ErrRecordNotFound)
}
