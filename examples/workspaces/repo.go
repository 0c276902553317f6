package workspaces

import "context"

//go:generate go tool cachegen -type Repository
//go:generate go run go.uber.org/mock/mockgen -source=repo.go -destination=mock_repository_test.go -package=workspaces

// Repository is the application's data access. The //cache: lines are read
// by cachegen, which writes RepositoryCache in cache_gen.go.
//
// Keys follow the seed's design: with the namespace "app:dev" the key of
// workspace 42 is "app:dev:workspace:42". Lists are tagged with the IDs of
// their members, so renaming one project drops every cached list that holds
// it; creating or deleting a project drops its workspace's list through the
// list's own tag. A project that does not exist is remembered for 30s
// (negative=); creating it drops that through the "project:{id}" tag,
// which the put invalidates before it stores the new project.
//
//cache:repo
type Repository interface {
	//cache:get key=workspace:{id} ttl=5m jitter=1m tags=workspace:{id} negative=30s
	FindWorkspace(ctx context.Context, id int64) (*Workspace, error)

	//cache:get key=workspace:{workspaceID}:members ttl=1m jitter=10s tags=workspace:{workspaceID}:members
	ListMembers(ctx context.Context, workspaceID int64) ([]Member, error)

	//cache:get key=workspace:{workspaceID}:projects ttl=2m jitter=20s tags=workspace:{workspaceID}:projects,project:{result[].ID}
	ListProjects(ctx context.Context, workspaceID int64) ([]Project, error)

	//cache:get key=project:{id} ttl=5m jitter=1m tags=project:{id} negative=30s lock=distributed
	FindProject(ctx context.Context, id int64) (*Project, error)

	//cache:get key=project:{ids[]} ttl=5m jitter=1m tags=project:{result.ID}
	FindProjects(ctx context.Context, ids []int64) ([]*Project, error)

	//cache:put key=project:{result.ID} ttl=5m jitter=1m tags=project:{result.ID} invalidate=workspace:{result.WorkspaceID}:projects
	CreateProject(ctx context.Context, in NewProject) (*Project, error)

	//cache:put key=project:{result.ID} ttl=5m jitter=1m tags=project:{result.ID}
	RenameProject(ctx context.Context, id int64, name string) (*Project, error)

	//cache:invalidate keys=project:{id} tags=project:{id},workspace:{workspaceID}:projects
	DeleteProject(ctx context.Context, workspaceID, id int64) error

	//cache:put key=workspace:{result.ID} ttl=5m jitter=1m tags=workspace:{result.ID}
	UpdatePlan(ctx context.Context, id int64, plan string) (*Workspace, error)

	// CreateWorkspace is not cached on purpose: nothing reads a workspace
	// before it exists, except a negative entry, which its tag drops.
	//
	//cache:skip
	CreateWorkspace(ctx context.Context, slug, name string) (*Workspace, error)

	// Ping has no directive and no mutation name: it passes through.
	Ping(ctx context.Context) error
}
