package workspaces

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime/cachetest"
	"github.com/repocache/repocache/runtime/orm"
)

// The decorator tests use the public test kit; the HTTP tests, which also
// run on a Redis Cluster, use the internal harness.
func TestMain(m *testing.M) { cachetest.Main(m, redistest.Stop) }

// newDecorated returns the generated decorator around a gomock repository,
// on a real Redis, with a namespace of the test's own.
func newDecorated(t *testing.T) (*RepositoryCache, *MockRepository, *cachetest.Cache) {
	t.Helper()
	c := cachetest.New(t)
	mock := NewMockRepository(gomock.NewController(t))
	return NewRepositoryCache(mock, c.Cache), mock, c
}

func TestDecoratorLoadsOnceThenHits(t *testing.T) {
	repo, mock, c := newDecorated(t)
	ctx := context.Background()
	mock.EXPECT().FindWorkspace(gomock.Any(), int64(1)).Return(&Workspace{ID: 1, Name: "Acme"}, nil).Times(1)
	for range 3 {
		ws, err := repo.FindWorkspace(ctx, 1)
		if err != nil || ws.Name != "Acme" {
			t.Fatalf("got %+v, %v", ws, err)
		}
	}
	c.AssertCounts(t, cachetest.Counts{Misses: 1, Loads: 1, Sets: 1, Hits: 2})
}

func TestDecoratorDoesNotCacheErrors(t *testing.T) {
	repo, mock, _ := newDecorated(t)
	ctx := context.Background()
	boom := errors.New("connection reset")
	gomock.InOrder(
		mock.EXPECT().ListProjects(gomock.Any(), int64(1)).Return(nil, boom),
		mock.EXPECT().ListProjects(gomock.Any(), int64(1)).Return([]Project{{ID: 1}}, nil),
	)
	if _, err := repo.ListProjects(ctx, 1); err != boom {
		t.Fatalf("err = %v, want the repository's error unchanged", err)
	}
	if ps, err := repo.ListProjects(ctx, 1); err != nil || len(ps) != 1 {
		t.Fatalf("after an error: %v, %v", ps, err)
	}
}

func TestDecoratorCachesNotFoundWithNegative(t *testing.T) {
	repo, mock, _ := newDecorated(t)
	ctx := context.Background()
	mock.EXPECT().FindProject(gomock.Any(), int64(9)).Return(nil, orm.ErrNotFound).Times(1)
	for range 2 {
		if _, err := repo.FindProject(ctx, 9); !errors.Is(err, orm.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	// Creating project 9 drops the cached not-found through its tag.
	mock.EXPECT().CreateProject(gomock.Any(), NewProject{WorkspaceID: 1, Name: "p"}).Return(&Project{ID: 9, WorkspaceID: 1, Name: "p"}, nil)
	if _, err := repo.CreateProject(ctx, NewProject{WorkspaceID: 1, Name: "p"}); err != nil {
		t.Fatal(err)
	}
	p, err := repo.FindProject(ctx, 9) // written through: no call
	if err != nil || p.Name != "p" {
		t.Fatalf("after create: %+v, %v", p, err)
	}
}

func TestDecoratorWritesThroughOnUpdate(t *testing.T) {
	repo, mock, _ := newDecorated(t)
	ctx := context.Background()
	mock.EXPECT().ListProjects(gomock.Any(), int64(1)).Return([]Project{{ID: 2, WorkspaceID: 1, Name: "old"}}, nil).Times(2)
	mock.EXPECT().RenameProject(gomock.Any(), int64(2), "new").Return(&Project{ID: 2, WorkspaceID: 1, Name: "new"}, nil)
	if _, err := repo.ListProjects(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.RenameProject(ctx, 2, "new"); err != nil {
		t.Fatal(err)
	}
	// FindProject is served from the written-through value: no call.
	p, err := repo.FindProject(ctx, 2)
	if err != nil || p.Name != "new" {
		t.Fatalf("after rename: %+v, %v", p, err)
	}
	// The list that held project 2 was dropped: the second ListProjects
	// call reaches the repository (Times(2) above).
	if _, err := repo.ListProjects(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

func TestDecoratorInvalidatesOnDelete(t *testing.T) {
	repo, mock, c := newDecorated(t)
	ctx := context.Background()
	mock.EXPECT().FindProject(gomock.Any(), int64(3)).Return(&Project{ID: 3, WorkspaceID: 1}, nil).Times(2)
	mock.EXPECT().ListProjects(gomock.Any(), int64(1)).Return([]Project{{ID: 3, WorkspaceID: 1}}, nil).Times(2)
	mock.EXPECT().DeleteProject(gomock.Any(), int64(1), int64(3)).Return(nil)
	_, _ = repo.FindProject(ctx, 3)
	_, _ = repo.ListProjects(ctx, 1)
	c.Reset()
	if err := repo.DeleteProject(ctx, 1, 3); err != nil {
		t.Fatal(err)
	}
	// The project's key, and the list through the project's tag.
	c.AssertCounts(t, cachetest.Counts{Invalidated: 2})
	_, _ = repo.FindProject(ctx, 3)
	_, _ = repo.ListProjects(ctx, 1)
	c.AssertCounts(t, cachetest.Counts{Invalidated: 2, Misses: 2, Loads: 2, Sets: 2})
}

func TestDecoratorDoesNotInvalidateAfterAFailedWrite(t *testing.T) {
	repo, mock, _ := newDecorated(t)
	ctx := context.Background()
	boom := errors.New("constraint")
	mock.EXPECT().FindProject(gomock.Any(), int64(3)).Return(&Project{ID: 3}, nil).Times(1)
	mock.EXPECT().DeleteProject(gomock.Any(), int64(1), int64(3)).Return(boom)
	_, _ = repo.FindProject(ctx, 3)
	if err := repo.DeleteProject(ctx, 1, 3); err != boom {
		t.Fatalf("err = %v", err)
	}
	if _, err := repo.FindProject(ctx, 3); err != nil { // still a hit: Times(1)
		t.Fatal(err)
	}
}

func TestDecoratorPassesSkipsThrough(t *testing.T) {
	repo, mock, _ := newDecorated(t)
	ctx := context.Background()
	mock.EXPECT().CreateWorkspace(gomock.Any(), "s", "n").Return(&Workspace{ID: 5}, nil).Times(2)
	mock.EXPECT().Ping(gomock.Any()).Return(nil).Times(2)
	for range 2 {
		if _, err := repo.CreateWorkspace(ctx, "s", "n"); err != nil {
			t.Fatal(err)
		}
		if err := repo.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDecoratorBatch(t *testing.T) {
	repo, mock, _ := newDecorated(t)
	ctx := context.Background()
	gomock.InOrder(
		mock.EXPECT().FindProjects(gomock.Any(), []int64{1, 2}).Return([]*Project{{ID: 1}, {ID: 2}}, nil),
		mock.EXPECT().FindProjects(gomock.Any(), []int64{3}).Return([]*Project{{ID: 3}}, nil),
	)
	if ps, err := repo.FindProjects(ctx, []int64{1, 2}); err != nil || len(ps) != 2 {
		t.Fatalf("%v, %v", ps, err)
	}
	ps, err := repo.FindProjects(ctx, []int64{3, 2, 1})
	if err != nil || len(ps) != 3 || ps[0].ID != 3 || ps[1].ID != 2 || ps[2].ID != 1 {
		t.Fatalf("%v, %v: want 3,2,1 with only 3 loaded", ps, err)
	}
}
