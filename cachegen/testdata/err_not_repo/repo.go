package p

import "context"

// Forgot is not marked //cache:repo.
type Forgot interface {
	//cache:get key=user:{id} ttl=5m
	Find(ctx context.Context, id string) (string, error)
}

//cache:repo
type Repo interface {
	//cache:get key=user:{id} ttl=5m
	Find(ctx context.Context, id string) (string, error)
}
