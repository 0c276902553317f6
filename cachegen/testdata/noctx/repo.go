// Package noctx has gets without an error result and gets and invalidations
// without a context.
package noctx

import "context"

// User is cached.
type User struct {
	ID    int64
	Admin bool
}

// Repo is cached.
//
//cache:repo
type Repo interface {
	//cache:get key=users:count ttl=1m tags=users
	Count(ctx context.Context) int64

	//cache:get key=perm:{userID}:{perm} ttl=1m tags=user:{userID}
	Can(ctx context.Context, userID int64, perm string) bool

	//cache:get key=user:{id} ttl=5m tags=user:{id}
	Find(id int64) (*User, error)

	//cache:get key=user:{ids[]} ttl=5m tags=user:{result.ID}
	FindMany(ids []int64) []*User

	//cache:get key=stats ttl=1m
	Stats() (int, int)

	//cache:invalidate tags=users
	DeleteInactivated() error

	//cache:invalidate keys=user:{id} tags=user:{id},users
	Touch(id int64)

	//cache:invalidate keys=user:{result.ID} tags=users
	Promote(ctx context.Context, id int64) *User
}
