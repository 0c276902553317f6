package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// errRecordNotFound stands for gorm.ErrRecordNotFound.
var errRecordNotFound = errors.New("record not found")

// userNotExist stands for a forge's typed not-found error, which its
// callers check with a type assertion.
type userNotExist struct {
	UID  int64
	Name string
}

func (e userNotExist) Error() string {
	return fmt.Sprintf("user does not exist [uid: %d, name: %s]", e.UID, e.Name)
}

// TestNotFoundOfTheService (issue 11, item 4): a not-found answer of the
// service's own kind is cached with negative=, and a hit returns it as the
// service's callers expect: the same variable, or an equal typed value.
func TestNotFoundOfTheService(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		var loads atomic.Int64
		read := func(key string, loadErr error, opt runtime.CallOption) error {
			_, err := runtime.GetCached(ctx, c, key, func(context.Context) (*workspace, error) {
				loads.Add(1)
				return nil, loadErr
			}, runtime.TTL(time.Minute), runtime.Negative(time.Minute), opt)
			if werr := c.Wait(ctx); werr != nil {
				t.Fatal(werr)
			}
			return err
		}
		for i := range 2 {
			if err := read("gorm:1", fmt.Errorf("find: %w", errRecordNotFound), runtime.NotFoundIs(errRecordNotFound)); !errors.Is(err, errRecordNotFound) {
				t.Fatalf("read %d: err = %v, want errors.Is gorm's not-found", i, err)
			} else if i == 1 && err != errRecordNotFound {
				t.Fatalf("cached not-found = %v, want the variable itself", err)
			}
		}
		if n := loads.Swap(0); n != 1 {
			t.Fatalf("%d loads, want 1: the not-found was not cached", n)
		}
		want := userNotExist{UID: 7, Name: "ann"}
		for i := range 2 {
			err := read("forge:7", want, runtime.NotFoundAs[userNotExist]())
			got, ok := err.(userNotExist)
			if !ok || got != want {
				t.Fatalf("read %d: err = %#v, want %#v by type assertion", i, err, want)
			}
		}
		if n := loads.Swap(0); n != 1 {
			t.Fatalf("%d loads, want 1: the typed not-found was not cached", n)
		}
		// Another error is not a not-found: never cached.
		for range 2 {
			if err := read("other:1", errors.New("boom"), runtime.NotFoundIs(errRecordNotFound)); err == nil {
				t.Fatal("no error")
			}
		}
		if n := loads.Load(); n != 2 {
			t.Fatalf("%d loads of a failing read, want 2: an error was cached", n)
		}
	})
}

// TestPutAttachDoesNotInvalidate (issue 11, item 5): a put's attach= tags
// are attached to what it stores, not invalidated.
func TestPutAttachDoesNotInvalidate(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newCache(b)
		if err := runtime.Set(ctx, c, "user:1", "ann", runtime.TTL(time.Minute), runtime.Tags("users")); err != nil {
			t.Fatal(err)
		}
		runtime.Put(ctx, c, "user:2", "bob", runtime.TTL(time.Minute), runtime.Tags("user:2"), runtime.Attach("users"))
		exists := func() int64 { // one key per command: two slots on a cluster
			return b.Client.Exists(ctx, b.Key("user:1")).Val() + b.Client.Exists(ctx, b.Key("user:2")).Val()
		}
		if n := exists(); n != 2 {
			t.Fatalf("%d of 2 users cached after the put: its attach= tag was invalidated", n)
		}
		if err := c.InvalidateTags(ctx, "users"); err != nil {
			t.Fatal(err)
		}
		if n := exists(); n != 0 {
			t.Fatalf("%d users left after invalidating the attached tag", n)
		}
	})
}
