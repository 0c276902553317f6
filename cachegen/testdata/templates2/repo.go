// Package templates2 uses the template additions of 2026-12-01: bools,
// transforms, and results and slices in invalidations.
package templates2

import "context"

// Flag is a named bool.
type Flag bool

// Post is stored.
type Post struct {
	ID       int64
	AuthorID int64
	Author   *Author
	Tags     []string
}

// Author writes posts.
type Author struct{ Email string }

// Token is a Stringer.
type Token struct{ raw string }

func (t Token) String() string { return t.raw }

// hex is a package-level name that the generated code must not shadow.
var hex = 1

// Repo is cached.
//
//cache:repo
type Repo interface {
	//cache:get key=posts:{authorID}:{published}:{draft} ttl=1m
	List(ctx context.Context, authorID int64, published bool, draft *Flag) ([]Post, error)

	//cache:get key=session:{token|hash} ttl=1m
	Session(ctx context.Context, token string) (int64, error)

	//cache:get key=user:email:{email|lower} ttl=1m tags=email:{email|lower|hash}
	ByEmail(ctx context.Context, email string) (int64, error)

	//cache:get key=token:{t|lower} ttl=1m tags=t:{t|hash}
	ByToken(ctx context.Context, t Token) (int64, error)

	//cache:invalidate keys=post:{result.ID},posts:{result.AuthorID}:true:false tags=author:{result.Author.Email|lower}
	Create(ctx context.Context, title string) (*Post, error)

	//cache:invalidate keys=post:{ids[]} tags=post:{ids[]}
	DeleteMany(ctx context.Context, ids []int64) error

	//cache:invalidate keys=post:{result[].ID} tags=author:{result[].Author.Email}
	Archive(ctx context.Context, authorID int64) ([]*Post, error)

	//cache:put key=post:{result.ID} ttl=1m tags=post:{result.ID} invalidate=post:{ids[]},author:{result.Author.Email|hash}
	Merge(ctx context.Context, ids []int64) (*Post, error)
}
