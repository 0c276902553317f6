// Package diag collects the problems of one generator run and prints them
// like a compiler does: one line each, path:line:col: message, sorted, with
// paths relative to the working directory.
package diag

import (
	"cmp"
	"fmt"
	"go/token"
	"io"
	"path/filepath"
	"slices"
)

// Diag is one problem. A Diag without a file (Pos.Filename == "") is about
// the run as a whole, e.g. a -type naming no interface.
type Diag struct {
	Pos token.Position
	Msg string

	format string
	args   []any
}

// text is the message with the positions among its arguments (token.Position
// values, such as where a clashing name is declared) written relative to
// dir, as the line's own position is.
func (d Diag) text(dir string) string {
	if d.format == "" {
		return d.Msg
	}
	args := make([]any, len(d.args))
	for i, a := range d.args {
		if p, ok := a.(token.Position); ok && p.Filename != "" {
			a = fmt.Sprintf("%s:%d:%d", Rel(dir, p.Filename), p.Line, p.Column)
		}
		args[i] = a
	}
	return fmt.Sprintf(d.format, args...)
}

// List collects diagnostics.
type List struct {
	diags []Diag
}

// Add records a problem at pos. An argument that is a token.Position is
// printed as path:line:col, the path relative to the directory given to
// Print.
func (l *List) Add(pos token.Position, format string, args ...any) {
	l.diags = append(l.diags, Diag{Pos: pos, Msg: fmt.Sprintf(format, args...), format: format, args: args})
}

// Len reports how many problems were recorded.
func (l *List) Len() int { return len(l.diags) }

// Sorted returns the problems sorted by file, line, column and message,
// without duplicates.
func (l *List) Sorted() []Diag {
	ds := slices.Clone(l.diags)
	slices.SortStableFunc(ds, func(a, b Diag) int {
		return cmp.Or(
			cmp.Compare(a.Pos.Filename, b.Pos.Filename),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return slices.CompactFunc(ds, func(a, b Diag) bool { return a.Pos == b.Pos && a.Msg == b.Msg })
}

// Print writes one line per problem to w. Paths are made relative to dir
// (the working directory) when they are inside or near it.
func (l *List) Print(w io.Writer, dir string) {
	for _, d := range l.Sorted() {
		if d.Pos.Filename == "" {
			fmt.Fprintf(w, "cachegen: %s\n", d.text(dir))
			continue
		}
		fmt.Fprintf(w, "%s:%d:%d: %s\n", Rel(dir, d.Pos.Filename), d.Pos.Line, d.Pos.Column, d.text(dir))
	}
}

// Rel returns path relative to dir, with forward slashes, or path itself
// when it has no relative form.
func Rel(dir, path string) string {
	if dir == "" || !filepath.IsAbs(path) {
		return filepath.ToSlash(path)
	}
	r, err := filepath.Rel(dir, path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(r)
}
