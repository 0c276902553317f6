package p

import (
	"context"
	"time"
)

type User struct{ ID string }

//cache:repo
type Repo interface {
	// cache:get key=user:{id} ttl=5m
	Find(ctx context.Context, id string) (*User, error)

	//Cache:get key=user:{id} ttl=5m
	FindAgain(ctx context.Context, id string) (*User, error)

	//cache:gets key=user:{id} ttl=5m
	FindMore(ctx context.Context, id string) (*User, error)

	//cache:get key="user:{id}" ttl=5m
	Quoted(ctx context.Context, id string) (*User, error)

	//cache:get key=user:{id} ttl=1m jitter=1m
	Jittery(ctx context.Context, id string) (*User, error)

	//cache:get key=#user:{id} ttl=1m
	Hashed(ctx context.Context, id string) (*User, error)

	//cache:get key=user:{id}:{at} ttl=1m
	At(ctx context.Context, id string, at time.Time) (*User, error)

	//cache:invalidate keys=user:{id}

	Detached(ctx context.Context, id string) error

	Trailing(ctx context.Context, id string) error //cache:invalidate keys=user:{id}
}

//cache:get key=x ttl=1m
func helper() {}
