package p

import "github.com/repocache/repocache/cachegen/testdata/embedimport/base"

// ThingRepo embeds a Delete it cannot annotate without redeclaring it.
//
//cache:repo
type ThingRepo interface {
	base.Repo
}
