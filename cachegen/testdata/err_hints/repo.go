package p

import "context"

type Pagination struct {
	Limit  int
	Cursor string
}

type Post struct{ ID int64 }

//cache:repo
type Repo interface {
	//cache:get key=posts:{pagination} ttl=1m
	List(ctx context.Context, pagination Pagination) ([]Post, error)

	//cache:invalidate keys=post:{ids}
	DeleteMany(ctx context.Context, ids []int64) error

	//cache:invalidate keys=post:{id[]}
	Delete(ctx context.Context, id int64) error

	//cache:get key=post:{id|lower} ttl=1m
	Find(ctx context.Context, id int64) (*Post, error)

	//cache:invalidate tags=posts:{result}
	Purge(ctx context.Context) ([]Post, error)

	//cache:put key=post:{id} ttl=1m
	Save(ctx context.Context, id int64) error
}
