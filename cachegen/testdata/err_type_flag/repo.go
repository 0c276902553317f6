package p

import "context"

type NotIface struct{}

type Plain interface{ M() }

//cache:repo
type Repo interface {
	//cache:get key=x:{id} ttl=5m
	Find(ctx context.Context, id string) (string, error)
}
