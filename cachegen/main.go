// Command cachegen generates cached decorators for repository interfaces.
//
// Mark an interface with //cache:repo and say on each method how it meets
// the cache:
//
//	//go:generate go run github.com/repocache/repocache/cachegen
//
//	//cache:repo
//	type UserRepo interface {
//		//cache:get key=user:{id} ttl=5m tags=user:{id}
//		Find(ctx context.Context, id int64) (*User, error)
//		//cache:put key=user:{result.ID} ttl=5m tags=user:{result.ID} invalidate=users
//		Save(ctx context.Context, u *User) (*User, error)
//		//cache:invalidate keys=user:{id} tags=users
//		Delete(ctx context.Context, id int64) error
//	}
//
// go generate then writes cache_gen.go with UserRepoCache and
// NewUserRepoCache(next UserRepo, c *runtime.Cache). Run cachegen -h for the
// flags; the README describes the directives and templates.
package main

import (
	"os"

	"github.com/repocache/repocache/internal/gen/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
