// Package debughandler serves a live page about repocache Caches, to mount
// next to net/http/pprof: per namespace and per repository method the hit
// ratio, the request rate, latency percentiles of hits and loads, load
// errors, invalidations, stale serves and errors; the largest tags; and
// the Redis server's memory, evictions and the cache's circuit breaker. The
// page refreshes itself every few seconds (a meta refresh: no script, and
// nothing fetched from anywhere); the same figures are served as JSON for
// scripts at ?format=json (or at a path ending in /json).
//
// Nothing mounts it by default. Mount it yourself, on an internal port or
// next to pprof:
//
//	h := debughandler.New()
//	rec := h.Metrics()
//	cache := runtime.New(client, runtime.WithNamespace("app"), runtime.WithMetrics(rec))
//	rec.Watch(cache)
//	mux.Handle("/debug/cache", h)
//	mux.Handle("/debug/cache/", h) // /debug/cache/json
//
// Access: the handler answers only clients that connect from a loopback
// address (127.0.0.0/8, ::1) and refuses every other with 403 Forbidden,
// unless WithAllowRemote is given. Behind a reverse proxy on the same
// machine every request comes from loopback: there, restrict the route in
// the proxy, or do not route it at all. The page shows key and tag shapes,
// method names and server figures, never a cached value.
//
// Recording costs each cache event a few atomic adds and no allocation
// (Recorder.Observe); reading Stats and scanning for tags happens only
// while someone looks at the page, bounded in time (WithStatsTimeout,
// WithTagScan), and the tag scan is done at most once per interval
// (WithTagScanInterval) whoever asks.
package debughandler

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Handler serves the live page and its JSON form; see the package doc.
// Its methods are safe for concurrent use.
type Handler struct {
	allowRemote  bool
	refresh      time.Duration
	maxRows      int
	topTags      int
	statsTimeout time.Duration
	scanKeys     int
	scanTimeout  time.Duration
	scanEvery    time.Duration
	now          func() time.Time // time.Now; tests set it

	start time.Time

	mu        sync.Mutex
	recorders []*Recorder
}

// Option configures a Handler.
type Option func(*Handler)

// WithAllowRemote lets clients from any address see the page. Without it,
// a client whose address is not loopback gets 403 Forbidden. Give it only
// when the handler is mounted where an outsider cannot reach it (an
// internal port, behind authentication).
func WithAllowRemote() Option { return func(h *Handler) { h.allowRemote = true } }

// WithRefresh sets how often the page reloads itself (default 2s); 0 or
// less turns it off. A visitor can override it with ?refresh=N seconds
// (0: stop).
func WithRefresh(d time.Duration) Option { return func(h *Handler) { h.refresh = d } }

// WithMaxRows caps the rows (methods, or key shapes of calls that named
// no method) kept per Cache (default 100); events past the cap are counted
// in a row named "(other)".
func WithMaxRows(n int) Option {
	return func(h *Handler) {
		if n > 0 {
			h.maxRows = n
		}
	}
}

// WithTopTags sets how many of the largest tags are shown per Cache
// (default 10); 0 or less turns the tag scan off.
func WithTopTags(n int) Option { return func(h *Handler) { h.topTags = n } }

// WithStatsTimeout bounds the time a page waits for a Cache's Stats (the
// server's INFO; default 1s). A Redis that does not answer in time is
// shown as failing, with the counters the Cache keeps itself.
func WithStatsTimeout(d time.Duration) Option {
	return func(h *Handler) {
		if d > 0 {
			h.statsTimeout = d
		}
	}
}

// WithTagScan bounds one scan for tag sets: at most keys tag sets read
// (default 10,000) and at most timeout spent (default 250ms) per Cache.
// The scan uses SCAN with MATCH on the namespace's tag sets, never KEYS; a
// scan cut short says so on the page ("partial").
func WithTagScan(keys int, timeout time.Duration) Option {
	return func(h *Handler) {
		if keys > 0 {
			h.scanKeys = keys
		}
		if timeout > 0 {
			h.scanTimeout = timeout
		}
	}
}

// WithTagScanInterval sets how old the largest tags may be before a page
// view scans again (default 5s); in between every view shows the last
// scan's result.
func WithTagScanInterval(d time.Duration) Option {
	return func(h *Handler) {
		if d > 0 {
			h.scanEvery = d
		}
	}
}

// New returns a Handler that shows nothing until Metrics recorders are
// given to Caches.
func New(opts ...Option) *Handler {
	h := &Handler{
		refresh:      2 * time.Second,
		maxRows:      100,
		topTags:      10,
		statsTimeout: time.Second,
		scanKeys:     10000,
		scanTimeout:  250 * time.Millisecond,
		scanEvery:    5 * time.Second,
		now:          time.Now,
	}
	for _, o := range opts {
		o(h)
	}
	h.start = h.now()
	return h
}

// Metrics returns a new Recorder, a section of the page: give it to one
// Cache with runtime.WithMetrics (next to any other Metrics: the option
// may be given several times), then call its Watch with that Cache.
func (h *Handler) Metrics() *Recorder {
	r := &Recorder{h: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recorders = append(h.recorders, r)
	r.label = "cache " + strconv.Itoa(len(h.recorders))
	return r
}

func (h *Handler) allRecorders() []*Recorder {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Recorder(nil), h.recorders...)
}

// ServeHTTP serves the page (GET or HEAD), or its JSON form when the
// query has format=json or the path ends in /json. A client that is not on
// loopback gets 403 unless WithAllowRemote was given.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.allowRemote && !loopback(r.RemoteAddr) {
		http.Error(w, "forbidden: the cache debug page answers loopback clients only (debughandler.WithAllowRemote lets others in)", http.StatusForbidden)
		return
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	snap := h.Snapshot(r.Context())
	if r.URL.Query().Get("format") == "json" || strings.HasSuffix(r.URL.Path, "/json") {
		hdr.Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(snap)
		return
	}
	refresh := h.refresh
	if v := r.URL.Query().Get("refresh"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 3600 {
			refresh = time.Duration(n) * time.Second
		}
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, pageData{Snapshot: snap, Refresh: int(refresh / time.Second)}); err != nil {
		http.Error(w, "debughandler: "+err.Error(), http.StatusInternalServerError)
		return
	}
	// No script, no request to any other origin: the page is its own.
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// loopback reports whether a RemoteAddr ("host:port") is a loopback
// address. An address that does not parse is not.
func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
