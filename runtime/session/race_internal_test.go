package session

import (
	"context"
	"errors"
	"testing"

	"github.com/repocache/repocache/internal/redistest"
)

// TestCreateRacingDeleteAllForUser forces a "log out everywhere" into each
// gap of a Create for the same user: the new session must be gone and its
// Create must say so (ErrRevoked), never leave a session that the user's
// index does not list.
func TestCreateRacingDeleteAllForUser(t *testing.T) {
	for _, gap := range []string{"after the index entry", "after the session write"} {
		t.Run(gap, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
				ctx := context.Background()
				s, err := New[string](b.Client, WithPrefix(b.Namespace+":sess"))
				if err != nil {
					t.Fatal(err)
				}
				revoke := func() {
					if _, err := s.DeleteAllForUser(ctx, "ada"); err != nil {
						t.Error(err)
					}
				}
				if gap == "after the index entry" {
					s.afterIndex = revoke
				} else {
					s.afterWrite = revoke
				}
				sess, err := s.Create(ctx, "ada", "data")
				if !errors.Is(err, ErrRevoked) {
					t.Fatalf("Create racing a revocation: %v, %v; want ErrRevoked", sess, err)
				}
				s.afterIndex, s.afterWrite = nil, nil
				keys, err := b.Keys(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					if b.Client.Type(ctx, k).Val() == "hash" {
						t.Fatalf("a session survived the revocation: %s", k)
					}
				}
				// Without a race, Create works.
				if _, err := s.Create(ctx, "ada", "data"); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
