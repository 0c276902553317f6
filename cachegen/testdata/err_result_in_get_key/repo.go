package p

import "context"

type User struct{ ID string }

//cache:repo
type Repo interface {
	//cache:get key=user:{result.ID} ttl=5m
	Find(ctx context.Context, id string) (*User, error)
	//cache:invalidate keys=user:{result.ID}
	Delete(ctx context.Context, id string) error
}
