package orm

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// Include returns a Model that loads the named relations with every row it
// returns: FindUnique, FindUniqueOrThrow, FindFirst and FindMany, and the
// rows Create, Update, Upsert and Delete return. It is Prisma's include;
// GORM's Preload loads the relations, one query per relation.
//
//	post, err := posts.Include("Author").FindUniqueOrThrow(ctx, orm.Where{"id": 1})
//	fmt.Println(post.Author.Name)
//
// A relation is named by its Go field (Author) or, as in Prisma, in any
// case (author); a dotted path (Author.Profile) loads a relation of a
// relation, and the relations on its way. A name that is not a relation of
// the model is an error matching ErrUnknownRelation, returned by the
// methods of the Model Include returns. m itself is unchanged.
func (m *Model[T]) Include(relations ...string) *Model[T] {
	v := *m
	paths, err := m.relations(relations)
	if err != nil && v.includeErr == nil {
		v.includeErr = err
	}
	v.include = mergePaths(m.include, paths)
	return &v
}

// relations resolves relation paths to GORM's preload names.
func (m *Model[T]) relations(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, name := range names {
		p, err := m.relationPath(name)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// relationPath resolves one dotted relation path against the model.
func (m *Model[T]) relationPath(path string) (string, error) {
	s := m.schema
	parts := strings.Split(path, ".")
	for i, p := range parts {
		rel, names := relation(s, p)
		if rel == nil {
			return "", fmt.Errorf("%w %q in %q of %s (relations of %s: %s)", ErrUnknownRelation, p, path, m.schema.Table, s.Name, strings.Join(names, ", "))
		}
		parts[i] = rel.Name
		s = rel.FieldSchema
	}
	return strings.Join(parts, "."), nil
}

// relation finds s's relation name: the Go field name, or failing that the
// one relation whose name equals it in any case. It also returns s's
// relation names, sorted, for error messages.
func relation(s *schema.Schema, name string) (*schema.Relationship, []string) {
	s.Relationships.Mux.RLock()
	defer s.Relationships.Mux.RUnlock()
	if rel := s.Relationships.Relations[name]; rel != nil {
		return rel, nil
	}
	var found []*schema.Relationship
	names := make([]string, 0, len(s.Relationships.Relations))
	for n, rel := range s.Relationships.Relations {
		names = append(names, n)
		if strings.EqualFold(n, name) {
			found = append(found, rel)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	sort.Strings(names)
	if len(names) == 0 {
		names = append(names, "none")
	}
	return nil, names
}

// mergePaths appends the paths of b that a lacks to a copy of a.
func mergePaths(a, b []string) []string {
	out := slices.Clone(a)
	for _, p := range b {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// load adds the select and the preloads of include to q. With a select, the
// columns the included relations join on are selected too, or the
// relations could not be loaded.
func (m *Model[T]) load(q *gorm.DB, selectCols, include []string) (*gorm.DB, error) {
	if len(selectCols) > 0 {
		cols, err := m.columns(selectCols)
		if err != nil {
			return nil, err
		}
		for _, p := range include {
			top, _, _ := strings.Cut(p, ".")
			rel, _ := relation(m.schema, top)
			for _, ref := range rel.References {
				for _, f := range []*schema.Field{ref.PrimaryKey, ref.ForeignKey} {
					if f != nil && f.Schema == m.schema && f.DBName != "" && !slices.Contains(cols, f.DBName) {
						cols = append(cols, f.DBName)
					}
				}
			}
		}
		q = q.Select(cols)
	}
	for _, p := range include {
		q = q.Preload(p)
	}
	return q, nil
}

// reload loads m's included relations into v, a row just written, by its
// primary key.
func (m *Model[T]) reload(ctx context.Context, v *T) error {
	if len(m.include) == 0 {
		return nil
	}
	if len(m.schema.PrimaryFields) == 0 {
		return fmt.Errorf("orm: include on %s needs a primary key to reload the row", m.schema.Table)
	}
	q, err := m.load(m.conn(ctx), nil, m.include)
	if err != nil {
		return err
	}
	exprs := make([]clause.Expression, 0, len(m.schema.PrimaryFields))
	for _, f := range m.schema.PrimaryFields {
		val, zero := f.ValueOf(ctx, reflect.ValueOf(v))
		if zero {
			return fmt.Errorf("orm: include on %s: the written row has a zero %s", m.schema.Table, f.Name)
		}
		exprs = append(exprs, clause.Eq{Column: clause.Column{Table: clause.CurrentTable, Name: f.DBName}, Value: val})
	}
	if err := q.Clauses(clause.Where{Exprs: exprs}).Take(v).Error; err != nil {
		return fmt.Errorf("orm: include on %s: %w", m.schema.Table, err)
	}
	return nil
}
