// Package stream moves events between processes through Redis, in two
// flavours with different promises.
//
// Pub/sub (PubSub) is fire-and-forget fan-out: every subscriber connected
// at the moment of Publish gets the message, nobody else ever will. Use it
// for hints that can be lost, such as "key X changed, drop your local copy".
// Payloads are small (IDs, not objects; WithMaxPayload bounds them), and a
// subscription survives reconnects, though messages published while it is
// reconnecting are lost.
//
// Streams (Producer and Worker) are durable: a message stays in Redis until
// a consumer group has processed it. A Worker reads with XREADGROUP, runs
// its handler and acknowledges only after the handler succeeded. A failed
// message is retried with exponential backoff; one left by a consumer that
// died mid-handler is reclaimed by another after WithMinIdle (XAUTOCLAIM);
// after WithMaxDeliveries failed deliveries it moves to a dead-letter stream.
// Nothing is ever deleted from a consumer group's pending list except by an
// acknowledgement or that move, so a crash loses no message.
//
//	prod, err := stream.NewProducer(client, "orders", stream.WithPrefix("app:prod"))
//	if err != nil { ... }
//	id, err := prod.Add(ctx, []byte(orderID))
//
//	w, err := stream.NewWorker(client, "orders", "billing",
//		func(ctx context.Context, m stream.Message) error {
//			return bill(ctx, string(m.Payload)) // nil: acknowledged; error: retried
//		},
//		stream.WithPrefix("app:prod"), stream.WithMaxDeliveries(5))
//	if err != nil { ... }
//	err = w.Run(ctx) // until ctx ends; then it finishes the message in hand
//
// Keys: a stream is "<prefix>:{<name>}" and its dead letters
// "<prefix>:{<name>}:dlq", the name escaped with runtime.EscapeKeyPart so that
// both share a cluster slot (moving a message to the dead-letter stream is one
// atomic script). Both expire WithTTL after the last write to them. A pub/sub
// channel is "<prefix>:<channel>".
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// Errors returned by the package. Redis errors are returned wrapped.
var (
	// ErrPayloadTooLarge reports a payload above the WithMaxPayload bound.
	ErrPayloadTooLarge = errors.New("stream: payload too large")
	// ErrInvalidConfig reports a bad option value, an empty name or a nil
	// handler.
	ErrInvalidConfig = errors.New("stream: invalid configuration")
	// ErrTooManyDeliveries is the reason recorded for a message that was
	// delivered more than WithMaxDeliveries times without its handler
	// finishing (a consumer crashing on it, say).
	ErrTooManyDeliveries = errors.New("stream: too many deliveries")
)

// Defaults of the options.
const (
	DefaultPubSubMaxPayload = 1 << 10
	DefaultStreamMaxPayload = 1 << 20
	DefaultMaxLen           = 100_000
	DefaultTTL              = 7 * 24 * time.Hour
	DefaultBatch            = 10
	DefaultBlock            = 2 * time.Second
	DefaultMinIdle          = time.Minute
	DefaultMaxDeliveries    = 5
	DefaultRetryMin         = time.Second
	DefaultRetryMax         = 30 * time.Second
	DefaultShutdownTimeout  = 30 * time.Second
)

// Option configures a PubSub, a Producer or a Worker; each ignores the
// options that do not concern it.
type Option func(*config)

type config struct {
	prefix          string
	log             *slog.Logger
	maxPayload      int
	maxLen          int64
	ttl             time.Duration
	consumer        string
	batch           int
	block           time.Duration
	minIdle         time.Duration
	claimEvery      time.Duration
	maxDeliveries   int64
	retryMin        time.Duration
	retryMax        time.Duration
	shutdownTimeout time.Duration
	startID         string
	onDeadLetter    func(Message, error)
}

// WithPrefix sets the prefix of every key and channel, "app:env" style; the
// default is "stream". Braces and glob characters in it are escaped.
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithMaxPayload bounds the payload of Publish (default
// DefaultPubSubMaxPayload) and of Producer.Add (default
// DefaultStreamMaxPayload), in bytes.
func WithMaxPayload(n int) Option { return func(c *config) { c.maxPayload = n } }

func newConfig(opts []Option, maxPayload int) (config, error) {
	c := config{
		prefix: "stream", log: slog.Default(), maxPayload: maxPayload, maxLen: DefaultMaxLen, ttl: DefaultTTL,
		batch: DefaultBatch, block: DefaultBlock, minIdle: DefaultMinIdle, maxDeliveries: DefaultMaxDeliveries,
		retryMin: DefaultRetryMin, retryMax: DefaultRetryMax, shutdownTimeout: DefaultShutdownTimeout, startID: "0",
	}
	for _, o := range opts {
		o(&c)
	}
	if c.claimEvery == 0 {
		c.claimEvery = c.minIdle / 2
	}
	switch {
	case c.prefix == "":
		return c, fmt.Errorf("%w: empty prefix", ErrInvalidConfig)
	case c.maxPayload < 1:
		return c, fmt.Errorf("%w: max payload %d", ErrInvalidConfig, c.maxPayload)
	case c.maxLen < 1 || c.ttl < time.Second:
		return c, fmt.Errorf("%w: max length %d, TTL %v", ErrInvalidConfig, c.maxLen, c.ttl)
	case c.batch < 1 || c.block < time.Millisecond || c.maxDeliveries < 1:
		return c, fmt.Errorf("%w: batch %d, block %v, max deliveries %d", ErrInvalidConfig, c.batch, c.block, c.maxDeliveries)
	case c.minIdle < time.Millisecond || c.claimEvery < time.Millisecond:
		return c, fmt.Errorf("%w: min idle %v, claim interval %v", ErrInvalidConfig, c.minIdle, c.claimEvery)
	case c.retryMin < time.Millisecond || c.retryMax < c.retryMin || c.retryMax >= c.minIdle:
		return c, fmt.Errorf("%w: retry backoff [%v, %v] must be below the min idle time %v", ErrInvalidConfig, c.retryMin, c.retryMax, c.minIdle)
	case c.shutdownTimeout < 0:
		return c, fmt.Errorf("%w: shutdown timeout %v", ErrInvalidConfig, c.shutdownTimeout)
	case c.startID != "0" && c.startID != "$":
		return c, fmt.Errorf("%w: start %q", ErrInvalidConfig, c.startID)
	}
	parts := strings.Split(c.prefix, ":")
	for i, p := range parts {
		parts[i] = runtime.EscapeKeyPart(p)
	}
	c.prefix = strings.Join(parts, ":")
	return c, nil
}

// PubSub publishes and subscribes to channels. Create it with NewPubSub; it
// is safe for concurrent use.
type PubSub struct {
	rc  redis.UniversalClient
	cfg config
}

// NewPubSub returns a PubSub on rc. Options: WithPrefix, WithLogger,
// WithMaxPayload.
func NewPubSub(rc redis.UniversalClient, opts ...Option) (*PubSub, error) {
	if rc == nil {
		return nil, fmt.Errorf("%w: nil Redis client", ErrInvalidConfig)
	}
	cfg, err := newConfig(opts, DefaultPubSubMaxPayload)
	if err != nil {
		return nil, err
	}
	return &PubSub{rc: rc, cfg: cfg}, nil
}

func (p *PubSub) channel(name string) string { return p.cfg.prefix + ":" + runtime.EscapeKeyPart(name) }

// Publish sends payload to the subscribers of channel and returns how many
// received it (on a cluster, those connected to the node that got it).
func (p *PubSub) Publish(ctx context.Context, channel string, payload []byte) (int64, error) {
	if channel == "" {
		return 0, fmt.Errorf("%w: empty channel", ErrInvalidConfig)
	}
	if len(payload) > p.cfg.maxPayload {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrPayloadTooLarge, len(payload), p.cfg.maxPayload)
	}
	n, err := p.rc.Publish(ctx, p.channel(channel), payload).Result()
	if err != nil {
		return 0, fmt.Errorf("stream: publish: %w", err)
	}
	return n, nil
}

// Subscription is a running Subscribe.
type Subscription struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Close ends the subscription and waits until its handler has returned.
func (s *Subscription) Close() {
	s.cancel()
	<-s.done
}

// Done is closed when the subscription has ended (Close, or the end of the
// context given to Subscribe).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Subscribe calls handler, one message at a time, for every message
// published to channel until ctx ends or Close. It returns once Redis has
// confirmed the subscription, so that a Publish after it is received. When
// the connection breaks, the client reconnects and subscribes again;
// messages published in between are lost (use a stream when they matter).
func (p *PubSub) Subscribe(ctx context.Context, channel string, handler func(ctx context.Context, payload []byte)) (*Subscription, error) {
	if channel == "" || handler == nil {
		return nil, fmt.Errorf("%w: empty channel or nil handler", ErrInvalidConfig)
	}
	ps := p.rc.Subscribe(ctx, p.channel(channel))
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("stream: subscribe: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{cancel: cancel, done: make(chan struct{})}
	msgs := ps.Channel(redis.WithChannelHealthCheckInterval(10 * time.Second))
	go func() {
		defer close(s.done)
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				handler(ctx, []byte(m.Payload))
			}
		}
	}()
	return s, nil
}
