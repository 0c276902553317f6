package p

import "context"

//cache:repo
type Other interface {
	//cache:get key=x:{id.X} ttl=5m tags={result[].Y}
	Find(ctx context.Context, id string) (string, error)
	//cache:put key=x ttl=0s
	Save(ctx context.Context) (string, error)
}
