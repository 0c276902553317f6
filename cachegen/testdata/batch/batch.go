// Package batch has batch gets of several shapes.
package batch

import "context"

// UserID is a named string id.
type UserID string

// IDs is a named slice of ids.
type IDs []UserID

// Meta is embedded.
type Meta struct{ Version int }

// User has its id in UserID.
type User struct {
	Meta
	UserID UserID
	Team   string
}

// Users is a named slice.
type Users []User

// Account is held by pointer, with an embedded pointer.
type Account struct {
	*Meta
	ID int64
}

// Repo batch-gets.
//
//cache:repo
type Repo interface {
	//cache:get key=t:{tenant}:user:{ids[]} ttl=5m by=UserID tags=tenant:{tenant},team:{result.Team}
	Users(ctx context.Context, tenant string, ids IDs) (Users, error)

	//cache:get key=account:{ids[]} ttl=1m lock=local
	Accounts(ctx context.Context, ids ...int64) ([]*Account, error)

	//cache:get key=v:{ids[]} ttl=1m by=Version
	Versions(ctx context.Context, ids []int) ([]*Account, error)
}
