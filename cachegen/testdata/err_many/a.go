package p

import "context"

//cache:repo
type Repo interface {
	//cache:get key=x:{nope} ttl=5m
	Find(ctx context.Context, id string) (string, error)
	Delete(ctx context.Context, id string) error
}
