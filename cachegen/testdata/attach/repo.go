// Package attach has puts that attach tags without invalidating them.
package attach

import "context"

// User is stored.
type User struct {
	ID    int64
	Team  *Team
	Email string
}

// Team holds users.
type Team struct{ ID int64 }

// Repo writes users through.
//
//cache:repo
type Repo interface {
	// Save invalidates and attaches user:{u.ID}, attaches users (a
	// global tag that a put must not flush), and only invalidates email.
	//
	//cache:put key=user:{result.ID} ttl=1h tags=user:{u.ID} attach=users,team:{result.Team.ID} invalidate=email:{u.Email|lower}
	Save(ctx context.Context, u *User) (*User, error)

	// SaveAll attaches one tag per element.
	//
	//cache:put key=team:{team} ttl=10m attach=users,{result[].ID}
	SaveAll(ctx context.Context, team int64, us []*User) ([]*User, error)
}
