package cachemetrics_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/cachemetrics"
	"github.com/repocache/repocache/runtime"
)

type series struct {
	ns, method string
	n          [cachemetrics.NumCounters]int64
	adds       int // Add calls, those of 0 included
	h          [cachemetrics.NumHists]time.Duration
	events     int
}

type sink struct{}

func (sink) Add(s *series, c cachemetrics.Counter, n int64)          { s.n[c] += n; s.adds++ }
func (sink) Observe(s *series, h cachemetrics.Hist, d time.Duration) { s.h[h] += d }
func (sink) Event(s *series, _ runtime.Event)                        { s.events++ }

func newHooks(maxMethods int) *cachemetrics.Hooks[series] {
	return cachemetrics.NewHooks[series](sink{}, maxMethods, func(ns, method string) *series {
		return &series{ns: ns, method: method}
	})
}

func find(t *testing.T, hs *cachemetrics.Hooks[series], ns, method string) *series {
	t.Helper()
	for _, n := range hs.Snapshot() {
		for _, s := range n.Series {
			if n.Name == ns && s.method == method {
				return s
			}
		}
	}
	t.Fatalf("no series %s/%s", ns, method)
	return nil
}

// TestRecord: each Op feeds its counters and histograms; bypass and
// unrendered events take their method from Key; a load that did not fail
// adds 0 load errors; an unknown Op adds nothing but is still an Event.
func TestRecord(t *testing.T) {
	hs := newHooks(10)
	h := hs.Hook("ns")
	if hs.Hook("ns") != h {
		t.Error("two hooks for one namespace")
	}
	boom := errors.New("boom")
	for _, e := range []runtime.Event{
		{Op: runtime.OpHit, Method: "M", Duration: time.Millisecond, L1: true},
		{Op: runtime.OpLoad, Method: "M", Duration: time.Second},
		{Op: runtime.OpLoad, Method: "M", Err: boom},
		{Op: runtime.OpInvalidate, Method: "M", Tag: true, Count: 3},
		{Op: runtime.OpInvalidate, Method: "M", Count: 1},
		{Op: runtime.OpBypass, Key: "Repo.Find", Method: "Repo.Find"},
		{Op: runtime.Op(200), Method: "M"},
	} {
		h.Observe(e)
	}
	m := find(t, hs, "ns", "M")
	want := map[cachemetrics.Counter]int64{
		cachemetrics.Hits: 1, cachemetrics.L1Hits: 1, cachemetrics.Loads: 2, cachemetrics.LoadErrors: 1,
		cachemetrics.TagInvalidations: 1, cachemetrics.KeyInvalidations: 1, cachemetrics.InvalidatedKeys: 4,
	}
	for c := range cachemetrics.NumCounters {
		if m.n[c] != want[c] {
			t.Errorf("counter %d = %d, want %d", c, m.n[c], want[c])
		}
	}
	if m.adds != 10 || m.events != 6 {
		t.Errorf("%d Add calls and %d events, want 10 and 6", m.adds, m.events)
	}
	if m.h[cachemetrics.HitDuration] != time.Millisecond || m.h[cachemetrics.LoadDuration] != time.Second {
		t.Errorf("histograms %v", m.h)
	}
	if b := find(t, hs, "ns", "Repo.Find"); b.n[cachemetrics.Bypasses] != 1 {
		t.Errorf("bypasses %d, want 1", b.n[cachemetrics.Bypasses])
	}
}

// TestMethodsAreBounded: past maxMethods distinct methods, in all
// namespaces together, events go to OtherMethod; "" is UnknownMethod.
func TestMethodsAreBounded(t *testing.T) {
	hs := newHooks(3)
	a, b := hs.Hook("a"), hs.Hook("b")
	hit := func(h *cachemetrics.Hook[series], method string) {
		h.Observe(runtime.Event{Op: runtime.OpHit, Method: method})
	}
	hit(a, "M1")
	hit(a, "")
	hit(b, "M2")
	for i := range 50 {
		hit(a, "id:"+strconv.Itoa(i))
	}
	hit(b, "M1")
	hit(a, "")
	for _, c := range []struct {
		ns, method string
		n          int64
	}{{"a", "M1", 1}, {"a", cachemetrics.UnknownMethod, 2}, {"a", cachemetrics.OtherMethod, 50}, {"b", "M2", 1}, {"b", "M1", 1}} {
		if got := find(t, hs, c.ns, c.method).n[cachemetrics.Hits]; got != c.n {
			t.Errorf("%s/%s: %d hits, want %d", c.ns, c.method, got, c.n)
		}
	}
}

// TestNearCacheEventsMakeNoSeries: the near cache's events, one per key
// another process changed and without a method, are counted from Stats, so
// they take no method's place.
func TestNearCacheEventsMakeNoSeries(t *testing.T) {
	hs := newHooks(1)
	h := hs.Hook("ns")
	for range 3 {
		h.Observe(runtime.Event{Op: runtime.OpL1Invalidate, Key: "k", Count: 1})
		h.Observe(runtime.Event{Op: runtime.OpL1Flush, Count: 5})
	}
	h.Observe(runtime.Event{Op: runtime.OpHit, Method: "M"})
	if m := find(t, hs, "ns", "M"); m.n[cachemetrics.Hits] != 1 {
		t.Errorf("M: %d hits, want 1 (its own series, not %s)", m.n[cachemetrics.Hits], cachemetrics.OtherMethod)
	}
	for _, n := range hs.Snapshot() {
		for _, s := range n.Series {
			if s.method != "M" {
				t.Errorf("series %s/%s made by the near cache's events", n.Name, s.method)
			}
		}
	}
}

// TestBuckets: sorted, deduplicated, positive.
func TestBuckets(t *testing.T) {
	got := cachemetrics.Buckets([]time.Duration{time.Second, 0, time.Millisecond, -1, time.Second})
	if len(got) != 2 || got[0] != time.Millisecond || got[1] != time.Second {
		t.Errorf("Buckets: %v", got)
	}
	if cachemetrics.Buckets(nil) != nil {
		t.Error("Buckets(nil) not nil")
	}
	if d := cachemetrics.DefaultBuckets(); d[0] != 10*time.Microsecond || d[len(d)-1] != 10*time.Second {
		t.Errorf("DefaultBuckets %v", d)
	}
}

// TestObserveAllocatesNothing: the hot path, once a method has a series.
func TestObserveAllocatesNothing(t *testing.T) {
	h := newHooks(10).Hook("ns")
	e := runtime.Event{Op: runtime.OpHit, Method: "M", Duration: time.Millisecond}
	h.Observe(e)
	if n := testing.AllocsPerRun(100, func() { h.Observe(e) }); n != 0 {
		t.Errorf("%v allocations per Observe", n)
	}
}
