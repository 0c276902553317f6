// Package base declares a repository interface that another package embeds.
package base

import "context"

// Thing is stored.
type Thing struct{ ID int64 }

// Repo is embedded from another package: cachegen cannot read its comments.
type Repo interface {
	Get(ctx context.Context, id int64) (*Thing, error)
	Delete(ctx context.Context, id int64) error
}
