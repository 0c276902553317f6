// Package strict has a strict repository where every method has a directive.
package strict

import "context"

// Repo is strict.
//
//cache:repo strict
type Repo interface {
	//cache:get key=user:{id} ttl=5m
	Find(ctx context.Context, id string) (string, error)

	// Ping passes through, on purpose.
	//
	//cache:skip
	Ping(ctx context.Context) error

	//cache:invalidate keys=user:{id}
	Delete(ctx context.Context, id string) error
}
