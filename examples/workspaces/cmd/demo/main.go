// Command demo runs the workspaces example: it starts the HTTP API (with
// sessions and rate limits, all in Redis) on the
// embedded defaults (an in-memory SQLite database and an embedded Redis,
// each used only when DATABASE_URL or REDIS_URL is not set, and said so),
// drives a short scripted workload against it, and prints what the cache
// did: hits, misses, loads from the database, write-through and
// invalidation, and the hit rate. With -serve it then keeps serving.
//
//	go generate ./examples/workspaces && go run ./examples/workspaces/cmd/demo [-serve] [-addr 127.0.0.1:8080]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/examples/workspaces"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/orm"
	"github.com/repocache/repocache/runtime/ratelimit"
	"github.com/repocache/repocache/runtime/session"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// events records what the cache did during one request.
type events struct {
	mu   sync.Mutex
	list []runtime.Event
}

func (e *events) Observe(ev runtime.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
}

func (e *events) take() []runtime.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.list
	e.list = nil
	return out
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	serve := fs.Bool("serve", false, "keep serving the API after the scripted workload")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	client, closeRedis, err := openRedis(out, logger)
	if err != nil {
		return err
	}
	defer closeRedis()
	db, driver, err := orm.Open(os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	if os.Getenv("DATABASE_URL") == "" {
		fmt.Fprintln(out, "database: embedded SQLite in memory (DATABASE_URL is not set)")
	} else {
		fmt.Fprintf(out, "database: %s (DATABASE_URL)\n", driver)
	}
	store, err := workspaces.NewStore(db)
	if err != nil {
		return err
	}
	rec := &events{}
	ns := "app:dev"
	if os.Getenv("REDIS_URL") != "" {
		ns = "app:demo:" + fmt.Sprint(time.Now().UnixNano()) // never mix with another run's keys
	}
	// The database's identity is part of the namespace: two demos on two
	// databases that share a Redis never serve each other's rows.
	cache := runtime.New(client, runtime.WithNamespace(ns), runtime.WithDatabase(orm.Identity(os.Getenv("DATABASE_URL"))),
		runtime.WithLogger(logger), runtime.WithMetrics(rec))
	defer func() { _, _ = cache.InvalidatePattern(context.Background(), "*") }()
	repo := workspaces.NewRepositoryCache(store, cache)
	ids, err := seed(ctx, store)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	sessions, err := session.New[workspaces.Profile](client, session.WithPrefix(ns+":sess"),
		session.WithInsecureCookie()) // the demo serves plain HTTP on loopback
	if err != nil {
		return err
	}
	perClient, err := ratelimit.NewSlidingWindow(client, 600, time.Minute, ratelimit.WithPrefix(ns+":rl:all"))
	if err != nil {
		return err
	}
	loginLimit, err := ratelimit.NewSlidingWindow(client, 3, time.Minute, ratelimit.WithPrefix(ns+":rl:login"))
	if err != nil {
		return err
	}
	all, err := ratelimit.NewMiddleware(perClient, ratelimit.WithLogger(logger))
	if err != nil {
		return err
	}
	logins, err := ratelimit.NewMiddleware(loginLimit, ratelimit.WithLogger(logger))
	if err != nil {
		return err
	}
	api := workspaces.NewServer(repo, cache, logger, workspaces.WithSessions(sessions), workspaces.WithRateLimits(all, logins))
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "api: %s\n", base)

	if err := workload(ctx, out, base, rec, ids); err != nil {
		return err
	}
	s, _ := cache.Stats(ctx)
	fmt.Fprintf(out, "\nsummary: %d hits, %d misses, %d loads from the database, %d values stored, %d keys invalidated, %d stale sets prevented, hit rate %.0f%%\n",
		s.Hits, s.Misses, s.Loads, s.Sets, s.Invalidated, s.StaleSetsPrevented, 100*s.HitRatio)
	if !*serve {
		return nil
	}
	fmt.Fprintf(out, "\nserving on %s until interrupted (try: curl %s/workspaces/1/projects)\n", base, base)
	<-ctx.Done()
	return nil
}

func openRedis(out io.Writer, logger *slog.Logger) (redis.UniversalClient, func(), error) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		c, err := runtime.NewClient(url, runtime.WithClientLogger(logger))
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(out, "redis: %s (REDIS_URL)\n", c.RedactedURL())
		return c, func() { _ = c.Close() }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(out, "redis: embedded miniredis on %s (REDIS_URL is not set)\n", mr.Addr())
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return c, func() { _ = c.Close(); mr.Close() }, nil
}

// seeded holds the IDs the workload uses: a database that is not empty
// (DATABASE_URL) gives other IDs than 1, 2, 3.
type seeded struct {
	ws       [2]int64
	projects []int64 // of the first workspace
}

func seed(ctx context.Context, s *workspaces.Store) (seeded, error) {
	var ids seeded
	run := time.Now().UnixNano()
	for i, name := range []string{"Acme", "Globex"} {
		ws, err := s.CreateWorkspace(ctx, fmt.Sprintf("%s-%d", strings.ToLower(name), run), name)
		if err != nil {
			return ids, err
		}
		ids.ws[i] = ws.ID
		for j := 1; j <= 3; j++ {
			p, err := s.CreateProject(ctx, workspaces.NewProject{WorkspaceID: ws.ID, Name: fmt.Sprintf("%s project %d", name, j)})
			if err != nil {
				return ids, err
			}
			if i == 0 {
				ids.projects = append(ids.projects, p.ID)
			}
			if _, err := s.AddMember(ctx, workspaces.Member{WorkspaceID: ws.ID, Email: fmt.Sprintf("user%d@%s.example", j, strings.ToLower(name)), Role: "member", PasswordHash: "$2a$10$..."}); err != nil {
				return ids, err
			}
		}
	}
	return ids, nil
}

// step is one request of the scripted workload.
type step struct {
	why, method, path, body string
	want                    int
}

func workload(ctx context.Context, out io.Writer, base string, rec *events, ids seeded) error {
	ws, p1, p2, p3 := ids.ws[0], ids.projects[0], ids.projects[1], ids.projects[2]
	steps := []step{
		{"first read: a miss, loaded from the database", "GET", fmt.Sprintf("/workspaces/%d", ws), "", 200},
		{"same read: a hit", "GET", fmt.Sprintf("/workspaces/%d", ws), "", 200},
		{"a list, tagged with each project it holds", "GET", fmt.Sprintf("/workspaces/%d/projects", ws), "", 200},
		{"the list again: a hit", "GET", fmt.Sprintf("/workspaces/%d/projects", ws), "", 200},
		{"one project: a miss", "GET", fmt.Sprintf("/projects/%d", p2), "", 200},
		{"a batch: the 2nd is a hit, the others load in one query", "GET", fmt.Sprintf("/projects?ids=%d,%d,%d", p1, p2, p3), "", 200},
		{"the batch again: all hits, one round trip", "GET", fmt.Sprintf("/projects?ids=%d,%d,%d", p1, p2, p3), "", 200},
		{"rename it: write-through, and the list that holds it is dropped", "PATCH", fmt.Sprintf("/projects/%d", p2), `{"name":"renamed"}`, 200},
		{"the project: a hit with the new name", "GET", fmt.Sprintf("/projects/%d", p2), "", 200},
		{"the list: a miss (invalidated by the project's tag), reloaded", "GET", fmt.Sprintf("/workspaces/%d/projects", ws), "", 200},
		{"a project that does not exist: not found, remembered (negative=30s)", "GET", fmt.Sprintf("/projects/%d", int64(1)<<40), "", 404},
		{"again: the cached not-found, no query", "GET", fmt.Sprintf("/projects/%d", int64(1)<<40), "", 404},
		{"create a project: write-through, drops the list", "POST", fmt.Sprintf("/workspaces/%d/projects", ws), `{"name":"new"}`, 201},
		{"the list: reloaded with the new project", "GET", fmt.Sprintf("/workspaces/%d/projects", ws), "", 200},
		{"delete a project: its key and the list are dropped", "DELETE", fmt.Sprintf("/workspaces/%d/projects/%d", ws, p1), "", 204},
		{"that project: gone from the cache and the database", "GET", fmt.Sprintf("/projects/%d", p1), "", 404},
		{"a bad request never reaches the cache", "GET", "/projects/abc", "", 400},
		{"log in: a session (Redis keeps only a hash of its ID)", "POST", "/login", `{"email":"ada@acme.example"}`, 200},
		{"who am I: the session from the cookie", "GET", "/me", "", 200},
		{"log in again: the session is regenerated (new ID, old one gone)", "POST", "/login", `{"email":"ada@acme.example"}`, 200},
		{"a third login: the last one the limit of 3 a minute allows", "POST", "/login", `{"email":"ada@acme.example"}`, 200},
		{"a fourth: 429 Too Many Requests, with Retry-After", "POST", "/login", `{"email":"ada@acme.example"}`, 429},
		{"log out", "POST", "/logout", "", 204},
		{"who am I: nobody", "GET", "/me", "", 401},
	}
	for i := range 10 {
		steps = append(steps, step{"", "GET", fmt.Sprintf("/workspaces/%d/members", ids.ws[i%2]), "", 200})
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second, Jar: jar}
	quiet := 0
	for _, st := range steps {
		req, err := http.NewRequestWithContext(ctx, st.method, base+st.path, strings.NewReader(st.body))
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != st.want {
			return fmt.Errorf("%s %s: status %d, want %d", st.method, st.path, resp.StatusCode, st.want)
		}
		evs := rec.take()
		if st.why == "" {
			quiet++
			continue
		}
		fmt.Fprintf(out, "\n%-6s %-28s %d  %s\n", st.method, st.path, resp.StatusCode, st.why)
		if st.path == "/login" {
			fmt.Fprintf(out, "         rate limit   %s of %s left", resp.Header.Get("X-RateLimit-Remaining"), resp.Header.Get("X-RateLimit-Limit"))
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				fmt.Fprintf(out, ", retry after %ss", ra)
			}
			fmt.Fprintln(out)
		}
		for _, e := range evs {
			if line := describe(e); line != "" {
				fmt.Fprintf(out, "         %s\n", line)
			}
		}
	}
	fmt.Fprintf(out, "\n... and %d more reads of the member lists\n", quiet)
	return nil
}

func describe(e runtime.Event) string {
	switch e.Op {
	case runtime.OpHit:
		return fmt.Sprintf("hit          %-32s %s", e.Key, e.Duration.Round(time.Microsecond))
	case runtime.OpMiss:
		return fmt.Sprintf("miss         %s", e.Key)
	case runtime.OpLoad:
		if e.Err != nil && !errors.Is(e.Err, orm.ErrNotFound) {
			return fmt.Sprintf("db load      %-32s failed: %v", e.Key, e.Err)
		}
		return fmt.Sprintf("db load      %-32s %s", e.Key, e.Duration.Round(time.Microsecond))
	case runtime.OpSet:
		return fmt.Sprintf("stored       %s", e.Key)
	case runtime.OpInvalidate:
		if e.Count == 0 {
			return ""
		}
		return fmt.Sprintf("invalidated  %-32s %d key(s) dropped", e.Key, e.Count)
	case runtime.OpStaleSetPrevented:
		return fmt.Sprintf("not stored   %s (invalidated while it loaded)", e.Key)
	case runtime.OpError:
		return fmt.Sprintf("redis error  %s: %v", e.Key, e.Err)
	}
	return ""
}
