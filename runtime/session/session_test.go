package session_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime/session"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

type data struct {
	Cart  []string
	Admin bool
	Visit int
}

func newStore(t *testing.T, b *redistest.Backend, opts ...session.Option) *session.Store[data] {
	t.Helper()
	s, err := session.New[data](b.Client, append([]session.Option{session.WithPrefix(b.Namespace), session.WithLogger(discard)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLifecycle(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		st := newStore(t, b)
		before := time.Now()
		s, err := st.Create(ctx, "u1", data{Cart: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		if s.UserID != "u1" || s.ExpiresAt.Sub(s.CreatedAt) != session.DefaultAbsoluteTTL ||
			s.CreatedAt.Before(before.Add(-time.Second)) || s.CreatedAt.After(time.Now().Add(time.Second)) {
			t.Fatalf("created %+v", s)
		}
		got, err := st.Get(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s, got); diff != "" {
			t.Fatalf("Get (-created +got):\n%s", diff)
		}
		got.Data.Visit = 2
		if err := st.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		if again, err := st.Get(ctx, s.ID); err != nil || again.Data.Visit != 2 {
			t.Fatalf("after Update: %+v, %v", again, err)
		}
		if err := st.Delete(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get after Delete: %v", err)
		}
		if err := st.Update(ctx, got); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Update after Delete: %v, want ErrNotFound (no resurrection)", err)
		}
		if err := st.Delete(ctx, s.ID); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
		keys, _ := b.Keys(ctx)
		if len(keys) != 0 {
			t.Fatalf("keys left after Delete: %q", keys)
		}
		for _, bad := range []string{"", "short", strings.Repeat("!", 51), s.ID[:50] + "A"} {
			if _, err := st.Get(ctx, bad); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("Get(%q): %v", bad, err)
			}
		}
	})
}

// TestStoredForm checks that Redis holds no raw ID, that every key has a
// TTL and that the user ID is escaped.
func TestStoredForm(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		st := newStore(t, b, session.WithIdleTTL(time.Minute), session.WithAbsoluteTTL(time.Hour))
		s, err := st.Create(ctx, "user:{1}", data{})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(s.ID)
		if err != nil || len(raw) < 16 || len(s.ID) != 51 {
			t.Fatalf("ID %q: %d bytes, %v", s.ID, len(raw), err)
		}
		keys, err := b.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 {
			t.Fatalf("keys %q, want a session and a user index", keys)
		}
		for _, k := range keys {
			if strings.Contains(k, s.ID) || strings.Contains(k, s.ID[8:]) {
				t.Fatalf("key %q contains the ID", k)
			}
			ttl := b.Client.PTTL(ctx, k).Val()
			switch {
			case strings.Contains(k, ":user:"):
				if k != b.Namespace+":user:{user%3A%7B1%7D}" || ttl <= 59*time.Minute || ttl > 62*time.Minute {
					t.Fatalf("index %q PTTL %v", k, ttl)
				}
			default:
				if ttl <= 0 || ttl > time.Minute {
					t.Fatalf("session %q PTTL %v, want the idle TTL", k, ttl)
				}
				vals := b.Client.HGetAll(ctx, k).Val()
				for f, v := range vals {
					if strings.Contains(v, s.ID[8:]) {
						t.Fatalf("field %s holds the ID", f)
					}
				}
			}
		}
		ids := map[string]bool{}
		for range 200 {
			s, err := st.Create(ctx, "", data{})
			if err != nil {
				t.Fatal(err)
			}
			if ids[s.ID] {
				t.Fatal("duplicate ID")
			}
			ids[s.ID] = true
		}
	})
}

func TestIdleExpiry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		ctx := context.Background()
		const idle = 300 * time.Millisecond
		st := newStore(t, b, session.WithIdleTTL(idle), session.WithAbsoluteTTL(time.Minute))
		s, err := st.Create(ctx, "", data{})
		if err != nil {
			t.Fatal(err)
		}
		// Used every 100ms, it outlives its idle TTL several times over.
		end := time.Now().Add(4 * idle)
		var lastUse time.Time
		for {
			lastUse = time.Now() // the touch happens after this
			if _, err := st.Get(ctx, s.ID); err != nil {
				t.Fatalf("session in use expired: %v", err)
			}
			if lastUse.After(end) {
				break
			}
			time.Sleep(idle / 3) // the client's think time, not synchronisation
		}
		// Left alone, it goes once the idle TTL has passed, not before.
		if ttl := b.Client.PTTL(ctx, b.Namespace+":"+keySuffix(t, b)).Val(); ttl <= 0 || ttl > idle {
			t.Fatalf("PTTL %v, want in (0, %v]", ttl, idle)
		}
		waitGone(t, b, 5*time.Second)
		if since := time.Since(lastUse); since < idle-20*time.Millisecond {
			t.Fatalf("gone %v after last use, before the idle TTL %v", since, idle)
		}
		if _, err := st.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get after idle expiry: %v", err)
		}
	})
}

// keySuffix returns the one session key's suffix under the namespace.
func keySuffix(t *testing.T, b *redistest.Backend) string {
	t.Helper()
	keys, err := b.Keys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %q, %v", keys, err)
	}
	return strings.TrimPrefix(keys[0], b.Namespace+":")
}

// waitGone polls until no key is left under the namespace.
func waitGone(t *testing.T, b *redistest.Backend, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		keys, err := b.Keys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys still there after %v: %q", limit, keys)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

func TestAbsoluteExpiry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		ctx := context.Background()
		st := newStore(t, b, session.WithIdleTTL(time.Minute), session.WithAbsoluteTTL(400*time.Millisecond))
		s, err := st.Create(ctx, "", data{})
		if err != nil {
			t.Fatal(err)
		}
		// However busy, the session ends at ExpiresAt: the touch never
		// extends the TTL beyond it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := st.Get(ctx, s.ID)
			if errors.Is(err, session.ErrNotFound) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			// The session may expire between the Get and this look
			// (a loaded machine): no key left is the end we wait for.
			keys, err := b.Keys(ctx)
			if err != nil || len(keys) > 1 {
				t.Fatalf("keys %q, %v", keys, err)
			}
			if len(keys) == 0 {
				break
			}
			if ttl := b.Client.PTTL(ctx, keys[0]).Val(); ttl > 400*time.Millisecond {
				t.Fatalf("PTTL %v beyond the absolute TTL", ttl)
			}
			if time.Now().After(deadline) {
				t.Fatal("session outlived its absolute TTL")
			}
			time.Sleep(20 * time.Millisecond) // polling interval
		}
		// Our clock and the server's agree to within the test's slack.
		if early := time.Until(s.ExpiresAt); early > 50*time.Millisecond {
			t.Fatalf("gone %v before ExpiresAt", early)
		}
	})
}

func TestRegenerate(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		st := newStore(t, b)
		anon, err := st.Create(ctx, "", data{Cart: []string{"book"}})
		if err != nil {
			t.Fatal(err)
		}
		// Login: same data, now with a user, under a new ID.
		anon.UserID = "u1"
		user, err := st.Regenerate(ctx, anon)
		if err != nil {
			t.Fatal(err)
		}
		if user.ID == anon.ID || user.ID[:8] != anon.ID[:8] {
			t.Fatalf("new ID %q for %q: want another ID with the same slot tag", user.ID, anon.ID)
		}
		if _, err := st.Get(ctx, anon.ID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("old ID after Regenerate: %v", err)
		}
		got, err := st.Get(ctx, user.ID)
		if err != nil || got.UserID != "u1" || !cmp.Equal(got.Data, data{Cart: []string{"book"}}) {
			t.Fatalf("new session %+v, %v", got, err)
		}
		if _, err := st.Regenerate(ctx, anon); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Regenerate of the old ID again: %v", err)
		}
		// Privilege change within the user: the index follows.
		got.Data.Admin = true
		admin, err := st.Regenerate(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		members := b.Client.ZRange(ctx, b.Namespace+":user:{u1}", 0, -1).Val()
		if len(members) != 1 {
			t.Fatalf("index %q, want only the current session", members)
		}
		if n, err := st.DeleteAllForUser(ctx, "u1"); err != nil || n != 1 {
			t.Fatalf("DeleteAllForUser: %d, %v", n, err)
		}
		if _, err := st.Get(ctx, admin.ID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("after DeleteAllForUser: %v", err)
		}
	})
}

func TestDeleteAllForUserAndBound(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		st := newStore(t, b, session.WithMaxSessionsPerUser(3))
		var u1 []*session.Session[data]
		for range 5 {
			s, err := st.Create(ctx, "u1", data{})
			if err != nil {
				t.Fatal(err)
			}
			u1 = append(u1, s)
		}
		other, err := st.Create(ctx, "u2", data{})
		if err != nil {
			t.Fatal(err)
		}
		// The bound of 3 evicted the two oldest.
		for i, s := range u1 {
			_, err := st.Get(ctx, s.ID)
			if evicted := i < 2; evicted != errors.Is(err, session.ErrNotFound) {
				t.Fatalf("session %d: %v (evicted %v)", i, err, evicted)
			}
		}
		n, err := st.DeleteAllForUser(ctx, "u1")
		if err != nil || n != 3 {
			t.Fatalf("DeleteAllForUser: %d, %v; want 3", n, err)
		}
		for i, s := range u1 {
			if _, err := st.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("session %d survived: %v", i, err)
			}
		}
		if _, err := st.Get(ctx, other.ID); err != nil {
			t.Fatalf("another user's session: %v", err)
		}
		if n, err := st.DeleteAllForUser(ctx, "nobody"); err != nil || n != 0 {
			t.Fatalf("DeleteAllForUser(nobody): %d, %v", n, err)
		}
	})
}

func TestFailsClosed(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rc.Close()
	st, err := session.New[data](rc, session.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.Create(ctx, "u1", data{}); err == nil {
		t.Fatal("Create with Redis down: no error")
	}
	id := strings.Repeat("A", 51)
	if _, err := st.Get(ctx, id); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get with Redis down: %v, want a Redis error", err)
	}
	if err := st.Delete(ctx, id); err == nil {
		t.Fatal("Delete with Redis down: no error")
	}
	if _, err := st.DeleteAllForUser(ctx, "u1"); err == nil {
		t.Fatal("DeleteAllForUser with Redis down: no error")
	}
	called := false
	h := st.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(&http.Cookie{Name: session.DefaultCookieName, Value: id})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || called {
		t.Fatalf("middleware with Redis down: %d, handler called %v", rec.Code, called)
	}
}

func TestMiddlewareAndCookie(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		st := newStore(t, b)
		var seen *session.Session[data]
		h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen, _ = st.FromContext(r.Context())
		}))
		s, err := st.Create(ctx, "u1", data{Visit: 7})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		st.SetCookie(rec, s)
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("cookies %v", cookies)
		}
		c := cookies[0]
		if c.Name != "session" || c.Value != s.ID || c.Path != "/" || !c.Secure || !c.HttpOnly ||
			c.SameSite != http.SameSiteLaxMode || c.MaxAge < 86000 || c.MaxAge > 86400 {
			t.Fatalf("cookie %+v", c)
		}

		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(c)
		h.ServeHTTP(httptest.NewRecorder(), req)
		if seen == nil || seen.UserID != "u1" || seen.Data.Visit != 7 {
			t.Fatalf("handler saw %+v", seen)
		}

		seen = nil
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		if seen != nil {
			t.Fatal("session without a cookie")
		}

		if err := st.Delete(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if seen != nil {
			t.Fatal("deleted session loaded")
		}
		if cl := rec.Result().Cookies(); len(cl) != 1 || cl[0].MaxAge >= 0 || cl[0].Value != "" {
			t.Fatalf("stale cookie not cleared: %v", cl)
		}
	})
}

func TestInvalidConfig(t *testing.T) {
	b := redistest.Standalone(t)
	for name, opt := range map[string]session.Option{
		"idle 0":        session.WithIdleTTL(0),
		"absolute <0":   session.WithAbsoluteTTL(-time.Second),
		"max 0":         session.WithMaxSessionsPerUser(0),
		"empty prefix":  session.WithPrefix(""),
		"cookie name ;": session.WithCookieName("a;b"),
	} {
		if _, err := session.New[data](b.Client, opt); !errors.Is(err, session.ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := session.New[data](nil); !errors.Is(err, session.ErrInvalidConfig) {
		t.Errorf("nil client: %v", err)
	}
}

func Example() {
	// A throwaway Redis for the example; use your process's client.
	srv, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()

	type Data struct{ Cart []string }
	sessions, err := session.New[Data](client, session.WithPrefix("app:sess"))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s, ok := sessions.FromContext(r.Context())
		if !ok {
			if s, err = sessions.Create(r.Context(), "", Data{}); err != nil {
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return
			}
		}
		// The password checked out: a new ID for the new privilege.
		s.UserID = "user-42"
		if s, err = sessions.Regenerate(r.Context(), s); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable) // fail closed
			return
		}
		sessions.SetCookie(w, s)
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		if s, ok := sessions.FromContext(r.Context()); ok {
			_, _ = io.WriteString(w, s.UserID)
			return
		}
		http.Error(w, "who are you?", http.StatusUnauthorized)
	})
	h := sessions.Middleware(mux)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/login", nil))
	cookie := rec.Result().Cookies()[0]
	fmt.Println(cookie.Name, cookie.HttpOnly, cookie.Secure, cookie.SameSite == http.SameSiteLaxMode)

	req := httptest.NewRequest("GET", "/me", nil)
	req.AddCookie(cookie)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// session true true true
	// 200 user-42
}
