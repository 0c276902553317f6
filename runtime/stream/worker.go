package stream

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// WithMaxLen caps a stream, and its dead-letter stream, at about n entries
// (XADD MAXLEN ~ n); the default is DefaultMaxLen. Entries trimmed before a
// group read them are lost to it: size the cap for the longest outage.
func WithMaxLen(n int64) Option { return func(c *config) { c.maxLen = n } }

// WithTTL sets how long a stream and its dead-letter stream live after the
// last write to them; the default is DefaultTTL.
func WithTTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// WithConsumer names the Worker's consumer in its group; the default is
// "<hostname>-<pid>-<random>". A stable name lets a restarted process
// resume its own pending messages sooner than WithMinIdle.
func WithConsumer(name string) Option { return func(c *config) { c.consumer = name } }

// WithBatch sets how many messages one read returns at most; the default
// is DefaultBatch.
func WithBatch(n int) Option { return func(c *config) { c.batch = n } }

// WithBlock sets how long a read waits for new messages; the default is
// DefaultBlock.
func WithBlock(d time.Duration) Option { return func(c *config) { c.block = d } }

// WithMinIdle sets how long a message must have been pending without
// progress before a Worker reclaims it from another consumer (presumed
// dead); the default is DefaultMinIdle. It must exceed the longest handler
// run, else a slow message is processed twice.
func WithMinIdle(d time.Duration) Option { return func(c *config) { c.minIdle = d } }

// WithClaimInterval sets how often a Worker looks for messages to reclaim;
// the default is half the min idle time.
func WithClaimInterval(d time.Duration) Option { return func(c *config) { c.claimEvery = d } }

// WithMaxDeliveries sets after how many failed deliveries a message moves
// to the dead-letter stream; the default is DefaultMaxDeliveries.
func WithMaxDeliveries(n int64) Option { return func(c *config) { c.maxDeliveries = n } }

// WithRetryBackoff sets the wait before retrying a failed message: after
// delivery n, a random time in [min, min(max, min·2ⁿ)]. The defaults are
// DefaultRetryMin and DefaultRetryMax; max must be below the min idle time.
func WithRetryBackoff(minWait, maxWait time.Duration) Option {
	return func(c *config) { c.retryMin, c.retryMax = minWait, maxWait }
}

// WithShutdownTimeout sets how long a handler may keep running once the
// context of Run has ended before its own context is cancelled; the default
// is DefaultShutdownTimeout. With 0 it is cancelled at once.
func WithShutdownTimeout(d time.Duration) Option { return func(c *config) { c.shutdownTimeout = d } }

// WithStartAtEnd makes a group created by the Worker start with the
// messages added after its creation ("$"). By default it starts with the
// oldest message still in the stream ("0"), so that messages produced before
// the first Worker started are not skipped.
func WithStartAtEnd() Option { return func(c *config) { c.startID = "$" } }

// WithOnDeadLetter sets a hook called after a message moved to the
// dead-letter stream, with the handler's last error (or
// ErrTooManyDeliveries), e.g. to alert.
func WithOnDeadLetter(f func(Message, error)) Option { return func(c *config) { c.onDeadLetter = f } }

type names struct{ stream, dlq string }

func streamNames(cfg config, name string) names {
	k := cfg.prefix + ":{" + runtime.EscapeKeyPart(name) + "}"
	return names{stream: k, dlq: k + ":dlq"}
}

// Producer adds messages to a stream. Create it with NewProducer; it is
// safe for concurrent use.
type Producer struct {
	rc   redis.UniversalClient
	cfg  config
	keys names
}

// NewProducer returns a Producer for the stream name. Options: WithPrefix,
// WithMaxLen, WithTTL, WithMaxPayload.
func NewProducer(rc redis.UniversalClient, name string, opts ...Option) (*Producer, error) {
	if rc == nil || name == "" {
		return nil, fmt.Errorf("%w: nil Redis client or empty stream name", ErrInvalidConfig)
	}
	cfg, err := newConfig(opts, DefaultStreamMaxPayload)
	if err != nil {
		return nil, err
	}
	return &Producer{rc: rc, cfg: cfg, keys: streamNames(cfg, name)}, nil
}

// Add appends payload to the stream, trimming it to about the max length
// and renewing its TTL in the same MULTI, and returns the message ID.
//
// When the reply is lost after the server ran the MULTI, go-redis runs it
// again and the message is added twice, under two IDs (the caller gets the
// second); with retries off, Add returns the error and the message may be
// there. Delivery is at least once: handlers must be idempotent.
func (p *Producer) Add(ctx context.Context, payload []byte) (string, error) {
	if len(payload) > p.cfg.maxPayload {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrPayloadTooLarge, len(payload), p.cfg.maxPayload)
	}
	var add *redis.StringCmd
	_, err := p.rc.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		add = pipe.XAdd(ctx, &redis.XAddArgs{Stream: p.keys.stream, MaxLen: p.cfg.maxLen, Approx: true,
			Values: []any{"payload", payload}})
		pipe.PExpire(ctx, p.keys.stream, p.cfg.ttl)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("stream: add: %w", err)
	}
	return add.Val(), nil
}

// Message is one stream message as a handler sees it.
type Message struct {
	// ID is the stream entry ID, "<ms>-<seq>".
	ID string
	// Payload is what Producer.Add stored.
	Payload []byte
	// Deliveries counts the deliveries of the message to its group, this
	// one included: 1 the first time.
	Deliveries int64
}

// Handler processes one message. A nil error acknowledges it; an error
// makes it retried later, or dead-lettered after too many deliveries. ctx
// ends WithShutdownTimeout after the Worker is told to stop.
type Handler func(ctx context.Context, m Message) error

// WorkerStats counts a Worker's events since it was created.
type WorkerStats struct {
	Processed    int64 // handler succeeded, message acknowledged
	Failed       int64 // handler returned an error (or panicked)
	Retried      int64 // failed messages scheduled for another delivery
	Reclaimed    int64 // messages taken over from idle consumers
	DeadLettered int64 // messages moved to the dead-letter stream
}

// Worker is one consumer of a consumer group. Create it with NewWorker and
// call Run; run several (in one process or many) to share a group's work.
type Worker struct {
	rc      redis.UniversalClient
	cfg     config
	keys    names
	group   string
	handler Handler
	running atomic.Bool

	processed, failed, retried, reclaimed, deadLettered atomic.Int64
}

// NewWorker returns a Worker of the group on the stream name that calls
// handler for each message. Options: WithPrefix, WithLogger, WithConsumer,
// WithBatch, WithBlock, WithMinIdle, WithClaimInterval, WithMaxDeliveries,
// WithRetryBackoff, WithShutdownTimeout, WithStartAtEnd, WithOnDeadLetter,
// WithMaxLen and WithTTL (for the dead-letter stream).
func NewWorker(rc redis.UniversalClient, name, group string, handler Handler, opts ...Option) (*Worker, error) {
	if rc == nil || name == "" || group == "" || handler == nil {
		return nil, fmt.Errorf("%w: nil client or handler, or empty stream or group name", ErrInvalidConfig)
	}
	cfg, err := newConfig(opts, DefaultStreamMaxPayload)
	if err != nil {
		return nil, err
	}
	if cfg.consumer == "" {
		host, _ := os.Hostname()
		var r [4]byte
		_, _ = crand.Read(r[:])
		cfg.consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:]))
	}
	return &Worker{rc: rc, cfg: cfg, keys: streamNames(cfg, name), group: group, handler: handler}, nil
}

// Consumer returns the Worker's consumer name.
func (w *Worker) Consumer() string { return w.cfg.consumer }

// Stats returns the Worker's counters.
func (w *Worker) Stats() WorkerStats {
	return WorkerStats{Processed: w.processed.Load(), Failed: w.failed.Load(), Retried: w.retried.Load(),
		Reclaimed: w.reclaimed.Load(), DeadLettered: w.deadLettered.Load()}
}

// ensureGroupScript creates the group (and the stream) if needed, and
// gives a stream created here its TTL. Run twice, the second run finds the
// group (BUSYGROUP, ignored) and the TTL set. One step.
var ensureGroupScript = redis.NewScript(`
local r = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[2], 'MKSTREAM')
if type(r) == 'table' and r.err and not string.find(r.err, 'BUSYGROUP') then
	return r
end
if redis.call('PTTL', KEYS[1]) == -1 then
	redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
`)

// deadLetterScript acknowledges the message and, if it was still pending,
// copies it to the dead-letter stream, atomically: each message is
// dead-lettered at most once per group. It returns 1 when this consumer
// dead-lettered it.
//
// Run twice (go-redis retries a command whose reply timed out after the
// server ran it): the second XACK finds the message acknowledged already,
// so the script looks among the last dead letters for the one its first
// run wrote (same message, group and consumer) and returns 1 again; before,
// it returned 0 and the move went unreported: no hook, no counter, no log
// (TestRetriedDeadLetterIsReported). deadLetterLookback bounds the search:
// a retry that comes after that many other dead letters of the stream is
// reported by nobody. One step: nothing to interrupt; a worker that stops
// before it leaves the message pending, to be reclaimed and moved again.
var deadLetterScript = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
	for _, e in ipairs(redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[9])) do
		local f, v = e[2], {}
		for i = 1, #f, 2 do v[f[i]] = f[i + 1] end
		if v['id'] == ARGV[2] and v['group'] == ARGV[1] and v['consumer'] == ARGV[6] then
			return 1 -- this consumer's own earlier run, whose reply was lost
		end
	end
	return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'payload', ARGV[3], 'id', ARGV[2],
	'group', ARGV[1], 'deliveries', ARGV[4], 'error', ARGV[5], 'consumer', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[8])
return 1
`)

// deadLetterLookback is how many of the latest dead letters a retried
// deadLetterScript searches for its own.
const deadLetterLookback = 100

func (w *Worker) ensureGroup(ctx context.Context) error {
	if err := ensureGroupScript.Run(ctx, w.rc, []string{w.keys.stream}, w.group, w.cfg.startID, w.cfg.ttl.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("stream: create group %q: %w", w.group, err)
	}
	return nil
}

type retry struct {
	due  time.Time
	wait time.Duration // the backoff: the message has been idle at least this long when due
	msg  Message
}

// Run consumes messages until ctx ends, then stops reading, lets the
// message in hand finish (see WithShutdownTimeout) and returns nil. Messages
// it had read but not finished stay pending for other consumers to
// reclaim. It returns an error only if the group cannot be created; other
// Redis errors are logged and retried. A Worker runs once at a time.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: worker already running", ErrInvalidConfig)
	}
	defer w.running.Store(false)
	if err := w.ensureGroup(ctx); err != nil {
		return err
	}
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(w.cfg.shutdownTimeout, hcancel)
		context.AfterFunc(hctx, func() { t.Stop() })
	})
	defer stop()

	var (
		retries   []retry
		lastClaim time.Time
		cursor    = "0-0"
		errWait   = 10 * time.Millisecond
	)
	fail := func(op string, err error) {
		w.cfg.log.Warn("stream: redis error", "op", op, "stream", w.keys.stream, "group", w.group, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(errWait):
		}
		errWait = min(2*errWait, 5*time.Second)
	}
	for ctx.Err() == nil {
		// Retries that are due.
		now := time.Now()
		for len(retries) > 0 && !retries[0].due.After(now) && ctx.Err() == nil {
			r := retries[0]
			retries = retries[1:]
			m, ok, err := w.reclaimOne(ctx, r)
			if err != nil {
				fail("xclaim", err)
				retries = append(retries, retry{due: time.Now(), wait: r.wait, msg: r.msg})
				continue
			}
			if ok {
				retries = w.process(ctx, hctx, m, retries)
			}
		}
		// Messages of dead consumers.
		if time.Since(lastClaim) >= w.cfg.claimEvery {
			msgs, next, err := w.autoclaim(ctx, cursor)
			if err != nil {
				if ctx.Err() == nil {
					fail("xautoclaim", err)
				}
				continue
			}
			lastClaim, cursor = time.Now(), next
			for _, m := range msgs {
				if ctx.Err() != nil {
					break
				}
				retries = w.process(ctx, hctx, m, retries)
			}
			if cursor != "0-0" {
				lastClaim = time.Time{} // more to scan: go on next round
			}
		}
		// New messages, waiting no longer than the next retry or claim.
		block := min(w.cfg.block, time.Until(lastClaim.Add(w.cfg.claimEvery)))
		if len(retries) > 0 {
			block = min(block, time.Until(retries[0].due))
		}
		if block < time.Millisecond {
			block = time.Millisecond
		}
		res, err := w.rc.XReadGroup(ctx, &redis.XReadGroupArgs{Group: w.group, Consumer: w.cfg.consumer,
			Streams: []string{w.keys.stream, ">"}, Count: int64(w.cfg.batch), Block: block}).Result()
		switch {
		case err == nil:
			errWait = 10 * time.Millisecond
		case errors.Is(err, redis.Nil) || ctx.Err() != nil:
			continue
		case strings.HasPrefix(err.Error(), "NOGROUP"):
			// The stream expired or was deleted: start over.
			if err := w.ensureGroup(ctx); err != nil {
				fail("xgroup", err)
			}
			continue
		default:
			fail("xreadgroup", err)
			continue
		}
		for _, s := range res {
			for _, x := range s.Messages {
				if ctx.Err() != nil {
					break // read but not handled: pending, reclaimed later
				}
				retries = w.process(ctx, hctx, toMessage(x, 1), retries)
			}
		}
	}
	return nil
}

func toMessage(x redis.XMessage, deliveries int64) Message {
	p, _ := x.Values["payload"].(string)
	return Message{ID: x.ID, Payload: []byte(p), Deliveries: deliveries}
}

// process runs the handler on m and acknowledges, schedules a retry or
// dead-letters; it returns the updated retry queue.
func (w *Worker) process(ctx, hctx context.Context, m Message, retries []retry) []retry {
	// Acknowledgements and dead-lettering outlive the shutdown timeout:
	// they are short, and skipping them would run a finished message again.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if m.Deliveries > w.cfg.maxDeliveries {
		w.deadLetter(actx, m, ErrTooManyDeliveries)
		return retries
	}
	err := w.call(hctx, m)
	if err == nil {
		w.processed.Add(1)
		if err := w.rc.XAck(actx, w.keys.stream, w.group, m.ID).Err(); err != nil {
			// Still pending: it will be reclaimed and run again.
			w.cfg.log.Warn("stream: ack failed", "stream", w.keys.stream, "id", m.ID, "err", err)
		}
		return retries
	}
	w.failed.Add(1)
	w.cfg.log.Info("stream: handler failed", "stream", w.keys.stream, "group", w.group, "id", m.ID, "deliveries", m.Deliveries, "err", err)
	if ctx.Err() != nil {
		return retries // shutting down: left pending for another consumer
	}
	if m.Deliveries >= w.cfg.maxDeliveries {
		w.deadLetter(actx, m, err)
		return retries
	}
	w.retried.Add(1)
	wait := w.backoff(m.Deliveries)
	r := retry{due: time.Now().Add(wait), wait: wait, msg: m}
	i := sort.Search(len(retries), func(i int) bool { return retries[i].due.After(r.due) })
	return append(retries[:i], append([]retry{r}, retries[i:]...)...)
}

func (w *Worker) call(ctx context.Context, m Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("stream: handler panicked: %v", p)
		}
	}()
	return w.handler(ctx, m)
}

func (w *Worker) backoff(deliveries int64) time.Duration {
	ceil := w.cfg.retryMax
	if deliveries < 32 && w.cfg.retryMin<<deliveries > 0 && w.cfg.retryMin<<deliveries < ceil {
		ceil = w.cfg.retryMin << deliveries
	}
	if ceil <= w.cfg.retryMin {
		return w.cfg.retryMin
	}
	return w.cfg.retryMin + rand.N(ceil-w.cfg.retryMin)
}

// reclaimOne redelivers a failed message to this consumer, unless another
// consumer took it or it was acknowledged meanwhile.
func (w *Worker) reclaimOne(ctx context.Context, r retry) (Message, bool, error) {
	// Idle since our delivery for at least the backoff, unless another
	// consumer claimed it since: then it is theirs.
	v, err := reclaimScript.Run(ctx, w.rc, []string{w.keys.stream}, w.group, w.cfg.consumer,
		r.wait.Milliseconds(), r.msg.ID, r.msg.Deliveries).Slice()
	if err != nil {
		return Message{}, false, err
	}
	msgs, err := xMessages(v)
	if err != nil {
		return Message{}, false, err
	}
	if len(msgs) == 0 || msgs[0].ID != r.msg.ID {
		return Message{}, false, nil
	}
	return toMessage(msgs[0], r.msg.Deliveries+1), true, nil
}

// reclaimScript: KEYS stream; ARGV group, consumer, min idle ms, message
// ID, the deliveries this consumer knows of. It XCLAIMs the message if it
// has been idle for the min idle time, and returns the claimed entries.
//
// Run twice: the first run's XCLAIM reset the message's idle time, so a
// second XCLAIM with the backoff as min idle claimed nothing (with the
// default backoff of a second and read timeout of 500 ms), and the message,
// pending with this consumer, waited for WithMinIdle and another autoclaim
// instead of its backoff (TestRetriedReclaimRunsTheRetry); when the second
// XCLAIM did claim, it counted a delivery more. The script recognises its
// own earlier claim (this consumer owns the message, with more deliveries
// than it knew of) and returns the entry without claiming again. One step:
// a worker that stops after it leaves the message pending, to be
// autoclaimed after WithMinIdle.
var reclaimScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[4], ARGV[4], 1)
if #p == 0 then return {} end
if p[1][2] == ARGV[2] and tonumber(p[1][4]) > tonumber(ARGV[5]) then
	-- this consumer's own earlier claim, whose reply was lost
	return redis.call('XRANGE', KEYS[1], ARGV[4], ARGV[4])
end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
`)

// xMessages parses a script's reply of stream entries (as XRANGE's).
func xMessages(v []any) ([]redis.XMessage, error) {
	out := make([]redis.XMessage, 0, len(v))
	for _, x := range v {
		e, ok := x.([]any)
		if !ok || len(e) != 2 {
			continue // an entry deleted meanwhile
		}
		id, ok := e[0].(string)
		fields, ok2 := e[1].([]any)
		if !ok || !ok2 || len(fields)%2 != 0 {
			return nil, fmt.Errorf("stream: unexpected entry %v", x)
		}
		m := redis.XMessage{ID: id, Values: make(map[string]any, len(fields)/2)}
		for i := 0; i < len(fields); i += 2 {
			k, _ := fields[i].(string)
			m.Values[k] = fields[i+1]
		}
		out = append(out, m)
	}
	return out, nil
}

// autoclaim takes over messages idle for the min idle time from any
// consumer, with their delivery counts.
//
// XAUTOCLAIM run twice (a lost reply): the second run no longer sees the
// messages the first claimed (their idle time was reset), so they stay
// pending with this consumer, one delivery counted, until the next
// autoclaim after WithMinIdle: late, not lost. The same holds for an
// XREADGROUP whose reply is lost, and for a worker that stops between a
// read and the acknowledgement. A retried XACK acknowledges nothing more
// and its result is not used.
func (w *Worker) autoclaim(ctx context.Context, cursor string) ([]Message, string, error) {
	xs, next, err := w.rc.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: w.keys.stream, Group: w.group,
		Consumer: w.cfg.consumer, MinIdle: w.cfg.minIdle, Start: cursor, Count: int64(w.cfg.batch)}).Result()
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			return nil, "0-0", w.ensureGroup(ctx)
		}
		return nil, cursor, err
	}
	if len(xs) == 0 {
		return nil, next, nil
	}
	pend, err := w.rc.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: w.keys.stream, Group: w.group,
		Start: xs[0].ID, End: xs[len(xs)-1].ID, Count: int64(len(xs)) + 1, Consumer: w.cfg.consumer}).Result()
	if err != nil {
		return nil, cursor, err
	}
	counts := make(map[string]int64, len(pend))
	for _, p := range pend {
		counts[p.ID] = p.RetryCount
	}
	out := make([]Message, 0, len(xs))
	for _, x := range xs {
		n, ok := counts[x.ID]
		if !ok {
			continue // acknowledged or claimed away since
		}
		w.reclaimed.Add(1)
		out = append(out, toMessage(x, n))
	}
	return out, next, nil
}

func (w *Worker) deadLetter(ctx context.Context, m Message, cause error) {
	ok, err := deadLetterScript.Run(ctx, w.rc, []string{w.keys.stream, w.keys.dlq}, w.group, m.ID, m.Payload,
		m.Deliveries, cause.Error(), w.cfg.consumer, w.cfg.maxLen, w.cfg.ttl.Milliseconds(), deadLetterLookback).Int()
	if err != nil {
		// Still pending: it comes back through reclaim, and goes here again.
		w.cfg.log.Warn("stream: dead-letter failed", "stream", w.keys.stream, "id", m.ID, "err", err)
		return
	}
	if ok == 1 {
		w.deadLettered.Add(1)
		w.cfg.log.Warn("stream: message dead-lettered", "stream", w.keys.stream, "group", w.group, "id", m.ID,
			"deliveries", m.Deliveries, "err", cause)
		if w.cfg.onDeadLetter != nil {
			w.cfg.onDeadLetter(m, cause)
		}
	}
}

// GroupInfo describes a consumer group's backlog.
type GroupInfo struct {
	// Length is the number of entries in the stream.
	Length int64
	// Pending counts messages delivered to a consumer but not yet
	// acknowledged.
	Pending int64
	// Lag counts entries not yet delivered to the group.
	Lag int64
	// LagExact is false when Lag is a lower bound: Redis could not tell
	// (entries deleted after the group's position) and counting them
	// stopped at 10,000.
	LagExact bool
	// Consumers is the number of consumers the group knows, dead ones
	// included.
	Consumers int64
	// DeadLetters is the length of the dead-letter stream.
	DeadLetters int64
}

const lagCountLimit = 10_000

// Info reports the backlog of the Worker's group.
func (w *Worker) Info(ctx context.Context) (GroupInfo, error) {
	var (
		groups *redis.XInfoGroupsCmd
		length *redis.IntCmd
		dlq    *redis.IntCmd
	)
	// The three keys share a slot: one pipeline, one node.
	_, err := w.rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		groups = p.XInfoGroups(ctx, w.keys.stream)
		length = p.XLen(ctx, w.keys.stream)
		dlq = p.XLen(ctx, w.keys.dlq)
		return nil
	})
	if err != nil {
		return GroupInfo{}, fmt.Errorf("stream: info: %w", err)
	}
	for _, g := range groups.Val() {
		if g.Name != w.group {
			continue
		}
		info := GroupInfo{Length: length.Val(), Pending: g.Pending, Lag: g.Lag, LagExact: true,
			Consumers: g.Consumers, DeadLetters: dlq.Val()}
		if g.Lag < 0 {
			// Redis 7 reports no lag after deletions past the group's
			// position: count what follows it.
			xs, err := w.rc.XRangeN(ctx, w.keys.stream, "("+g.LastDeliveredID, "+", lagCountLimit+1).Result()
			if err != nil {
				return GroupInfo{}, fmt.Errorf("stream: info: %w", err)
			}
			info.Lag = int64(min(len(xs), lagCountLimit))
			info.LagExact = len(xs) <= lagCountLimit
		}
		return info, nil
	}
	return GroupInfo{}, fmt.Errorf("stream: info: no group %q on %s: %w", w.group, w.keys.stream, redis.Nil)
}
