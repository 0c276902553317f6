package workspaces

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

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

// NewServer returns the API; cache is used for GET /stats only.
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
//	GET    /stats                            the cache's counters
//	POST   /login                            {"email": "..."}: a session cookie (with sessions)
//	GET    /me                               the session's profile, or 401
//	POST   /logout                           ends the session
//
// With rate limits, every response carries X-RateLimit-* headers and a
// client over its limit gets 429; with sessions, a request's session is
// loaded from its cookie. Both fail closed (503) when Redis fails.
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
	var h http.Handler = mux
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
	s.reply(w, st, nil)
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
