package p

import "context"

type User struct{ ID string }

//cache:repo
type Repo interface {
	//cache:get key=user:{ids[]} ttl=5m
	FindMap(ctx context.Context, ids []string) (map[string]*User, error)
	//cache:get key=user:{ids[]} ttl=5m
	FindNames(ctx context.Context, ids []string) ([]string, error)
	//cache:get key=user:{id[]} ttl=5m
	FindOne(ctx context.Context, id string) ([]*User, error)
}
