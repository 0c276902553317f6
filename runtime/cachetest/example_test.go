package cachetest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
)

// Example counts what a cache-aside read and a tag invalidation did. In a
// test, cachetest.New(t) replaces Open and Close, and c.AssertCounts(t,
// want) the printing.
func Example() {
	c, err := cachetest.Open("Example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx := context.Background()

	findProject := func(ctx context.Context) (string, error) { return "Apollo", nil }
	for range 2 {
		if _, err := runtime.GetCached(ctx, c.Cache, runtime.Key("project", "42"), findProject,
			runtime.TTL(time.Minute), runtime.Tags("project:42")); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(c.Counts())
	fmt.Println(c.Keys())

	c.Reset()
	_ = c.InvalidateTags(ctx, "project:42")
	fmt.Println(c.Counts())
	// Output:
	// hits 1, misses 1, loads 1, sets 1
	// [#tag:{project:42} project:42]
	// invalidated 1
}
