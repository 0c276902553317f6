package session

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

type cookieConfig struct {
	name, path, domain string
	secure             bool
	sameSite           http.SameSite
}

// WithCookieName sets the cookie's name; the default is DefaultCookieName.
// A "__Host-" prefix is a good choice for HTTPS sites without WithCookieDomain.
func WithCookieName(name string) Option { return func(o *options) { o.cookie.name = name } }

// WithCookiePath sets the cookie's Path; the default is "/".
func WithCookiePath(path string) Option { return func(o *options) { o.cookie.path = path } }

// WithCookieDomain sets the cookie's Domain; by default there is none, so
// the cookie goes to the exact host only.
func WithCookieDomain(domain string) Option { return func(o *options) { o.cookie.domain = domain } }

// WithSameSite sets the cookie's SameSite mode; the default is Lax, which
// keeps the session on top-level navigations from other sites and off their
// subrequests and form posts.
func WithSameSite(mode http.SameSite) Option { return func(o *options) { o.cookie.sameSite = mode } }

// WithInsecureCookie drops the Secure attribute, for local development over
// plain HTTP only. Cookies are always HttpOnly.
func WithInsecureCookie() Option { return func(o *options) { o.cookie.secure = false } }

func validCookieName(n string) bool {
	return n != "" && !strings.ContainsAny(n, "()<>@,;:\\\"/[]?={} \t\r\n")
}

// SetCookie sends sess's ID in a cookie that lasts until the session's
// absolute expiry, with the store's attributes (by default Path=/, Secure,
// HttpOnly, SameSite=Lax).
func (s *Store[T]) SetCookie(w http.ResponseWriter, sess *Session[T]) {
	maxAge := int(time.Until(sess.ExpiresAt).Seconds())
	if maxAge <= 0 {
		maxAge = -1
	}
	http.SetCookie(w, s.newCookie(sess.ID, maxAge, sess.ExpiresAt))
}

// ClearCookie tells the browser to drop the session cookie (after Delete).
func (s *Store[T]) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, s.newCookie("", -1, time.Unix(0, 0)))
}

func (s *Store[T]) newCookie(value string, maxAge int, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name: s.cookie.name, Value: value, Path: s.cookie.path, Domain: s.cookie.domain,
		MaxAge: maxAge, Expires: expires.UTC(),
		Secure: s.cookie.secure, HttpOnly: true, SameSite: s.cookie.sameSite,
	}
}

// ID returns the session ID in r's cookie, or "".
func (s *Store[T]) ID(r *http.Request) string {
	c, err := r.Cookie(s.cookie.name)
	if err != nil {
		return ""
	}
	return c.Value
}

type ctxKey[T any] struct{ s *Store[T] }

// NewContext returns ctx carrying sess, for FromContext.
func (s *Store[T]) NewContext(ctx context.Context, sess *Session[T]) context.Context {
	return context.WithValue(ctx, ctxKey[T]{s}, sess)
}

// FromContext returns the session that Middleware (or NewContext) put in
// ctx, if any.
func (s *Store[T]) FromContext(ctx context.Context) (*Session[T], bool) {
	sess, ok := ctx.Value(ctxKey[T]{s}).(*Session[T])
	return sess, ok && sess != nil
}

// Middleware loads the session named by the request's cookie (renewing its
// idle TTL) into the request context, where FromContext finds it. A request
// without a valid session passes on without one, and a stale cookie is
// cleared. When Redis fails, the request is answered 503 Service
// Unavailable and next is not called: authentication fails closed.
func (s *Store[T]) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := s.ID(r)
		if id == "" {
			next.ServeHTTP(w, r)
			return
		}
		sess, err := s.Get(r.Context(), id)
		switch {
		case errors.Is(err, ErrNotFound):
			s.ClearCookie(w)
			next.ServeHTTP(w, r)
		case err != nil:
			s.log.Warn("session: store unavailable", "err", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
		default:
			next.ServeHTTP(w, r.WithContext(s.NewContext(r.Context(), sess)))
		}
	})
}
