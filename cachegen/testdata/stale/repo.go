// Package stale has an out-of-date cache_gen.go that no longer compiles,
// and code that uses what it declares: cachegen ignores its own outputs and
// the type errors they cause elsewhere.
package stale

import "context"

//cache:repo
type Repo interface {
	//cache:get key=x:{id} ttl=1m
	Find(ctx context.Context, id string) (string, error)
}

// New uses the generated constructor.
func New(r Repo) Repo { return NewRepoCache(r, nil) }
