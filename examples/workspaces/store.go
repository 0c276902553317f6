package workspaces

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/repocache/repocache/runtime/orm"
)

// ErrInvalid reports input that the store refuses (the API answers 400).
var ErrInvalid = errors.New("workspaces: invalid input")

// Store implements Repository on runtime/orm. Its reads record, in the
// context of an API request, that the request queried the database (the
// X-Cache header; see Server.Handler).
type Store struct {
	db         *gorm.DB
	workspaces *orm.Model[Workspace]
	members    *orm.Model[Member]
	projects   *orm.Model[Project]
}

var _ Repository = (*Store)(nil)

// NewStore migrates the schema and returns the store.
func NewStore(db *gorm.DB) (*Store, error) {
	if err := db.AutoMigrate(&Workspace{}, &Member{}, &Project{}); err != nil {
		return nil, fmt.Errorf("workspaces: migrate: %w", err)
	}
	s := &Store{db: db}
	var err error
	if s.workspaces, err = orm.NewModel[Workspace](db); err != nil {
		return nil, err
	}
	if s.members, err = orm.NewModel[Member](db); err != nil {
		return nil, err
	}
	if s.projects, err = orm.NewModel[Project](db); err != nil {
		return nil, err
	}
	return s, nil
}

// DB returns the database handle, for transactions.
func (s *Store) DB() *gorm.DB { return s.db }

// FindWorkspace implements Repository.
func (s *Store) FindWorkspace(ctx context.Context, id int64) (*Workspace, error) {
	noteQuery(ctx)
	return s.workspaces.FindUniqueOrThrow(ctx, orm.Where{"id": id})
}

// ListMembers implements Repository.
func (s *Store) ListMembers(ctx context.Context, workspaceID int64) ([]Member, error) {
	noteQuery(ctx)
	return s.members.FindMany(ctx, orm.FindManyArgs{Where: orm.Where{"workspace_id": workspaceID}, OrderBy: []orm.Order{{Column: "id"}}})
}

// ListProjects implements Repository.
func (s *Store) ListProjects(ctx context.Context, workspaceID int64) ([]Project, error) {
	noteQuery(ctx)
	return s.projects.FindMany(ctx, orm.FindManyArgs{Where: orm.Where{"workspace_id": workspaceID}, OrderBy: []orm.Order{{Column: "id"}}})
}

// FindProject implements Repository.
func (s *Store) FindProject(ctx context.Context, id int64) (*Project, error) {
	noteQuery(ctx)
	return s.projects.FindUniqueOrThrow(ctx, orm.Where{"id": id})
}

// FindProjects implements Repository.
func (s *Store) FindProjects(ctx context.Context, ids []int64) ([]*Project, error) {
	noteQuery(ctx)
	rows, err := s.projects.FindMany(ctx, orm.FindManyArgs{Where: orm.Where{"id": ids}})
	if err != nil {
		return nil, err
	}
	out := make([]*Project, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	return out, nil
}

// CreateProject implements Repository.
func (s *Store) CreateProject(ctx context.Context, in NewProject) (*Project, error) {
	if in.Name == "" {
		return nil, fmt.Errorf("%w: a project needs a name", ErrInvalid)
	}
	if _, err := s.FindWorkspace(ctx, in.WorkspaceID); err != nil {
		return nil, err
	}
	return s.projects.Create(ctx, &Project{WorkspaceID: in.WorkspaceID, Name: in.Name})
}

// RenameProject implements Repository.
func (s *Store) RenameProject(ctx context.Context, id int64, name string) (*Project, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: a project needs a name", ErrInvalid)
	}
	return s.projects.Update(ctx, orm.Where{"id": id}, orm.Data{"name": name})
}

// DeleteProject implements Repository.
func (s *Store) DeleteProject(ctx context.Context, workspaceID, id int64) error {
	p, err := s.FindProject(ctx, id)
	if err != nil {
		return err
	}
	if p.WorkspaceID != workspaceID {
		return fmt.Errorf("project %d of workspace %d: %w", id, workspaceID, orm.ErrNotFound)
	}
	_, err = s.projects.Delete(ctx, orm.Where{"id": id})
	return err
}

// UpdatePlan implements Repository.
func (s *Store) UpdatePlan(ctx context.Context, id int64, plan string) (*Workspace, error) {
	return s.workspaces.Update(ctx, orm.Where{"id": id}, orm.Data{"plan": plan})
}

// CreateWorkspace implements Repository.
func (s *Store) CreateWorkspace(ctx context.Context, slug, name string) (*Workspace, error) {
	return s.workspaces.Create(ctx, &Workspace{Slug: slug, Name: name, Plan: "free"})
}

// AddMember adds a member (not part of the cached interface: seeding only).
func (s *Store) AddMember(ctx context.Context, m Member) (*Member, error) {
	return s.members.Create(ctx, &m)
}

// Ping implements Repository.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}
