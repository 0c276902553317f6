package workspaces

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/orm"
	"github.com/repocache/repocache/runtime/ratelimit"
	"github.com/repocache/repocache/runtime/session"
)

// Server is the HTTP API over a Repository (normally the cached one).
type Server struct {
	repo     Repository
	cache    *runtime.Cache
	log      *slog.Logger
	sessions *session.Store[Profile]
	limit    *ratelimit.Middleware // every request, per client
	logins   *ratelimit.Middleware // POST /login, per client
	debug    http.Handler          // GET /debug/cache, when given
	metrics  http.Handler          // GET /metrics, when given
}

// Profile is what a session holds.
type Profile struct {
	Email string `json:"email"`
}

// ServerOption configures a Server.
type ServerOption func(*Server)

// WithSessions enables POST /login, GET /me and POST /logout on a
// session store; sessions are loaded for every request.
func WithSessions(s *session.Store[Profile]) ServerOption {
	return func(srv *Server) { srv.sessions = s }
}

// WithRateLimits limits every request (all) and, more tightly, logins
// (login); either may be nil.
func WithRateLimits(all, login *ratelimit.Middleware) ServerOption {
	return func(srv *Server) { srv.limit, srv.logins = all, login }
}

// WithDebugPage serves page (a *debughandler.Handler: the cache's live
// page and its JSON form) at GET /debug/cache and below it
// (/debug/cache/json), outside the rate limits and sessions. The page
// itself answers loopback clients only unless it was built with
// debughandler.WithAllowRemote. Without this option there is no such
// route.
func WithDebugPage(page http.Handler) ServerOption {
	return func(srv *Server) { srv.debug = page }
}

// WithMetricsHandler serves h (a Prometheus handler, say
// promhttp.HandlerFor over a registry holding a cacheprometheus.Collector)
// at GET /metrics, outside the rate limits and sessions like the live
// page: those fail closed when Redis fails, and a scrape must still answer
// then, to say so. Without this option there is no such route.
func WithMetricsHandler(h http.Handler) ServerOption {
	return func(srv *Server) { srv.metrics = h }
}

// NewServer returns the API; cache is used for GET /stats and GET /healthz
// only. X-Cache says hit or miss only when repo is the cached repository
// (*RepositoryCache) over a *Store: see Handler.
func NewServer(repo Repository, cache *runtime.Cache, log *slog.Logger, opts ...ServerOption) *Server {
	s := &Server{repo: repo, cache: cache, log: log}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Handler routes the API:
//
//	GET    /workspaces/{id}                  a workspace
//	PATCH  /workspaces/{id}                  {"plan": "..."}
//	GET    /workspaces/{id}/members          its members
//	GET    /workspaces/{id}/projects         its projects
//	POST   /workspaces/{id}/projects         {"name": "..."}
//	DELETE /workspaces/{id}/projects/{pid}   delete a project
//	GET    /projects/{id}                    a project
//	GET    /projects?ids=1,2,3               several projects (a batch get)
//	PATCH  /projects/{id}                    {"name": "..."}
//	GET    /stats                            the cache's counters, with units
//	GET    /healthz                          pings Redis and the database: 200 or 503
//	POST   /login                            {"email": "..."}: a session cookie (with sessions)
//	GET    /me                               the session's profile, or 401
//	POST   /logout                           ends the session
//	GET    /debug/cache                      the cache's live page; ?format=json or /debug/cache/json (WithDebugPage)
//	GET    /metrics                          Prometheus metrics (WithMetricsHandler)
//
// With rate limits, every response carries X-RateLimit-* headers and a
// client over its limit gets 429; with sessions, a request's session is
// loaded from its cookie. Both fail closed (503) when Redis fails.
//
// Every response of a route above carries X-Cache:
//
//	hit     the request read through the cache and no database query ran
//	        for it (a cached not-found is a hit too)
//	miss    the request read through the cache and the database was
//	        queried for it (a miss loaded, or Redis was unreachable and the
//	        read fell back to the database)
//	bypass  the response was not served from the cache: a write (which
//	        updates or drops cache entries after the database), a request
//	        refused before any read, /stats, /healthz, the session routes,
//	        or a repository that is not the cached one
//
// A request that waited for another request's load of the same key (the
// runtime collapses concurrent misses) queried nothing itself: it says hit.
//
// /debug/cache and /metrics are the exceptions: they are served before the
// rate limits, the sessions and X-Cache, and carry none of their headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /workspaces/{id}", getByID(s, Repository.FindWorkspace))
	mux.HandleFunc("PATCH /workspaces/{id}", s.patchWorkspace)
	mux.HandleFunc("GET /workspaces/{id}/members", getByID(s, Repository.ListMembers))
	mux.HandleFunc("GET /workspaces/{id}/projects", getByID(s, Repository.ListProjects))
	mux.HandleFunc("POST /workspaces/{id}/projects", s.createProject)
	mux.HandleFunc("DELETE /workspaces/{id}/projects/{pid}", s.deleteProject)
	mux.HandleFunc("GET /projects/{id}", getByID(s, Repository.FindProject))
	mux.HandleFunc("GET /projects", s.getProjects)
	mux.HandleFunc("PATCH /projects/{id}", s.patchProject)
	mux.HandleFunc("GET /stats", s.stats)
	mux.HandleFunc("GET /healthz", s.healthz)
	var h http.Handler = traceCache(mux)
	if s.sessions != nil {
		login := http.Handler(http.HandlerFunc(s.login))
		if s.logins != nil {
			login = s.logins.Wrap(login)
		}
		mux.Handle("POST /login", login)
		mux.HandleFunc("GET /me", s.me)
		mux.HandleFunc("POST /logout", s.logout)
		h = s.sessions.Middleware(h)
	}
	if s.limit != nil {
		h = s.limit.Wrap(h)
	}
	if s.debug != nil || s.metrics != nil {
		outer := http.NewServeMux()
		if s.debug != nil {
			outer.Handle("GET /debug/cache", s.debug)
			outer.Handle("GET /debug/cache/", s.debug)
		}
		if s.metrics != nil {
			outer.Handle("GET /metrics", s.metrics)
		}
		outer.Handle("/", h)
		h = outer
	}
	return h
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in Profile
	if !s.decode(w, r, &in) {
		return
	}
	if !strings.Contains(in.Email, "@") {
		http.Error(w, "email required", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	sess, ok := s.sessions.FromContext(ctx)
	var err error
	if !ok {
		sess, err = s.sessions.Create(ctx, in.Email, in)
	} else {
		// A privilege change: a new session ID, the old one gone.
		sess.UserID, sess.Data = in.Email, in
		sess, err = s.sessions.Regenerate(ctx, sess)
	}
	if err != nil {
		s.log.Warn("login: session store unavailable", "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	s.sessions.SetCookie(w, sess)
	s.reply(w, sess.Data, nil)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.FromContext(r.Context())
	if !ok || sess.UserID == "" {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	s.reply(w, sess.Data, nil)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if sess, ok := s.sessions.FromContext(r.Context()); ok {
		if err := s.sessions.Delete(r.Context(), sess.ID); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
	}
	s.sessions.ClearCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

// getByID serves a read of one ID taken from the path: a workspace, its
// members or projects, a project.
func getByID[T any](s *Server, find func(Repository, context.Context, int64) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.id(w, r, "id")
		if !ok {
			return
		}
		s.cachedRead(r.Context())
		v, err := find(s.repo, r.Context(), id)
		s.reply(w, v, err)
	}
}

func (s *Server) patchWorkspace(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r, "id")
	if !ok {
		return
	}
	var in struct {
		Plan string `json:"plan"`
	}
	if !s.decode(w, r, &in) {
		return
	}
	ws, err := s.repo.UpdatePlan(r.Context(), id, in.Plan)
	s.reply(w, ws, err)
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r, "id")
	if !ok {
		return
	}
	var in NewProject
	if !s.decode(w, r, &in) {
		return
	}
	in.WorkspaceID = id
	p, err := s.repo.CreateProject(r.Context(), in)
	if err == nil {
		w.WriteHeader(http.StatusCreated)
	}
	s.reply(w, p, err)
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) {
	ws, ok := s.id(w, r, "id")
	if !ok {
		return
	}
	pid, ok := s.id(w, r, "pid")
	if !ok {
		return
	}
	if err := s.repo.DeleteProject(r.Context(), ws, pid); err != nil {
		s.reply(w, nil, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getProjects(w http.ResponseWriter, r *http.Request) {
	var ids []int64
	for f := range strings.SplitSeq(r.URL.Query().Get("ids"), ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || id <= 0 {
			http.Error(w, "ids must be a comma-separated list of positive integers", http.StatusBadRequest)
			return
		}
		ids = append(ids, id)
	}
	s.cachedRead(r.Context())
	ps, err := s.repo.FindProjects(r.Context(), ids)
	s.reply(w, ps, err)
}

func (s *Server) patchProject(w http.ResponseWriter, r *http.Request) {
	id, ok := s.id(w, r, "id")
	if !ok {
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	if !s.decode(w, r, &in) {
		return
	}
	p, err := s.repo.RenameProject(r.Context(), id, in.Name)
	s.reply(w, p, err)
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st, err := s.cache.Stats(r.Context())
	if err != nil {
		s.log.Warn("stats: server info unavailable", "err", err)
	}
	s.reply(w, newStatsView(st), nil)
}

// health is the body of GET /healthz.
type health struct {
	Status   string `json:"status"`   // "ok" or "unavailable"
	Redis    string `json:"redis"`    // "ok" or "down"
	Database string `json:"database"` // "ok" or "down"
}

// healthz pings Redis and the database, each within a second: 200 when
// both answer, 503 otherwise. The errors are logged, not returned.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	h := health{Status: "ok", Redis: "ok", Database: "ok"}
	if err := s.cache.Client().Ping(ctx).Err(); err != nil {
		s.log.Warn("healthz: redis", "err", err)
		h.Status, h.Redis = "unavailable", "down"
	}
	if err := s.repo.Ping(ctx); err != nil {
		s.log.Warn("healthz: database", "err", err)
		h.Status, h.Database = "unavailable", "down"
	}
	w.Header().Set("Content-Type", "application/json")
	if h.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(h)
}

func (s *Server) id(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, name+" must be a positive integer", http.StatusBadRequest)
		return 0, false
	}
	return id, true
}

func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "bad JSON body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, orm.ErrNotFound):
		http.Error(w, "not found", http.StatusNotFound)
		return
	case errors.Is(err, ErrInvalid):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case errors.Is(err, context.Canceled):
		return
	case err != nil:
		s.log.Error("request failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// cacheTrace records, for one request, whether its handler read through the
// cache and whether the Store queried the database for it: X-Cache is
// derived from the two.
type cacheTrace struct {
	reads, queries atomic.Int32
}

type cacheTraceKey struct{}

// traceCache gives each request a cacheTrace and sets X-Cache on its
// response before the first byte of it is written.
func traceCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := &cacheTrace{}
		next.ServeHTTP(&xCacheWriter{ResponseWriter: w, t: t}, r.WithContext(context.WithValue(r.Context(), cacheTraceKey{}, t)))
	})
}

// cachedRead records that the request reads through the cache, when the
// repository is the cached one.
func (s *Server) cachedRead(ctx context.Context) {
	if _, ok := s.repo.(*RepositoryCache); !ok {
		return
	}
	if t, ok := ctx.Value(cacheTraceKey{}).(*cacheTrace); ok {
		t.reads.Add(1)
	}
}

// noteQuery records that the Store sent a query to the database for the
// request of ctx, if ctx is one's. The runtime runs a loader on its
// caller's context, so a load counts for the request that caused it.
func noteQuery(ctx context.Context) {
	if t, ok := ctx.Value(cacheTraceKey{}).(*cacheTrace); ok {
		t.queries.Add(1)
	}
}

// value is the X-Cache header of the request (see Server.Handler).
func (t *cacheTrace) value() string {
	switch {
	case t.reads.Load() == 0:
		return "bypass"
	case t.queries.Load() > 0:
		return "miss"
	}
	return "hit"
}

// xCacheWriter sets X-Cache when the handler writes its header.
type xCacheWriter struct {
	http.ResponseWriter
	t    *cacheTrace
	done bool
}

func (w *xCacheWriter) set() {
	if !w.done {
		w.done = true
		w.Header().Set("X-Cache", w.t.value())
	}
}

// WriteHeader implements http.ResponseWriter.
func (w *xCacheWriter) WriteHeader(code int) {
	w.set()
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *xCacheWriter) Write(b []byte) (int, error) {
	w.set()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *xCacheWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statsView is the body of GET /stats: runtime.Stats with its units in the
// field names (_us, _bytes) or in the value ("57µs"), and the reconnect
// count only when it is known.
type statsView struct {
	Hits               int64   `json:"hits"`
	Misses             int64   `json:"misses"`
	HitRatio           float64 `json:"hit_ratio"` // hits / (hits + misses), 0 to 1
	MeanHitLatency     string  `json:"mean_hit_latency"`
	MeanHitLatencyUS   float64 `json:"mean_hit_latency_us"` // microseconds
	Loads              int64   `json:"loads"`
	LoadErrors         int64   `json:"load_errors"`
	StaleServes        int64   `json:"stale_serves"`
	Sets               int64   `json:"sets"`
	InvalidatedKeys    int64   `json:"invalidated_keys"`
	StaleSetsPrevented int64   `json:"stale_sets_prevented"`
	Errors             int64   `json:"redis_errors"`
	DecodeErrors       int64   `json:"decode_errors"`
	EncodeErrors       int64   `json:"encode_errors"`
	Bypasses           int64   `json:"bypasses"`
	Unrendered         int64   `json:"unrendered"`
	BackgroundDropped  int64   `json:"background_dropped"`

	InvalidationFailures int64 `json:"invalidation_failures"`
	InvalidationRetries  int64 `json:"invalidation_retries_pending"`
	RetriesSucceeded     int64 `json:"invalidation_retries_succeeded"`
	RetriesDropped       int64 `json:"invalidation_retries_dropped"`

	BreakerOpen      bool  `json:"breaker_open"`
	BreakerOpens     int64 `json:"breaker_opens"`
	BreakerSkips     int64 `json:"breaker_skips"`
	MasterRestarts   int64 `json:"master_restarts"`
	NamespaceFlushes int64 `json:"namespace_flushes"`

	// Reconnects is absent when the client does not count them (one not
	// built by runtime.NewClient).
	Reconnects *int64     `json:"reconnects,omitempty"`
	Pool       poolView   `json:"pool"`
	Server     serverView `json:"server"`
}

// poolView is the client's connection pool in statsView.
type poolView struct {
	Hits       uint32 `json:"hits"`
	Misses     uint32 `json:"misses"`
	Timeouts   uint32 `json:"timeouts"`
	TotalConns uint32 `json:"total_conns"`
	IdleConns  uint32 `json:"idle_conns"`
	StaleConns uint32 `json:"stale_conns"`
}

// serverView is what INFO said, in statsView.
type serverView struct {
	Masters         int    `json:"masters"`
	UsedMemoryBytes int64  `json:"used_memory_bytes"`
	EvictedKeys     int64  `json:"evicted_keys"`
	BlockedClients  int64  `json:"blocked_clients"`
	MaxmemoryPolicy string `json:"maxmemory_policy"`
	EvictingTagSets bool   `json:"evicting_tag_sets"`
}

func newStatsView(s runtime.Stats) statsView {
	v := statsView{
		Hits: s.Hits, Misses: s.Misses, HitRatio: s.HitRatio,
		MeanHitLatency:   s.MeanHitLatency.Round(time.Microsecond).String(),
		MeanHitLatencyUS: float64(s.MeanHitLatency.Nanoseconds()/100) / 10,
		Loads:            s.Loads, LoadErrors: s.LoadErrors, StaleServes: s.StaleServes, Sets: s.Sets,
		InvalidatedKeys: s.Invalidated, StaleSetsPrevented: s.StaleSetsPrevented, Errors: s.Errors,
		DecodeErrors: s.DecodeErrors, EncodeErrors: s.EncodeErrors, Bypasses: s.Bypasses,
		Unrendered: s.Unrendered, BackgroundDropped: s.BackgroundDropped,
		InvalidationFailures: s.InvalidationFailures, InvalidationRetries: s.InvalidationRetries,
		RetriesSucceeded: s.RetriesSucceeded, RetriesDropped: s.RetriesDropped,
		BreakerOpen: s.BreakerOpen, BreakerOpens: s.BreakerOpens, BreakerSkips: s.BreakerSkips,
		MasterRestarts: s.MasterRestarts, NamespaceFlushes: s.NamespaceFlushes,
		Pool: poolView{Hits: s.Pool.Hits, Misses: s.Pool.Misses, Timeouts: s.Pool.Timeouts,
			TotalConns: s.Pool.TotalConns, IdleConns: s.Pool.IdleConns, StaleConns: s.Pool.StaleConns},
		Server: serverView{Masters: s.Server.Masters, UsedMemoryBytes: s.Server.UsedMemory,
			EvictedKeys: s.Server.EvictedKeys, BlockedClients: s.Server.BlockedClients,
			MaxmemoryPolicy: s.Server.MaxmemoryPolicy, EvictingTagSets: s.Server.EvictingTagSets},
	}
	if s.Reconnects >= 0 { // -1: unknown
		v.Reconnects = &s.Reconnects
	}
	return v
}
