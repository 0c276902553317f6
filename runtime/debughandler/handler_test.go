package debughandler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// newCache returns a Cache on a fresh miniredis, recorded by a Recorder of
// h and watched by it.
func newCache(t *testing.T, h *Handler, ns string) (*runtime.Cache, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = client.Close() })
	rec := h.Metrics()
	c := runtime.New(client, runtime.WithNamespace(ns), runtime.WithMetrics(rec))
	rec.Watch(c)
	return c, mr
}

// get serves one request from a loopback client and returns the response.
func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = "127.0.0.1:50000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// snapshotJSON fetches and decodes the JSON form.
func snapshotJSON(t *testing.T, h http.Handler, target string) Snapshot {
	t.Helper()
	w := get(t, h, target)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: %d %s\n%s", target, w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
	var s Snapshot
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatalf("GET %s: %v\n%s", target, err, w.Body.String())
	}
	return s
}

func rowNamed(t *testing.T, cv CacheView, name string) Row {
	t.Helper()
	for _, r := range cv.Rows {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no row %q in %+v", name, cv.Rows)
	return Row{}
}

// TestScriptedWorkload runs known calls through a Cache and checks that the
// JSON form and the page show exactly their counts, per method.
func TestScriptedWorkload(t *testing.T) {
	h := New()
	c, _ := newCache(t, h, "shop")
	ctx := context.Background()
	find := runtime.Method("Repository.FindProject")
	load := func(ctx context.Context) (string, error) { return "v", nil }
	for _, id := range []string{"1", "2", "3"} {
		for range 4 { // a miss and a load, then 3 hits
			if _, err := runtime.GetCached(ctx, c, "project:"+id, load, runtime.TTL(time.Minute), runtime.Tags("workspace:9"), find); err != nil {
				t.Fatal(err)
			}
			if err := c.Wait(ctx); err != nil { // the store after the load
				t.Fatal(err)
			}
		}
	}
	boom := errors.New("database down")
	for range 2 {
		_, err := runtime.GetCached(ctx, c, "broken:1", func(context.Context) (string, error) { return "", boom },
			runtime.TTL(time.Minute), runtime.Method("Repository.FindBroken"))
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	}
	// A not-found answer, cached: an answer, not a load error.
	for range 2 {
		_, err := runtime.GetCached(ctx, c, "missing:1", func(context.Context) (string, error) { return "", runtime.ErrNotFound },
			runtime.TTL(time.Minute), runtime.Negative(time.Minute), runtime.Method("Repository.FindMissing"))
		if !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A hand-written call that names no method: its row is its key shape.
	for range 2 {
		if _, err := runtime.GetCached(ctx, c, "user:42:profile", load, runtime.TTL(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.InvalidateTags(runtime.WithMethod(ctx, "Repository.DeleteWorkspace"), "workspace:9"); err != nil {
		t.Fatal(err)
	}

	s := snapshotJSON(t, h, "/debug/cache?format=json")
	if len(s.Caches) != 1 || s.Caches[0].Namespace != "shop" || !s.Caches[0].Watched {
		t.Fatalf("caches = %+v", s.Caches)
	}
	cv := s.Caches[0]
	fp := rowNamed(t, cv, "Repository.FindProject")
	if fp.Hits != 9 || fp.Misses != 3 || fp.Loads != 3 || fp.Sets != 3 || fp.Requests != 12 || fp.LoadErrors != 0 {
		t.Errorf("FindProject = %+v", fp)
	}
	if fp.HitRatio == nil || *fp.HitRatio != 0.75 {
		t.Errorf("FindProject hit ratio = %v, want 0.75", fp.HitRatio)
	}
	if fp.HitLatency.Count != 9 || fp.HitLatency.P50 <= 0 || fp.HitLatency.P50 > fp.HitLatency.P99 || fp.LoadLatency.Count != 3 {
		t.Errorf("FindProject latencies = %+v, %+v", fp.HitLatency, fp.LoadLatency)
	}
	if fp.RequestsPerSecond <= 0 {
		t.Errorf("FindProject rate = %v", fp.RequestsPerSecond)
	}
	fb := rowNamed(t, cv, "Repository.FindBroken")
	if fb.Misses != 2 || fb.Loads != 2 || fb.LoadErrors != 2 || fb.Hits != 0 || fb.Sets != 0 {
		t.Errorf("FindBroken = %+v", fb)
	}
	fm := rowNamed(t, cv, "Repository.FindMissing")
	if fm.Misses != 1 || fm.Hits != 1 || fm.Loads != 1 || fm.NotFound != 1 || fm.LoadErrors != 0 {
		t.Errorf("FindMissing = %+v", fm)
	}
	u := rowNamed(t, cv, "user:{}:profile")
	if u.Method != "" || u.Hits != 1 || u.Misses != 1 {
		t.Errorf("key shape row = %+v", u)
	}
	dw := rowNamed(t, cv, "Repository.DeleteWorkspace")
	if dw.Invalidations != 1 || dw.TagInvalidations != 1 || dw.InvalidatedKeys != 3 {
		t.Errorf("DeleteWorkspace = %+v", dw)
	}
	if cv.Total.Hits != 11 || cv.Total.Misses != 7 || cv.Total.Loads != 7 || cv.Total.NotFound != 1 || cv.Total.LoadErrors != 2 ||
		cv.Total.InvalidatedKeys != 3 || cv.Total.HitLatency.Count != 11 {
		t.Errorf("total = %+v", cv.Total)
	}
	if cv.Server == nil || cv.Server.Error != "" || cv.Server.Breaker != "closed" || cv.Server.Masters != 1 {
		t.Errorf("server = %+v", cv.Server)
	}
	if cv.Rows[0].Name != "Repository.FindProject" {
		t.Errorf("the busiest row is not first: %q", cv.Rows[0].Name)
	}

	// The same figures on the page.
	w := get(t, h, "/debug/cache")
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	for _, want := range []string{
		"<code>shop</code>", "breaker closed", "Repository.FindProject", "75.0%", "Repository.FindBroken",
		"user:{}:profile", "Repository.DeleteWorkspace", `<meta http-equiv="refresh" content="2">`, "used memory",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("page has a script or a link to another origin")
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	// /json serves the same as ?format=json.
	if s := snapshotJSON(t, h, "/debug/cache/json"); len(s.Caches) != 1 {
		t.Errorf("/json: %+v", s)
	}
	if w := get(t, h, "/debug/cache?refresh=0"); strings.Contains(w.Body.String(), `http-equiv="refresh"`) {
		t.Error("?refresh=0 still reloads")
	}
}

// TestLoopbackOnly: a client that is not on loopback gets 403 unless
// WithAllowRemote.
func TestLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		remote string
		opts   []Option
		want   int
	}{
		{"127.0.0.1:1", nil, 200},
		{"127.8.9.10:1", nil, 200},
		{"[::1]:1", nil, 200},
		{"[::ffff:127.0.0.1]:1", nil, 200},
		{"192.0.2.1:1234", nil, 403},
		{"10.1.2.3:1234", nil, 403},
		{"[2001:db8::1]:1", nil, 403},
		{"not an address", nil, 403},
		{"", nil, 403},
		{"192.0.2.1:1234", []Option{WithAllowRemote()}, 200},
	} {
		h := New(tc.opts...)
		for _, target := range []string{"/", "/?format=json"} {
			req := httptest.NewRequest(http.MethodGet, target, nil)
			req.RemoteAddr = tc.remote
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Errorf("%q %s (allow remote %v): %d, want %d", tc.remote, target, len(tc.opts) > 0, w.Code, tc.want)
			}
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	w := httptest.NewRecorder()
	New().ServeHTTP(w, req)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

// TestLoopbackOverHTTP: through a real listener on loopback, the page
// answers (RemoteAddr is what the server saw).
func TestLoopbackOverHTTP(t *testing.T) {
	srv := httptest.NewServer(New())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestBrokenRedis: a Redis that refuses connections, or one that never
// answers, is shown as failing, with a 200 page and the counters kept.
func TestBrokenRedis(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	// A listener that accepts and never answers.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	var conns sync.WaitGroup
	accepted := make(chan net.Conn, 16)
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		hung.Close()
		conns.Wait()
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	}()

	for name, addr := range map[string]string{"refused": closed, "hung": hung.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			h := New(WithStatsTimeout(200*time.Millisecond), WithTagScan(100, 200*time.Millisecond))
			client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond,
				ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
			defer client.Close()
			rec := h.Metrics()
			c := runtime.New(client, runtime.WithNamespace("down"), runtime.WithMetrics(rec),
				runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
			rec.Watch(c)
			v, err := runtime.GetCached(context.Background(), c, "k:1", func(context.Context) (int, error) { return 7, nil },
				runtime.TTL(time.Minute), runtime.Method("Repository.Find"))
			if err != nil || v != 7 { // fails open: served from the source
				t.Fatalf("GetCached = %v, %v", v, err)
			}
			start := time.Now()
			w := get(t, h, "/")
			if w.Code != http.StatusOK {
				t.Fatalf("page: %d\n%s", w.Code, w.Body.String())
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the page took %s", d)
			}
			for _, want := range []string{"Redis unreachable", "Redis could not be read", "Repository.Find"} {
				if !strings.Contains(w.Body.String(), want) {
					t.Errorf("page lacks %q", want)
				}
			}
			s := snapshotJSON(t, h, "/?format=json")
			cv := s.Caches[0]
			if cv.Server == nil || cv.Server.Error == "" {
				t.Errorf("server = %+v, want an error", cv.Server)
			}
			if cv.Tags == nil || cv.Tags.Error == "" {
				t.Errorf("tags = %+v, want an error", cv.Tags)
			}
			if r := rowNamed(t, cv, "Repository.Find"); r.Misses != 1 || r.Loads != 1 {
				t.Errorf("row = %+v", r)
			}
			// The runtime reports a Redis error without the method: it is
			// in the key's row, and in the total.
			if cv.Total.Errors == 0 {
				t.Errorf("total = %+v, want errors", cv.Total)
			}
		})
	}
}

// TestTopTags: the largest tag sets of the namespace, not of another one
// on the same server, without the "#v" member, scanned at most once per
// interval.
func TestTopTags(t *testing.T) {
	h := New(WithTopTags(2))
	c, mr := newCache(t, h, "app:*ns") // glob characters in the namespace
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer client.Close()
	other := runtime.New(client, runtime.WithNamespace("app"))
	ctx := context.Background()
	put := func(c *runtime.Cache, key string, tags ...string) {
		t.Helper()
		if err := runtime.Set(ctx, c, key, 1, runtime.TTL(time.Minute), runtime.Tags(tags...)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		put(c, fmt.Sprintf("p:%d", i), "big", "a{b}%")
	}
	put(c, "p:9", "small")
	for i := range 9 {
		put(other, fmt.Sprintf("q:%d", i), "elsewhere")
	}
	// An invalidated tag keeps only its "#v" member: no keys.
	put(c, "gone:1", "dropped")
	if err := c.InvalidateTags(ctx, "dropped"); err != nil {
		t.Fatal(err)
	}

	s := snapshotJSON(t, h, "/?format=json")
	tags := s.Caches[0].Tags
	if tags == nil || tags.Error != "" || tags.Partial {
		t.Fatalf("tags = %+v", tags)
	}
	want := []Tag{{"a{b}%", 5}, {"big", 5}}
	if fmt.Sprint(tags.Top) != fmt.Sprint(want) || tags.Scanned != 3 {
		t.Errorf("top = %v (%d scanned), want %v (3 scanned)", tags.Top, tags.Scanned, want)
	}
	put(c, "p:10", "small")
	if again := snapshotJSON(t, h, "/?format=json").Caches[0].Tags; !again.At.Equal(tags.At) {
		t.Errorf("scanned again within the interval: %v then %v", tags.At, again.At)
	}
	w := get(t, h, "/")
	if !strings.Contains(w.Body.String(), "a{b}%") || !strings.Contains(w.Body.String(), "largest tags") {
		t.Errorf("page lacks the tags:\n%s", w.Body.String())
	}
}

// TestEscaping: names from events are escaped on the page.
func TestEscaping(t *testing.T) {
	h := New()
	rec := h.Metrics()
	rec.Observe(runtime.Event{Op: runtime.OpHit, Method: `<script>alert("x")</script>`})
	rec.Observe(runtime.Event{Op: runtime.OpMiss, Key: `a:<img src=x>:b`})
	body := get(t, h, "/").Body.String()
	if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
		t.Errorf("unescaped name on the page:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;") {
		t.Error("the method is missing")
	}
	if !strings.Contains(body, "cache 1") || !strings.Contains(body, "no Cache given to Watch") {
		t.Error("an unwatched Recorder is not labelled")
	}
}

// TestNoCache: a handler with no recorder says what to do.
func TestNoCache(t *testing.T) {
	w := get(t, New(), "/")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "No cache is recorded") {
		t.Errorf("%d\n%s", w.Code, w.Body.String())
	}
}
