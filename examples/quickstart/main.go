// Command quickstart runs the repocache runtime against Redis and prints what
// the cache does: misses that load from a (simulated) database, hits,
// write-through and tag invalidation, then the hit rate.
//
// It uses REDIS_URL when set; otherwise it starts an embedded Redis
// (miniredis) and says so.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// Project is a row of the simulated database.
type Project struct {
	ID          int64
	WorkspaceID int64
	Name        string
	UpdatedAt   time.Time
}

// db is a stand-in for the database: every query takes a few milliseconds
// and is counted.
type db struct {
	mu       sync.Mutex
	projects map[int64]Project
	queries  atomic.Int64
}

func (d *db) query() {
	d.queries.Add(1)
	time.Sleep(5 * time.Millisecond) // the cost a cache saves
}

func (d *db) project(_ context.Context, id int64) (*Project, error) {
	d.query()
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.projects[id]
	if !ok {
		return nil, nil
	}
	return &p, nil
}

func (d *db) listProjects(_ context.Context, ws int64) ([]Project, error) {
	d.query()
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Project
	for id := int64(1); id <= int64(len(d.projects)); id++ {
		if p, ok := d.projects[id]; ok && p.WorkspaceID == ws {
			out = append(out, p)
		}
	}
	return out, nil
}

func (d *db) rename(_ context.Context, id int64, name string) (*Project, error) {
	d.query()
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.projects[id]
	p.Name, p.UpdatedAt = name, time.Now()
	d.projects[id] = p
	return &p, nil
}

// repo is what cachegen generates for an annotated repository; written by
// hand here to show the runtime calls.
type repo struct {
	db    *db
	cache *runtime.Cache
}

func projectKey(id int64) string { return "project:" + strconv.FormatInt(id, 10) }

func (r *repo) Project(ctx context.Context, id int64) (*Project, error) {
	return runtime.GetCached(ctx, r.cache, projectKey(id), func(ctx context.Context) (*Project, error) {
		return r.db.project(ctx, id)
	}, runtime.TTL(5*time.Minute), runtime.Jitter(time.Minute), runtime.Tags(projectKey(id)))
}

func (r *repo) ListProjects(ctx context.Context, ws int64) ([]Project, error) {
	return runtime.GetCached(ctx, r.cache, "workspace:"+strconv.FormatInt(ws, 10)+":projects",
		func(ctx context.Context) ([]Project, error) { return r.db.listProjects(ctx, ws) },
		runtime.TTL(time.Minute), runtime.Jitter(10*time.Second),
		// The list is tagged with each member: renaming one drops it.
		runtime.ResultTags(func(ps []Project) []string {
			tags := make([]string, len(ps))
			for i, p := range ps {
				tags[i] = projectKey(p.ID)
			}
			return tags
		}))
}

func (r *repo) RenameProject(ctx context.Context, id int64, name string) (*Project, error) {
	p, err := r.db.rename(ctx, id, name)
	if err != nil {
		return nil, err
	}
	runtime.Put(ctx, r.cache, projectKey(id), p, runtime.TTL(5*time.Minute), runtime.Tags(projectKey(id)))
	return p, nil
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var client redis.UniversalClient
	if url := os.Getenv("REDIS_URL"); url != "" {
		c, err := runtime.NewClient(url, runtime.WithClientLogger(logger))
		if err != nil {
			return err
		}
		client = c
		fmt.Fprintf(out, "redis: %s (REDIS_URL)\n", c.RedactedURL())
	} else {
		mr, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer mr.Close()
		client = redis.NewClient(&redis.Options{Addr: mr.Addr()})
		fmt.Fprintf(out, "redis: embedded miniredis on %s (REDIS_URL is not set)\n", mr.Addr())
	}
	defer client.Close()

	var mu sync.Mutex // events also come from the cache's background stores
	events := runtime.MetricsFunc(func(e runtime.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e.Op {
		case runtime.OpHit:
			fmt.Fprintf(out, "  hit         %-28s %8s\n", e.Key, e.Duration.Round(time.Microsecond))
		case runtime.OpMiss:
			fmt.Fprintf(out, "  miss        %s\n", e.Key)
		case runtime.OpLoad:
			fmt.Fprintf(out, "  db load     %-28s %8s\n", e.Key, e.Duration.Round(time.Microsecond))
		case runtime.OpSet:
			fmt.Fprintf(out, "  stored      %s\n", e.Key)
		case runtime.OpInvalidate:
			fmt.Fprintf(out, "  invalidated %-24s %d key(s) dropped\n", e.Key, e.Count)
		case runtime.OpError:
			fmt.Fprintf(out, "  redis error %s: %v (served from the database)\n", e.Key, e.Err)
		}
	})
	ns := "quickstart:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cache := runtime.New(client, runtime.WithNamespace(ns), runtime.WithLogger(logger), runtime.WithMetrics(events))
	defer func() { _, _ = cache.InvalidatePattern(context.Background(), "*") }()

	d := &db{projects: map[int64]Project{}}
	for i := int64(1); i <= 3; i++ {
		d.projects[i] = Project{ID: i, WorkspaceID: 1, Name: "project " + strconv.FormatInt(i, 10)}
	}
	r := &repo{db: d, cache: cache}

	step := func(title string, f func() error) error {
		fmt.Fprintf(out, "\n%s\n", title)
		if err := f(); err != nil {
			return err
		}
		// The store after a miss finishes in the background (the caller
		// waits for it a few milliseconds at most); wait for it so that
		// each step's events print under that step.
		return cache.Wait(ctx)
	}
	steps := []struct {
		title string
		f     func() error
	}{
		{"1. Read project 2: a miss loads it from the database and stores it", func() error { _, err := r.Project(ctx, 2); return err }},
		{"2. Read project 2 again: a hit, no database query", func() error { _, err := r.Project(ctx, 2); return err }},
		{"3. List the workspace's projects: a miss; the list is tagged with its members", func() error { _, err := r.ListProjects(ctx, 1); return err }},
		{"4. List again: a hit", func() error { _, err := r.ListProjects(ctx, 1); return err }},
		{"5. Rename project 2: write-through, and the list that holds it is dropped", func() error {
			_, err := r.RenameProject(ctx, 2, "renamed")
			return err
		}},
		{"6. Read project 2: a hit with the new name (written through)", func() error {
			p, err := r.Project(ctx, 2)
			if err == nil {
				fmt.Fprintf(out, "  -> %q\n", p.Name)
			}
			return err
		}},
		{"7. List again: a miss (invalidated), reloaded with the new name", func() error {
			ps, err := r.ListProjects(ctx, 1)
			if err == nil {
				fmt.Fprintf(out, "  -> %q\n", ps[1].Name)
			}
			return err
		}},
	}
	for _, s := range steps {
		if err := step(s.title, s.f); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\n8. Fifty more reads of project 1..3\n")
	for i := range 50 {
		if _, err := r.Project(ctx, int64(i%3+1)); err != nil {
			return err
		}
	}
	s, err := cache.Stats(ctx)
	if err != nil {
		fmt.Fprintf(out, "(server stats unavailable: %v)\n", err)
	}
	fmt.Fprintf(out, "\nhits %d, misses %d, database queries %d, hit rate %.1f%%, mean hit latency %s, keys invalidated %d\n",
		s.Hits, s.Misses, d.queries.Load(), 100*s.HitRatio, s.MeanHitLatency.Round(time.Microsecond), s.Invalidated)
	if s.Server.Masters > 0 {
		fmt.Fprintf(out, "server: %d bytes used, %d keys evicted\n", s.Server.UsedMemory, s.Server.EvictedKeys)
	}
	return nil
}
