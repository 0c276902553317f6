// Package clash has every name that could break generated code.
package clash

import (
	"context"

	amodels "github.com/repocache/repocache/cachegen/testdata/clash/a/models"
	"github.com/repocache/repocache/cachegen/testdata/clash/b/models"
)

// strconv is a package-level name that the generated import must avoid.
var strconv = 1

// v is a package-level name that locals must avoid.
type v struct{}

// Repo has parameters named like everything the generated code uses.
//
//cache:repo
type Repo interface {
	//cache:get key=a:{c}:{next}:{key}:{err}:{runtime}:{time}:{strconv}:{context} ttl=1m
	Get(ctx context.Context, c, next, key, err, runtime, time, strconv, context string) (*amodels.User, error)

	//cache:get key=b:{string}:{v}:{e}:{tags} ttl=1m tags={result.ID}
	GetB(c context.Context, string string, v string, e int, tags int) (*models.User, error)

	//cache:get key=r:{nil} ttl=1m
	Ref(context context.Context, nil string) (models.Ref[amodels.User], error)

	//cache:get key=page:{r0} ttl=1m
	Page(ctx context.Context, r0 string) ([]models.User, string, error)

	//cache:put key=u:{result.ID} ttl=1m
	Save(ctx context.Context, r0 *amodels.User, _ int) (*amodels.User, error)

	//cache:invalidate keys=u:{ctx}
	Remove(ctx2 context.Context, ctx string) error

	// Unexported methods named like the decorator's fields.
	next() int
	cache() string
}
