package p

import "context"

type User struct{ ID string }

//cache:repo
type Repo interface {
	//cache:put key=user:{u.ID} ttl=5m
	Save(ctx context.Context, u *User) error
	//cache:put key=user:{u.ID} ttl=5m
	SaveTwo(ctx context.Context, u *User) (*User, bool, error)
	//cache:get key=user:{u.ID} ttl=5m
	Touch(ctx context.Context, u *User) error
}
