package stream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime/stream"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func opts(b *redistest.Backend, more ...stream.Option) []stream.Option {
	return append([]stream.Option{stream.WithPrefix(b.Namespace), stream.WithLogger(discard)}, more...)
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestPubSub(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		ps, err := stream.NewPubSub(b.Client, opts(b, stream.WithMaxPayload(16))...)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 10)
		sub, err := ps.Subscribe(ctx, "invalidate", func(_ context.Context, p []byte) { got <- string(p) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		// On a cluster, the count covers only the node that got the PUBLISH.
		if n, err := ps.Publish(ctx, "invalidate", []byte("user:42")); err != nil || (n != 1 && !b.Cluster) {
			t.Fatalf("Publish: %d receivers, %v", n, err)
		}
		if v := wait(t, got, "the message"); v != "user:42" {
			t.Fatalf("got %q", v)
		}
		if _, err := ps.Publish(ctx, "invalidate", make([]byte, 17)); !errors.Is(err, stream.ErrPayloadTooLarge) {
			t.Fatalf("17 bytes: %v, want ErrPayloadTooLarge", err)
		}
		sub.Close()
		// The server notices the closed connection a moment later: poll.
		deadline := time.Now().Add(5 * time.Second)
		for !b.Cluster {
			n, err := ps.Publish(ctx, "invalidate", []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Publish after Close: still %d receivers", n)
			}
			time.Sleep(10 * time.Millisecond) // polling interval
		}
	})
}

// namedClient returns a client to b's server or cluster whose connections
// carry name, so that a test can find them in CLIENT LIST.
func namedClient(t *testing.T, b *redistest.Backend, name string) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	if b.Cluster {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs, ClientName: name})
	} else {
		opt := b.Client.(*redis.Client).Options()
		opt.ClientName = name
		c = redis.NewClient(opt)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// killPubSubClients drops the pub/sub connections named name, and only
// those: REDIS_URL may be a server that others use.
func killPubSubClients(t *testing.T, b *redistest.Backend, name string) int64 {
	t.Helper()
	ctx := context.Background()
	var killed atomic.Int64
	kill := func(ctx context.Context, c *redis.Client) error {
		list, err := c.ClientList(ctx).Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(list, "\n") {
			fields := strings.Fields(line)
			if !slices.Contains(fields, "name="+name) || !slices.ContainsFunc(fields, func(f string) bool {
				return strings.HasPrefix(f, "sub=") && f != "sub=0"
			}) {
				continue
			}
			for _, f := range fields {
				if id, ok := strings.CutPrefix(f, "id="); ok {
					n, err := c.ClientKillByFilter(ctx, "ID", id).Result()
					if err != nil {
						return err
					}
					killed.Add(n)
				}
			}
		}
		return nil
	}
	var err error
	switch c := b.Client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachShard(ctx, kill)
	case *redis.Client:
		err = kill(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return killed.Load()
}

func TestSubscribeSurvivesReconnect(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		ctx := context.Background()
		name := strings.NewReplacer(":", "-").Replace(b.Namespace)
		ps, err := stream.NewPubSub(namedClient(t, b, name), opts(b)...)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 100)
		sub, err := ps.Subscribe(ctx, "events", func(_ context.Context, p []byte) { got <- string(p) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if _, err := ps.Publish(ctx, "events", []byte("before")); err != nil {
			t.Fatal(err)
		}
		if v := wait(t, got, "the first message"); v != "before" {
			t.Fatalf("got %q", v)
		}
		if n := killPubSubClients(t, b, name); n < 1 {
			t.Fatalf("CLIENT KILL killed %d connections", n)
		}
		// Messages published while the subscriber reconnects are lost;
		// publish until one arrives.
		deadline := time.Now().Add(15 * time.Second)
		for i := 0; ; i++ {
			if _, err := ps.Publish(ctx, "events", []byte("after-"+strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
			select {
			case v := <-got:
				if v[:6] != "after-" {
					t.Fatalf("got %q", v)
				}
				return
			case <-time.After(50 * time.Millisecond): // publishing interval
			}
			if time.Now().After(deadline) {
				t.Fatal("no message after the connection was killed")
			}
		}
	})
}

type worker struct {
	w    *stream.Worker
	stop context.CancelFunc
	done chan struct{} // closed when Run has returned, with err set
	err  error
}

// stopped waits for Run to return and returns its error.
func (w *worker) stopped(t *testing.T) error {
	t.Helper()
	wait(t, w.done, "Run to return")
	return w.err
}

func start(t *testing.T, b *redistest.Backend, group string, h stream.Handler, more ...stream.Option) *worker {
	t.Helper()
	w, err := stream.NewWorker(b.Client, "jobs", group, h, opts(b, more...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{w: w, stop: cancel, done: make(chan struct{})}
	go func() { wk.err = w.Run(ctx); close(wk.done) }()
	t.Cleanup(func() { cancel(); <-wk.done })
	return wk
}

func producer(t *testing.T, b *redistest.Backend) *stream.Producer {
	t.Helper()
	p, err := stream.NewProducer(b.Client, "jobs", opts(b, stream.WithMaxLen(1000), stream.WithTTL(time.Hour))...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConsumerKilledMidHandler kills a consumer while its handler runs: the
// message stays pending and another consumer reclaims and finishes it.
func TestConsumerKilledMidHandler(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		ctx := context.Background()
		id, err := producer(t, b).Add(ctx, []byte("job-1"))
		if err != nil {
			t.Fatal(err)
		}
		fast := []stream.Option{stream.WithMinIdle(200 * time.Millisecond), stream.WithClaimInterval(20 * time.Millisecond),
			stream.WithRetryBackoff(10*time.Millisecond, 20*time.Millisecond), stream.WithBlock(50 * time.Millisecond)}

		started := make(chan stream.Message, 1)
		a := start(t, b, "g", func(ctx context.Context, m stream.Message) error {
			started <- m
			<-ctx.Done() // stuck until killed
			return ctx.Err()
		}, append(fast, stream.WithConsumer("a"), stream.WithShutdownTimeout(0))...)
		if m := wait(t, started, "consumer a's handler"); m.ID != id || m.Deliveries != 1 {
			t.Fatalf("a got %+v", m)
		}
		a.stop()
		if err := a.stopped(t); err != nil {
			t.Fatal(err)
		}
		if s := a.w.Stats(); s.Processed != 0 || s.Failed != 1 || s.Retried != 0 {
			t.Fatalf("a's stats %+v", s)
		}

		got := make(chan stream.Message, 1)
		bw := start(t, b, "g", func(ctx context.Context, m stream.Message) error {
			got <- m
			return nil
		}, append(fast, stream.WithConsumer("b"))...)
		m := wait(t, got, "redelivery to consumer b")
		if m.ID != id || string(m.Payload) != "job-1" || m.Deliveries != 2 {
			t.Fatalf("b got %+v, want %s with 2 deliveries", m, id)
		}
		// Acknowledged: nothing pending any more.
		deadline := time.Now().Add(5 * time.Second)
		for {
			info, err := bw.w.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Pending == 0 {
				if info.Lag != 0 || !info.LagExact || info.Length != 1 || info.Consumers != 2 {
					t.Fatalf("info %+v", info)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still pending: %+v", info)
			}
			time.Sleep(10 * time.Millisecond) // polling interval
		}
		if s := bw.w.Stats(); s.Reclaimed != 1 || s.Processed != 1 {
			t.Fatalf("b's stats %+v", s)
		}
	})
}

func TestPoisonMessageDeadLettered(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		ctx := context.Background()
		id, err := producer(t, b).Add(ctx, []byte("poison"))
		if err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int64
		deliveries := make(chan int64, 10)
		dead := make(chan stream.Message, 1)
		w := start(t, b, "g", func(ctx context.Context, m stream.Message) error {
			calls.Add(1)
			deliveries <- m.Deliveries
			return errors.New("cannot parse")
		}, stream.WithMaxDeliveries(3), stream.WithRetryBackoff(5*time.Millisecond, 20*time.Millisecond),
			stream.WithMinIdle(time.Minute), stream.WithBlock(20*time.Millisecond),
			stream.WithOnDeadLetter(func(m stream.Message, err error) { dead <- m }))
		m := wait(t, dead, "the dead letter")
		if m.ID != id || m.Deliveries != 3 || calls.Load() != 3 {
			t.Fatalf("dead-lettered %+v after %d calls; want %s after 3", m, calls.Load(), id)
		}
		for i := int64(1); i <= 3; i++ {
			if d := <-deliveries; d != i {
				t.Fatalf("call %d saw %d deliveries", i, d)
			}
		}
		dlq, err := b.Client.XRange(ctx, b.Namespace+":{jobs}:dlq", "-", "+").Result()
		if err != nil || len(dlq) != 1 {
			t.Fatalf("dead-letter stream %v, %v", dlq, err)
		}
		v := dlq[0].Values
		if v["id"] != id || v["payload"] != "poison" || v["deliveries"] != "3" || v["error"] != "cannot parse" || v["group"] != "g" {
			t.Fatalf("dead letter %v", v)
		}
		if ttl := b.Client.PTTL(ctx, b.Namespace+":{jobs}:dlq").Val(); ttl <= 0 {
			t.Fatalf("dead-letter stream PTTL %v", ttl)
		}
		info, err := w.w.Info(ctx)
		if err != nil || info.Pending != 0 || info.DeadLetters != 1 {
			t.Fatalf("info %+v, %v", info, err)
		}
		if s := w.w.Stats(); s != (stream.WorkerStats{Failed: 3, Retried: 2, DeadLettered: 1}) {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestLag(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t) // miniredis has no lag in XINFO GROUPS
		ctx := context.Background()
		p := producer(t, b)
		var ids []string
		for i := range 10 {
			id, err := p.Add(ctx, []byte(strconv.Itoa(i)))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		w, err := stream.NewWorker(b.Client, "jobs", "g", func(context.Context, stream.Message) error { return nil }, opts(b)...)
		if err != nil {
			t.Fatal(err)
		}
		key := b.Namespace + ":{jobs}"
		if err := b.Client.XGroupCreate(ctx, key, "g", "0").Err(); err != nil {
			t.Fatal(err)
		}
		// Consume 3: delivered and acknowledged.
		res, err := b.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, ">"}, Count: 3}).Result()
		if err != nil || len(res[0].Messages) != 3 {
			t.Fatalf("read %v, %v", res, err)
		}
		info, err := w.Info(ctx)
		if err != nil || info.Lag != 7 || !info.LagExact || info.Pending != 3 || info.Length != 10 {
			t.Fatalf("after reading 3: %+v, %v; want lag 7, pending 3", info, err)
		}
		if err := b.Client.XAck(ctx, key, "g", ids[:3]...).Err(); err != nil {
			t.Fatal(err)
		}
		if info, err = w.Info(ctx); err != nil || info.Lag != 7 || info.Pending != 0 {
			t.Fatalf("after acking 3: %+v, %v", info, err)
		}
		// A deletion after the group's position leaves Redis without a lag:
		// it is counted instead.
		if err := b.Client.XDel(ctx, key, ids[5]).Err(); err != nil {
			t.Fatal(err)
		}
		if info, err = w.Info(ctx); err != nil || info.Lag != 6 || !info.LagExact {
			t.Fatalf("after XDEL: %+v, %v; want lag 6", info, err)
		}
	})
}

func TestGracefulShutdown(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		b.RequireReal(t)
		ctx := context.Background()
		if _, err := producer(t, b).Add(ctx, []byte("slow")); err != nil {
			t.Fatal(err)
		}
		started, release := make(chan struct{}), make(chan struct{})
		w := start(t, b, "g", func(ctx context.Context, m stream.Message) error {
			close(started)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, stream.WithBlock(20*time.Millisecond))
		wait(t, started, "the handler")
		w.stop()
		select {
		case <-w.done:
			t.Fatal("Run returned before the message in hand was finished")
		default:
		}
		close(release)
		if err := w.stopped(t); err != nil {
			t.Fatal(err)
		}
		info, err := w.w.Info(ctx)
		if err != nil || info.Pending != 0 || w.w.Stats().Processed != 1 {
			t.Fatalf("after shutdown: %+v, %v, %+v", info, err, w.w.Stats())
		}
	})
}

func TestProducerKeys(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		ctx := context.Background()
		p, err := stream.NewProducer(b.Client, "a:{b}", opts(b, stream.WithMaxPayload(4), stream.WithTTL(time.Hour))...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Add(ctx, []byte("12345")); !errors.Is(err, stream.ErrPayloadTooLarge) {
			t.Fatalf("5 bytes: %v", err)
		}
		if _, err := p.Add(ctx, []byte("1234")); err != nil {
			t.Fatal(err)
		}
		keys, _ := b.Keys(ctx)
		if len(keys) != 1 || keys[0] != b.Namespace+":{a%3A%7Bb%7D}" {
			t.Fatalf("keys %q", keys)
		}
		if ttl := b.Client.PTTL(ctx, keys[0]).Val(); ttl <= 59*time.Minute {
			t.Fatalf("PTTL %v", ttl)
		}
	})
}

func TestInvalidConfig(t *testing.T) {
	b := redistest.Standalone(t)
	h := func(context.Context, stream.Message) error { return nil }
	for name, o := range map[string]stream.Option{
		"backoff above min idle": stream.WithRetryBackoff(time.Second, 2*time.Minute),
		"zero batch":             stream.WithBatch(0),
		"zero deliveries":        stream.WithMaxDeliveries(0),
		"negative shutdown":      stream.WithShutdownTimeout(-1),
		"empty prefix":           stream.WithPrefix(""),
	} {
		if _, err := stream.NewWorker(b.Client, "s", "g", h, o); !errors.Is(err, stream.ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := stream.NewWorker(b.Client, "s", "g", nil); !errors.Is(err, stream.ErrInvalidConfig) {
		t.Errorf("nil handler: %v", err)
	}
	if _, err := stream.NewPubSub(b.Client, stream.WithMaxPayload(0)); !errors.Is(err, stream.ErrInvalidConfig) {
		t.Errorf("max payload 0: %v", err)
	}
}

func ExamplePubSub() {
	// A throwaway Redis for the example; use your process's client.
	srv, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer client.Close()
	ctx := context.Background()

	ps, err := stream.NewPubSub(client, stream.WithPrefix("app:events"))
	if err != nil {
		panic(err)
	}
	got := make(chan string)
	sub, err := ps.Subscribe(ctx, "user-changed", func(_ context.Context, payload []byte) {
		got <- string(payload)
	})
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	// Publish an ID, not the object.
	if _, err := ps.Publish(ctx, "user-changed", []byte("42")); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output: 42
}

func ExampleWorker() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer client.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	prod, err := stream.NewProducer(client, "orders", stream.WithPrefix("app:prod"))
	if err != nil {
		panic(err)
	}
	if _, err := prod.Add(ctx, []byte("order-1")); err != nil {
		panic(err)
	}
	w, err := stream.NewWorker(client, "orders", "billing",
		func(ctx context.Context, m stream.Message) error {
			fmt.Println("billing", string(m.Payload), "delivery", m.Deliveries)
			return nil // acknowledged; an error would retry it
		},
		stream.WithPrefix("app:prod"), stream.WithMaxDeliveries(5),
		stream.WithOnDeadLetter(func(m stream.Message, err error) { slog.Error("dead letter", "id", m.ID, "err", err) }))
	if err != nil {
		panic(err)
	}
	go func() {
		for range time.Tick(10 * time.Second) {
			if info, err := w.Info(ctx); err == nil {
				slog.Info("billing backlog", "lag", info.Lag, "pending", info.Pending, "dead", info.DeadLetters)
			}
		}
	}()
	_ = w.Run(ctx) // returns after ctx ends and the message in hand is done
}
