package workspaces

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/ratelimit"
	"github.com/repocache/repocache/runtime/session"
)

// newGuardedServer serves the API with sessions and a login limit of 2 a
// minute on client, and returns an HTTP client with a cookie jar.
func newGuardedServer(t *testing.T, client redis.UniversalClient, ns string) (*httptest.Server, *http.Client) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	sessions, err := session.New[Profile](client, session.WithPrefix(ns+":sess"), session.WithInsecureCookie())
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.NewSlidingWindow(client, 2, time.Minute, ratelimit.WithPrefix(ns+":rl"))
	if err != nil {
		t.Fatal(err)
	}
	logins, err := ratelimit.NewMiddleware(lim, ratelimit.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	cache := runtime.New(client, runtime.WithNamespace(ns), runtime.WithLogger(logger))
	srv := httptest.NewServer(NewServer(nil, cache, logger, WithSessions(sessions), WithRateLimits(nil, logins)).Handler())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return srv, &http.Client{Jar: jar}
}

func do(t *testing.T, c *http.Client, method, url, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

func TestSessionsAndRateLimits(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		srv, c := newGuardedServer(t, b.Client, b.Namespace)
		login := `{"email":"ada@acme.example"}`
		if r := do(t, c, "GET", srv.URL+"/me", ""); r.StatusCode != 401 {
			t.Fatalf("/me before login = %d", r.StatusCode)
		}
		r := do(t, c, "POST", srv.URL+"/login", login)
		if r.StatusCode != 200 || r.Header.Get("X-RateLimit-Remaining") != "1" || r.Header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("login = %d, headers %v", r.StatusCode, r.Header)
		}
		if r := do(t, c, "GET", srv.URL+"/me", ""); r.StatusCode != 200 {
			t.Fatalf("/me after login = %d", r.StatusCode)
		}
		do(t, c, "POST", srv.URL+"/login", login)
		r = do(t, c, "POST", srv.URL+"/login", login)
		if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("third login = %d, Retry-After %q; want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
		}
		if r := do(t, c, "POST", srv.URL+"/logout", ""); r.StatusCode != 204 {
			t.Fatalf("logout = %d", r.StatusCode)
		}
		if r := do(t, c, "GET", srv.URL+"/me", ""); r.StatusCode != 401 {
			t.Fatalf("/me after logout = %d", r.StatusCode)
		}
	})
}

// TestGuardsFailClosed: with Redis down, a login is refused (503), never
// let through unlimited or without a stored session.
func TestGuardsFailClosed(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer client.Close()
	srv, c := newGuardedServer(t, client, "down")
	if r := do(t, c, "POST", srv.URL+"/login", `{"email":"ada@acme.example"}`); r.StatusCode != 503 {
		t.Fatalf("login with Redis down = %d, want 503", r.StatusCode)
	}
}
