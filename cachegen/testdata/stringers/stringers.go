// Package stringers renders Stringers, pointers and promoted fields.
package stringers

import (
	"context"
	"fmt"
)

// Code has a String method on its pointer.
type Code struct{ A, B int }

func (c *Code) String() string { return fmt.Sprintf("%d-%d", c.A, c.B) }

// Base is embedded through a pointer.
type Base struct {
	Tenant string
}

// Query has pointers and a promoted field.
type Query struct {
	*Base
	Code   Code
	Limit  *int64
	Name   *string
	Size   *uint8
	Label  fmt.Stringer
	Parent *Query
}

// Repo uses them in keys and tags.
//
//cache:repo
type Repo interface {
	//cache:get key=q:{q.Tenant}:{q.Code}:{q.Limit}:{q.Name}:{q.Size}:{q.Label}:{q.Parent.Name} ttl=1m tags={s} unkeyed=s
	Find(ctx context.Context, q *Query, s fmt.Stringer) ([]string, error)
}
