package runtime_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// TestTLS runs the cache over rediss:// against a TLS-only redis-server
// with a certificate from a CA made for the test, with and without a
// client certificate required.
func TestTLS(t *testing.T) {
	for _, clientCerts := range []bool{false, true} {
		t.Run(fmt.Sprintf("client_certs=%v", clientCerts), func(t *testing.T) {
			srv := redistest.StartTLS(t, clientCerts)
			cfg := &tls.Config{RootCAs: srv.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
			if clientCerts {
				cfg.Certificates = []tls.Certificate{srv.ClientCert}
			}
			client := tlsClient(t, srv.Addr, cfg)
			if err := client.Ping(context.Background()).Err(); err != nil {
				t.Fatalf("PING over TLS: %v", err)
			}
			c, errs := securityCache(client, "tlsapp")
			securityWorkload(t, c, errs)

			// The plain-text protocol gets nowhere on the TLS port.
			plain := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
			defer plain.Close()
			if err := plain.Ping(context.Background()).Err(); err == nil {
				t.Error("a plain-text PING on the TLS port succeeded")
			}
			if clientCerts {
				// Without a client certificate the server refuses the
				// connection.
				bare := tlsClient(t, srv.Addr, &tls.Config{RootCAs: srv.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
				if err := bare.Ping(context.Background()).Err(); err == nil {
					t.Error("PING without the required client certificate succeeded")
				}
			}
		})
	}
}

// TestTLSWrongCA: a client that does not trust the server's CA never
// talks to it, and the cache fails open (the loader answers, the error is
// counted).
func TestTLSWrongCA(t *testing.T) {
	srv := redistest.StartTLS(t, false)
	for name, pool := range map[string]*x509.CertPool{"unrelated CA": redistest.UnrelatedCA(t), "system roots": nil} {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			client := tlsClient(t, srv.Addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
			err := client.Ping(context.Background()).Err()
			var unknown x509.UnknownAuthorityError
			if !errors.As(err, &unknown) && (err == nil || !strings.Contains(err.Error(), "certificate")) {
				t.Fatalf("PING trusting the wrong CA: %v, want a certificate error", err)
			}
			c, _ := securityCache(client, "tlsapp")
			v, err := runtime.GetCached(context.Background(), c, "k", func(context.Context) (string, error) { return "from source", nil }, runtime.TTL(time.Minute))
			if err != nil || v != "from source" {
				t.Fatalf("GetCached = %q, %v; want the loader's answer", v, err)
			}
			if s, _ := c.Stats(context.Background()); s.Errors == 0 {
				t.Error("the TLS failure was not counted in Stats.Errors")
			}
		})
	}
}

// tlsClient builds a client with runtime.NewClient from a rediss:// URL,
// with cfg as its TLS configuration.
func tlsClient(t *testing.T, addr string, cfg *tls.Config) *runtime.Client {
	t.Helper()
	client, err := runtime.NewClient("rediss://"+addr+"/0",
		runtime.WithClientLogger(discard),
		runtime.WithClientOptions(func(o *redis.UniversalOptions) {
			if o.TLSConfig == nil {
				t.Error("rediss:// gave no TLS configuration")
			}
			o.TLSConfig = cfg
			o.MaxRetries = -1
			// These tests are about TLS, not speed: a TLS handshake under
			// -race on a loaded machine can outlast the 500 ms defaults.
			o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 10*time.Second, 10*time.Second, 10*time.Second
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// redisErrors collects the Redis errors a Cache reports to its metrics
// hook.
type redisErrors struct {
	mu   sync.Mutex
	errs []string
}

func (r *redisErrors) Observe(e runtime.Event) {
	if e.Op == runtime.OpError || e.Op == runtime.OpInvalidateError {
		r.mu.Lock()
		r.errs = append(r.errs, fmt.Sprintf("%v %s: %v", e.Op, e.Key, e.Err))
		r.mu.Unlock()
	}
}

func (r *redisErrors) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// securityCache is a Cache with a short lock TTL (so that a slow load
// exercises the lease keep-alive) and an error collector.
func securityCache(client redis.UniversalClient, ns string) (*runtime.Cache, *redisErrors) {
	errs := &redisErrors{}
	return runtime.New(client, runtime.WithNamespace(ns), runtime.WithLogger(discard), runtime.WithMetrics(errs),
		// A lease of 1 s (kept alive every third of it) also bounds each
		// background store: room for a TLS round trip on a loaded machine.
		runtime.WithLockTTL(time.Second), runtime.WithStoreWait(time.Second)), errs
}

type secProject struct {
	ID   int64
	Name string
}

// securityWorkload drives every path of the Cache that sends a command:
// misses and hits with tags, lock=distributed with a lease kept alive, a
// failed load (lease released), a cached not-found, a stale value
// refreshed under SWR, Set, Put, InvalidateTags on a tag with members,
// Invalidate, GetBatch, InvalidatePattern and Stats. No Redis error may
// occur.
func securityWorkload(t *testing.T, c *runtime.Cache, errs *redisErrors) {
	t.Helper()
	ctx := context.Background()
	loads := 0
	load := func(id int64, name string) func(context.Context) (secProject, error) {
		return func(context.Context) (secProject, error) { loads++; return secProject{ID: id, Name: name}, nil }
	}
	get := func(key string, l func(context.Context) (secProject, error), opts ...runtime.CallOption) secProject {
		t.Helper()
		v, err := runtime.GetCached(ctx, c, key, l, append([]runtime.CallOption{runtime.TTL(time.Minute)}, opts...)...)
		if err != nil {
			t.Fatalf("GetCached(%s): %v", key, err)
		}
		return v
	}

	// Miss, then hit, with tags (default lock).
	for range 2 {
		if p := get("project:1", load(1, "one"), runtime.Tags("project:1", "projects")); p.Name != "one" {
			t.Fatalf("project:1 = %+v", p)
		}
	}
	if loads != 1 {
		t.Fatalf("loads = %d after a miss and a hit; Redis errors: %q", loads, errs.list())
	}
	// lock=distributed, a load longer than the lease's keep-alive period.
	slow := func(context.Context) (secProject, error) {
		time.Sleep(400 * time.Millisecond) // past the first keep-alive, at a third of the lease
		return secProject{ID: 2, Name: "two"}, nil
	}
	get("project:2", slow, runtime.Tags("project:2", "projects"), runtime.Lock(runtime.LockDistributed))
	get("project:2", slow, runtime.Tags("project:2", "projects"), runtime.Lock(runtime.LockDistributed))
	// A failed load releases its lease.
	boom := errors.New("boom")
	if _, err := runtime.GetCached(ctx, c, "project:9", func(context.Context) (secProject, error) { return secProject{}, boom },
		runtime.TTL(time.Minute), runtime.Lock(runtime.LockDistributed)); err != boom {
		t.Fatalf("failed load: %v", err)
	}
	// A cached not-found.
	for range 2 {
		if _, err := runtime.GetCached(ctx, c, "project:404", func(context.Context) (*secProject, error) { return nil, runtime.ErrNotFound },
			runtime.TTL(time.Minute), runtime.Negative(time.Minute), runtime.Tags("project:404")); !errors.Is(err, runtime.ErrNotFound) {
			t.Fatalf("not-found: %v", err)
		}
	}
	// Stale-while-revalidate: the value goes stale and is refreshed in
	// the background.
	get("project:3", load(3, "three"), runtime.TTL(20*time.Millisecond), runtime.SWR(time.Minute), runtime.Tags("project:3"))
	time.Sleep(40 * time.Millisecond)
	get("project:3", load(3, "three v2"), runtime.TTL(20*time.Millisecond), runtime.SWR(time.Minute), runtime.Tags("project:3"))
	waitBackground(t, c)
	// Set and Put.
	if err := runtime.Set(ctx, c, "project:4", secProject{ID: 4, Name: "four"}, runtime.TTL(time.Minute), runtime.Tags("project:4", "projects")); err != nil {
		t.Fatalf("Set: %v", err)
	}
	runtime.Put(ctx, c, "project:5", secProject{ID: 5, Name: "five"}, runtime.TTL(time.Minute),
		runtime.Tags("project:5"), runtime.AlsoInvalidate("projects"), runtime.Attach("projects"))
	get("project:1", load(1, "one"), runtime.Tags("project:1", "projects"))
	// InvalidateTags on a tag with members, then Invalidate.
	if err := c.InvalidateTags(ctx, "projects", "project:404"); err != nil {
		t.Fatalf("InvalidateTags: %v", err)
	}
	before := loads
	get("project:1", load(1, "one"), runtime.Tags("project:1", "projects"))
	if loads != before+1 {
		t.Error("project:1 was not dropped with its tag")
	}
	if err := c.Invalidate(ctx, "project:1", "project:3"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	// GetBatch: project:2 is a hit, 6 and 7 are loaded in one call.
	ps, err := runtime.GetBatch(ctx, c, []int64{2, 6, 7},
		func(id int64) string { return runtime.Key("project", fmt.Sprint(id)) },
		func(p secProject) int64 { return p.ID },
		func(_ context.Context, ids []int64) ([]secProject, error) {
			out := make([]secProject, 0, len(ids))
			for _, id := range ids {
				out = append(out, secProject{ID: id, Name: fmt.Sprint("p", id)})
			}
			return out, nil
		}, runtime.TTL(time.Minute), runtime.ResultTags(func(p secProject) []string { return []string{fmt.Sprint("project:", p.ID)} }))
	if err != nil || len(ps) != 3 {
		t.Fatalf("GetBatch = %v, %v", ps, err)
	}
	waitBackground(t, c)
	if _, err := c.InvalidatePattern(ctx, "project:*"); err != nil {
		t.Fatalf("InvalidatePattern: %v", err)
	}
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	t.Logf("workload: hits %d, misses %d, loads %d, sets %d, stale %d, invalidated %d, errors %d",
		s.Hits, s.Misses, s.Loads, s.Sets, s.StaleServes, s.Invalidated, s.Errors)
	if s.Errors != 0 || s.InvalidationFailures != 0 || s.StaleSetsPrevented != 0 || s.Hits == 0 || s.Sets == 0 || s.StaleServes == 0 || s.Invalidated == 0 || s.Server.Masters != 1 {
		t.Errorf("Stats: %+v", s)
	}
	if e := errs.list(); len(e) > 0 {
		t.Errorf("Redis errors during the workload:\n%s", strings.Join(e, "\n"))
	}
}

func waitBackground(t *testing.T, c *runtime.Cache) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}
