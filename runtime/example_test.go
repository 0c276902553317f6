package runtime_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
