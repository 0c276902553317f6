package p

import "context"

type User struct{ ID string }

type Team struct{ Name string }

//cache:repo
type Repo interface {
	//cache:get key=user:{ids[]} ttl=5m by=UserID
	Users(ctx context.Context, ids []string) ([]*User, error)
	//cache:get key=team:{ids[]} ttl=5m
	Teams(ctx context.Context, ids []string) ([]Team, error)
	//cache:get key=user:{id} ttl=5m by=ID
	Find(ctx context.Context, id string) (*User, error)
}
