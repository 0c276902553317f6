// Package l1 caps how long gets may keep a value in process memory (l1=),
// on each path that reads: one value, several values, a batch, no context.
package l1

import "context"

// User is the entity.
type User struct {
	ID   int64
	Name string
}

// Repo reads through a near cache.
//
//cache:repo
type Repo interface {
	//cache:get key=user:{id} ttl=5m tags=user:{id} l1=30s
	Find(ctx context.Context, id int64) (*User, error)
	//cache:get key=user:{ids[]} ttl=5m l1=5m swr=1m jitter=10s
	FindMany(ctx context.Context, ids []int64) ([]*User, error)
	//cache:get key=page:{cursor} ttl=1h l1=1500ms lock=none
	Page(ctx context.Context, cursor string) ([]*User, string, error)
	//cache:get key=count ttl=1m l1=1m
	Count() int
	//cache:put key=user:{result.ID} ttl=5m tags=user:{result.ID}
	Save(ctx context.Context, u *User) (*User, error)
	//cache:invalidate keys=user:{id} tags=user:{id}
	Delete(ctx context.Context, id int64) error
}
