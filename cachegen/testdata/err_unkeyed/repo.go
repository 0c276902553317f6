package p

import "context"

type Page struct {
	Limit  int
	Cursor string
}

type Post struct{ ID int64 }

//cache:repo
type Repo interface {
	// Every limit would share one entry.
	//cache:get key=posts:recent ttl=1m
	ListRecent(ctx context.Context, limit int) ([]Post, error)

	// A struct parameter left out: the fix names its fields.
	//cache:get key=posts:{author} ttl=1m
	ListBy(ctx context.Context, author string, page Page) ([]Post, error)

	// A slice and an unnamed parameter left out.
	//cache:get key=posts:tagged ttl=1m
	Tagged(ctx context.Context, tags []string, _ bool) ([]Post, error)

	// unkeyed= naming what it cannot.
	//cache:get key=post:{id} ttl=1m unkeyed=ctx,id,nope,trace,trace
	Find(ctx context.Context, id int64, trace string) (*Post, error)

	// unkeyed= as meant: trace does not change the result.
	//cache:get key=post:v2:{id} ttl=1m unkeyed=trace
	FindV2(ctx context.Context, id int64, trace string) (*Post, error)
}
