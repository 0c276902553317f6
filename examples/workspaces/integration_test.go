package workspaces

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/orm"
	"github.com/repocache/repocache/runtime/orm/ormtest"
)

// countingRepo counts the calls that reach the database.
type countingRepo struct {
	*Store
	calls map[string]int
}

func (c *countingRepo) FindWorkspace(ctx context.Context, id int64) (*Workspace, error) {
	c.calls["FindWorkspace"]++
	return c.Store.FindWorkspace(ctx, id)
}

func (c *countingRepo) ListProjects(ctx context.Context, ws int64) ([]Project, error) {
	c.calls["ListProjects"]++
	return c.Store.ListProjects(ctx, ws)
}

func (c *countingRepo) FindProject(ctx context.Context, id int64) (*Project, error) {
	c.calls["FindProject"]++
	return c.Store.FindProject(ctx, id)
}

// TestIntegration drives the HTTP API over the generated decorator, a real
// Redis (standalone and cluster) and a real database (SQLite, and
// PostgreSQL at DATABASE_URL).
func TestIntegration(t *testing.T) {
	ormtest.Each(t, func(t *testing.T, db *gorm.DB) {
		redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
			ctx := context.Background()
			store, err := NewStore(db)
			if err != nil {
				t.Fatal(err)
			}
			ws, err := store.CreateWorkspace(ctx, "ws-"+strings.ReplaceAll(b.Namespace, ":", "-"), "Acme")
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, n := range []string{"a", "b"} {
				p, err := store.CreateProject(ctx, NewProject{WorkspaceID: ws.ID, Name: n})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, p.ID)
			}
			counted := &countingRepo{Store: store, calls: map[string]int{}}
			logger := slog.New(slog.DiscardHandler)
			// The harness's cluster nodes share this machine's clock: no skew
			// to tolerate, so a read right after an invalidation is cached
			// on the cluster too.
			cache := runtime.New(b.Client, runtime.WithNamespace(b.Namespace), runtime.WithLogger(logger), runtime.WithClockSkew(0))
			srv := httptest.NewServer(NewServer(NewRepositoryCache(counted, cache), cache, logger).Handler())
			defer srv.Close()

			call := func(method, path, body string, want int) string {
				t.Helper()
				req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				out, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != want {
					t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, out, want)
				}
				return string(out)
			}
			wsPath := "/workspaces/" + itoa(ws.ID)
			call("GET", wsPath, "", 200)
			call("GET", wsPath, "", 200)
			if counted.calls["FindWorkspace"] != 1 {
				t.Fatalf("FindWorkspace reached the database %d times for a miss and a hit", counted.calls["FindWorkspace"])
			}
			call("GET", wsPath+"/projects", "", 200)
			call("PATCH", "/projects/"+itoa(ids[0]), `{"name":"renamed"}`, 200)
			var list []Project
			_ = json.Unmarshal([]byte(call("GET", wsPath+"/projects", "", 200)), &list)
			if counted.calls["ListProjects"] != 2 || list[0].Name != "renamed" {
				t.Fatalf("list after rename: %+v after %d loads; want it dropped and reloaded", list, counted.calls["ListProjects"])
			}
			var p Project
			_ = json.Unmarshal([]byte(call("GET", "/projects/"+itoa(ids[0]), "", 200)), &p)
			if p.Name != "renamed" || counted.calls["FindProject"] != 0 {
				t.Fatalf("project after rename: %+v, %d loads; want the written-through value", p, counted.calls["FindProject"])
			}
			call("DELETE", wsPath+"/projects/"+itoa(ids[1]), "", 204)
			call("GET", "/projects/"+itoa(ids[1]), "", 404)
			call("GET", "/projects/"+itoa(ids[1]), "", 404)
			if counted.calls["FindProject"] != 1 {
				t.Fatalf("FindProject of a deleted project loaded %d times; want 1, then the cached not-found", counted.calls["FindProject"])
			}
			_ = json.Unmarshal([]byte(call("GET", wsPath+"/projects", "", 200)), &list)
			if len(list) != 1 {
				t.Fatalf("list after delete: %+v", list)
			}
			call("POST", wsPath+"/projects", `{"name":""}`, 400)
			call("GET", "/projects/x", "", 400)

			// A rolled-back transaction never reaches the cache.
			err = orm.Transaction(ctx, store.DB(), func(ctx context.Context) error {
				if _, err := NewRepositoryCache(counted, cache).RenameProject(ctx, ids[0], "rolled back"); err != nil {
					return err
				}
				return context.Canceled
			})
			if err != context.Canceled {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(call("GET", "/projects/"+itoa(ids[0]), "", 200)), &p)
			if p.Name != "renamed" {
				t.Fatalf("after a rollback the cache serves %q", p.Name)
			}
		})
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
