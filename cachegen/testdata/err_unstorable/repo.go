package p

import (
	"context"
	"time"
)

type Provider interface{ Name() string }

type Client struct {
	ID       string
	Provider Provider
}

type Node struct {
	Name     string
	Children []*Node
	Parent   *Node
	Meta     map[string]Value
}

type Value struct{ V any }

// Safe has what the codec skips or handles: unexported fields, a field
// tagged msgpack:"-", a type that marshals itself, time.Time, and a cycle.
type Safe struct {
	ID       string
	provider Provider
	Hook     func() `msgpack:"-"`
	Raw      Opaque
	At       time.Time
	Next     *Safe
}

type Opaque struct{ v any }

func (o Opaque) MarshalBinary() ([]byte, error) { return nil, nil }

func (o *Opaque) UnmarshalBinary([]byte) error { return nil }

//cache:repo
type Repo interface {
	//cache:get key=any:{id} ttl=1m
	Any(ctx context.Context, id string) (any, error)

	//cache:get key=client:{id} ttl=1m
	Client(ctx context.Context, id string) (*Client, error)

	//cache:get key=node:{id} ttl=1m
	Node(ctx context.Context, id string) ([]Node, error)

	//cache:get key=ch:{id} ttl=1m
	Chan(ctx context.Context, id string) (chan int, error)

	//cache:get key=fn:{id} ttl=1m
	Func(ctx context.Context, id string) (map[string]func(), error)

	//cache:get key=page:{id} ttl=1m
	Page(ctx context.Context, id string) ([]string, error, error)

	//cache:put key=client:{result.ID} ttl=1m
	SaveClient(ctx context.Context, c *Client) (*Client, error)

	//cache:get key=safe:{id} ttl=1m
	Safe(ctx context.Context, id string) (*Safe, error)
}
