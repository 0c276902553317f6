package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime/ratelimit"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// limiters builds one limiter of each kind allowing limit requests per
// period, under distinct prefixes.
func limiters(t *testing.T, b *redistest.Backend, limit int, period time.Duration) map[string]ratelimit.Limiter {
	t.Helper()
	sw, err := ratelimit.NewSlidingWindow(b.Client, limit, period, ratelimit.WithPrefix(b.Namespace+":sw"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := ratelimit.NewGCRA(b.Client, limit, period, limit, ratelimit.WithPrefix(b.Namespace+":gcra"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]ratelimit.Limiter{"sliding": sw, "gcra": g}
}

// TestConcurrentClientsNeverExceed runs 20 clients of 10 requests each
// against a limit of 37: exactly 37 pass.
func TestConcurrentClientsNeverExceed(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		for name, l := range limiters(t, b, 37, time.Hour) {
			t.Run(name, func(t *testing.T) {
				var (
					allowed atomic.Int64
					wg      sync.WaitGroup
				)
				for range 20 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 10 {
							r, err := l.Allow(context.Background(), "user:42")
							if err != nil {
								t.Error(err)
								return
							}
							if r.Allowed {
								allowed.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				if n := allowed.Load(); n != 37 {
					t.Fatalf("%d requests allowed, want exactly 37", n)
				}
				r, err := l.Peek(context.Background(), "user:42")
				if err != nil || r.Allowed || r.Remaining != 0 || r.RetryAfter <= 0 {
					t.Fatalf("Peek after the burst: %+v, %v", r, err)
				}
				// Another subject is not affected.
				if r, err := l.Allow(context.Background(), "user:43"); err != nil || !r.Allowed || r.Remaining != 36 {
					t.Fatalf("another subject: %+v, %v", r, err)
				}
			})
		}
	})
}

// TestServerTimeWindow runs a short window on the server's own clock: a
// denied subject is allowed again once RetryAfter has passed, not before.
func TestServerTimeWindow(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		for name, l := range limiters(t, b, 2, 300*time.Millisecond) {
			t.Run(name, func(t *testing.T) {
				ctx := context.Background()
				for i := range 2 {
					if r, err := l.Allow(ctx, "s"); err != nil || !r.Allowed {
						t.Fatalf("request %d: %+v, %v", i, r, err)
					}
				}
				denied, err := l.Allow(ctx, "s")
				if err != nil || denied.Allowed || denied.RetryAfter <= 0 || denied.RetryAfter > 300*time.Millisecond {
					t.Fatalf("third request: %+v, %v; want denied with 0 < RetryAfter <= 300ms", denied, err)
				}
				deniedAt := time.Now()
				deadline := deniedAt.Add(5 * time.Second)
				for {
					r, err := l.Allow(ctx, "s")
					if err != nil {
						t.Fatal(err)
					}
					if r.Allowed {
						// Our clock and the server's run at the same rate;
						// allow 5ms for the round trips.
						if waited := time.Since(deniedAt); waited < denied.RetryAfter-5*time.Millisecond {
							t.Fatalf("allowed after %v, before RetryAfter %v", waited, denied.RetryAfter)
						}
						return
					}
					if time.Now().After(deadline) {
						t.Fatal("never allowed again")
					}
					time.Sleep(10 * time.Millisecond) // polling interval
				}
			})
		}
	})
}

func TestKeysHaveTTLAndEscapedSubject(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		for _, l := range limiters(t, b, 5, time.Minute) {
			if _, err := l.Allow(ctx, "a}:{b"); err != nil {
				t.Fatal(err)
			}
		}
		keys, err := b.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{
			b.Namespace + ":sw:{a%7D%3A%7Bb}:sw":         true,
			b.Namespace + ":gcra:{a%7D%3A%7Bb}:gcra":     true,
			b.Namespace + ":gcra:{a%7D%3A%7Bb}:gcra:req": true, // GCRA's recent request IDs
		}
		if len(keys) != len(want) {
			t.Fatalf("keys %q", keys)
		}
		for _, k := range keys {
			if !want[k] {
				t.Fatalf("unexpected key %q", k)
			}
			if ttl := b.Client.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Minute {
				t.Fatalf("PTTL %s = %v", k, ttl)
			}
		}
	})
}

func TestPeekDoesNotConsume(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		for name, l := range limiters(t, b, 3, time.Minute) {
			for range 5 {
				r, err := l.Peek(ctx, "s")
				if err != nil || !r.Allowed || r.Remaining != 3 || r.Limit != 3 {
					t.Fatalf("%s: Peek = %+v, %v", name, r, err)
				}
			}
			if r, _ := l.Allow(ctx, "s"); !r.Allowed || r.Remaining != 2 {
				t.Fatalf("%s: Allow after Peeks = %+v", name, r)
			}
		}
	})
}

func TestInvalidConfig(t *testing.T) {
	b := redistest.Standalone(t)
	for name, err := range map[string]error{
		"limit 0":       second(ratelimit.NewSlidingWindow(b.Client, 0, time.Second)),
		"window 0":      second(ratelimit.NewSlidingWindow(b.Client, 1, 0)),
		"gcra rate 0":   second(ratelimit.NewGCRA(b.Client, 0, time.Second, 1)),
		"gcra burst 0":  second(ratelimit.NewGCRA(b.Client, 1, time.Second, 0)),
		"gcra too fast": second(ratelimit.NewGCRA(b.Client, 2_000_000, time.Second, 1)),
	} {
		if !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("%s: %v, want ErrInvalidLimit", name, err)
		}
	}
	if _, err := ratelimit.NewSlidingWindow(nil, 1, time.Second); err == nil {
		t.Error("nil client: no error")
	}
	if _, err := ratelimit.NewSlidingWindow(b.Client, 1, time.Second, ratelimit.WithPrefix("")); err == nil {
		t.Error("empty prefix: no error")
	}
	l, _ := ratelimit.NewSlidingWindow(b.Client, 1, time.Second, ratelimit.WithPrefix(b.Namespace))
	if _, err := l.Allow(context.Background(), ""); !errors.Is(err, ratelimit.ErrInvalidSubject) {
		t.Errorf("empty subject: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestMiddlewareHeaders(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		l, err := ratelimit.NewSlidingWindow(b.Client, 2, time.Minute, ratelimit.WithPrefix(b.Namespace))
		if err != nil {
			t.Fatal(err)
		}
		var seen []ratelimit.Outcome
		var mu sync.Mutex
		mw, err := ratelimit.NewMiddleware(l, ratelimit.WithLogger(discard),
			ratelimit.WithObserver(func(d ratelimit.Decision) { mu.Lock(); seen = append(seen, d.Outcome); mu.Unlock() }))
		if err != nil {
			t.Fatal(err)
		}
		var calls int
		h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++; _, _ = io.WriteString(w, "ok") }))
		start := time.Now()
		for i, want := range []struct {
			code      int
			remaining string
		}{{200, "1"}, {200, "0"}, {429, "0"}} {
			req := httptest.NewRequest("GET", "/api/things", nil)
			req.RemoteAddr = "203.0.113.9:5555"
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			hd := rec.Result().Header
			if rec.Code != want.code || hd.Get("X-RateLimit-Limit") != "2" || hd.Get("X-RateLimit-Remaining") != want.remaining {
				t.Fatalf("request %d: %d, headers %v", i, rec.Code, hd)
			}
			reset, err := strconv.ParseInt(hd.Get("X-RateLimit-Reset"), 10, 64)
			if err != nil || reset < start.Unix()+59 || reset > time.Now().Unix()+61 {
				t.Fatalf("request %d: X-RateLimit-Reset %q, want about a minute from now", i, hd.Get("X-RateLimit-Reset"))
			}
			if want.code == 429 {
				ra, err := strconv.Atoi(hd.Get("Retry-After"))
				if err != nil || ra < 59 || ra > 60 {
					t.Fatalf("Retry-After %q, want 59 or 60", hd.Get("Retry-After"))
				}
				if body := rec.Body.String(); body != "rate limit exceeded\n" {
					t.Fatalf("429 body %q", body)
				}
			} else if hd.Get("Retry-After") != "" {
				t.Fatalf("request %d: Retry-After on an allowed request", i)
			}
		}
		if calls != 2 {
			t.Fatalf("handler called %d times, want 2", calls)
		}
		if s := mw.Stats(); s != (ratelimit.Stats{Allowed: 2, Denied: 1}) {
			t.Fatalf("stats %+v", s)
		}
		if fmt.Sprint(seen) != "[allowed allowed denied]" {
			t.Fatalf("observed %v", seen)
		}
	})
}

func TestMiddlewareRedisDown(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rc.Close()
	l, err := ratelimit.NewGCRA(rc, 10, time.Second, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Allow(context.Background(), "s"); err == nil {
		t.Fatal("Allow with Redis down: no error")
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, tc := range []struct {
		name  string
		opts  []ratelimit.MiddlewareOption
		code  int
		stats ratelimit.Stats
	}{
		{"closed by default", nil, http.StatusServiceUnavailable, ratelimit.Stats{Failed: 1}},
		{"open on request", []ratelimit.MiddlewareOption{ratelimit.WithFailOpen()}, http.StatusNoContent, ratelimit.Stats{FailedOpen: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			mw, err := ratelimit.NewMiddleware(l, append(tc.opts, ratelimit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))...)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			mw.Wrap(next).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d", rec.Code, tc.code)
			}
			if tc.code == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") != "1" {
				t.Fatalf("503 without Retry-After: %v", rec.Header())
			}
			if s := mw.Stats(); s != tc.stats {
				t.Fatalf("stats %+v, want %+v", s, tc.stats)
			}
			if !bytes.Contains(logs.Bytes(), []byte("ratelimit: no decision")) {
				t.Fatalf("failure not logged: %q", logs.String())
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := ratelimit.TrustedProxies("10.0.0.0/8", "192.0.2.7", "2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote, xff string
		trusted           bool
		want              string
	}{
		{"no proxy", "203.0.113.9:1234", "", true, "ip:203.0.113.9"},
		{"header ignored without trusted proxies", "10.0.0.1:1", "1.2.3.4", false, "ip:10.0.0.1"},
		{"spoofed header from an untrusted peer", "203.0.113.9:1", "1.2.3.4", true, "ip:203.0.113.9"},
		{"one trusted proxy", "10.0.0.1:1", "1.2.3.4", true, "ip:1.2.3.4"},
		{"client-written entries are skipped", "10.0.0.1:1", "6.6.6.6, 1.2.3.4, 10.9.9.9, 192.0.2.7", true, "ip:1.2.3.4"},
		{"all trusted: the leftmost", "10.0.0.1:1", "10.1.1.1, 10.2.2.2", true, "ip:10.1.1.1"},
		{"garbage from a trusted proxy: the proxy", "10.0.0.1:1", "not-an-ip", true, "ip:10.0.0.1"},
		{"IPv6 peer", "[2001:db8::1]:443", "2a00::5", true, "ip:2a00::5"},
		{"IPv4-mapped", "[::ffff:203.0.113.9]:1", "", true, "ip:203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			f := ratelimit.ClientIP()
			if tc.trusted {
				f = ratelimit.ClientIP(trusted...)
			}
			got, err := f(r)
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := ratelimit.TrustedProxies("nonsense"); err == nil {
		t.Fatal("TrustedProxies accepted nonsense")
	}
}

func TestKeyFuncs(t *testing.T) {
	user := ratelimit.User(func(r *http.Request) string { return r.Header.Get("X-User") })
	key := ratelimit.Route(ratelimit.FirstOf(user, ratelimit.ClientIP()))
	r := httptest.NewRequest("POST", "/login", nil)
	r.RemoteAddr = "203.0.113.9:1"
	if got, err := key(r); err != nil || got != "route:POST /login|ip:203.0.113.9" {
		t.Fatalf("anonymous: %q, %v", got, err)
	}
	r.Header.Set("X-User", "u1")
	r.Pattern = "POST /login"
	if got, err := key(r); err != nil || got != "route:POST /login|user:u1" {
		t.Fatalf("user: %q, %v", got, err)
	}
	r.Header.Del("X-User")
	if _, err := user(r); !errors.Is(err, ratelimit.ErrNoKey) {
		t.Fatalf("User without a user: %v", err)
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

	limiter, err := ratelimit.NewSlidingWindow(client, 2, time.Minute, ratelimit.WithPrefix("app:rl:login"))
	if err != nil {
		panic(err)
	}
	for range 3 {
		res, err := limiter.Allow(context.Background(), "alice")
		if err != nil {
			panic(err) // fail closed
		}
		fmt.Println(res.Allowed, res.Remaining, res.RetryAfter > 0)
	}
	// Output:
	// true 1 false
	// true 0 false
	// false 0 true
}

func ExampleMiddleware() {
	srv, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()

	limiter, err := ratelimit.NewGCRA(client, 100, time.Minute, 1, ratelimit.WithPrefix("app:rl:api"))
	if err != nil {
		panic(err)
	}
	proxies, err := ratelimit.TrustedProxies("10.0.0.0/8")
	if err != nil {
		panic(err)
	}
	mw, err := ratelimit.NewMiddleware(limiter, ratelimit.WithKeyFunc(ratelimit.ClientIP(proxies...)))
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/", mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello\n")
	})))

	for range 2 {
		req := httptest.NewRequest("GET", "/api/x", nil)
		req.RemoteAddr = "10.0.0.2:40000" // the load balancer
		req.Header.Set("X-Forwarded-For", "198.51.100.4")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Printf("%d remaining=%s retry-after=%q\n", rec.Code, rec.Header().Get("X-RateLimit-Remaining"), rec.Header().Get("Retry-After"))
	}
	// Output:
	// 200 remaining=0 retry-after=""
	// 429 remaining=0 retry-after="1"
}
