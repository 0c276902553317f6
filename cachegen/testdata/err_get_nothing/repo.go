package p

import "context"

//cache:repo
type Repo interface {
	//cache:get key=x:{id} ttl=5m
	Find(ctx context.Context, id string) error
}
