// Package embedimport embeds an interface of another package and redeclares
// its mutation to annotate it.
package embedimport

import (
	"context"

	"github.com/repocache/repocache/cachegen/testdata/embedimport/base"
)

// ThingRepo caches base.Repo.
//
//cache:repo
type ThingRepo interface {
	base.Repo

	// Delete is redeclared (same signature) to carry a directive.
	//
	//cache:invalidate keys=thing:{id}
	Delete(ctx context.Context, id int64) error
}
