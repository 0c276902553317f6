package ratelimit

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ErrNoKey reports that a KeyFunc found nothing to limit the request by
// (no user on an anonymous request, an unparsable remote address).
var ErrNoKey = errors.New("ratelimit: no key for the request")

// KeyFunc returns the subject a request is limited by.
type KeyFunc func(r *http.Request) (string, error)

// ClientIP limits by the client's IP address. The address is the
// connection's peer (RemoteAddr) unless that peer is one of the trusted
// proxies: then X-Forwarded-For is read from the right, skipping trusted
// proxies, and the first address that is not one is the client. Entries a
// client wrote itself (left of the first untrusted hop) are never believed,
// so a client cannot choose its own key. With no trusted proxies the header
// is ignored. IPv4-mapped IPv6 addresses count as IPv4.
func ClientIP(trusted ...netip.Prefix) KeyFunc {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) (string, error) {
		addr, err := parseAddr(r.RemoteAddr)
		if err != nil {
			return "", fmt.Errorf("%w: remote address %q", ErrNoKey, r.RemoteAddr)
		}
		if isTrusted(addr) {
			hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
			for i := len(hops) - 1; i >= 0 && isTrusted(addr); i-- {
				h := strings.TrimSpace(hops[i])
				if h == "" {
					continue
				}
				a, err := parseAddr(h)
				if err != nil {
					break // a trusted proxy passed garbage: keep the proxy
				}
				addr = a
			}
		}
		return "ip:" + addr.String(), nil
	}
}

func parseAddr(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.Unmap(), err
}

// TrustedProxies parses CIDRs ("10.0.0.0/8") and single addresses
// ("192.0.2.7") for ClientIP.
func TrustedProxies(cidrs ...string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(c)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: trusted proxy %q: not a CIDR or an address", c)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// User limits by the user that user returns for the request (from the
// session or the auth token, say); an empty user is ErrNoKey. Combine it
// with FirstOf to fall back to ClientIP for anonymous requests.
func User(user func(r *http.Request) string) KeyFunc {
	return func(r *http.Request) (string, error) {
		if u := user(r); u != "" {
			return "user:" + u, nil
		}
		return "", ErrNoKey
	}
}

// Route makes next's key per route: the ServeMux pattern that matched
// (when the middleware wraps the route's handler) or else the method and
// path. Keying by raw path lets clients create keys at will; wrap route
// handlers, so that the pattern is set, where paths carry IDs.
func Route(next KeyFunc) KeyFunc {
	return func(r *http.Request) (string, error) {
		k, err := next(r)
		if err != nil {
			return "", err
		}
		route := r.Pattern
		if route == "" {
			route = r.Method + " " + r.URL.Path
		}
		return "route:" + route + "|" + k, nil
	}
}

// FirstOf returns the key of the first of fns that returns one.
func FirstOf(fns ...KeyFunc) KeyFunc {
	return func(r *http.Request) (string, error) {
		err := ErrNoKey
		for _, f := range fns {
			k, ferr := f(r)
			if ferr == nil {
				return k, nil
			}
			err = ferr
		}
		return "", err
	}
}

// Outcome is what the middleware did with a request.
type Outcome uint8

// Middleware outcomes.
const (
	Allowed    Outcome = iota + 1 // under the limit: passed on
	Denied                        // over the limit: 429
	Failed                        // no decision (Redis or key error), failed closed: 503
	FailedOpen                    // no decision, passed on because of WithFailOpen
)

// String returns the outcome in lower case, e.g. "denied".
func (o Outcome) String() string {
	switch o {
	case Allowed:
		return "allowed"
	case Denied:
		return "denied"
	case Failed:
		return "failed"
	case FailedOpen:
		return "failed_open"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Decision is one observation passed to the WithObserver hook.
type Decision struct {
	Outcome Outcome
	Subject string
	Result  Result // zero when Err is set
	Err     error
}

// Stats counts the middleware's outcomes since it was created.
type Stats struct {
	Allowed, Denied, Failed, FailedOpen int64
}

// Middleware applies a Limiter to HTTP requests. Create it with
// NewMiddleware; it is safe for concurrent use.
type Middleware struct {
	limiter  Limiter
	key      KeyFunc
	failOpen bool
	log      *slog.Logger
	observe  func(Decision)

	allowed, denied, failed, failedOpen atomic.Int64
	lastLog, suppressed                 atomic.Int64
}

// MiddlewareOption configures a Middleware.
type MiddlewareOption func(*Middleware)

// WithKeyFunc sets how requests are keyed; the default is ClientIP()
// without trusted proxies.
func WithKeyFunc(f KeyFunc) MiddlewareOption {
	return func(m *Middleware) {
		if f != nil {
			m.key = f
		}
	}
}

// WithFailOpen lets requests through when the limiter cannot decide (Redis
// down, a key error). The default is to fail closed: 503 Service
// Unavailable with Retry-After: 1. Either way the failure is logged (at most
// once a second) and counted.
func WithFailOpen() MiddlewareOption { return func(m *Middleware) { m.failOpen = true } }

// WithLogger sets the logger for limiter failures; the default is
// slog.Default().
func WithLogger(l *slog.Logger) MiddlewareOption {
	return func(m *Middleware) {
		if l != nil {
			m.log = l
		}
	}
}

// WithObserver sets a hook called with every decision, e.g. to feed
// metrics. It runs on the request path: it must be fast and safe for
// concurrent use.
func WithObserver(f func(Decision)) MiddlewareOption {
	return func(m *Middleware) { m.observe = f }
}

// NewMiddleware returns a middleware that limits requests with l.
func NewMiddleware(l Limiter, opts ...MiddlewareOption) (*Middleware, error) {
	if l == nil {
		return nil, errors.New("ratelimit: nil Limiter")
	}
	m := &Middleware{limiter: l, key: ClientIP(), log: slog.Default()}
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// Stats returns the counts of outcomes so far.
func (m *Middleware) Stats() Stats {
	return Stats{Allowed: m.allowed.Load(), Denied: m.denied.Load(), Failed: m.failed.Load(), FailedOpen: m.failedOpen.Load()}
}

// Wrap returns next behind the limit. Every answer carries
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (Unix
// seconds at which the allowance is full again); a request over the limit
// gets 429 Too Many Requests with Retry-After (seconds) and a short text
// body, and next is not called.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject, err := m.key(r)
		var res Result
		if err == nil {
			res, err = m.limiter.Allow(r.Context(), subject)
		}
		if err != nil {
			m.fail(w, r, next, subject, err)
			return
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(res.Limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(res.Remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(ceilUnix(res.Reset), 10))
		if !res.Allowed {
			m.denied.Add(1)
			m.emit(Decision{Outcome: Denied, Subject: subject, Result: res})
			h.Set("Retry-After", strconv.FormatInt(ceilSeconds(res.RetryAfter), 10))
			http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
			return
		}
		m.allowed.Add(1)
		m.emit(Decision{Outcome: Allowed, Subject: subject, Result: res})
		next.ServeHTTP(w, r)
	})
}

func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, next http.Handler, subject string, err error) {
	out := Failed
	if m.failOpen {
		out = FailedOpen
		m.failedOpen.Add(1)
	} else {
		m.failed.Add(1)
	}
	m.emit(Decision{Outcome: out, Subject: subject, Err: err})
	now := time.Now().UnixNano()
	if last := m.lastLog.Load(); now-last >= int64(time.Second) && m.lastLog.CompareAndSwap(last, now) {
		m.log.Warn("ratelimit: no decision", "outcome", out.String(), "path", r.URL.Path, "err", err, "suppressed", m.suppressed.Swap(0))
	} else {
		m.suppressed.Add(1)
	}
	if m.failOpen {
		next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "rate limiter unavailable", http.StatusServiceUnavailable)
}

func (m *Middleware) emit(d Decision) {
	if m.observe != nil {
		m.observe(d)
	}
}

func ceilSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}

func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
