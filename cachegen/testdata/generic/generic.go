// Package generic instantiates a generic repository in named interfaces.
package generic

import "context"

// Entity is what the generic repository stores.
type Entity interface{ Key() string }

// Repository is a generic repository; its directives apply to every
// instantiation and resolve against the instantiated types.
type Repository[T any, K comparable] interface {
	//cache:get key={name}:{id} ttl=5m tags={name}:{id}
	Find(ctx context.Context, name string, id K) (T, error)
	//cache:invalidate keys={name}:{id} tags={name}:{id}
	Delete(ctx context.Context, name string, id K) error
	//cache:get key={name}:{ids[]} ttl=5m
	FindMany(ctx context.Context, name string, ids []K) ([]T, error)
}

// User is an entity.
type User struct {
	ID    int64
	Email string
}

// Key implements Entity.
func (u User) Key() string { return u.Email }

// Team is another entity with a string key.
type Team struct {
	ID   string
	Name string
}

// UserRepo adds a method to the generic one.
//
//cache:repo
type UserRepo interface {
	Repository[*User, int64]
	//cache:get key=user:email:{email} ttl=1m
	FindByEmail(ctx context.Context, email string) (*User, error)
}

// TeamRepo is another instantiation, with value elements.
//
//cache:repo
type TeamRepo interface {
	Repository[Team, string]
}
