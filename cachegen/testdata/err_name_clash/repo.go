package p

import "context"

// RepoCache is declared by hand.
type RepoCache struct{}

//cache:repo
type Repo interface {
	//cache:get key=x:{id} ttl=5m
	Find(ctx context.Context, id string) (string, error)
}
