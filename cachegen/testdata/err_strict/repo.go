package p

import "context"

// Base is embedded; its methods fall under the strict rule of Repo.
type Base interface {
	Ping(ctx context.Context) error
}

// Repo is strict: every method says how it meets the cache.
//
//cache:repo strict
type Repo interface {
	Base

	//cache:get key=user:{id} ttl=5m
	Find(ctx context.Context, id string) (string, error)

	//cache:skip
	Stats(ctx context.Context) (int, error)

	// Count has no directive and no mutation name: only strict catches it.
	Count(ctx context.Context) (int, error)

	Delete(ctx context.Context, id string) error
}

// Loose is not strict: Count passes through.
//
//cache:repo
type Loose interface {
	Count(ctx context.Context) (int, error)
}
