package runtime_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// Example shows cache-aside with a tag, and the tag's invalidation.
func Example() {
	mr, err := miniredis.Run() // an embedded Redis, for the example; use runtime.NewClient(REDIS_URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mr.Close()
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer client.Close()
	cache := runtime.New(client, runtime.WithNamespace("app:dev"), runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	ctx := context.Background()

	loads := 0
	findProject := func(ctx context.Context) (string, error) { loads++; return "Apollo", nil }
	get := func() string {
		name, err := runtime.GetCached(ctx, cache, runtime.Key("project", "42"), findProject,
			runtime.TTL(5*time.Minute), runtime.Jitter(time.Minute), runtime.Tags("project:42"))
		if err != nil {
			return err.Error()
		}
		return name
	}
	fmt.Println(get(), get(), "loads:", loads)
	fmt.Println(mr.Keys()[0])
	_ = cache.InvalidateTags(ctx, "project:42")
	fmt.Println(get(), "loads:", loads)
	// Output:
	// Apollo Apollo loads: 1
	// app:dev:#tag:{project:42}
	// Apollo loads: 2
}

// exampleCache is an embedded Redis and a Cache on it, for the examples;
// a service uses runtime.NewClient(os.Getenv("REDIS_URL")).
func exampleCache() (*runtime.Cache, func()) {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	client := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	cache := runtime.New(client, runtime.WithNamespace("app:dev"), runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	return cache, func() { _ = client.Close(); mr.Close() }
}

type exampleProject struct {
	ID   int64
	Name string
}

// ExampleGetCachedWith passes the loader its argument by value, so that a
// hit allocates nothing for the loader: what generated decorators do.
func ExampleGetCachedWith() {
	cache, done := exampleCache()
	defer done()
	ctx := context.Background()
	find := func(ctx context.Context, id int64) (exampleProject, error) {
		fmt.Println("database: load project", id)
		return exampleProject{ID: id, Name: "Apollo"}, nil
	}
	for range 2 {
		p, err := runtime.GetCachedWith(ctx, cache, runtime.Key("project", "7"), int64(7), find, runtime.TTL(5*time.Minute))
		fmt.Println(p.Name, err)
	}
	// Output:
	// database: load project 7
	// Apollo <nil>
	// Apollo <nil>
}

// ExampleGetBatch reads many ids in one round trip and loads only the
// missing ones, in one call.
func ExampleGetBatch() {
	cache, done := exampleCache()
	defer done()
	ctx := context.Background()
	load := func(ctx context.Context, ids []int64) ([]exampleProject, error) {
		fmt.Println("database: load", ids)
		out := make([]exampleProject, 0, len(ids))
		for _, id := range ids {
			out = append(out, exampleProject{ID: id, Name: fmt.Sprint("p", id)})
		}
		return out, nil
	}
	key := func(id int64) string { return runtime.Key("project", fmt.Sprint(id)) }
	idOf := func(p exampleProject) int64 { return p.ID }
	first, _ := runtime.GetBatch(ctx, cache, []int64{1, 2}, key, idOf, load, runtime.TTL(5*time.Minute))
	_ = cache.Wait(ctx) // the store of what was loaded ends in the background
	second, _ := runtime.GetBatch(ctx, cache, []int64{2, 3, 1}, key, idOf, load, runtime.TTL(5*time.Minute))
	fmt.Println(first, second)
	// Output:
	// database: load [1 2]
	// database: load [3]
	// [{1 p1} {2 p2}] [{2 p2} {3 p3} {1 p1}]
}

// ExamplePut is the write-through of a //cache:put method: after the
// database write, the tags go and the new value is stored.
func ExamplePut() {
	cache, done := exampleCache()
	defer done()
	ctx := context.Background()
	list := func(ctx context.Context) ([]string, error) {
		fmt.Println("database: list")
		return []string{"Apollo"}, nil
	}
	opts := []runtime.CallOption{runtime.TTL(5 * time.Minute), runtime.Tags("projects")}
	_, _ = runtime.GetCached(ctx, cache, "projects", list, opts...)

	renamed := exampleProject{ID: 7, Name: "Artemis"} // as the database returned it
	runtime.Put(ctx, cache, runtime.Key("project", "7"), renamed, runtime.TTL(5*time.Minute), runtime.Tags("project:7"), runtime.AlsoInvalidate("projects"))

	p, _ := runtime.GetCached(ctx, cache, runtime.Key("project", "7"), func(context.Context) (exampleProject, error) {
		fmt.Println("database: load project 7")
		return exampleProject{}, nil
	}, runtime.TTL(5*time.Minute))
	fmt.Println(p.Name)
	_, _ = runtime.GetCached(ctx, cache, "projects", list, opts...) // the list was dropped
	// Output:
	// database: list
	// Artemis
	// database: list
}

// ExampleCache_InvalidateTags drops every key that carries a tag, however
// many, in bounded steps.
func ExampleCache_InvalidateTags() {
	cache, done := exampleCache()
	defer done()
	ctx := context.Background()
	for _, id := range []string{"1", "2"} {
		_ = runtime.Set(ctx, cache, runtime.Key("member", id), "m"+id, runtime.TTL(time.Minute), runtime.Tags("workspace:9:members"))
	}
	if err := cache.InvalidateTags(ctx, "workspace:9:members"); err != nil {
		fmt.Println(err)
	}
	s, _ := cache.Stats(ctx)
	fmt.Println("keys invalidated:", s.Invalidated)
	// Output:
	// keys invalidated: 2
}

// ExampleSet stores a value that the caller already has. Unlike a read, a
// failed write is returned.
func ExampleSet() {
	cache, done := exampleCache()
	defer done()
	ctx := context.Background()
	err := runtime.Set(ctx, cache, runtime.Key("project", "7"), exampleProject{ID: 7, Name: "Apollo"},
		runtime.TTL(5*time.Minute), runtime.Tags("project:7"))
	fmt.Println("stored:", err == nil)
	p, _ := runtime.GetCached(ctx, cache, runtime.Key("project", "7"), func(context.Context) (exampleProject, error) {
		fmt.Println("database: load project 7")
		return exampleProject{}, nil
	}, runtime.TTL(5*time.Minute))
	fmt.Println(p.Name)
	fmt.Println(runtime.Set(ctx, cache, "project:8", exampleProject{ID: 8}) != nil) // no TTL: refused
	// Output:
	// stored: true
	// Apollo
	// true
}

// ExampleCache_Invalidate deletes keys, given as to GetCached.
func ExampleCache_Invalidate() {
	cache, done := exampleCache()
	defer done()
	ctx := context.Background()
	load := func(context.Context) (string, error) {
		fmt.Println("database: load")
		return "Apollo", nil
	}
	key := runtime.Key("project", "7")
	_, _ = runtime.GetCached(ctx, cache, key, load, runtime.TTL(time.Minute))
	if err := cache.Invalidate(ctx, key); err != nil {
		fmt.Println(err)
	}
	_, _ = runtime.GetCached(ctx, cache, key, load, runtime.TTL(time.Minute))
	// Output:
	// database: load
	// database: load
}

// ExampleCache_AfterWrite is the step of a //cache:invalidate method: after
// the database write succeeded, drop the keys and the tags' keys. It
// returns nothing: failures are logged, counted and retried.
func ExampleCache_AfterWrite() {
	cache, done := exampleCache()
	defer done()
	ctx := context.Background()
	_ = runtime.Set(ctx, cache, runtime.Key("project", "7"), "Apollo", runtime.TTL(time.Minute))
	_ = runtime.Set(ctx, cache, "workspace:1:projects", []string{"Apollo"}, runtime.TTL(time.Minute), runtime.Tags("workspace:1:projects"))

	// deleteProject(ctx, 1, 7) succeeded; then:
	cache.AfterWrite(ctx, []string{runtime.Key("project", "7")}, []string{"workspace:1:projects"})
	s, _ := cache.Stats(ctx)
	fmt.Println("keys invalidated:", s.Invalidated)
	// Output:
	// keys invalidated: 2
}

// ExampleKey escapes each part, so that no value can forge a separator.
func ExampleKey() {
	fmt.Println(runtime.Key("project", "42"))
	fmt.Println(runtime.Key("user", "ada@example.com"))
	fmt.Println(runtime.Key("x:y", "z"), runtime.Key("x", "y:z"))
	// Output:
	// project:42
	// user:ada@example.com
	// x%3Ay:z x:y%3Az
}

// ExampleNewClient builds the process's one Redis client from a URL, with
// the defaults of a cache that must fail fast, and reports the URL without
// its password.
func ExampleNewClient() {
	mr, err := miniredis.Run() // stands in for the server of REDIS_URL
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mr.Close()
	mr.RequireAuth("s3cret")
	client, err := runtime.NewClient("redis://:s3cret@"+mr.Addr()+"/0",
		runtime.WithClientLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	fmt.Println(strings.Contains(client.RedactedURL(), "s3cret"))
	cache := runtime.New(client, runtime.WithNamespace("app:prod"))
	_ = cache
	fmt.Println(client.Ping(context.Background()).Val())
	// Output:
	// false
	// PONG
}
