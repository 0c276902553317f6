package p

import "context"

//cache:repo
type Repo interface {
	//cache:get key=user:{id} ttl=5x tagz=a
	Find(ctx context.Context, id string) (string, error)
	//cache:put key=user:{id}
	Save(ctx context.Context, id string) (string, error)
	//cache:fetch key=x
	Fetch(ctx context.Context) error
	//cache:invalidate keys=user:{id tags=a,,b
	Delete(ctx context.Context, id string) error
	//cache:get key=list:{ids[]} ttl=1m tags={ids[]}
	List(ctx context.Context, ids []string) ([]string, error)
}
