package ratelimit

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/redistest"
)

// fakeClock is a server time the test sets, in microseconds since the
// epoch. The scripts take it instead of TIME, so that boundaries can be hit
// to the microsecond; everything else runs on Redis as in production.
type fakeClock struct{ us atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.us.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixMicro())
	return c
}

func (c *fakeClock) now() int64      { return c.us.Load() }
func (c *fakeClock) time() time.Time { return time.UnixMicro(c.now()) }

type step struct {
	at        time.Duration // since the start
	peek      bool
	allowed   bool
	remaining int
	retry     time.Duration
	reset     time.Duration // since the start
}

func run(t *testing.T, l Limiter, clk *fakeClock, steps []step) {
	t.Helper()
	ctx := context.Background()
	start := clk.time()
	for i, s := range steps {
		clk.us.Store(start.Add(s.at).UnixMicro())
		f := l.Allow
		if s.peek {
			f = l.Peek
		}
		r, err := f(ctx, "alice")
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want := Result{Allowed: s.allowed, Limit: r.Limit, Remaining: s.remaining, RetryAfter: s.retry, Reset: start.Add(s.reset)}
		if r.Allowed != want.Allowed || r.Remaining != want.Remaining || r.RetryAfter != want.RetryAfter || !r.Reset.Equal(want.Reset) {
			t.Fatalf("step %d at +%v (peek %v):\n got %+v\nwant %+v", i, s.at, s.peek, r, want)
		}
	}
}

func TestSlidingWindowBoundary(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		clk := newFakeClock()
		l, err := NewSlidingWindow(b.Client, 3, time.Second, WithPrefix(b.Namespace))
		if err != nil {
			t.Fatal(err)
		}
		l.now = clk.now
		const us = time.Microsecond
		run(t, l, clk, []step{
			{at: 0, peek: true, allowed: true, remaining: 3, reset: 0},
			{at: 0, allowed: true, remaining: 2, reset: time.Second},
			{at: 100 * time.Millisecond, allowed: true, remaining: 1, reset: 1100 * time.Millisecond},
			{at: 200 * time.Millisecond, allowed: true, remaining: 0, reset: 1200 * time.Millisecond},
			// Full: the first entry leaves at exactly +1s.
			{at: 200 * time.Millisecond, peek: true, allowed: false, remaining: 0, retry: 800 * time.Millisecond, reset: 1200 * time.Millisecond},
			{at: 999999 * us, allowed: false, remaining: 0, retry: us, reset: 1200 * time.Millisecond},
			{at: time.Second, peek: true, allowed: true, remaining: 1, reset: 1200 * time.Millisecond},
			{at: time.Second, allowed: true, remaining: 0, reset: 2 * time.Second},
			// No burst at the old window's edge: the +100ms entry is still in.
			{at: time.Second + 50*time.Millisecond, allowed: false, remaining: 0, retry: 50 * time.Millisecond, reset: 2 * time.Second},
			{at: 1100 * time.Millisecond, allowed: true, remaining: 0, reset: 2100 * time.Millisecond},
			// Everything expired.
			{at: 5 * time.Second, peek: true, allowed: true, remaining: 3, reset: 5 * time.Second},
		})
	})
}

func TestGCRABoundary(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		clk := newFakeClock()
		// 2 per second, burst 2: one request every 500ms after the burst.
		l, err := NewGCRA(b.Client, 2, time.Second, 2, WithPrefix(b.Namespace))
		if err != nil {
			t.Fatal(err)
		}
		l.now = clk.now
		const ms = time.Millisecond
		run(t, l, clk, []step{
			{at: 0, peek: true, allowed: true, remaining: 2, reset: 0},
			{at: 0, allowed: true, remaining: 1, reset: 500 * ms},
			{at: 0, allowed: true, remaining: 0, reset: time.Second},
			{at: 0, allowed: false, remaining: 0, retry: 500 * ms, reset: time.Second},
			{at: 500*ms - time.Microsecond, allowed: false, remaining: 0, retry: time.Microsecond, reset: time.Second},
			{at: 500 * ms, allowed: true, remaining: 0, reset: 1500 * ms},
			{at: 700 * ms, peek: true, allowed: false, remaining: 0, retry: 300 * ms, reset: 1500 * ms},
			{at: 1500 * ms, peek: true, allowed: true, remaining: 2, reset: 1500 * ms},
		})
	})
}

func TestLimitOfOne(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		for name, mk := range map[string]func() (Limiter, *clock){
			"sliding": func() (Limiter, *clock) {
				l, err := NewSlidingWindow(b.Client, 1, time.Minute, WithPrefix(b.Namespace+":sw"))
				if err != nil {
					t.Fatal(err)
				}
				return l, &l.now
			},
			"gcra": func() (Limiter, *clock) {
				l, err := NewGCRA(b.Client, 1, time.Minute, 1, WithPrefix(b.Namespace+":gcra"))
				if err != nil {
					t.Fatal(err)
				}
				return l, &l.now
			},
		} {
			t.Run(name, func(t *testing.T) {
				clk := newFakeClock()
				l, now := mk()
				*now = clk.now
				run(t, l, clk, []step{
					{at: 0, allowed: true, remaining: 0, reset: time.Minute},
					{at: 0, allowed: false, remaining: 0, retry: time.Minute, reset: time.Minute},
					{at: 59 * time.Second, allowed: false, remaining: 0, retry: time.Second, reset: time.Minute},
					{at: time.Minute, allowed: true, remaining: 0, reset: 2 * time.Minute},
				})
			})
		}
	})
}
