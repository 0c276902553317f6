package p

import "context"

type User struct{ ID string }

//cache:repo
type Repo interface {
	//cache:get key=user:{id} ttl=5m tags={result[].ID}
	Find(ctx context.Context, id string) (*User, error)
}
