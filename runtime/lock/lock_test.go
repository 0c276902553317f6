package lock_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime/lock"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func newClient(t *testing.T, b *redistest.Backend, opts ...lock.Option) *lock.Client {
	t.Helper()
	c, err := lock.New(b.Client, append([]lock.Option{lock.WithPrefix(b.Namespace), lock.WithLogger(discard)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestObtainRelease(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newClient(t, b)
		l, err := c.Obtain(ctx, "job:1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Obtain(ctx, "job:1", time.Minute); !errors.Is(err, lock.ErrNotObtained) {
			t.Fatalf("second Obtain: err = %v, want ErrNotObtained", err)
		}
		other, err := c.Obtain(ctx, "job:2", time.Minute)
		if err != nil {
			t.Fatalf("another key: %v", err)
		}
		if l.Token() == other.Token() || len(l.Token()) < 22 {
			t.Fatalf("tokens %q and %q: want distinct random tokens of 128 bits", l.Token(), other.Token())
		}
		ttl, err := l.TTL(ctx)
		if err != nil || ttl <= 50*time.Second || ttl > time.Minute {
			t.Fatalf("TTL = %v, %v; want about a minute", ttl, err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("second Release: err = %v, want ErrNotHeld", err)
		}
		l2, err := c.Obtain(ctx, "job:1", time.Minute)
		if err != nil {
			t.Fatalf("Obtain after Release: %v", err)
		}
		if l2.Fence() <= l.Fence() {
			t.Fatalf("fence %d after %d: want increasing", l2.Fence(), l.Fence())
		}
	})
}

// TestKeys checks the key layout: every key has a TTL, the user's key is
// escaped, and the lock and its counter share a slot.
func TestKeys(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newClient(t, b, lock.WithFenceTTL(time.Hour))
		if _, err := c.Obtain(ctx, "a{b}:c", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		lockKey := b.Namespace + ":{a%7Bb%7D%3Ac}"
		keys, err := b.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Duration{lockKey: 30 * time.Second, lockKey + ":fence": time.Hour}
		if len(keys) != len(want) {
			t.Fatalf("keys = %q, want %d keys", keys, len(want))
		}
		for _, k := range keys {
			max, ok := want[k]
			if !ok {
				t.Fatalf("unexpected key %q", k)
			}
			ttl, err := b.Client.PTTL(ctx, k).Result()
			if err != nil || ttl <= 0 || ttl > max {
				t.Fatalf("PTTL %s = %v, %v; want in (0, %v]", k, ttl, err, max)
			}
		}
		if b.Cluster {
			s1, _ := b.Client.ClusterKeySlot(ctx, lockKey).Result()
			s2, _ := b.Client.ClusterKeySlot(ctx, lockKey+":fence").Result()
			if s1 != s2 {
				t.Fatalf("slots %d and %d: want one", s1, s2)
			}
		}
	})
}

func TestNotHeldAfterTakeover(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newClient(t, b)
		l, err := c.Obtain(ctx, "k", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// Another holder after expiry: same key, other token.
		if err := b.Client.Set(ctx, b.Namespace+":{k}", "someone-else", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if err := l.Refresh(ctx, time.Minute); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Refresh: %v, want ErrNotHeld", err)
		}
		if _, err := l.TTL(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("TTL: %v, want ErrNotHeld", err)
		}
		if err := l.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Errorf("Release: %v, want ErrNotHeld", err)
		}
		if v, _ := b.Client.Get(ctx, b.Namespace+":{k}").Result(); v != "someone-else" {
			t.Errorf("Release deleted another holder's lock: value %q", v)
		}
	})
}

func TestRefresh(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newClient(t, b)
		l, err := c.Obtain(ctx, "k", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Refresh(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		if ttl, err := l.TTL(ctx); err != nil || ttl < 59*time.Minute {
			t.Fatalf("TTL after Refresh(1h) = %v, %v", ttl, err)
		}
		if err := l.Refresh(ctx, 0); !errors.Is(err, lock.ErrInvalidTTL) {
			t.Fatalf("Refresh(0): %v, want ErrInvalidTTL", err)
		}
	})
}

// signalRetry is a retry strategy that reports each failed attempt on a
// channel and retries quickly.
type signalRetry chan int

func (s signalRetry) Backoff(attempt int) (time.Duration, bool) {
	s <- attempt
	return time.Millisecond, true
}

func TestRetryWaitsForRelease(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newClient(t, b)
		holder, err := c.Obtain(ctx, "k", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		attempts := make(signalRetry)
		type result struct {
			l   *lock.Lock
			err error
		}
		done := make(chan result, 1)
		go func() {
			l, err := c.Obtain(ctx, "k", time.Minute, lock.WithRetry(attempts))
			done <- result{l, err}
		}()
		// Let it fail twice, then release while it waits.
		<-attempts
		<-attempts
		if err := holder.Release(ctx); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case <-attempts: // a try raced with the release
				continue
			case r := <-done:
				if r.err != nil {
					t.Fatalf("waiter: %v", r.err)
				}
				if r.l.Fence() <= holder.Fence() {
					t.Fatalf("waiter fence %d <= holder fence %d", r.l.Fence(), holder.Fence())
				}
				return
			case <-time.After(10 * time.Second):
				t.Fatal("waiter did not obtain the lock after Release")
			}
		}
	})
}

func TestRetryBoundedByContextAndLimit(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newClient(t, b)
		if _, err := c.Obtain(ctx, "k", time.Minute); err != nil {
			t.Fatal(err)
		}
		tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := c.Obtain(tctx, "k", time.Minute, lock.WithRetry(lock.LinearBackoff(5*time.Millisecond)))
		if !errors.Is(err, lock.ErrNotObtained) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Obtain with expiring ctx: %v, want ErrNotObtained and DeadlineExceeded", err)
		}
		var calls atomic.Int32
		counting := lock.RetryFunc(func(int) (time.Duration, bool) { calls.Add(1); return time.Millisecond, true })
		_, err = c.Obtain(ctx, "k", time.Minute, lock.WithRetry(lock.LimitRetry(counting, 3)))
		if !errors.Is(err, lock.ErrNotObtained) {
			t.Fatalf("Obtain with LimitRetry: %v", err)
		}
		// Three attempts: two waits through the inner strategy.
		if n := calls.Load(); n != 2 {
			t.Fatalf("inner strategy called %d times, want 2", n)
		}
	})
}

func TestMutualExclusion(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newClient(t, b)
		var (
			inside, overlaps, total atomic.Int32
			wg                      sync.WaitGroup
			mu                      sync.Mutex
			fences                  []int64
		)
		retry := lock.WithRetry(lock.ExponentialBackoff(time.Millisecond, 20*time.Millisecond))
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					l, err := c.Obtain(ctx, "shared", 10*time.Second, retry)
					if err != nil {
						t.Error(err)
						return
					}
					if inside.Add(1) != 1 {
						overlaps.Add(1)
					}
					// A round trip inside the critical section widens the
					// window in which a second holder would show.
					_ = b.Client.Ping(ctx).Err()
					mu.Lock()
					fences = append(fences, l.Fence())
					mu.Unlock()
					total.Add(1)
					inside.Add(-1)
					if err := l.Release(ctx); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if overlaps.Load() != 0 || total.Load() != 40 {
			t.Fatalf("%d overlapping holders, %d in total; want 0 and 40", overlaps.Load(), total.Load())
		}
		// The fences, in the order the holders entered, strictly increase.
		for i := 1; i < len(fences); i++ {
			if fences[i] <= fences[i-1] {
				t.Fatalf("fences not increasing at %d: %v", i, fences)
			}
		}
	})
}

// TestFenceSurvivesCounterExpiry deletes the counter, as its TTL would, and
// checks that the next token is still larger.
func TestFenceSurvivesCounterExpiry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newClient(t, b)
		var last int64
		for i := range 5 {
			l, err := c.Obtain(ctx, "k", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if l.Fence() <= last {
				t.Fatalf("round %d: fence %d <= %d", i, l.Fence(), last)
			}
			last = l.Fence()
			if err := l.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if i == 2 {
				if err := b.Client.Del(ctx, b.Namespace+":{k}:fence").Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func TestAutoRefreshKeepsLock(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t) // miniredis TTLs do not count down by themselves
		ctx := context.Background()
		c := newClient(t, b)
		const ttl = 300 * time.Millisecond
		l, err := c.Obtain(ctx, "k", ttl, lock.WithAutoRefresh(ttl/4))
		if err != nil {
			t.Fatal(err)
		}
		// Watch the lock for four TTLs: it must be held throughout, so its
		// TTL must have been renewed.
		end := time.Now().Add(4 * ttl)
		renewed := false
		prev := ttl
		for time.Now().Before(end) {
			left, err := l.TTL(ctx)
			if err != nil {
				t.Fatalf("lock lost under the watchdog: %v", err)
			}
			if left > prev {
				renewed = true
			}
			prev = left
			select {
			case <-l.Lost():
				t.Fatalf("Lost closed: %v", l.Err())
			case <-time.After(10 * time.Millisecond): // polling interval
			}
		}
		if !renewed {
			t.Fatal("TTL never went up: no refresh observed")
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := b.Client.Exists(ctx, b.Namespace+":{k}").Result(); n != 0 {
			t.Fatal("lock key still there after Release")
		}
		select {
		case <-l.Lost():
			t.Fatal("Lost closed by Release")
		default:
		}
	})
}

func TestAutoRefreshReportsLoss(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		c := newClient(t, b)
		l, err := c.Obtain(ctx, "k", time.Second, lock.WithAutoRefresh(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Client.Set(ctx, b.Namespace+":{k}", "thief", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.Lost():
		case <-time.After(5 * time.Second):
			t.Fatal("watchdog did not report the loss")
		}
		if !errors.Is(l.Err(), lock.ErrNotHeld) {
			t.Fatalf("Err() = %v, want ErrNotHeld", l.Err())
		}
		if err := l.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("Release of a lost lock: %v", err)
		}
	})
}

func TestAutoRefreshStopsWithContext(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t) // miniredis expires keys only when told to
		ctx, cancel := context.WithCancel(context.Background())
		c := newClient(t, b)
		l, err := c.Obtain(ctx, "k", 200*time.Millisecond, lock.WithAutoRefresh(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		// Without refreshes the key expires by itself.
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := l.TTL(context.Background()); errors.Is(err, lock.ErrNotHeld) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("lock still held 5s after its context ended: watchdog still running")
			}
			time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
		}
		select {
		case <-l.Lost():
			t.Fatal("Lost closed after the context ended")
		default:
		}
	})
}

func TestRedisDown(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: redistest.ClosedAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rc.Close()
	c, err := lock.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Obtain(context.Background(), "k", time.Second, lock.WithRetry(lock.LinearBackoff(time.Millisecond)))
	if err == nil || errors.Is(err, lock.ErrNotObtained) {
		t.Fatalf("Obtain with Redis down: %v, want a Redis error", err)
	}
}

func TestInvalidInput(t *testing.T) {
	b := redistest.Standalone(t)
	if _, err := lock.New(b.Client, lock.WithFenceTTL(0)); !errors.Is(err, lock.ErrInvalidTTL) {
		t.Errorf("New with fence TTL 0: %v", err)
	}
	if _, err := lock.New(b.Client, lock.WithPrefix("")); err == nil {
		t.Error("New with empty prefix: no error")
	}
	if _, err := lock.New(nil); err == nil {
		t.Error("New(nil): no error")
	}
	c := newClient(t, b)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		key  string
		ttl  time.Duration
		opts []lock.ObtainOption
		want error
	}{
		"empty key":        {"", time.Second, nil, lock.ErrInvalidKey},
		"zero ttl":         {"k", 0, nil, lock.ErrInvalidTTL},
		"refresh >= ttl":   {"k", time.Second, []lock.ObtainOption{lock.WithAutoRefresh(time.Second)}, lock.ErrInvalidTTL},
		"negative refresh": {"k", time.Second, []lock.ObtainOption{lock.WithAutoRefresh(-1)}, lock.ErrInvalidTTL},
	} {
		if _, err := c.Obtain(ctx, tc.key, tc.ttl, tc.opts...); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

func TestExponentialBackoffBounds(t *testing.T) {
	s := lock.ExponentialBackoff(10*time.Millisecond, 80*time.Millisecond)
	for attempt := 1; attempt < 100; attempt++ {
		for range 50 {
			d, ok := s.Backoff(attempt)
			ceil := min(80*time.Millisecond, 10*time.Millisecond<<min(attempt, 10))
			if !ok || d < 10*time.Millisecond || d > ceil {
				t.Fatalf("attempt %d: %v, %v; want in [10ms, %v]", attempt, d, ok, ceil)
			}
		}
	}
	if _, ok := lock.NoRetry().Backoff(1); ok {
		t.Fatal("NoRetry retries")
	}
}

func Example() {
	// A throwaway Redis for the example; use your process's client.
	srv := startMiniredis()
	defer srv.Close()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	ctx := context.Background()

	locks, err := lock.New(client, lock.WithPrefix("app:lock"))
	if err != nil {
		panic(err)
	}
	l, err := locks.Obtain(ctx, "report:2026-05", 10*time.Second)
	if err != nil {
		panic(err)
	}
	// A second worker finds it held.
	_, err = locks.Obtain(ctx, "report:2026-05", 10*time.Second)
	fmt.Println(err)
	// Write with l.Fence() so that the store rejects stale holders.
	fmt.Println(l.Fence() > 0)
	fmt.Println(l.Release(ctx))
	// Output:
	// lock: not obtained
	// true
	// <nil>
}

func startMiniredis() *miniredis.Miniredis {
	srv, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	return srv
}
