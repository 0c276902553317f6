// Package workspaces is a small multi-tenant application (workspaces, their
// members and projects) cached by repocache: an annotated repository
// interface (repo.go), its GORM implementation on runtime/orm (store.go),
// the decorator cachegen generated from it (cache_gen.go) and an HTTP API
// (server.go).
package workspaces

import "time"

// Workspace is a tenant.
type Workspace struct {
	ID        int64     `gorm:"primaryKey" json:"id"`
	Slug      string    `gorm:"uniqueIndex;size:64" json:"slug"`
	Name      string    `json:"name"`
	Plan      string    `json:"plan"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Member is a user in a workspace.
type Member struct {
	ID          int64  `gorm:"primaryKey" json:"id"`
	WorkspaceID int64  `gorm:"index" json:"workspaceId"`
	Email       string `json:"email"`
	Role        string `json:"role"`
	// PasswordHash never leaves the server in JSON, but the cache keeps
	// it: callers of the repository get what the database returned.
	PasswordHash string `json:"-"`
}

// Project belongs to a workspace.
type Project struct {
	ID          int64     `gorm:"primaryKey" json:"id"`
	WorkspaceID int64     `gorm:"index" json:"workspaceId"`
	Name        string    `json:"name"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// NewProject is the input of CreateProject.
type NewProject struct {
	WorkspaceID int64  `json:"workspaceId"`
	Name        string `json:"name"`
}
