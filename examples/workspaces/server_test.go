package workspaces

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/extra/cacheprometheus"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
	"github.com/repocache/repocache/runtime/debughandler"
	"github.com/repocache/repocache/runtime/orm"
	"github.com/repocache/repocache/runtime/ratelimit"
)

// newTestServer serves the API over the decorator, an in-memory SQLite
// database and the test kit's Redis.
func newTestServer(t *testing.T) (*httptest.Server, *Store, *cachetest.Cache) {
	t.Helper()
	db, _, err := orm.Open("")
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	c := cachetest.New(t)
	logger := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(NewServer(NewRepositoryCache(store, c.Cache), c.Cache, logger).Handler())
	t.Cleanup(srv.Close)
	return srv, store, c
}

// TestStatsUnits: /stats names its units and never shows -1 for an
// unknown reconnect count.
func TestStatsUnits(t *testing.T) {
	srv, _, _ := newTestServer(t)
	resp, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if v, ok := got["reconnects"]; ok && v.(float64) < 0 {
		t.Errorf("reconnects = %v: an unknown count must be absent", v)
	}
	if _, ok := got["Reconnects"]; ok {
		t.Errorf("stats has the raw Reconnects field: %v", got)
	}
	for _, k := range []string{"mean_hit_latency_us", "mean_hit_latency", "hits", "hit_ratio"} {
		if _, ok := got[k]; !ok {
			t.Errorf("stats lacks %q: %v", k, got)
		}
	}
}

// send sends a request and returns its status, X-Cache header and body.
func send(t *testing.T, method, url, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("X-Cache"), string(out)
}

// TestXCache: hit when the cache answered, miss when the database was
// queried, bypass when the response did not come from a cached read.
func TestXCache(t *testing.T) {
	srv, store, c := newTestServer(t)
	ctx := context.Background()
	ws, err := store.CreateWorkspace(ctx, "acme-xcache", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	p1, err := store.CreateProject(ctx, NewProject{WorkspaceID: ws.ID, Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := store.CreateProject(ctx, NewProject{WorkspaceID: ws.ID, Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	batch := fmt.Sprintf("/projects?ids=%d,%d", p1.ID, p2.ID)
	for _, st := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", fmt.Sprintf("/workspaces/%d", ws.ID), "", 200, "miss"},
		{"GET", fmt.Sprintf("/workspaces/%d", ws.ID), "", 200, "hit"},
		{"GET", "/projects/999999", "", 404, "miss"},
		{"GET", "/projects/999999", "", 404, "hit"}, // the cached not-found
		{"GET", fmt.Sprintf("/projects/%d", p1.ID), "", 200, "miss"},
		{"GET", batch, "", 200, "miss"}, // p2 loads
		{"GET", batch, "", 200, "hit"},
		{"PATCH", fmt.Sprintf("/projects/%d", p1.ID), `{"name":"renamed"}`, 200, "bypass"},
		{"GET", fmt.Sprintf("/projects/%d", p1.ID), "", 200, "hit"}, // written through
		{"GET", "/projects/abc", "", 400, "bypass"},
		{"GET", "/stats", "", 200, "bypass"},
		{"GET", "/healthz", "", 200, "bypass"},
	} {
		status, xc, body := send(t, st.method, srv.URL+st.path, st.body)
		if status != st.status || xc != st.want {
			t.Errorf("%s %s = %d, X-Cache %q (%s); want %d, %q", st.method, st.path, status, xc, strings.TrimSpace(body), st.status, st.want)
		}
		c.Wait() // the store after a load, before the next read
	}

	// Over the store itself, nothing goes through the cache.
	plain := httptest.NewServer(NewServer(store, c.Cache, slog.New(slog.DiscardHandler)).Handler())
	defer plain.Close()
	if _, xc, _ := send(t, "GET", fmt.Sprintf("%s/workspaces/%d", plain.URL, ws.ID), ""); xc != "bypass" {
		t.Errorf("uncached repository: X-Cache %q, want bypass", xc)
	}
}

// TestHealthz: 200 when Redis and the database answer, 503 naming the one
// that does not.
func TestHealthz(t *testing.T) {
	srv, store, _ := newTestServer(t)
	var h health
	status, _, body := send(t, "GET", srv.URL+"/healthz", "")
	if err := json.Unmarshal([]byte(body), &h); err != nil || status != 200 || h != (health{"ok", "ok", "ok"}) {
		t.Fatalf("healthy: %d %s (%v)", status, body, err)
	}

	// Redis unreachable: a port nothing listens on.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer down.Close()
	cache := runtime.New(down, runtime.WithLogger(slog.New(slog.DiscardHandler)))
	noRedis := httptest.NewServer(NewServer(NewRepositoryCache(store, cache), cache, slog.New(slog.DiscardHandler)).Handler())
	defer noRedis.Close()
	status, _, body = send(t, "GET", noRedis.URL+"/healthz", "")
	if err := json.Unmarshal([]byte(body), &h); err != nil || status != 503 || h != (health{"unavailable", "down", "ok"}) {
		t.Fatalf("redis down: %d %s (%v)", status, body, err)
	}

	// The database closed.
	sqlDB, err := store.DB().DB()
	if err != nil {
		t.Fatal(err)
	}
	_ = sqlDB.Close()
	status, _, body = send(t, "GET", srv.URL+"/healthz", "")
	if err := json.Unmarshal([]byte(body), &h); err != nil || status != 503 || h != (health{"unavailable", "ok", "down"}) {
		t.Fatalf("database down: %d %s (%v)", status, body, err)
	}
}

// TestDebugPage: WithDebugPage serves the live page at /debug/cache (and
// its JSON form), outside the rate limits, with the reads of the API on it.
func TestDebugPage(t *testing.T) {
	db, _, err := orm.Open("")
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	page := debughandler.New()
	rec := page.Metrics()
	c := cachetest.New(t, runtime.WithMetrics(rec))
	rec.Watch(c.Cache)
	ws, err := store.CreateWorkspace(context.Background(), "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	api := NewServer(NewRepositoryCache(store, c.Cache), c.Cache, slog.New(slog.DiscardHandler), WithDebugPage(page))
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	for range 3 {
		resp, err := http.Get(fmt.Sprintf("%s/workspaces/%d", srv.URL, ws.ID))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if err := c.Cache.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(srv.URL + "/debug/cache/json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap debughandler.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "" || len(snap.Caches) != 1 {
		t.Fatalf("GET /debug/cache/json: %d, X-Cache %q, %+v", resp.StatusCode, resp.Header.Get("X-Cache"), snap)
	}
	if cv := snap.Caches[0]; cv.Namespace != c.Namespace() || cv.Total.Hits != 2 || cv.Total.Misses != 1 {
		t.Errorf("namespace %q, total %+v: want %q, 2 hits, 1 miss", cv.Namespace, cv.Total, c.Namespace())
	}
	resp, err = http.Get(srv.URL + "/debug/cache")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), c.Namespace()) {
		t.Errorf("GET /debug/cache: %d\n%s", resp.StatusCode, body)
	}
	// Without the option, there is no such route.
	plain := httptest.NewServer(NewServer(NewRepositoryCache(store, c.Cache), c.Cache, slog.New(slog.DiscardHandler)).Handler())
	defer plain.Close()
	resp, err = http.Get(plain.URL + "/debug/cache")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without WithDebugPage: %d, want 404", resp.StatusCode)
	}
}

// TestMetricsRoute: WithMetricsHandler serves a Prometheus registry at
// /metrics, outside the rate limits and without X-Cache, with the reads of
// the API counted per method.
func TestMetricsRoute(t *testing.T) {
	db, _, err := orm.Open("")
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	col := cacheprometheus.New()
	// The namespace the Cache ends up with: cachetest's own.
	hook := &lateMetrics{}
	c := cachetest.New(t, runtime.WithMetrics(hook))
	hook.m = col.Metrics(c.Namespace())
	if err := col.Watch(c.Cache); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	ws, err := store.CreateWorkspace(context.Background(), "acme", "Acme")
	if err != nil {
		t.Fatal(err)
	}
	// One request a minute: the API's second request is refused, /metrics
	// is not limited.
	window, err := ratelimit.NewSlidingWindow(c.Cache.Client(), 1, time.Minute, ratelimit.WithPrefix(c.Namespace()+":rl"))
	if err != nil {
		t.Fatal(err)
	}
	limit, err := ratelimit.NewMiddleware(window)
	if err != nil {
		t.Fatal(err)
	}
	api := NewServer(NewRepositoryCache(store, c.Cache), c.Cache, slog.New(slog.DiscardHandler),
		WithRateLimits(limit, nil), WithMetricsHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	for i, want := range []int{200, 429} {
		resp, err := http.Get(fmt.Sprintf("%s/workspaces/%d", srv.URL, ws.ID))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	if err := c.Cache.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "" || resp.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("GET /metrics: %d, X-Cache %q, X-RateLimit-Limit %q\n%s", resp.StatusCode,
				resp.Header.Get("X-Cache"), resp.Header.Get("X-RateLimit-Limit"), body)
		}
		for _, want := range []string{
			fmt.Sprintf(`repocache_misses_total{method="Repository.FindWorkspace",namespace=%q} 1`, c.Namespace()),
			fmt.Sprintf(`repocache_loads_total{method="Repository.FindWorkspace",namespace=%q} 1`, c.Namespace()),
			fmt.Sprintf(`repocache_hits_total{method="Repository.FindWorkspace",namespace=%q} 0`, c.Namespace()),
			fmt.Sprintf(`repocache_stats_ok{namespace=%q} 1`, c.Namespace()),
		} {
			if !strings.Contains(string(body), want+"\n") {
				t.Errorf("/metrics lacks %s:\n%s", want, body)
			}
		}
	}
	// Without the option, there is no such route.
	plain := httptest.NewServer(NewServer(NewRepositoryCache(store, c.Cache), c.Cache, slog.New(slog.DiscardHandler)).Handler())
	defer plain.Close()
	resp, err := http.Get(plain.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without WithMetricsHandler: %d, want 404", resp.StatusCode)
	}
}

// lateMetrics passes events to m, set once the Cache (and so its
// namespace) exists and before it serves anything.
type lateMetrics struct{ m runtime.Metrics }

func (l *lateMetrics) Observe(e runtime.Event) { l.m.Observe(e) }
