package p

import "context"

// Repo misuses l1=.
//
//cache:repo
type Repo interface {
	//cache:get key=a:{id} ttl=5m l1=10m swr=1h
	Above(ctx context.Context, id string) (string, error)
	//cache:get key=b:{id} ttl=5m l1=0s
	Zero(ctx context.Context, id string) (string, error)
	//cache:get key=c:{id} ttl=5m l1=30
	NoUnit(ctx context.Context, id string) (string, error)
	//cache:put key=d:{result} ttl=5m l1=1m
	Save(ctx context.Context, id string) (string, error)
	//cache:invalidate keys=d:{id} l1=1m
	Delete(ctx context.Context, id string) error
}
