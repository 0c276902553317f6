package p

import "context"

type Base interface {
	SetName(ctx context.Context, name string) error
}

//cache:repo
type Repo interface {
	Base
	Create(ctx context.Context, name string) error
	Delete(ctx context.Context, id string) error
	UpdateAll(ctx context.Context) error
	// These are not mutations by name.
	Settings(ctx context.Context) (string, error)
	Saved(ctx context.Context) (bool, error)
	removeOld(ctx context.Context) error
}
