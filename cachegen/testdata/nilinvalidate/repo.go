// Package nilinvalidate is issue 11's item 2: a nil pointer in one
// invalidation template must not cancel the others.
package nilinvalidate

import "context"

// User has an optional email.
type User struct {
	ID    int64
	Email *string
	Team  *Team
}

// Team groups users.
type Team struct{ ID int64 }

// Repo is cached.
//
//cache:repo
type Repo interface {
	//cache:invalidate keys=user:{u.ID},user:email:{u.Email} tags=team:{u.Team.ID},users
	Update(ctx context.Context, u *User) error

	//cache:put key=user:{u.ID} ttl=5m tags=user:{u.ID} invalidate=user:email:{u.Email},team:{result.Team.ID}
	Save(ctx context.Context, u *User) (*User, error)
}
