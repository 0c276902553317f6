package p

import "context"

type UserID string

type User struct{ ID UserID }

//cache:repo
type Repo interface {
	//cache:get key=user:{ids[]} ttl=5m
	Users(ctx context.Context, ids []string) ([]*User, error)
}
