package p

import (
	"context"
	"time"
)

type Filter struct {
	Active bool
	Tags   []string
	Score  float64
	Meta   map[string]string
	At     time.Time
	PP     **string
}

//cache:repo
type Repo interface {
	//cache:get key=f:{f.Active}:{f.Tags}:{f.Score}:{f.Meta}:{f.At}:{f.PP}:{f} ttl=5m
	Find(ctx context.Context, f Filter) (string, error)
}
