package p

import "context"

//cache:repo
type Repo interface {
	//cache:get key=user:{id} ttl=5m
	Find(id string) (string, error)
	//cache:invalidate keys=user:{id}
	Delete(id string, ctx context.Context) error
}
