package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

func (f *fake) Touch(ctx context.Context, id UserID) error {
	f.called("Touch")
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.users[id]; ok {
		u.Name += "+"
	}
	return nil
}

// setup returns a decorator over f on the Redis that the parent test gave,
// in a namespace of its own.
func setup(t *testing.T, f *fake) *UserRepoCache {
	t.Helper()
	r, _ := setupCache(t, f)
	return r
}

// setupCache is setup that also returns the Cache, for wait and Stats.
func setupCache(t *testing.T, f *fake) (*UserRepoCache, *runtime.Cache) {
	t.Helper()
	c, _ := newCache(t)
	return NewUserRepoCache(f, c), c
}

// newCache returns a Cache on the Redis that the parent test gave, in a
// namespace of the test's own, with opts, and a client of that Redis.
func newCache(t *testing.T, opts ...runtime.Option) (*runtime.Cache, *redis.Client) {
	t.Helper()
	addr, ns := os.Getenv("RC_REDIS_ADDR"), os.Getenv("RC_NAMESPACE")
	if addr == "" || ns == "" {
		t.Skip("RC_REDIS_ADDR and RC_NAMESPACE are set by the cachegen end-to-end test")
	}
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	return runtime.New(client, append([]runtime.Option{runtime.WithNamespace(ns + ":" + t.Name())}, opts...)...), client
}

// wait lets the background stores of c finish, so that the read after a
// miss is a hit whatever the machine's load (the caller of a miss waits for
// its store only a few milliseconds).
func wait(t *testing.T, c *runtime.Cache) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Wait(wctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

var ctx = context.Background()

func TestHitAndMiss(t *testing.T) {
	f := newFake(&User{ID: "1", TeamID: 7, Name: "ann"})
	r, c := setupCache(t, f)
	for i := range 3 {
		u, err := r.Find(ctx, "1")
		if err != nil || u == nil || u.Name != "ann" {
			t.Fatalf("Find #%d = %+v, %v", i, u, err)
		}
		wait(t, c)
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
	r, c := setupCache(t, f)
	for range 2 {
		if l, err := r.ListTeam(ctx, 9); err != nil || len(l) != 2 {
			t.Fatalf("ListTeam = %v, %v", l, err)
		}
		wait(t, c)
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
	r, c := setupCache(t, f)
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
	wait(t, c)
	if _, err := r.Pair(ctx, "x:y", "z"); err != nil || f.count("Pair") != 2 {
		t.Errorf("Pair again: %v, %d calls; want a hit", err, f.count("Pair"))
	}
}

func TestNilPointerBypasses(t *testing.T) {
	f := newFake()
	r, c := setupCache(t, f)
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
		wait(t, c)
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
	r, c := setupCache(t, f)
	got, err := r.FindMany(ctx, []UserID{"b", "a"})
	if err != nil || len(got) != 2 || got[0].ID != "b" || got[1].ID != "a" {
		t.Fatalf("FindMany = %+v, %v", got, err)
	}
	wait(t, c)
	got, err = r.FindMany(ctx, []UserID{"a", "zz", "c", "b"})
	if err != nil || len(got) != 3 || got[0].ID != "a" || got[1].ID != "c" || got[2].ID != "b" {
		t.Fatalf("FindMany = %+v, %v", got, err)
	}
	wait(t, c)
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
	r, c := setupCache(t, f)
	for range 2 {
		us, next, err := r.Page(ctx, "c1")
		if err != nil || len(us) != 1 || us[0].ID != "pc1" || next != "c1+1" {
			t.Fatalf("Page = %v, %q, %v", us, next, err)
		}
		wait(t, c)
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
	r, c := setupCache(t, f)
	for i := range 3 {
		u, err := r.Lookup(ctx, "missing")
		if u != nil || !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup #%d = %+v, %v; want ErrNotFound", i, u, err)
		}
		if i > 0 && err != ErrNotFound {
			t.Errorf("Lookup #%d from the cache: err = %#v, want the ErrNotFound variable itself", i, err)
		}
		wait(t, c)
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
	r, c := setupCache(t, f)
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
		wait(t, c)
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

// TestTouchInvalidates: Touch, a mutation word of 2026-12-01, carries
// cache:invalidate and drops the entry it names.
func TestTouchInvalidates(t *testing.T) {
	f := newFake(&User{ID: "t1", Name: "tia"})
	r, c := setupCache(t, f)
	for range 2 {
		if u, err := r.Find(ctx, "t1"); err != nil || u.Name != "tia" {
			t.Fatalf("Find = %+v, %v", u, err)
		}
		wait(t, c)
	}
	if err := r.Touch(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if u, err := r.Find(ctx, "t1"); err != nil || u.Name != "tia+" {
		t.Fatalf("Find after Touch = %+v, %v; want the touched user", u, err)
	}
	if a, b := f.count("Find"), f.count("Touch"); a != 2 || b != 1 {
		t.Errorf("wrapped Find, Touch called %d, %d times, want 2, 1 (Touch dropped user:t1)", a, b)
	}
}

// accounts is the wrapped AccountRepo; it counts the calls of each method
// and returns a copy of its own of what it holds on every call, as a
// database would.
type accounts struct {
	mu     sync.Mutex
	byID   map[int64]*Account
	calls  map[string]int
	batch  [][]int64     // the ids of each GetMany call
	traces []string      // the trace of each ListTeam call
	next   int64         // the id CreateMany gives next
	gate   chan struct{} // when set, Get waits for it to be closed
}

func newAccounts(as ...*Account) *accounts {
	f := &accounts{byID: map[int64]*Account{}, calls: map[string]int{}, next: 100}
	for _, a := range as {
		f.byID[a.ID] = clone(a)
	}
	return f
}

// clone copies a deeply: the pointers and the slice too.
func clone(a *Account) *Account {
	if a == nil {
		return nil
	}
	c := *a
	if a.Email != nil {
		e := *a.Email
		c.Email = &e
	}
	if a.Profile != nil {
		p := *a.Profile
		c.Profile = &p
	}
	c.Roles = slices.Clone(a.Roles)
	return &c
}

func (f *accounts) called(m string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[m]++
}

func (f *accounts) count(m string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

// stored returns a copy of the account the fake holds under id.
func (f *accounts) stored(id int64) *Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	return clone(f.byID[id])
}

func (f *accounts) Get(ctx context.Context, id int64) (*Account, error) {
	f.called("Get")
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.byID[id]
	if !ok {
		return nil, fmt.Errorf("account %d: %w", id, ErrNotFound)
	}
	return clone(a), nil
}

func (f *accounts) GetMany(ctx context.Context, ids []int64) ([]*Account, error) {
	f.called("GetMany")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batch = append(f.batch, slices.Clone(ids))
	var out []*Account
	for _, id := range ids {
		if a, ok := f.byID[id]; ok {
			out = append(out, clone(a))
		}
	}
	return out, nil
}

func (f *accounts) ListTeam(ctx context.Context, team int64, trace string) ([]*Account, error) {
	f.called("ListTeam")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traces = append(f.traces, trace)
	var out []*Account
	for _, a := range f.byID {
		if a.Team == team {
			out = append(out, clone(a))
		}
	}
	slices.SortFunc(out, func(a, b *Account) int { return int(a.ID - b.ID) })
	return out, nil
}

func (f *accounts) Flags(ctx context.Context, id int64, active bool) (string, error) {
	f.called("Flags")
	return fmt.Sprintf("%d:%t", id, active), nil
}

func (f *accounts) Session(ctx context.Context, token string) (int64, error) {
	f.called("Session")
	return int64(len(token)), nil
}

func (f *accounts) ByEmail(ctx context.Context, email string) (int64, error) {
	f.called("ByEmail")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.byID {
		if a.Email != nil && strings.EqualFold(*a.Email, email) {
			return a.ID, nil
		}
	}
	return 0, ErrNotFound
}

func (f *accounts) Count(ctx context.Context) int64 {
	f.called("Count")
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.byID))
}

func (f *accounts) ActiveIDs() ([]int64, error) {
	f.called("ActiveIDs")
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := []int64{}
	for id, a := range f.byID {
		if a.Active {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (f *accounts) DeleteInactivated() error {
	f.called("DeleteInactivated")
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, a := range f.byID {
		if !a.Active {
			delete(f.byID, id)
		}
	}
	return nil
}

func (f *accounts) DeleteMany(ctx context.Context, ids []int64) error {
	f.called("DeleteMany")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		delete(f.byID, id)
	}
	return nil
}

func (f *accounts) CreateMany(ctx context.Context, emails []string) ([]*Account, error) {
	f.called("CreateMany")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Account
	for _, e := range emails {
		a := &Account{ID: f.next, Email: &e, Active: true}
		f.next++
		f.byID[a.ID] = a
		out = append(out, clone(a))
	}
	return out, nil
}

func (f *accounts) Update(ctx context.Context, a *Account) error {
	f.called("Update")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID[a.ID] = clone(a)
	return nil
}

func (f *accounts) Star(ctx context.Context, id int64) error {
	f.called("Star")
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.byID[id]; ok {
		a.Stars++
	}
	return nil
}

// Merge with nil merges the duplicates of account 1 into it: a write
// that the directive's templates, all on a, cannot name.
func (f *accounts) Merge(ctx context.Context, a *Account) error {
	f.called("Merge")
	f.mu.Lock()
	defer f.mu.Unlock()
	if a == nil {
		f.byID[1].Roles = []string{"merged"}
		return nil
	}
	f.byID[a.ID] = clone(a)
	return nil
}

// Archive archives the accounts of team: none has team -1, and team 0
// archives account 1 but answers nil for it.
func (f *accounts) Archive(ctx context.Context, team int64) ([]*Account, error) {
	f.called("Archive")
	f.mu.Lock()
	defer f.mu.Unlock()
	if team != 0 {
		return []*Account{}, nil
	}
	f.byID[1].Roles = []string{"archived"}
	return []*Account{nil}, nil
}

func (f *accounts) Ping(ctx context.Context) error {
	f.called("Ping")
	return nil
}

// setupAccounts returns the strict decorator over f, its Cache and a client
// of its Redis.
func setupAccounts(t *testing.T, f *accounts) (*AccountRepoCache, *runtime.Cache, *redis.Client) {
	t.Helper()
	c, client := newCache(t)
	return NewAccountRepoCache(f, c), c, client
}

func email(s string) *string { return &s }

// cacheAccount reads account 1 twice through r, so that it is cached (the
// second read a hit), and checks its first role.
func cacheAccount(t *testing.T, r *AccountRepoCache, c *runtime.Cache, role string) {
	t.Helper()
	for range 2 {
		if a, err := r.Get(ctx, 1); err != nil || a.Roles[0] != role {
			t.Fatalf("Get = %+v, %v; want role %q", a, err, role)
		}
		wait(t, c)
	}
}

// ann is an account with every kind of field set; Created is in UTC with
// nanoseconds, as a database driver configured for UTC returns it.
func ann() *Account {
	return &Account{
		ID: 1, Team: 3, Email: email("Ann@X.io"), Active: true,
		Created: time.Now().UTC(),
		Roles:   []string{"admin", "dev"}, Profile: &Profile{Bio: "hi"},
	}
}

// TestStrictRepo: the strict AccountRepo is generated and served through
// the cache; its cache:skip method passes every call through.
func TestStrictRepo(t *testing.T) {
	f := newAccounts(ann())
	r, c, _ := setupAccounts(t, f)
	for range 3 {
		if a, err := r.Get(ctx, 1); err != nil || a.ID != 1 {
			t.Fatalf("Get = %+v, %v", a, err)
		}
		wait(t, c)
		if err := r.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := f.count("Get"), f.count("Ping"); a != 1 || b != 3 {
		t.Errorf("wrapped Get, Ping called %d, %d times, want 1, 3 (Ping is cache:skip)", a, b)
	}
}

// TestStarInvalidates: Star, a mutation word of 2026-12-01, drops the
// account's entry, so that the next read sees the new count.
func TestStarInvalidates(t *testing.T) {
	f := newAccounts(ann())
	r, c, _ := setupAccounts(t, f)
	for range 2 {
		if a, err := r.Get(ctx, 1); err != nil || a.Stars != 0 {
			t.Fatalf("Get = %+v, %v", a, err)
		}
		wait(t, c)
	}
	if err := r.Star(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if a, err := r.Get(ctx, 1); err != nil || a.Stars != 1 {
		t.Fatalf("Get after Star = %+v, %v; want Stars 1", a, err)
	}
	if n := f.count("Get"); n != 2 {
		t.Errorf("wrapped Get called %d times, want 2 (Star dropped account:1)", n)
	}
}

// TestBoolInKey: flags:{id}:{active} renders the bool as true or false, so
// that the two are different entries, each cached.
func TestBoolInKey(t *testing.T) {
	f := newAccounts()
	r, c, _ := setupAccounts(t, f)
	for range 3 {
		for _, active := range []bool{true, false} {
			got, err := r.Flags(ctx, 7, active)
			if want := fmt.Sprintf("7:%t", active); err != nil || got != want {
				t.Fatalf("Flags(7, %t) = %q, %v; want %q", active, got, err, want)
			}
			wait(t, c)
		}
	}
	if n := f.count("Flags"); n != 2 {
		t.Errorf("wrapped Flags called %d times, want 2 (one entry for true, one for false)", n)
	}
}

// keys returns every Redis key of c's namespace.
func keys(t *testing.T, client *redis.Client, c *runtime.Cache) []string {
	t.Helper()
	var out []string
	iter := client.Scan(ctx, 0, c.Namespace()+":*", 100).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHashKeepsTokenOutOfRedis: session:{token|hash} stores the entry under
// the SHA-256 hex of the token; the token itself is in no key.
func TestHashKeepsTokenOutOfRedis(t *testing.T) {
	f := newAccounts()
	r, c, client := setupAccounts(t, f)
	const token = "gho_SecretBearerToken42"
	for range 2 {
		if n, err := r.Session(ctx, token); err != nil || n != int64(len(token)) {
			t.Fatalf("Session = %d, %v", n, err)
		}
		wait(t, c)
	}
	if n := f.count("Session"); n != 1 {
		t.Errorf("wrapped Session called %d times, want 1", n)
	}
	sum := sha256.Sum256([]byte(token))
	want := c.RedisKey("session:" + hex.EncodeToString(sum[:]))
	ks := keys(t, client, c)
	if !slices.Contains(ks, want) {
		t.Errorf("keys %q: no %q", ks, want)
	}
	for _, k := range ks {
		if strings.Contains(strings.ToLower(k), strings.ToLower(token)) {
			t.Errorf("key %q holds the token", k)
		}
	}
}

// TestLowerSharesEntry: email:{email|lower} gives Ann@X.io and ann@x.io one
// entry.
func TestLowerSharesEntry(t *testing.T) {
	f := newAccounts(ann())
	r, c, client := setupAccounts(t, f)
	for _, e := range []string{"Ann@X.io", "ann@x.io", "ANN@X.IO"} {
		if id, err := r.ByEmail(ctx, e); err != nil || id != 1 {
			t.Fatalf("ByEmail(%s) = %d, %v", e, id, err)
		}
		wait(t, c)
	}
	if n := f.count("ByEmail"); n != 1 {
		t.Errorf("wrapped ByEmail called %d times, want 1 (one entry for every case)", n)
	}
	if ks := keys(t, client, c); !slices.Contains(ks, c.RedisKey("email:ann@x.io")) {
		t.Errorf("keys %q: no email:ann@x.io", ks)
	}
}

// TestUnkeyedParameter: ListTeam's trace is unkeyed=: calls that differ only
// in it share one entry.
func TestUnkeyedParameter(t *testing.T) {
	a := ann()
	f := newAccounts(a)
	r, c, _ := setupAccounts(t, f)
	for _, trace := range []string{"req-1", "req-2", "req-3"} {
		l, err := r.ListTeam(ctx, 3, trace)
		if err != nil || len(l) != 1 || l[0].ID != 1 {
			t.Fatalf("ListTeam(3, %s) = %+v, %v", trace, l, err)
		}
		wait(t, c)
	}
	if n := f.count("ListTeam"); n != 1 || !slices.Equal(f.traces, []string{"req-1"}) {
		t.Errorf("wrapped ListTeam called %d times with traces %q, want once with req-1", n, f.traces)
	}
	if _, err := r.ListTeam(ctx, 4, "req-1"); err != nil || f.count("ListTeam") != 2 {
		t.Errorf("ListTeam(4): %v, %d calls; another team is another entry", err, f.count("ListTeam"))
	}
}

// TestWithoutErrorOrContext: Count returns no error, ActiveIDs and
// DeleteInactivated take no context; each is cached or invalidates.
func TestWithoutErrorOrContext(t *testing.T) {
	f := newAccounts(ann(), &Account{ID: 2}, &Account{ID: 3, Active: true})
	r, c, _ := setupAccounts(t, f)
	for range 2 {
		if n := r.Count(ctx); n != 3 {
			t.Fatalf("Count = %d, want 3", n)
		}
		if ids, err := r.ActiveIDs(); err != nil || !slices.Equal(ids, []int64{1, 3}) {
			t.Fatalf("ActiveIDs = %v, %v", ids, err)
		}
		wait(t, c)
	}
	if a, b := f.count("Count"), f.count("ActiveIDs"); a != 1 || b != 1 {
		t.Fatalf("wrapped Count, ActiveIDs called %d, %d times, want 1, 1", a, b)
	}
	if err := r.DeleteInactivated(); err != nil {
		t.Fatal(err)
	}
	if n := r.Count(ctx); n != 2 {
		t.Errorf("Count after DeleteInactivated = %d, want 2", n)
	}
	if ids, err := r.ActiveIDs(); err != nil || !slices.Equal(ids, []int64{1, 3}) {
		t.Errorf("ActiveIDs after DeleteInactivated = %v, %v", ids, err)
	}
	if a, b := f.count("Count"), f.count("ActiveIDs"); a != 2 || b != 2 {
		t.Errorf("wrapped Count, ActiveIDs called %d, %d times, want 2, 2 (DeleteInactivated dropped the accounts tag)", a, b)
	}
}

// TestDeleteManyDropsEveryListedID: keys=account:{ids[]} deletes one key
// per element of ids, and no other.
func TestDeleteManyDropsEveryListedID(t *testing.T) {
	f := newAccounts(&Account{ID: 1}, &Account{ID: 2}, &Account{ID: 3})
	r, c, _ := setupAccounts(t, f)
	for range 2 {
		for id := range int64(3) {
			if a, err := r.Get(ctx, id+1); err != nil || a.ID != id+1 {
				t.Fatalf("Get(%d) = %+v, %v", id+1, a, err)
			}
		}
		wait(t, c)
	}
	if n := f.count("Get"); n != 3 {
		t.Fatalf("wrapped Get called %d times, want 3", n)
	}
	if err := r.DeleteMany(ctx, []int64{1, 2}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{1, 2} {
		if _, err := r.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%d) after DeleteMany: err = %v, want ErrNotFound", id, err)
		}
	}
	if a, err := r.Get(ctx, 3); err != nil || a.ID != 3 {
		t.Errorf("Get(3) = %+v, %v", a, err)
	}
	if n := f.count("Get"); n != 5 {
		t.Errorf("wrapped Get called %d times, want 5 (1 and 2 dropped, 3 kept)", n)
	}
}

// TestCreateManyInvalidatesResultTags: tags=account:{result[].ID} drops the
// cached not-found of each account the create returns.
func TestCreateManyInvalidatesResultTags(t *testing.T) {
	f := newAccounts()
	r, c, _ := setupAccounts(t, f)
	for round := range 2 {
		for _, id := range []int64{100, 101} {
			_, err := r.Get(ctx, id)
			if !errors.Is(err, ErrNotFound) || round > 0 && err != ErrNotFound {
				t.Fatalf("Get(%d) #%d: err = %v, want ErrNotFound", id, round, err)
			}
		}
		wait(t, c)
	}
	if n := f.count("Get"); n != 2 {
		t.Fatalf("wrapped Get called %d times, want 2 (the not-founds are cached)", n)
	}
	created, err := r.CreateMany(ctx, []string{"a@x.io", "b@x.io"})
	if err != nil || len(created) != 2 || created[0].ID != 100 || created[1].ID != 101 {
		t.Fatalf("CreateMany = %+v, %v", created, err)
	}
	for _, a := range created {
		got, err := r.Get(ctx, a.ID)
		if err != nil || got.ID != a.ID || *got.Email != *a.Email {
			t.Errorf("Get(%d) after CreateMany = %+v, %v; want the new account", a.ID, got, err)
		}
	}
	if n := f.count("Get"); n != 4 {
		t.Errorf("wrapped Get called %d times, want 4 (each account:{id} tag dropped)", n)
	}
}

// TestNilPointerInInvalidation: Update's email:{a.Email|lower} cannot be
// rendered with a nil Email; the write goes through, account:{a.ID} is
// still dropped, and the key that could not be rendered is counted.
func TestNilPointerInInvalidation(t *testing.T) {
	f := newAccounts(&Account{ID: 1, Roles: []string{"dev"}})
	r, c, _ := setupAccounts(t, f)
	cacheAccount(t, r, c, "dev")
	if err := r.Update(ctx, &Account{ID: 1, Roles: []string{"ops"}}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if n := f.count("Update"); n != 1 {
		t.Errorf("wrapped Update called %d times, want 1", n)
	}
	if a, err := r.Get(ctx, 1); err != nil || a.Roles[0] != "ops" {
		t.Errorf("Get after Update = %+v, %v; want the updated account (account:1 dropped)", a, err)
	}
	if n := f.count("Get"); n != 2 {
		t.Errorf("wrapped Get called %d times, want 2", n)
	}
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Unrendered != 1 {
		t.Errorf("Stats.Unrendered = %d, want 1 (email:{a.Email|lower})", s.Unrendered)
	}
}

// TestWriteThatRendersNothing: every template of Merge passes through a,
// which is nil: no key and no tag can be rendered, yet the write changed
// account 1. The namespace is dropped, so no read after it gets the old
// account.
func TestWriteThatRendersNothing(t *testing.T) {
	f := newAccounts(&Account{ID: 1, Roles: []string{"dev"}})
	r, c, _ := setupAccounts(t, f)
	cacheAccount(t, r, c, "dev")
	if err := r.Merge(ctx, nil); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if a, err := r.Get(ctx, 1); err != nil || a.Roles[0] != "merged" {
		t.Errorf("Get after Merge(nil) = %+v, %v; want the merged account (the namespace dropped)", a, err)
	}
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Unrendered != 2 {
		t.Errorf("Stats.Unrendered = %d, want 2 (account:{a.ID} and email:{a.Email|lower})", s.Unrendered)
	}
}

// TestLoopThatRendersNothing: Archive's key loops over its result. An
// empty result is nothing to drop; a result of nils is a write the cache
// cannot name, and drops the namespace.
func TestLoopThatRendersNothing(t *testing.T) {
	f := newAccounts(&Account{ID: 1, Roles: []string{"dev"}})
	r, c, _ := setupAccounts(t, f)
	cacheAccount(t, r, c, "dev")
	if _, err := r.Archive(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := f.count("Get"); n != 1 {
		t.Errorf("wrapped Get called %d times after an Archive of nothing, want 1 (nothing dropped)", n)
	}
	if _, err := r.Archive(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if a, err := r.Get(ctx, 1); err != nil || a.Roles[0] != "archived" {
		t.Errorf("Get after an Archive that rendered nothing = %+v, %v; want the archived account (the namespace dropped)", a, err)
	}
}

// TestBatchDuplicates: a batch get with duplicate ids returns each found
// element once, in the order of first appearance, on a miss and on hits.
func TestBatchDuplicates(t *testing.T) {
	f := newAccounts(&Account{ID: 1}, &Account{ID: 2}, &Account{ID: 3}, &Account{ID: 4})
	r, c, _ := setupAccounts(t, f)
	ids := func(as []*Account) []int64 {
		var out []int64
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for i := range 2 {
		got, err := r.GetMany(ctx, []int64{3, 1, 3, 9, 2, 1})
		if err != nil || !slices.Equal(ids(got), []int64{3, 1, 2}) {
			t.Fatalf("GetMany #%d = %v, %v; want 3 1 2", i, ids(got), err)
		}
		wait(t, c)
	}
	got, err := r.GetMany(ctx, []int64{4, 2, 4})
	if err != nil || !slices.Equal(ids(got), []int64{4, 2}) {
		t.Fatalf("GetMany = %v, %v; want 4 2", ids(got), err)
	}
	for _, b := range f.batch {
		s := slices.Clone(b)
		slices.Sort(s)
		if len(slices.Compact(s)) != len(b) {
			t.Errorf("wrapped GetMany got duplicate ids %v", b)
		}
	}
	// The first call loads 3 1 9 2 (9 is not found and not cached, so the
	// second loads it again), the third loads 4.
	if n := f.count("GetMany"); n != 3 {
		t.Errorf("wrapped GetMany called %d times (ids %v), want 3", n, f.batch)
	}
}

// TestTimeKeepsUTC: a time.Time in UTC comes back from a hit in UTC, equal
// to what was loaded.
func TestTimeKeepsUTC(t *testing.T) {
	f := newAccounts(ann())
	r, c, _ := setupAccounts(t, f)
	loaded, err := r.Get(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	hit, err := r.Get(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.count("Get"); n != 1 {
		t.Fatalf("wrapped Get called %d times, want 1", n)
	}
	want := clone(loaded)
	want.Created = want.Created.Round(0)
	if !reflect.DeepEqual(hit, want) {
		t.Errorf("hit = %+v (Created %v), want %+v (Created %v)", hit, hit.Created, want, want.Created)
	}
	if hit.Created.Location() != time.UTC {
		t.Errorf("hit.Created.Location() = %v, want UTC", hit.Created.Location())
	}
	if !hit.Created.Equal(f.stored(1).Created) {
		t.Errorf("hit.Created = %v, want the instant %v", hit.Created, f.stored(1).Created)
	}
}

// TestCallersGetTheirOwnValue: a caller that mutates what it was given, on
// a miss or on a hit, changes neither the cache nor another caller's value.
func TestCallersGetTheirOwnValue(t *testing.T) {
	f := newAccounts(ann())
	r, c, _ := setupAccounts(t, f)
	want := f.stored(1)
	mutate := func(a *Account) {
		a.Roles[0] = "root"
		a.Roles = append(a.Roles, "extra")
		*a.Email = "mallory@x.io"
		a.Profile.Bio = "pwned"
		a.Stars = 99
	}
	a, err := r.Get(ctx, 1) // the miss
	if err != nil {
		t.Fatal(err)
	}
	mutate(a)
	wait(t, c)
	for i := range 3 {
		hit, err := r.Get(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(hit, want) {
			t.Fatalf("Get #%d after a caller's mutation = %+v, want %+v", i, hit, want)
		}
		mutate(hit)
	}
	if n := f.count("Get"); n != 1 {
		t.Errorf("wrapped Get called %d times, want 1", n)
	}

	// A slice result: replacing an element and changing one in place.
	for range 2 {
		l, err := r.ListTeam(ctx, 3, "")
		if err != nil || len(l) != 1 || !reflect.DeepEqual(l[0], want) {
			t.Fatalf("ListTeam = %+v, %v; want [%+v]", l, err, want)
		}
		l[0].Roles[1] = "guest"
		l[0] = &Account{ID: 666}
		wait(t, c)
	}
	if n := f.count("ListTeam"); n != 1 {
		t.Errorf("wrapped ListTeam called %d times, want 1", n)
	}

	// Concurrent callers of one miss, whether or not they join one load,
	// never share a pointer, a slice or a map.
	f.mu.Lock()
	f.byID[2] = clone(ann())
	f.byID[2].ID = 2
	f.gate = make(chan struct{})
	f.mu.Unlock()
	got := make([]*Account, 8)
	var started, done sync.WaitGroup
	for i := range got {
		started.Add(1)
		done.Go(func() {
			started.Done()
			a, err := r.Get(ctx, 2)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = a
		})
	}
	started.Wait()
	close(f.gate) // the forced join is runtime's TestJoinedCallersGetTheirOwnValue; here any interleaving

	done.Wait()
	for i, a := range got {
		if a == nil || a.ID != 2 {
			t.Fatalf("caller %d got %+v", i, a)
		}
		for _, b := range got[:i] {
			if a == b || a.Email == b.Email || a.Profile == b.Profile || &a.Roles[0] == &b.Roles[0] {
				t.Errorf("two callers share a value: %p %p", a, b)
			}
		}
	}
}

// recorder is a runtime.Metrics hook that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []runtime.Event
}

func (r *recorder) Observe(e runtime.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// take returns the events recorded since the last take.
func (r *recorder) take() []runtime.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	es := r.events
	r.events = nil
	return es
}

// expectMethod checks that every event of es names method, and that es
// holds each of the ops.
func expectMethod(t *testing.T, call, method string, es []runtime.Event, ops ...runtime.Op) {
	t.Helper()
	seen := map[runtime.Op]bool{}
	for _, e := range es {
		seen[e.Op] = true
		if e.Method != method {
			t.Errorf("%s: %s event of %q has Method %q, want %q", call, e.Op, e.Key, e.Method, method)
		}
	}
	for _, op := range ops {
		if !seen[op] {
			t.Errorf("%s: no %s event among %+v", call, op, es)
		}
	}
}

// TestEventsNameTheirMethod: every event of a generated get (one value or
// a batch), put and invalidate carries the method as Interface.Method, also
// for a method without a context, so that a metrics hook can group by it.
func TestEventsNameTheirMethod(t *testing.T) {
	rec := &recorder{}
	c, _ := newCache(t, runtime.WithMetrics(rec))
	f := newFake(&User{ID: "1", TeamID: 7, Name: "ann"}, &User{ID: "2", TeamID: 7, Name: "bob"})
	r := NewUserRepoCache(f, c)

	if _, err := r.Find(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	expectMethod(t, "Find (miss)", "UserRepo.Find", rec.take(), runtime.OpMiss, runtime.OpLoad, runtime.OpSet)
	if _, err := r.Find(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	expectMethod(t, "Find (hit)", "UserRepo.Find", rec.take(), runtime.OpHit)

	if us, err := r.FindMany(ctx, []UserID{"1", "2"}); err != nil || len(us) != 2 {
		t.Fatalf("FindMany = %v, %v", us, err)
	}
	wait(t, c)
	expectMethod(t, "FindMany", "UserRepo.FindMany", rec.take(), runtime.OpHit, runtime.OpMiss, runtime.OpLoad, runtime.OpSet)

	if _, err := r.Save(ctx, &User{ID: "2", TeamID: 7, Name: "bo"}); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	expectMethod(t, "Save", "UserRepo.Save", rec.take(), runtime.OpInvalidate, runtime.OpSet)

	if err := r.Delete(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	expectMethod(t, "Delete", "UserRepo.Delete", rec.take(), runtime.OpInvalidate)

	// A method without a context invalidates on context.Background(),
	// which names it too.
	a := NewAccountRepoCache(newAccounts(ann()), c)
	if err := a.DeleteInactivated(); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	expectMethod(t, "DeleteInactivated", "AccountRepo.DeleteInactivated", rec.take(), runtime.OpInvalidate)
}

// TestL1WithoutNearCache: Find says l1=1m, and its Cache has no near cache
// (no WithL1): it behaves as a get without l1=. Hits come from Redis, the
// key lives for its ttl, a put writes through and an invalidation drops it.
func TestL1WithoutNearCache(t *testing.T) {
	rec := &recorder{}
	c, client := newCache(t, runtime.WithMetrics(rec))
	f := newFake(&User{ID: "1", TeamID: 7, Name: "ann"})
	r := NewUserRepoCache(f, c)
	for i := range 3 {
		if u, err := r.Find(ctx, "1"); err != nil || u.Name != "ann" {
			t.Fatalf("Find #%d = %+v, %v", i, u, err)
		}
		wait(t, c)
	}
	if n := f.count("Find"); n != 1 {
		t.Errorf("wrapped Find called %d times, want 1 (a miss, then hits)", n)
	}
	hits := 0
	for _, e := range rec.take() {
		if e.Op == runtime.OpHit {
			hits++
			if e.L1 {
				t.Errorf("hit of %q served from a near cache that the Cache does not have", e.Key)
			}
		}
	}
	if hits != 2 {
		t.Errorf("%d hits, want 2", hits)
	}
	if pttl, err := client.PTTL(ctx, c.Namespace()+":user:1").Result(); err != nil || pttl <= time.Minute || pttl > 5*time.Minute {
		t.Errorf("PTTL of user:1 = %v, %v; want the ttl, 5m (l1=1m does not shorten it)", pttl, err)
	}
	if _, err := r.Save(ctx, &User{ID: "1", TeamID: 7, Name: "amy"}); err != nil {
		t.Fatal(err)
	}
	if u, err := r.Find(ctx, "1"); err != nil || u.Name != "amy" || f.count("Find") != 1 {
		t.Errorf("Find after Save = %+v, %v, %d wrapped calls; want amy, written through", u, err, f.count("Find"))
	}
	if err := r.Delete(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if u, err := r.Find(ctx, "1"); !errors.Is(err, ErrNotFound) || f.count("Find") != 2 {
		t.Errorf("Find after Delete = %+v, %v, %d wrapped calls; want ErrNotFound from a second call", u, err, f.count("Find"))
	}
}
