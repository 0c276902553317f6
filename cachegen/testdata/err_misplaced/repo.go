package p

import "context"

// Repo has directives in the wrong places.
//
//cache:repo
//cache:get key=x ttl=1m
type Repo interface {
	// Find has two directives.
	//
	//cache:get key=x:{id} ttl=5m
	//cache:skip
	Find(ctx context.Context, id string) (string, error)
	//cache:repo
	Count(ctx context.Context) (int, error)
}

//cache:repo
type NotIface struct{}
