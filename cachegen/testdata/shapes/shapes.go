// Package shapes has several interfaces and methods of every shape.
package shapes

import (
	"context"
	"io"
)

// ID is a numeric id.
type ID int64

// Item is a value result.
type Item struct {
	ID   ID
	Name string
}

// Reader is embedded; its methods pass through.
type Reader interface {
	// Names has no context and no error.
	Names() []string
	//cache:get key=item:{id} ttl=1m
	Get(ctx context.Context, id ID) (Item, error)
}

// Counter is embedded twice (directly and through Reader's sibling).
type Counter interface {
	Count(ctx context.Context) (int, error)
}

// Store is the first interface: multi-param, value results, embedded
// interfaces, and pass-through methods of any shape.
//
//cache:repo
type Store interface {
	Reader
	Counter

	//cache:get key=item:{tenant}:{id}:{version} ttl=10m
	GetVersion(ctx context.Context, tenant string, id ID, version uint32) (Item, error)

	// Pass-through shapes.
	Close()
	Write(p []byte) (n int, err error)
	Log(format string, args ...any)
	Stats(context.Context) (int, int, error)
	Pipe(_ context.Context, _ io.Reader, w io.Writer) error
	Each(ctx context.Context, fn func(Item) bool, ch <-chan struct{}, m map[string][]*Item) error
	Tagged(ctx context.Context, x struct {
		A int `json:"a"`
	}, y interface{ M() int }) ([3]byte, chan<- int)

	//cache:invalidate keys=item:{tenant}:{id} tags=items,tenant:{tenant}
	Rename(ctx context.Context, tenant string, id ID, name string) (Item, bool, error)
}

// Other is a second //cache:repo interface in the package.
//
//cache:repo
type Other interface {
	//cache:get key=other:{name} ttl=1m
	Lookup(ctx context.Context, name string) (*Item, error)
}

// NotSelected is a //cache:repo interface that the args file leaves out.
//
//cache:repo
type NotSelected interface {
	//cache:get key=ns:{name} ttl=1m
	Lookup(ctx context.Context, name string) (*Item, error)
}
