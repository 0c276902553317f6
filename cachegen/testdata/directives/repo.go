// Package users is a repository with every directive of cachegen.
package users

import (
	"context"
	"fmt"
)

// UserID identifies a user.
type UserID string

// User is the entity.
type User struct {
	ID     UserID
	TeamID int64
	Email  string
}

// Page is a page of users.
type Page struct {
	Items []*User
	Next  string
}

// Filter selects users.
type Filter struct {
	TeamID int64
	Name   *string
	Owner  *Owner
}

// Owner owns a filter.
type Owner struct{ ID UserID }

// Region is a Stringer.
type Region int

func (r Region) String() string { return fmt.Sprintf("r%d", int(r)) }

// UserRepo is cached.
//
//cache:repo
type UserRepo interface {
	//cache:get key=user:{id} ttl=5m jitter=30s tags=user:{id}
	Find(ctx context.Context, id UserID) (*User, error)

	//cache:get key=users:team:{teamID}:{region} ttl=1m tags=team:{teamID},users
	ListTeam(ctx context.Context, teamID int64, region Region) ([]*User, error)

	//cache:get key=users:filter:{f.TeamID}:{f.Name}:{f.Owner.ID} ttl=90s tags={result[].ID},team:{f.TeamID}
	Search(ctx context.Context, f *Filter) ([]*User, error)

	//cache:get key=user:{ids[]} ttl=5m tags=user:{result.ID}
	FindMany(ctx context.Context, ids []UserID) ([]*User, error)

	//cache:get key=page:{cursor} ttl=1h30m swr=1m negative=10s lock=none tags=user:{result[].ID}
	FindPage(ctx context.Context, cursor string) ([]*User, string, error)

	//cache:put key=user:{result.ID} ttl=5m tags=user:{result.ID} invalidate=users,team:{result.TeamID}
	Save(ctx context.Context, u *User) (*User, error)

	//cache:invalidate keys=user:{id} tags=user:{id},users
	Delete(ctx context.Context, id UserID) error

	//cache:skip
	SetLastSeen(ctx context.Context, id UserID) error

	Count(ctx context.Context) (int, error)
}
