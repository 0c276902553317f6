// Package errnotfound has notfound= values that name no error.
package errnotfound

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

// ErrNotFound is an error variable.
var ErrNotFound = errors.New("not found")

// Limit is a variable that is not an error.
var Limit = 10

// MaxRows is a constant.
const MaxRows = 100

// ErrTeamNotExist has its Error on the pointer receiver.
type ErrTeamNotExist struct{ ID int64 }

func (e *ErrTeamNotExist) Error() string { return fmt.Sprint("team ", e.ID) }

// NotFounder is an interface error type.
type NotFounder interface {
	error
	NotFound()
}

// User is not an error.
type User struct{ ID int64 }

// Repo has every kind of wrong notfound=.
//
//cache:repo
type Repo interface {
	//cache:get key=a:{id} ttl=5m negative=1m notfound=ErrMissing
	A(ctx context.Context, id int64) (*User, error)

	//cache:get key=b:{id} ttl=5m negative=1m notfound=gorm.ErrRecordNotFound
	B(ctx context.Context, id int64) (*User, error)

	//cache:get key=c:{id} ttl=5m negative=1m notfound=Limit
	C(ctx context.Context, id int64) (*User, error)

	//cache:get key=d:{id} ttl=5m negative=1m notfound=MaxRows
	D(ctx context.Context, id int64) (*User, error)

	//cache:get key=e:{id} ttl=5m negative=1m notfound=User
	E(ctx context.Context, id int64) (*User, error)

	//cache:get key=f:{id} ttl=5m negative=1m notfound=ErrTeamNotExist
	F(ctx context.Context, id int64) (*User, error)

	//cache:get key=g:{id} ttl=5m negative=1m notfound=*ErrNotFound
	G(ctx context.Context, id int64) (*User, error)

	//cache:get key=h:{id} ttl=5m negative=1m notfound=NotFounder
	H(ctx context.Context, id int64) (*User, error)

	//cache:get key=i:{id} ttl=5m negative=1m notfound=error
	I(ctx context.Context, id int64) (*User, error)

	//cache:get key=j:{name} ttl=5m negative=1m notfound=*fs.PathError
	J(ctx context.Context, name string) (*User, error)

	//cache:get key=k:{id} ttl=5m notfound=ErrNotFound
	K(ctx context.Context, id int64) (*User, error)

	//cache:get key=l:{ids[]} ttl=5m negative=1m notfound=ErrNotFound
	L(ctx context.Context, ids []int64) ([]*User, error)

	//cache:get key=m:{id} ttl=5m negative=1m notfound=errors.New
	M(ctx context.Context, id int64) (*User, error)

	//cache:get key=n:{id} ttl=5m negative=1m notfound=ErrNotFound
	N(ctx context.Context, id int64) *User

	//cache:get key=o:{id} ttl=5m negative=1m notfound=fs.ErrMissing
	O(ctx context.Context, id int64) (*User, error)
}
