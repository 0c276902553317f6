// Package benchcmp compares repocache with the Go cache layers its users
// weigh it against (go-redis/cache, eko/gocache with its go-redis store,
// rueidis with client-side caching), in one run on one Redis. It is a module
// of its own so that the peers never become dependencies of repocache.
//
// The benchmarks are in bench_test.go; run.sh runs them and writes
// RESULTS.md. This file holds the value every library caches and the
// repository interface from which cachegen writes the decorator that the
// "repocache-gen" rows measure (cache_gen.go, committed).
package benchcmp

import (
	"context"
	"strings"
	"time"
)

//go:generate go tool cachegen -type WorkspaceRepo

// Workspace is a typical row, about 300 bytes in MessagePack. Every library
// caches this same value.
type Workspace struct {
	ID          string
	Name        string
	Slug        string
	Plan        string
	OwnerEmail  string
	Description string
	MemberCount int
	Tags        []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// NewWorkspace returns the benchmark's value with the given id.
func NewWorkspace(id string) Workspace {
	t := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return Workspace{
		ID: id, Name: "Acme Corporation", Slug: "acme-corporation", Plan: "enterprise",
		OwnerEmail:  "owner@acme.example.com",
		Description: strings.Repeat("A workspace for the platform team. ", 4),
		MemberCount: 128, Tags: []string{"prod", "eu-west-1", "billing", "sso", "audit"},
		CreatedAt: t, UpdatedAt: t.Add(time.Hour),
	}
}

// WorkspaceRepo is the repository that the generated decorator caches. Its
// directives match the options the hand-written GetCached rows pass.
//
//cache:repo
type WorkspaceRepo interface {
	//cache:get key=workspace:{id} ttl=5m jitter=1m tags=workspace:{id}
	Find(ctx context.Context, id string) (Workspace, error)

	//cache:get key=workspace:{ids[]} ttl=5m jitter=1m tags=workspace:{result.ID}
	FindMany(ctx context.Context, ids []string) ([]Workspace, error)
}
