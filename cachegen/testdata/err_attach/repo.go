// Package errattach has attach= tags that cannot be resolved.
package errattach

import "context"

// User is stored.
type User struct{ ID int64 }

// Repo writes users through.
//
//cache:repo
type Repo interface {
	//cache:put key=user:{result.ID} ttl=1h attach=users,org:{org}
	Save(ctx context.Context, u *User) (*User, error)

	//cache:put key=user:{result.ID} ttl=1h attach={u}
	Update(ctx context.Context, u *User) (*User, error)

	//cache:put key=users ttl=1h attach={ids[]}
	SaveMany(ctx context.Context, ids []int64) ([]*User, error)

	//cache:get key=user:{id} ttl=1h attach=users
	Find(ctx context.Context, id int64) (*User, error)
}
