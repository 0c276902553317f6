package stream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/faultproxy"
	"github.com/repocache/repocache/internal/redistest"
)

// proxied is a client that reaches b's server through a fault proxy, with
// a short read timeout and go-redis's retries, as runtime.NewClient sets
// them.
type proxied struct {
	client *redis.Client
	proxy  *faultproxy.Proxy
	before atomic.Pointer[func(name, arg string)]
}

func newProxied(t *testing.T, b *redistest.Backend, retries int, scripts ...*redis.Script) *proxied {
	t.Helper()
	b.RequireReal(t)
	p, err := faultproxy.Start(b.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	client := redis.NewClient(&redis.Options{
		Addr: p.Addr(), ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
		MaxRetries: retries, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond,
		PoolSize: 4, DialerRetries: 1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = client.Close() })
	px := &proxied{client: client, proxy: p}
	client.AddHook(px)
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts { // no NOSCRIPT round trip before the delayed reply
		if err := s.Load(ctx, client).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return px
}

func (px *proxied) DialHook(next redis.DialHook) redis.DialHook { return next }
func (px *proxied) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f := px.before.Load(); f != nil {
			arg := ""
			if args := cmd.Args(); len(args) > 1 {
				arg, _ = args[1].(string)
			}
			(*f)(strings.ToLower(cmd.Name()), arg)
		}
		return next(ctx, cmd)
	}
}
func (px *proxied) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// lateReply makes the reply to the next run of script arrive after the
// client's read timeout: the server has run it, go-redis runs it again.
func (px *proxied) lateReply(script *redis.Script) {
	var once atomic.Bool
	f := func(name, arg string) {
		if name == "evalsha" && arg == script.Hash() && !once.Swap(true) {
			px.proxy.DelayNext(1, 350*time.Millisecond)
		}
	}
	px.before.Store(&f)
}

// runWorker starts w.Run on ctx and stops it when the test ends.
func runWorker(t *testing.T, w *Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestRetriedDeadLetterIsReported (issue 10): the reply to the dead-letter
// script is lost after the server moved the message, and go-redis runs it
// again. The message must be dead-lettered once, and reported once (the
// hook, the counter, the log), not silently because the retry found it
// acknowledged already.
func TestRetriedDeadLetterIsReported(t *testing.T) {
	b := redistest.Standalone(t)
	px := newProxied(t, b, 2, ensureGroupScript, deadLetterScript)
	var hooked atomic.Int64
	w, err := NewWorker(px.client, "jobs", "g", func(context.Context, Message) error { return errors.New("boom") },
		WithPrefix(b.Namespace), WithLogger(quiet), WithMaxDeliveries(1), WithBlock(50*time.Millisecond),
		WithOnDeadLetter(func(Message, error) { hooked.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	px.lateReply(deadLetterScript)
	runWorker(t, w)
	p, err := NewProducer(b.Client, "jobs", WithPrefix(b.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	start := px.proxy.Replies()
	if _, err := p.Add(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	dlq := b.Namespace + ":{jobs}:dlq"
	waitFor(t, "nothing dead-lettered", 5*time.Second, func() bool { return b.Client.XLen(context.Background(), dlq).Val() > 0 })
	waitFor(t, "the dead letter was not reported (hook or counter)", 2*time.Second, func() bool {
		return hooked.Load() == 1 && w.Stats().DeadLettered == 1
	})
	if px.proxy.Replies()-start < 2 {
		t.Fatal("no retry happened")
	}
	if n := b.Client.XLen(context.Background(), dlq).Val(); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
}

// TestRetriedReclaimRunsTheRetry (issue 10): the reply to the claim (an
// XCLAIM, now reclaimScript) that takes a failed message back for its
// retry is lost after the server ran it; a second XCLAIM finds the message
// idle for less than the backoff and claims nothing. The retry must still run after its backoff,
// not wait for the min idle time (a minute here) and another autoclaim.
func TestRetriedReclaimRunsTheRetry(t *testing.T) {
	b := redistest.Standalone(t)
	px := newProxied(t, b, 2, ensureGroupScript, deadLetterScript, reclaimScript)
	var calls, done atomic.Int64
	w, err := NewWorker(px.client, "jobs", "g", func(_ context.Context, m Message) error {
		if calls.Add(1) == 1 {
			px.lateReply(reclaimScript)
			return errors.New("first delivery fails")
		}
		if m.Deliveries != 2 {
			t.Errorf("second run: Deliveries = %d, want 2", m.Deliveries)
		}
		done.Add(1)
		return nil
	}, WithPrefix(b.Namespace), WithLogger(quiet), WithMaxDeliveries(5), WithBlock(50*time.Millisecond),
		// The backoff outlasts the read timeout, as the defaults (1 s, 500 ms) do.
		WithRetryBackoff(300*time.Millisecond, 400*time.Millisecond), WithMinIdle(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, w)
	p, err := NewProducer(b.Client, "jobs", WithPrefix(b.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Add(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed message was not retried after its backoff", 3*time.Second, func() bool { return done.Load() == 1 })
	ctx := context.Background()
	waitFor(t, "the message is still pending", time.Second, func() bool {
		return b.Client.XPending(ctx, b.Namespace+":{jobs}", "g").Val().Count == 0
	})
}
