package p

import "context"

type Filter struct{ Team string }

//cache:repo
type Repo interface {
	//cache:get key=f:{id.Team} ttl=5m tags=f:{f.Team.Name}
	Find(ctx context.Context, id string, f Filter) (string, error)
}
