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
	// These became mutations by name on 2026-12-01.
	AddMember(ctx context.Context, id string) error
	Touch(ctx context.Context, id string) error
	StarRepo(ctx context.Context, id string) error
	ConsumeCode(ctx context.Context, code string) error
	CleanExpired(ctx context.Context) error
	IncrViews(ctx context.Context, id string) error
	Reset(ctx context.Context) error
	// And these still are not.
	Address(ctx context.Context, id string) (string, error)
	Starred(ctx context.Context, id string) (bool, error)
	Decrypt(ctx context.Context, s string) (string, error)
}
