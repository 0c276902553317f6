package p

import "context"

//cache:repo
type Repo interface {
	//cache:get key=user:{idd} ttl=5m tags=team:{team}
	Find(ctx context.Context, id string) (string, error)
}
