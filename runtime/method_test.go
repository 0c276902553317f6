package runtime_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// recorder keeps every event it observes.
type recorder struct {
	mu     sync.Mutex
	events []runtime.Event
}

func (r *recorder) Observe(e runtime.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) ops() map[runtime.Op][]runtime.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[runtime.Op][]runtime.Event{}
	for _, e := range r.events {
		m[e.Op] = append(m[e.Op], e)
	}
	return m
}

// TestEventsCarryTheMethod: a call that names its method (the Method call
// option for reads and Put, WithMethod for invalidations) has it on every
// event, and every hook given to WithMetrics sees every event.
func TestEventsCarryTheMethod(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	a, z := &recorder{}, &recorder{}
	c := runtime.New(b.Client, runtime.WithNamespace(b.Namespace), runtime.WithMetrics(a), runtime.WithMetrics(z), runtime.WithStoreWait(time.Second))
	load := func(context.Context) (string, error) { return "v", nil }
	for range 2 {
		if _, err := runtime.GetCached(ctx, c, "k", load, runtime.TTL(time.Minute), runtime.Tags("t"), runtime.Method("Repo.Find")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	runtime.Put(ctx, c, "k", "w", runtime.TTL(time.Minute), runtime.Tags("t"), runtime.Method("Repo.Save"))
	if err := c.InvalidateTags(runtime.WithMethod(ctx, "Repo.Delete"), "t"); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(runtime.WithMethod(ctx, "Repo.Delete"), "k"); err != nil {
		t.Fatal(err)
	}
	got := a.ops()
	want := map[runtime.Op][]string{
		runtime.OpMiss:       {"Repo.Find"},
		runtime.OpLoad:       {"Repo.Find"},
		runtime.OpHit:        {"Repo.Find"},
		runtime.OpSet:        {"Repo.Find", "Repo.Save"},
		runtime.OpInvalidate: {"Repo.Save", "Repo.Delete", "Repo.Delete"},
	}
	for op, methods := range want {
		if len(got[op]) != len(methods) {
			t.Errorf("%v: %d events, want %d: %+v", op, len(got[op]), len(methods), got[op])
			continue
		}
		for i, m := range methods {
			if got[op][i].Method != m {
				t.Errorf("%v event %d: method %q, want %q", op, i, got[op][i].Method, m)
			}
		}
	}
	inv := got[runtime.OpInvalidate]
	if len(inv) == 3 && (!inv[0].Tag || !inv[1].Tag || inv[2].Tag) {
		t.Errorf("Tag on the invalidations: %v %v %v, want true true false", inv[0].Tag, inv[1].Tag, inv[2].Tag)
	}
	if len(z.ops()[runtime.OpHit]) != 1 || len(z.events) != len(a.events) {
		t.Errorf("the second hook saw %d events, the first %d", len(z.events), len(a.events))
	}
}
