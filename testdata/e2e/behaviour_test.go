package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// fake is the wrapped repository; it counts the calls of each method.
type fake struct {
	mu    sync.Mutex
	users map[UserID]*User
	calls map[string]int
	batch [][]UserID // the ids of each FindMany call
	err   error      // returned by every method when set
}

func newFake(users ...*User) *fake {
	f := &fake{users: map[UserID]*User{}, calls: map[string]int{}}
	for _, u := range users {
		f.users[u.ID] = u
	}
	return f
}

func (f *fake) count(m string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

func (f *fake) called(m string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[m]++
}

func (f *fake) Find(ctx context.Context, id UserID) (*User, error) {
	f.called("Find")
	if f.err != nil {
		return nil, f.err
	}
	u, ok := f.users[id]
	if !ok {
		return nil, ErrNotFound
	}
	c := *u
	return &c, nil
}

func (f *fake) ListTeam(ctx context.Context, teamID int64) ([]*User, error) {
	f.called("ListTeam")
	var out []*User
	for _, u := range f.users {
		if u.TeamID == teamID {
			c := *u
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *User) int { return compare(a.ID, b.ID) })
	return out, nil
}

func compare(a, b UserID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (f *fake) Pair(ctx context.Context, a, b string) (string, error) {
	f.called("Pair")
	return a + "|" + b, nil
}

func (f *fake) Search(ctx context.Context, fl *Filter) ([]*User, error) {
	f.called("Search")
	return []*User{{ID: "s"}}, nil
}

func (f *fake) FindMany(ctx context.Context, ids []UserID) ([]*User, error) {
	f.called("FindMany")
	f.mu.Lock()
	f.batch = append(f.batch, slices.Clone(ids))
	f.mu.Unlock()
	var out []*User
	for _, id := range ids {
		if u, ok := f.users[id]; ok {
			c := *u
			out = append(out, &c)
		}
	}
	return out, nil
}

func (f *fake) Page(ctx context.Context, cursor string) ([]*User, string, error) {
	f.called("Page")
	return []*User{{ID: UserID("p" + cursor)}}, cursor + "+1", nil
}

func (f *fake) Save(ctx context.Context, u *User) (*User, error) {
	f.called("Save")
	if f.err != nil {
		return nil, f.err
	}
	c := *u
	f.users[u.ID] = &c
	r := c
	return &r, nil
}

func (f *fake) Delete(ctx context.Context, id UserID) error {
	f.called("Delete")
	delete(f.users, id)
	return nil
}

func (f *fake) Lookup(ctx context.Context, id UserID) (*User, error) {
	f.called("Lookup")
	u, ok := f.users[id]
	if !ok {
		return nil, fmt.Errorf("lookup %s: %w", id, ErrNotFound) // wrapped: matched with errors.Is
	}
	c := *u
	return &c, nil
}

func (f *fake) FindByName(ctx context.Context, name string) (*User, error) {
	f.called("FindByName")
	for _, u := range f.users {
		if u.Name == name {
			c := *u
			return &c, nil
		}
	}
	return nil, fmt.Errorf("find by name: %w", &ErrUserNotExist{Name: name})
}

func (f *fake) Rename(ctx context.Context, u *User) (*User, error) {
	f.called("Rename")
	return f.Save(ctx, u)
}

func (f *fake) FlushUsers(ctx context.Context) error {
	f.called("FlushUsers")
	return nil
}

func (f *fake) SetName(ctx context.Context, id UserID, name string) error {
	f.called("SetName")
	f.users[id].Name = name
	return nil
}

func (f *fake) Count(ctx context.Context) (int, error) {
	f.called("Count")
	return len(f.users), nil
}

// setup returns a decorator over f on the Redis that the parent test gave,
// in a namespace of its own.
func setup(t *testing.T, f *fake) *UserRepoCache {
	t.Helper()
	addr, ns := os.Getenv("RC_REDIS_ADDR"), os.Getenv("RC_NAMESPACE")
	if addr == "" || ns == "" {
		t.Skip("RC_REDIS_ADDR and RC_NAMESPACE are set by the cachegen end-to-end test")
	}
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	c := runtime.New(client, runtime.WithNamespace(ns+":"+t.Name()))
	return NewUserRepoCache(f, c)
}

var ctx = context.Background()

func TestHitAndMiss(t *testing.T) {
	f := newFake(&User{ID: "1", TeamID: 7, Name: "ann"})
	r := setup(t, f)
	for i := range 3 {
		u, err := r.Find(ctx, "1")
		if err != nil || u == nil || u.Name != "ann" {
			t.Fatalf("Find #%d = %+v, %v", i, u, err)
		}
	}
	if n := f.count("Find"); n != 1 {
		t.Errorf("wrapped Find called %d times, want 1 (a miss, then hits)", n)
	}
}

func TestWriteThrough(t *testing.T) {
	f := newFake()
	r := setup(t, f)
	if _, err := r.Save(ctx, &User{ID: "2", TeamID: 7, Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	u, err := r.Find(ctx, "2")
	if err != nil || u.Name != "bob" {
		t.Fatalf("Find = %+v, %v", u, err)
	}
	if n := f.count("Find"); n != 0 {
		t.Errorf("wrapped Find called %d times after Save, want 0 (written through)", n)
	}
}

func TestTagDropsListAfterEntityChange(t *testing.T) {
	f := newFake(&User{ID: "3", TeamID: 9, Name: "cat"}, &User{ID: "4", TeamID: 9, Name: "dan"})
	r := setup(t, f)
	for range 2 {
		if l, err := r.ListTeam(ctx, 9); err != nil || len(l) != 2 {
			t.Fatalf("ListTeam = %v, %v", l, err)
		}
	}
	if n := f.count("ListTeam"); n != 1 {
		t.Fatalf("wrapped ListTeam called %d times, want 1", n)
	}
	// An entity change drops the list, through the user:{id} tag of each
	// element.
	if _, err := r.Save(ctx, &User{ID: "4", TeamID: 9, Name: "dora"}); err != nil {
		t.Fatal(err)
	}
	l, err := r.ListTeam(ctx, 9)
	if err != nil || len(l) != 2 || l[1].Name != "dora" {
		t.Fatalf("ListTeam after Save = %+v, %v", l, err)
	}
	if n := f.count("ListTeam"); n != 2 {
		t.Errorf("wrapped ListTeam called %d times, want 2 (dropped by the tag)", n)
	}
	// So does a delete.
	if err := r.Delete(ctx, "3"); err != nil {
		t.Fatal(err)
	}
	if l, _ := r.ListTeam(ctx, 9); len(l) != 1 {
		t.Fatalf("ListTeam after Delete = %+v", l)
	}
	if _, err := r.Find(ctx, "3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find after Delete: err = %v, want ErrNotFound", err)
	}
}

func TestSkipAndPassThrough(t *testing.T) {
	f := newFake(&User{ID: "5"})
	r := setup(t, f)
	for range 2 {
		if err := r.SetName(ctx, "5", "eve"); err != nil {
			t.Fatal(err)
		}
		if n, err := r.Count(ctx); err != nil || n != 1 {
			t.Fatalf("Count = %d, %v", n, err)
		}
	}
	if a, b := f.count("SetName"), f.count("Count"); a != 2 || b != 2 {
		t.Errorf("SetName, Count called %d, %d times, want 2, 2", a, b)
	}
}

func TestEscapingKeepsKeysApart(t *testing.T) {
	f := newFake()
	r := setup(t, f)
	a, err := r.Pair(ctx, "x:y", "z")
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Pair(ctx, "x", "y:z")
	if err != nil {
		t.Fatal(err)
	}
	if a != "x:y|z" || b != "x|y:z" {
		t.Errorf("Pair = %q, %q: the two calls shared a key", a, b)
	}
	if n := f.count("Pair"); n != 2 {
		t.Errorf("wrapped Pair called %d times, want 2", n)
	}
	if _, err := r.Pair(ctx, "x:y", "z"); err != nil || f.count("Pair") != 2 {
		t.Errorf("Pair again: %v, %d calls; want a hit", err, f.count("Pair"))
	}
}

func TestNilPointerBypasses(t *testing.T) {
	f := newFake()
	r := setup(t, f)
	for range 2 {
		if _, err := r.Search(ctx, &Filter{}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Search(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count("Search"); n != 4 {
		t.Errorf("wrapped Search called %d times with nil on the key path, want 4 (uncached)", n)
	}
	team := int64(1)
	for range 2 {
		if _, err := r.Search(ctx, &Filter{Team: &team}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count("Search"); n != 5 {
		t.Errorf("wrapped Search called %d times, want 5", n)
	}
}

func TestErrorsUnchanged(t *testing.T) {
	f := newFake()
	r := setup(t, f)
	for range 2 {
		_, err := r.Find(ctx, "missing")
		if err != ErrNotFound {
			t.Fatalf("Find: err = %v, want the same ErrNotFound value", err)
		}
	}
	if n := f.count("Find"); n != 2 {
		t.Errorf("wrapped Find called %d times, want 2 (errors are not cached)", n)
	}
	boom := fmt.Errorf("boom: %w", errors.ErrUnsupported)
	f.err = boom
	if _, err := r.Save(ctx, &User{ID: "6"}); err != boom {
		t.Errorf("Save: err = %v, want the wrapped repository's error", err)
	}
}

func TestBatch(t *testing.T) {
	f := newFake(&User{ID: "a"}, &User{ID: "b"}, &User{ID: "c"})
	r := setup(t, f)
	got, err := r.FindMany(ctx, []UserID{"b", "a"})
	if err != nil || len(got) != 2 || got[0].ID != "b" || got[1].ID != "a" {
		t.Fatalf("FindMany = %+v, %v", got, err)
	}
	got, err = r.FindMany(ctx, []UserID{"a", "zz", "c", "b"})
	if err != nil || len(got) != 3 || got[0].ID != "a" || got[1].ID != "c" || got[2].ID != "b" {
		t.Fatalf("FindMany = %+v, %v", got, err)
	}
	want := [][]UserID{{"b", "a"}, {"zz", "c"}}
	if !slices.EqualFunc(f.batch, want, slices.Equal) {
		t.Errorf("wrapped FindMany got ids %v, want %v (misses only)", f.batch, want)
	}
	// Each element is cached on its own key: Find hits it.
	if _, err := r.Find(ctx, "c"); err != nil || f.count("Find") != 0 {
		t.Errorf("Find after FindMany: %v, %d calls; want a hit", err, f.count("Find"))
	}
}

func TestSeveralResultsCachedTogether(t *testing.T) {
	f := newFake()
	r := setup(t, f)
	for range 2 {
		us, next, err := r.Page(ctx, "c1")
		if err != nil || len(us) != 1 || us[0].ID != "pc1" || next != "c1+1" {
			t.Fatalf("Page = %v, %q, %v", us, next, err)
		}
	}
	if n := f.count("Page"); n != 1 {
		t.Errorf("wrapped Page called %d times, want 1", n)
	}
}

// TestNotFoundVariable: notfound=ErrNotFound caches the not-found answer of
// Lookup (matched with errors.Is through the wrapping) and answers a hit
// with that same variable.
func TestNotFoundVariable(t *testing.T) {
	f := newFake()
	r := setup(t, f)
	for i := range 3 {
		u, err := r.Lookup(ctx, "missing")
		if u != nil || !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup #%d = %+v, %v; want ErrNotFound", i, u, err)
		}
		if i > 0 && err != ErrNotFound {
			t.Errorf("Lookup #%d from the cache: err = %#v, want the ErrNotFound variable itself", i, err)
		}
	}
	if n := f.count("Lookup"); n != 1 {
		t.Errorf("wrapped Lookup called %d times, want 1 (the not-found is cached)", n)
	}
}

// TestNotFoundType: notfound=*ErrUserNotExist caches the typed not-found of
// FindByName with its value, and a hit returns an equal *ErrUserNotExist
// that errors.As and a type assertion both find.
func TestNotFoundType(t *testing.T) {
	f := newFake()
	r := setup(t, f)
	for i := range 3 {
		u, err := r.FindByName(ctx, "zed")
		var e *ErrUserNotExist
		if u != nil || !errors.As(err, &e) {
			t.Fatalf("FindByName #%d = %+v, %v; want an *ErrUserNotExist", i, u, err)
		}
		if *e != (ErrUserNotExist{Name: "zed"}) {
			t.Errorf("FindByName #%d: error %+v, want Name zed", i, *e)
		}
		if i > 0 {
			if got, ok := err.(*ErrUserNotExist); !ok || *got != (ErrUserNotExist{Name: "zed"}) {
				t.Errorf("FindByName #%d from the cache: err = %#v, want an equal *ErrUserNotExist", i, err)
			}
		}
	}
	if n := f.count("FindByName"); n != 1 {
		t.Errorf("wrapped FindByName called %d times, want 1 (the not-found is cached)", n)
	}
	// Another name is another entry; an error of another type is not cached.
	if _, err := r.FindByName(ctx, "amy"); !errors.As(err, new(*ErrUserNotExist)) || f.count("FindByName") != 2 {
		t.Errorf("FindByName(amy): %v, %d calls", err, f.count("FindByName"))
	}
}

// TestAttachIsNotInvalidated: a put's attach=users tag is attached to what
// it stores but never invalidated by the put, so that one user's write does
// not flush the others; invalidating the tag drops them all.
func TestAttachIsNotInvalidated(t *testing.T) {
	f := newFake()
	r := setup(t, f)
	for _, u := range []*User{{ID: "r1", Name: "ray"}, {ID: "r2", Name: "rex"}} {
		if _, err := r.Rename(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []UserID{"r1", "r2"} {
		if u, err := r.Find(ctx, id); err != nil || u.ID != id {
			t.Fatalf("Find(%s) = %+v, %v", id, u, err)
		}
	}
	if n := f.count("Find"); n != 0 {
		t.Errorf("wrapped Find called %d times, want 0: the second put dropped the first (attach= was invalidated)", n)
	}
	if err := r.FlushUsers(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []UserID{"r1", "r2"} {
		if _, err := r.Find(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count("Find"); n != 2 {
		t.Errorf("wrapped Find called %d times after FlushUsers, want 2 (dropped by the users tag)", n)
	}
}
