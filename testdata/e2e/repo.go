// Package e2e is the end-to-end case: the cachegen tests copy it into a
// temporary module, run go generate (go tool cachegen), vet it and run
// behaviour_test.go against a real Redis.
package e2e

import (
	"context"
	"errors"
)

//go:generate go tool cachegen

// ErrNotFound is what the fake repository returns for a missing user.
var ErrNotFound = errors.New("e2e: not found")

// ErrUserNotExist is the typed not-found of FindByName, which callers check
// with errors.As or a type assertion.
type ErrUserNotExist struct{ Name string }

func (e *ErrUserNotExist) Error() string { return "e2e: no user named " + e.Name }

// UserID is a named string id.
type UserID string

// User is the entity.
type User struct {
	ID     UserID
	TeamID int64
	Name   string
}

// Filter may hold a nil pointer on a key's path.
type Filter struct {
	Team *int64
}

// UserRepo is the repository under test.
//
//cache:repo
type UserRepo interface {
	//cache:get key=user:{id} ttl=5m tags=user:{id}
	Find(ctx context.Context, id UserID) (*User, error)

	//cache:get key=team:{teamID}:users ttl=5m tags=team:{teamID},user:{result[].ID}
	ListTeam(ctx context.Context, teamID int64) ([]*User, error)

	//cache:get key=pair:{a}:{b} ttl=5m
	Pair(ctx context.Context, a, b string) (string, error)

	//cache:get key=search:{f.Team} ttl=5m
	Search(ctx context.Context, f *Filter) ([]*User, error)

	//cache:get key=user:{ids[]} ttl=5m tags=user:{result.ID}
	FindMany(ctx context.Context, ids []UserID) ([]*User, error)

	//cache:get key=page:{cursor} ttl=5m
	Page(ctx context.Context, cursor string) ([]*User, string, error)

	//cache:put key=user:{result.ID} ttl=5m tags=user:{result.ID} invalidate=team:{result.TeamID}
	Save(ctx context.Context, u *User) (*User, error)

	//cache:invalidate keys=user:{id} tags=user:{id}
	Delete(ctx context.Context, id UserID) error

	//cache:get key=lookup:{id} ttl=5m negative=1m notfound=ErrNotFound
	Lookup(ctx context.Context, id UserID) (*User, error)

	//cache:get key=user:name:{name} ttl=5m negative=1m notfound=*ErrUserNotExist
	FindByName(ctx context.Context, name string) (*User, error)

	//cache:put key=user:{result.ID} ttl=5m attach=users
	Rename(ctx context.Context, u *User) (*User, error)

	//cache:invalidate tags=users
	FlushUsers(ctx context.Context) error

	//cache:skip
	SetName(ctx context.Context, id UserID, name string) error

	Count(ctx context.Context) (int, error)
}
