package p

import "context"

//cache:repo
type Repo interface {
	//cache:get key=user:{id} ttl=5m
	Find(ctx context.Context, id string) string
	//cache:invalidate keys=user:{id}
	Delete(ctx context.Context, id string) (error, bool)
}
