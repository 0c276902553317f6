package p

import "context"

type User struct{ ID string }

//cache:repo
type Repo interface {
	//cache:invalidate keys=user:{id}
	Delete(id string, ctx context.Context) error
	//cache:put key=user:{result.ID} ttl=5m
	Save(u *User) (*User, error)
}
