package p

import "context"

type Post struct{ ID int64 }

type Comment struct{ ID int64 }

type Account struct{ ID int64 }

//cache:repo
type Posts interface {
	//cache:get key=post:{id} ttl=1m
	Find(ctx context.Context, id int64) (*Post, error)

	// A pointer and its element are one type: no clash with Find.
	//cache:get key=post:{ids[]} ttl=1m
	FindMany(ctx context.Context, ids []int64) ([]Post, error)

	// user:{email} and user:{id} are equal for email "42".
	//cache:get key=user:{email} ttl=1m
	ByEmail(ctx context.Context, email string) (*Account, error)

	// An integer never renders a ':', so these do not clash with post:{id}.
	//cache:get key=post:{id}:comments ttl=1m
	CommentsOf(ctx context.Context, id int64) ([]Comment, error)
}

//cache:repo
type Comments interface {
	// The same key as Posts.Find, another type.
	//cache:get key=post:{id} ttl=1m
	Find(ctx context.Context, id int64) (*Comment, error)

	//cache:get key=user:{id} ttl=1m
	Author(ctx context.Context, id int64) (*Post, error)

	// A put stores under its key as a get does.
	//cache:put key=post:{result.ID}:comments ttl=1m
	Save(ctx context.Context, c *Comment) (*Comment, error)
}
