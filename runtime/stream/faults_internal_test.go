package stream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/faultproxy"
	"github.com/repocache/repocache/internal/redistest"
)

// newProxied is a client through a fault proxy to b's server, as
// runtime.NewClient would configure it (see faultproxy.NewClient).
func newProxied(t *testing.T, b *redistest.Backend, retries int, scripts ...*redis.Script) *faultproxy.Client {
	t.Helper()
	b.RequireReal(t)
	return faultproxy.NewClient(t, b.Addrs[0], retries, scripts...)
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
	w, err := NewWorker(px.Client, "jobs", "g", func(context.Context, Message) error { return errors.New("boom") },
		WithPrefix(b.Namespace), WithLogger(quiet), WithMaxDeliveries(1), WithBlock(50*time.Millisecond),
		WithOnDeadLetter(func(Message, error) { hooked.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	px.LateReply(deadLetterScript)
	runWorker(t, w)
	p, err := NewProducer(b.Client, "jobs", WithPrefix(b.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	start := px.Proxy.Replies()
	if _, err := p.Add(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	dlq := b.Namespace + ":{jobs}:dlq"
	waitFor(t, "nothing dead-lettered", 5*time.Second, func() bool { return b.Client.XLen(context.Background(), dlq).Val() > 0 })
	waitFor(t, "the dead letter was not reported (hook or counter)", 2*time.Second, func() bool {
		return hooked.Load() == 1 && w.Stats().DeadLettered == 1
	})
	if px.Proxy.Replies()-start < 2 {
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
	w, err := NewWorker(px.Client, "jobs", "g", func(_ context.Context, m Message) error {
		if calls.Add(1) == 1 {
			px.LateReply(reclaimScript)
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
