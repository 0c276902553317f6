package p

import "context"

type Filter struct {
	Team   string
	secret string
}

func (Filter) Method() string { return "" }

//cache:repo
type Repo interface {
	//cache:get key=f:{f.Teem} ttl=5m tags=f:{f.Method}
	Find(ctx context.Context, f *Filter) (string, error)
}
