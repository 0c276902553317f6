package p

import "context"

type User struct{ ID string }

//cache:repo
type Repo interface {
	//cache:invalidate keys=user:{id}
	Delete(ctx context.Context, id string) (error, bool)
	//cache:put key=user:{result.ID} ttl=5m
	Save(ctx context.Context, u *User) *User
	//cache:get key=page:{id} ttl=5m
	Page(ctx context.Context, id string) (error, string, error)
}
