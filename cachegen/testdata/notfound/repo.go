// Package notfound has gets whose not-found answer is the service's own: an
// error variable (matched with errors.Is) or an error type (errors.As).
package notfound

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// ErrNotFound is the package's own not-found variable.
var ErrNotFound = errors.New("notfound: no such row")

// ErrUserNotExist is a typed not-found, its Error on the value receiver.
type ErrUserNotExist struct {
	ID   int64
	Name string
}

func (e ErrUserNotExist) Error() string {
	return fmt.Sprintf("user %d (%s) does not exist", e.ID, e.Name)
}

// ErrTeamNotExist is a typed not-found, its Error on the pointer receiver.
type ErrTeamNotExist struct{ ID int64 }

func (e *ErrTeamNotExist) Error() string { return fmt.Sprintf("team %d does not exist", e.ID) }

// User is an entity.
type User struct{ ID int64 }

// Team is an entity.
type Team struct{ ID int64 }

// Repo reads with not-found answers of its own.
//
//cache:repo
type Repo interface {
	//cache:get key=user:{id} ttl=5m negative=30s notfound=ErrNotFound
	Find(ctx context.Context, id int64) (*User, error)

	//cache:get key=row:{id} ttl=5m negative=30s notfound=sql.ErrNoRows
	FindRow(ctx context.Context, id int64) (*User, error)

	//cache:get key=mode:{name} ttl=5m negative=30s notfound=fs.ErrNotExist
	Mode(ctx context.Context, name string) (fs.FileMode, error)

	// FindFile's parameter fs shadows the package fs in the generated code
	// unless it is renamed there.
	//
	//cache:get key=file:{fs} ttl=5m negative=30s notfound=fs.ErrNotExist
	FindFile(ctx context.Context, fs string) (*User, error)

	//cache:get key=user:name:{name} ttl=5m negative=1m notfound=ErrUserNotExist
	FindByName(ctx context.Context, name string) (*User, error)

	//cache:get key=team:{id} ttl=5m negative=1m notfound=*ErrTeamNotExist lock=distributed
	FindTeam(ctx context.Context, id int64) (*Team, error)

	//cache:get key=team:{id}:members ttl=5m negative=1m notfound=*ErrTeamNotExist
	Members(ctx context.Context, id int64) ([]*User, int, error)
}
