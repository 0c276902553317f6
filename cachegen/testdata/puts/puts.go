// Package puts has write-through methods.
package puts

import "context"

// Post is stored.
type Post struct {
	ID     int64
	Author *Author
}

// Author writes posts.
type Author struct{ Name string }

// Repo writes through.
//
//cache:repo
type Repo interface {
	//cache:put key=post:{p.ID} ttl=1h tags=post:{p.ID}
	Save(ctx context.Context, p *Post) (*Post, error)

	//cache:put key=posts:{author} ttl=10m jitter=1m tags={result[].ID},author:{result[].Author.Name} invalidate=posts
	SaveAll(ctx context.Context, author string, ps []*Post) ([]*Post, error)

	//cache:put key=count:{author} ttl=1m invalidate=author:{author},{result}
	Upsert(ctx context.Context, author string) (int, error)
}
