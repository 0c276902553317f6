// Package e2e is the end-to-end case: the cachegen tests copy it into a
// temporary module, run go generate (go tool cachegen), vet it and run
// behaviour_test.go against a real Redis.
package e2e

import (
	"context"
	"errors"
	"time"
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
	// Find and FindMany cap their values' life in a near cache (l1=); the
	// tests build no Cache with WithL1, where the cap changes nothing.
	//
	//cache:get key=user:{id} ttl=5m tags=user:{id} l1=1m
	Find(ctx context.Context, id UserID) (*User, error)

	//cache:get key=team:{teamID}:users ttl=5m tags=team:{teamID},user:{result[].ID}
	ListTeam(ctx context.Context, teamID int64) ([]*User, error)

	//cache:get key=pair:{a}:{b} ttl=5m
	Pair(ctx context.Context, a, b string) (string, error)

	//cache:get key=search:{f.Team} ttl=5m
	Search(ctx context.Context, f *Filter) ([]*User, error)

	//cache:get key=user:{ids[]} ttl=5m tags=user:{result.ID} l1=30s
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

	// Touch begins with one of the mutation words of 2026-12-01: without a
	// directive it would be an error.
	//
	//cache:invalidate keys=user:{id}
	Touch(ctx context.Context, id UserID) error
}

// Profile is reached through a pointer of Account.
type Profile struct {
	Bio string
}

// Account is the entity of AccountRepo: a pointer that may be nil, a bool, a
// time and a slice, each of which must round-trip through the cache.
type Account struct {
	ID      int64
	Team    int64
	Email   *string
	Active  bool
	Stars   int
	Created time.Time
	Roles   []string
	Profile *Profile
}

// AccountRepo is strict: every method carries a directive, skip included.
//
//cache:repo strict
type AccountRepo interface {
	//cache:get key=account:{id} ttl=5m tags=account:{id} negative=1m notfound=ErrNotFound
	Get(ctx context.Context, id int64) (*Account, error)

	//cache:get key=account:{ids[]} ttl=5m tags=account:{result.ID}
	GetMany(ctx context.Context, ids []int64) ([]*Account, error)

	// ListTeam's trace does not change the result: it is left out of the
	// key on purpose.
	//
	//cache:get key=accounts:team:{team} ttl=5m tags=accounts,account:{result[].ID} unkeyed=trace
	ListTeam(ctx context.Context, team int64, trace string) ([]*Account, error)

	//cache:get key=flags:{id}:{active} ttl=5m tags=account:{id}
	Flags(ctx context.Context, id int64, active bool) (string, error)

	//cache:get key=session:{token|hash} ttl=5m
	Session(ctx context.Context, token string) (int64, error)

	//cache:get key=email:{email|lower} ttl=5m
	ByEmail(ctx context.Context, email string) (int64, error)

	//cache:get key=accounts:count ttl=5m tags=accounts
	Count(ctx context.Context) int64

	//cache:get key=accounts:active ttl=5m tags=accounts
	ActiveIDs() ([]int64, error)

	//cache:invalidate tags=accounts
	DeleteInactivated() error

	//cache:invalidate keys=account:{ids[]} tags=accounts
	DeleteMany(ctx context.Context, ids []int64) error

	//cache:invalidate tags=account:{result[].ID},accounts
	CreateMany(ctx context.Context, emails []string) ([]*Account, error)

	//cache:invalidate keys=account:{a.ID},email:{a.Email|lower} tags=accounts
	Update(ctx context.Context, a *Account) error

	//cache:invalidate keys=account:{id}
	Star(ctx context.Context, id int64) error

	// Merge's templates all pass through a: called with nil, it renders
	// nothing, and the namespace is dropped.
	//
	//cache:invalidate keys=account:{a.ID},email:{a.Email|lower}
	Merge(ctx context.Context, a *Account) error

	// Archive returns the archived accounts, nil for one it could not
	// load back: with only nils, it renders nothing.
	//
	//cache:invalidate keys=account:{result[].ID}
	Archive(ctx context.Context, team int64) ([]*Account, error)

	//cache:skip
	Ping(ctx context.Context) error
}
