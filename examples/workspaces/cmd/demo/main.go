// Command demo runs the workspaces example: it starts the HTTP API (with
// sessions and rate limits, all in Redis) on the embedded defaults (an
// in-memory SQLite database and an embedded Redis, each used only when
// DATABASE_URL or REDIS_URL is not set, and said so), drives a short
// scripted workload against it, and prints one line per request (its
// status and X-Cache) with one line per cache operation under it: hits,
// misses, loads from the database, stores, the keys and tags a write
// dropped. It then times the same reads through the cache and straight
// from the database, and sums up what the cache saved. With -serve it
// keeps serving, and prints every request the same way until interrupted;
// the cache's live page (runtime/debughandler) is then at /debug/cache and
// its Prometheus metrics (extra/cacheprometheus) at /metrics. With -otel it
// also reports the cache through OpenTelemetry (extra/cacheotel): metrics
// and spans, written by OTel's stdout exporters to stderr or -otel-out.
//
//	go generate ./examples/workspaces && go run ./examples/workspaces/cmd/demo [-serve] [-addr 127.0.0.1:8080] [-dblatency 1ms] [-otel [-otel-out file]]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/repocache/repocache/examples/workspaces"
	"github.com/repocache/repocache/extra/cacheprometheus"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/debughandler"
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

// events records what the cache did; the report takes them after each
// request.
type events struct {
	mu   sync.Mutex
	list []runtime.Event
}

// Observe implements runtime.Metrics.
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

// lockedWriter serialises writes to the report, which the script and, with
// -serve, the request handlers write.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// The missing project's ID: a number a reader can take in (the first one
// not in the database, see missingID).
const missing = 999999

func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	out := &lockedWriter{w: stdout}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(out)
	serve := fs.Bool("serve", false, "keep serving the API after the scripted workload, printing each request, until interrupted")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	dbLatency := fs.Duration("dblatency", 0, "add this `delay` before every database statement, to see a networked database's round trip (e.g. 1ms)")
	otelOn := fs.Bool("otel", false, "also report the cache through OpenTelemetry: metrics (every "+otelInterval.String()+" and at exit) and spans of misses, loads and invalidations, written as JSON by OTel's stdout exporters to stderr")
	otelOut := fs.String("otel-out", "", "with -otel, write the OpenTelemetry output to this `file` instead of stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: demo [flags]\n\nRuns the workspaces API over the generated cache on REDIS_URL and DATABASE_URL\n(embedded miniredis and in-memory SQLite when unset), drives a scripted workload\nand prints what the cache did.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // asked for: not an error
		}
		return err
	}
	if *dbLatency < 0 {
		return fmt.Errorf("-dblatency %s: want 0 or more", *dbLatency)
	}
	if *otelOut != "" && !*otelOn {
		return errors.New("-otel-out needs -otel")
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	client, closeRedis, err := openRedis(out, logger)
	if err != nil {
		return err
	}
	defer closeRedis()
	var tel *telemetry
	if *otelOn {
		if tel, err = setupOTel(*otelOut); err != nil {
			return err
		}
		// Before Redis closes (deferred above, so run after): the last
		// export reads the Cache's Stats.
		defer func() { err = errors.Join(err, tel.shutdown()) }()
		fmt.Fprintf(out, "otel: metrics every %s and at exit, spans of misses, loads and invalidations, as JSON %s (-otel)\n", otelInterval, tel.where)
	}
	dbURL := os.Getenv("DATABASE_URL")
	db, driver, err := orm.Open(dbURL)
	if err != nil {
		return err
	}
	if dbURL == "" {
		fmt.Fprintln(out, "database: embedded SQLite in memory (DATABASE_URL is not set): it runs in this process, so a query costs no network round trip")
	} else {
		fmt.Fprintf(out, "database: %s (DATABASE_URL)\n", driver)
	}
	if *dbLatency > 0 {
		if err := addLatency(db, *dbLatency); err != nil {
			return err
		}
		fmt.Fprintf(out, "database: %s added before every statement (-dblatency), as a network round trip would\n", *dbLatency)
	}
	store, err := workspaces.NewStore(db)
	if err != nil {
		return err
	}
	rec := &events{}
	// The live page: mounted at /debug/cache, for loopback clients only.
	page := debughandler.New()
	pageRec := page.Metrics()
	ns := "app:dev"
	if os.Getenv("REDIS_URL") != "" {
		ns = "app:demo:" + fmt.Sprint(time.Now().UnixNano()) // never mix with another run's keys
	}
	// The database's identity is part of the namespace: two demos on two
	// databases that share a Redis never serve each other's rows.
	nsOpts := []runtime.Option{runtime.WithNamespace(ns), runtime.WithDatabase(orm.Identity(dbURL))}
	// The namespace the Cache ends up with ("<ns>:@<database>"), which the
	// Prometheus and OTel hooks label their series with, as Watch labels
	// the Stats: a Cache without WithL1 runs nothing, so one built only to
	// ask costs nothing.
	fullNS := runtime.New(client, nsOpts...).Namespace()
	prom := cacheprometheus.New()
	opts := append(nsOpts, runtime.WithLogger(logger), runtime.WithMetrics(rec), runtime.WithMetrics(pageRec),
		runtime.WithMetrics(prom.Metrics(fullNS)))
	if tel != nil {
		opts = append(opts, runtime.WithMetrics(tel.rec.Metrics(fullNS)))
	}
	cache := runtime.New(client, opts...)
	pageRec.Watch(cache)
	// /metrics: a registry of the demo's own, with the Cache's collector.
	if err := prom.Watch(cache); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prom)
	if tel != nil {
		if err := tel.rec.Watch(cache); err != nil {
			return err
		}
	}
	defer func() { _, _ = cache.InvalidatePattern(context.Background(), "*") }()
	repo := workspaces.NewRepositoryCache(store, cache)
	ids, err := seed(ctx, store)
	if err != nil {
		return err
	}
	if ids.missing, err = missingID(ctx, store); err != nil {
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
	api := workspaces.NewServer(repo, cache, logger, workspaces.WithSessions(sessions), workspaces.WithRateLimits(all, logins),
		workspaces.WithDebugPage(page), workspaces.WithMetricsHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	live := &liveLog{out: out, rec: rec, cache: cache}
	srv := &http.Server{Handler: live.wrap(api.Handler()), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "api: %s\n", base)

	sum, err := workload(ctx, out, base, cache, rec, ids)
	if err != nil {
		return err
	}
	st, _ := cache.Stats(ctx) // before the timed reads add theirs
	sp, err := compare(ctx, repo, store, cache, rec, ids)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nspeed: %s\n", sp)
	fmt.Fprintf(out, "         one read: %s from Redis, %s from the database\n", sp.perRead(sp.cached).Round(time.Microsecond), sp.perRead(sp.direct).Round(time.Microsecond))
	if sp.cached >= sp.direct {
		where := "on this machine, its query costs no more than the round trip to Redis that a hit costs"
		if dbURL == "" {
			where = "in this process, its query costs no round trip at all, and a hit costs one to Redis"
		}
		fmt.Fprintf(out, "         the cache cannot win here: with the database %s;\n", where)
		fmt.Fprintln(out, "         it wins when a query costs more than that: a database across a network, a heavier query (try DEMOFLAGS=-dblatency=1ms)")
	}

	fmt.Fprintf(out, "\nsummary: %d requests; %d hits, %d misses, %d loads from the database, %d values stored, %d keys invalidated, %d stale sets prevented, hit rate %.0f%%\n",
		sum.requests, st.Hits, st.Misses, st.Loads, st.Sets, st.Invalidated, st.StaleSetsPrevented, 100*st.HitRatio)
	saved := time.Duration(sum.hit) * (sp.perRead(sp.direct) - sp.perRead(sp.cached))
	fmt.Fprintf(out, "saved:   %d of %d reads through the cache ran no database query (X-Cache: hit); %d did (miss)\n", sum.hit, sum.hit+sum.miss, sum.miss)
	if saved > 0 {
		fmt.Fprintf(out, "         at the speeds measured above, about %s of database time saved\n", saved.Round(time.Microsecond))
	} else {
		fmt.Fprintf(out, "         at the speeds measured above, no time saved: about %s more than the queries would have taken\n", (-saved).Round(time.Microsecond))
	}
	if !*serve {
		fmt.Fprintln(out, "\nwhere to look: the API stopped with the demo; make demo DEMOFLAGS=-serve keeps it up and prints the addresses of")
		whereToLook(out, "", tel)
		return nil
	}
	fmt.Fprintf(out, "\nserving on %s until interrupted: every request is printed with what the cache did\n", base)
	fmt.Fprintf(out, "try: curl -i %s/workspaces/%d/projects   curl %s/metrics\n", base, ids.ws[0], base)
	fmt.Fprintln(out, "where to look:")
	whereToLook(out, base, tel)
	live.on.Store(true)
	<-ctx.Done()
	live.on.Store(false)
	fmt.Fprintln(out, "stopped")
	return nil
}

// whereToLook prints the demo's last lines: where the cache can be watched,
// at base (the API's address) when it serves, and how -otel reports it.
func whereToLook(out io.Writer, base string, tel *telemetry) {
	fmt.Fprintf(out, "live page: %s/debug/cache (hit ratio, rate and latency per method, the largest tags, Redis memory, the breaker; JSON: ?format=json; loopback clients only)\n", base)
	fmt.Fprintf(out, "metrics:   %s/metrics (Prometheus text: repocache_hits_total{method=\"Repository.FindWorkspace\",...}, latencies, pool, breaker, Redis memory)\n", base)
	fmt.Fprintf(out, "stats:     %s/stats (the cache's counters as JSON, with units)\n", base)
	fmt.Fprintf(out, "health:    %s/healthz (200 when Redis and the database answer, else 503)\n", base)
	if tel != nil {
		fmt.Fprintf(out, "otel:      on: metrics every %s and at exit, spans of misses, loads and invalidations, as JSON %s\n", otelInterval, tel.where)
	} else {
		fmt.Fprintln(out, "otel:      off: make demo DEMOFLAGS=-otel reports the cache through OpenTelemetry too (metrics and spans, JSON on stderr; -otel-out FILE for a file)")
	}
}

// liveLog prints each request of -serve with the cache events it caused.
// The cache reports its events to one runtime.Metrics for all requests,
// with nothing that says which request caused one: to keep them apart,
// requests are served one at a time while it is on (a demo's
// simplification, never a server's).
type liveLog struct {
	on    atomic.Bool
	mu    sync.Mutex
	out   io.Writer
	rec   *events
	cache *runtime.Cache
}

func (l *liveLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The live page reloads itself, and a Prometheus scrapes /metrics every
		// few seconds: not printed.
		if !l.on.Load() || strings.HasPrefix(r.URL.Path, "/debug/") || r.URL.Path == "/metrics" {
			next.ServeHTTP(w, r)
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.rec.take() // left over from before: not this request's
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		_ = l.cache.Wait(r.Context()) // the stores after its loads, which may outlast the response
		var b bytes.Buffer
		report(&b, request{r.Method, r.URL.Path}, r.URL.RequestURI(), sw.status, w.Header().Get("X-Cache"), "", l.rec.take())
		_, _ = l.out.Write(b.Bytes())
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// report prints one request: method, path, status, X-Cache and why, then
// its cache events one operation a line.
func report(out io.Writer, r request, uri string, status int, xcache, why string, evs []runtime.Event) {
	if xcache == "" {
		xcache = "-"
	}
	fmt.Fprintln(out, "\n"+strings.TrimRight(fmt.Sprintf("%-6s %-30s %d %-6s  %s", r.method, uri, status, xcache, why), " "))
	for _, l := range lines(r, evs) {
		fmt.Fprintf(out, "         %s\n", l)
	}
}

// addLatency delays every statement GORM sends by d (-dblatency).
func addLatency(db *gorm.DB, d time.Duration) error {
	wait := func(tx *gorm.DB) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-tx.Statement.Context.Done():
		}
	}
	cb := db.Callback()
	return errors.Join(
		cb.Query().Before("gorm:query").Register("demo:latency", wait),
		cb.Create().Before("gorm:create").Register("demo:latency", wait),
		cb.Update().Before("gorm:update").Register("demo:latency", wait),
		cb.Delete().Before("gorm:delete").Register("demo:latency", wait),
		cb.Row().Before("gorm:row").Register("demo:latency", wait),
		cb.Raw().Before("gorm:raw").Register("demo:latency", wait),
	)
}

func openRedis(out io.Writer, logger *slog.Logger) (redis.UniversalClient, func(), error) {
	if u := os.Getenv("REDIS_URL"); u != "" {
		c, err := runtime.NewClient(u, runtime.WithClientLogger(logger))
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
	fmt.Fprintf(out, "redis: embedded miniredis on %s (REDIS_URL is not set): in this process, over loopback TCP\n", mr.Addr())
	// runtime.NewClient, as a service would: /stats then counts reconnects.
	c, err := runtime.NewClient("redis://"+mr.Addr(), runtime.WithClientLogger(logger))
	if err != nil {
		mr.Close()
		return nil, nil, err
	}
	return c, func() { _ = c.Close(); mr.Close() }, nil
}

// seeded holds the IDs the workload uses: a database that is not empty
// (DATABASE_URL) gives other IDs than 1, 2, 3.
type seeded struct {
	ws       [2]int64
	projects []int64 // of the first workspace
	missing  int64   // no project has it
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

// missingID returns 999999, or on a database that has a project 999999,
// the first of 9999999, 99999999, ... that it has not.
func missingID(ctx context.Context, s *workspaces.Store) (int64, error) {
	id := int64(missing)
	for {
		_, err := s.FindProject(ctx, id)
		switch {
		case errors.Is(err, orm.ErrNotFound):
			return id, nil
		case err != nil:
			return 0, err
		}
		id = id*10 + 9
	}
}

// step is one request of the scripted workload.
type step struct {
	why, method, path, body string
	want                    int
}

// tally counts the script's reads through the cache by their X-Cache.
type tally struct {
	requests, hit, miss int
}

// workload runs the script's requests one after the other and reports each
// with the cache events it caused.
func workload(ctx context.Context, out io.Writer, base string, cache *runtime.Cache, rec *events, ids seeded) (tally, error) {
	ws, p1, p2, p3 := ids.ws[0], ids.projects[0], ids.projects[1], ids.projects[2]
	steps := []step{
		{"first read: a miss, loaded from the database", "GET", fmt.Sprintf("/workspaces/%d", ws), "", 200},
		{"same read: a hit", "GET", fmt.Sprintf("/workspaces/%d", ws), "", 200},
		{"a list, tagged with each project it holds", "GET", fmt.Sprintf("/workspaces/%d/projects", ws), "", 200},
		{"the list again: a hit", "GET", fmt.Sprintf("/workspaces/%d/projects", ws), "", 200},
		{"one project: a miss", "GET", fmt.Sprintf("/projects/%d", p2), "", 200},
		{"a batch: one MGET; the 2nd is a hit, the others load in one query", "GET", fmt.Sprintf("/projects?ids=%d,%d,%d", p1, p2, p3), "", 200},
		{"the batch again: all hits, one round trip", "GET", fmt.Sprintf("/projects?ids=%d,%d,%d", p1, p2, p3), "", 200},
		{"rename it: its tag drops its key and the list that holds it; the new value is written through", "PATCH", fmt.Sprintf("/projects/%d", p2), `{"name":"renamed"}`, 200},
		{"the project: a hit with the new name", "GET", fmt.Sprintf("/projects/%d", p2), "", 200},
		{"the list: a miss (dropped by the project's tag), reloaded", "GET", fmt.Sprintf("/workspaces/%d/projects", ws), "", 200},
		{"a project that does not exist: not found, remembered (negative=30s)", "GET", fmt.Sprintf("/projects/%d", ids.missing), "", 404},
		{"again: the cached not-found, no query", "GET", fmt.Sprintf("/projects/%d", ids.missing), "", 404},
		{"create a project: the list's tag drops the list; the project is written through", "POST", fmt.Sprintf("/workspaces/%d/projects", ws), `{"name":"new"}`, 201},
		{"the list: reloaded with the new project", "GET", fmt.Sprintf("/workspaces/%d/projects", ws), "", 200},
		{"delete a project: its key, then its tag (the list holding it), then the list's tag", "DELETE", fmt.Sprintf("/workspaces/%d/projects/%d", ws, p1), "", 204},
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
	var sum tally
	jar, err := cookiejar.New(nil)
	if err != nil {
		return sum, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Jar: jar}
	fmt.Fprintln(out, "\neach request: method, path, status, X-Cache (hit, miss or bypass), what it shows; under it, one line per cache operation")
	quiet := 0
	for _, st := range steps {
		req, err := http.NewRequestWithContext(ctx, st.method, base+st.path, strings.NewReader(st.body))
		if err != nil {
			return sum, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return sum, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != st.want {
			return sum, fmt.Errorf("%s %s: status %d, want %d", st.method, st.path, resp.StatusCode, st.want)
		}
		sum.requests++
		xcache := resp.Header.Get("X-Cache")
		switch xcache {
		case "hit":
			sum.hit++
		case "miss":
			sum.miss++
		}
		// A store after a load may outlast the response (the runtime waits
		// for it a few milliseconds only): its event belongs to this request.
		if err := cache.Wait(ctx); err != nil {
			return sum, err
		}
		evs := rec.take()
		if st.why == "" {
			quiet++
			continue
		}
		u, err := url.Parse(st.path)
		if err != nil {
			return sum, err
		}
		var b bytes.Buffer
		report(&b, request{st.method, u.Path}, st.path, resp.StatusCode, xcache, st.why, evs)
		if st.path == "/login" {
			fmt.Fprintf(&b, "         rate limit %s of %s left", resp.Header.Get("X-RateLimit-Remaining"), resp.Header.Get("X-RateLimit-Limit"))
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				fmt.Fprintf(&b, ", retry after %ss", ra)
			}
			fmt.Fprintln(&b)
		}
		_, _ = out.Write(b.Bytes())
	}
	fmt.Fprintf(out, "\n... and %d more reads of the member lists\n", quiet)
	return sum, nil
}
