// Package ratelimit limits how often a subject (a client IP, a user, a
// route) may act, with Redis as the shared counter, and provides a net/http
// middleware that applies a limit to requests.
//
// Two algorithms, one interface (Limiter):
//
//   - SlidingWindow is an exact sliding-window log: a sorted set per subject
//     holds the time of every allowed request in the last window, and one Lua
//     script drops the old entries, counts, decides and records atomically.
//     At most limit requests are allowed in any window-long interval, with no
//     burst at window edges. It costs one set entry per allowed request: use
//     it for limits up to a few thousand per window (logins, signups, API
//     keys).
//   - GCRA (the generic cell rate algorithm, a token bucket without a refill
//     job) stores one timestamp per subject, whatever the rate: use it for
//     high limits, where burst requests may pass at once and the rest are
//     spread evenly over the period.
//
// Time always comes from the Redis server (TIME inside the scripts), never
// from the application servers, whose clocks disagree. Allow consumes one
// request; Peek answers the same question without consuming.
//
//	limiter, err := ratelimit.NewSlidingWindow(client, 100, time.Minute,
//		ratelimit.WithPrefix("app:prod:rl:api"))
//	if err != nil { ... }
//	res, err := limiter.Allow(ctx, userID)
//	if err != nil {
//		return err // fail closed: Redis did not answer
//	}
//	if !res.Allowed {
//		return fmt.Errorf("slow down, retry in %v", res.RetryAfter)
//	}
//
// Keys: "<prefix>:{<subject>}:sw" (a sorted set, PEXPIRE window after each
// allowed request), "<prefix>:{<subject>}:gcra" (a string, expiring when
// the subject's allowance is full again) and "<prefix>:{<subject>}:gcra:req"
// (the IDs of the subject's last allowed requests, for 30 s, so that a
// retried script is not counted twice). The subject is escaped with
// runtime.EscapeKeyPart, so it cannot forge a separator or a hash tag. Two
// limiters with different limits must have different prefixes.
//
// The HTTP side is Middleware: see NewMiddleware.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// Errors returned by the package. Redis errors are returned wrapped.
var (
	// ErrInvalidSubject reports an empty subject.
	ErrInvalidSubject = errors.New("ratelimit: invalid subject")
	// ErrInvalidLimit reports a limit, window, period or burst that is not
	// positive, or a rate too high for microsecond resolution.
	ErrInvalidLimit = errors.New("ratelimit: invalid limit")
)

// Result is the answer to Allow or Peek.
type Result struct {
	// Allowed reports whether the request is (for Peek: would be) allowed.
	Allowed bool
	// Limit is the configured limit (the burst for GCRA).
	Limit int
	// Remaining is how many more requests would be allowed right now,
	// after this one for Allow.
	Remaining int
	// Reset is when the subject's allowance will be full again if it
	// makes no more requests (server time).
	Reset time.Time
	// RetryAfter is, when Allowed is false, how long until a request will
	// be allowed; zero otherwise.
	RetryAfter time.Duration
}

// Limiter is what SlidingWindow and GCRA have in common, and what the
// middleware takes.
type Limiter interface {
	// Allow consumes one request for subject if the limit permits.
	Allow(ctx context.Context, subject string) (Result, error)
	// Peek reports what Allow would answer, without consuming anything.
	Peek(ctx context.Context, subject string) (Result, error)
}

// Option configures a limiter.
type Option func(*config)

type config struct {
	prefix string
}

// WithPrefix sets the prefix of every key, "app:env:rl:login" style; the
// default is "ratelimit". Limiters with different limits need different
// prefixes. Braces and glob characters in it are escaped.
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

func newConfig(opts []Option) (config, error) {
	c := config{prefix: "ratelimit"}
	for _, o := range opts {
		o(&c)
	}
	if c.prefix == "" {
		return c, errors.New("ratelimit: empty prefix")
	}
	parts := strings.Split(c.prefix, ":")
	for i, s := range parts {
		parts[i] = runtime.EscapeKeyPart(s)
	}
	c.prefix = strings.Join(parts, ":")
	return c, nil
}

func (c config) key(subject, kind string) string {
	return c.prefix + ":{" + runtime.EscapeKeyPart(subject) + "}:" + kind
}

// clock, when set (tests only), replaces the server's TIME with a given
// time in microseconds.
type clock func() int64

func (f clock) arg() string {
	if f == nil {
		return ""
	}
	return strconv.FormatInt(f(), 10)
}

// slidingScript: KEYS[1] the log; ARGV limit, window µs, member, consume
// ("1" or "0"), now µs or "" for the server's TIME. It returns allowed,
// remaining, retry-after µs, reset-after µs and now µs.
//
// Run twice (go-redis retries a command whose reply timed out after the
// server ran it): the member is the request's own ID, drawn once per Allow
// and sent again by the retry, so the second run finds it in the log and
// answers allowed without adding anything. A request is counted once, and
// the last allowed request of a window is not denied by its own first run
// (TestRetriedAllowCountsOnce). A denied first run wrote nothing: the retry
// decides afresh. Peek writes nothing. There is one step: nothing to
// interrupt (a client that stops after the script ran has been counted, as
// a request that was allowed and then not made).
var slidingScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now
if ARGV[5] ~= '' then
	now = tonumber(ARGV[5])
else
	local t = redis.call('TIME')
	now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if ARGV[4] == '1' and redis.call('ZSCORE', KEYS[1], ARGV[3]) then
	-- this request's own earlier run, whose reply was lost: already counted
	allowed = 1
elseif count < limit then
	allowed = 1
	if ARGV[4] == '1' then
		redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[3])
		redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
		count = count + 1
	end
end
local retry = 0
if allowed == 0 then
	local e = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
	retry = tonumber(e[2]) + window - now
end
local reset = 0
if count > 0 then
	local e = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
	reset = tonumber(e[2]) + window - now
end
local remaining = limit - count
if remaining < 0 then remaining = 0 end
return {allowed, remaining, retry, reset, now}
`)

// SlidingWindow is an exact sliding-window log limiter: at most limit
// requests per subject in any window-long interval. Create it with
// NewSlidingWindow; it is safe for concurrent use.
type SlidingWindow struct {
	rc     redis.Scripter
	cfg    config
	limit  int
	window time.Duration
	now    clock
}

// NewSlidingWindow returns a limiter that allows limit requests per window
// and subject. The window is kept to the microsecond; it must be at least a
// millisecond.
func NewSlidingWindow(rc redis.Scripter, limit int, window time.Duration, opts ...Option) (*SlidingWindow, error) {
	if rc == nil {
		return nil, errors.New("ratelimit: nil Redis client")
	}
	if limit < 1 || window < time.Millisecond {
		return nil, fmt.Errorf("ratelimit: %d per %v: %w", limit, window, ErrInvalidLimit)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &SlidingWindow{rc: rc, cfg: cfg, limit: limit, window: window}, nil
}

// Allow implements Limiter.
func (s *SlidingWindow) Allow(ctx context.Context, subject string) (Result, error) {
	return s.run(ctx, subject, "1")
}

// Peek implements Limiter.
func (s *SlidingWindow) Peek(ctx context.Context, subject string) (Result, error) {
	return s.run(ctx, subject, "0")
}

func (s *SlidingWindow) run(ctx context.Context, subject, consume string) (Result, error) {
	if subject == "" {
		return Result{}, ErrInvalidSubject
	}
	// The member only needs to be unique among requests of one
	// microsecond; 64 random bits are.
	member := strconv.FormatUint(rand.Uint64(), 36)
	v, err := slidingScript.Run(ctx, s.rc, []string{s.cfg.key(subject, "sw")},
		s.limit, s.window.Microseconds(), member, consume, s.now.arg()).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: %w", err)
	}
	return result(v, s.limit)
}

func result(v []int64, limit int) (Result, error) {
	if len(v) != 5 {
		return Result{}, fmt.Errorf("ratelimit: unexpected script reply %v", v)
	}
	now := time.UnixMicro(v[4])
	return Result{
		Allowed:    v[0] == 1,
		Limit:      limit,
		Remaining:  int(v[1]),
		Reset:      now.Add(time.Duration(v[3]) * time.Microsecond),
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
	}, nil
}

// retryMemory is how long GCRA remembers the ID of an allowed request, so
// that go-redis's retry of its script is not counted again: longer than
// go-redis's retries with its own defaults (4 attempts of a 3 s read
// timeout). retryMemoryCap bounds the IDs remembered per subject.
const (
	retryMemory    = 30 * time.Second
	retryMemoryCap = 64
)

// gcraScript: KEYS[1] the theoretical arrival time (TAT), KEYS[2] the IDs
// of the subject's recently allowed requests (a sorted set scored by server
// time); ARGV emission interval µs, burst, consume, now µs or "", request
// ID, how long IDs are remembered (µs), how many at most. Same reply as
// slidingScript.
//
// Run twice: the retry carries the same request ID and finds it among the
// recent ones, so it answers allowed from the current TAT without advancing
// it again; without that, a lost reply spent two cells and denied the
// subject's last request of a burst (TestRetriedAllowCountsOnce). The IDs
// are kept for retryMemory and at most retryMemoryCap per subject: a retry
// that comes later, or after more than that many allowed requests of the
// same subject, is counted again (one emission interval too much). A denied
// first run wrote nothing. There is one step: nothing to interrupt.
var gcraScript = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[4] ~= '' then
	now = tonumber(ARGV[4])
else
	local t = redis.call('TIME')
	now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if ARGV[3] == '1' and redis.call('ZSCORE', KEYS[2], ARGV[5]) then
	-- this request's own earlier run, whose reply was lost: already counted
	local remaining = math.floor((now - (tat - burst * interval)) / interval)
	if remaining < 0 then remaining = 0 end
	return {1, remaining, 0, tat - now, now}
end
local allowAt = tat + interval - burst * interval
if now < allowAt then
	return {0, 0, allowAt - now, tat - now, now}
end
if ARGV[3] == '1' then
	tat = tat + interval
	redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
	local memory = tonumber(ARGV[6])
	redis.call('ZADD', KEYS[2], string.format('%.0f', now), ARGV[5])
	redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('(%.0f', now - memory))
	redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[7]) - 1)
	redis.call('PEXPIRE', KEYS[2], math.ceil(memory / 1000))
end
local remaining = math.floor((now - (tat - burst * interval)) / interval)
return {1, remaining, 0, tat - now, now}
`)

// GCRA is a generic-cell-rate limiter: rate requests per period on
// average, with bursts of up to burst requests. Create it with NewGCRA; it
// is safe for concurrent use.
type GCRA struct {
	rc       redis.Scripter
	cfg      config
	burst    int
	interval time.Duration // period / rate
	now      clock
}

// NewGCRA returns a limiter that allows rate requests per period and
// subject on average, and up to burst at once: NewGCRA(rc, 1000, time.Second,
// 100) lets 100 requests through at once and then one every millisecond.
// With burst == rate, a fresh subject can use its whole period's allowance
// at once.
func NewGCRA(rc redis.Scripter, rate int, period time.Duration, burst int, opts ...Option) (*GCRA, error) {
	if rc == nil {
		return nil, errors.New("ratelimit: nil Redis client")
	}
	if rate < 1 || burst < 1 || period <= 0 || period/time.Duration(rate) < time.Microsecond {
		return nil, fmt.Errorf("ratelimit: %d per %v, burst %d: %w", rate, period, burst, ErrInvalidLimit)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &GCRA{rc: rc, cfg: cfg, burst: burst, interval: period / time.Duration(rate)}, nil
}

// Allow implements Limiter.
func (g *GCRA) Allow(ctx context.Context, subject string) (Result, error) {
	return g.run(ctx, subject, "1")
}

// Peek implements Limiter.
func (g *GCRA) Peek(ctx context.Context, subject string) (Result, error) {
	return g.run(ctx, subject, "0")
}

func (g *GCRA) run(ctx context.Context, subject, consume string) (Result, error) {
	if subject == "" {
		return Result{}, ErrInvalidSubject
	}
	// The request's ID, sent again by go-redis's retry of the script.
	id := strconv.FormatUint(rand.Uint64(), 36)
	v, err := gcraScript.Run(ctx, g.rc, []string{g.cfg.key(subject, "gcra"), g.cfg.key(subject, "gcra:req")},
		g.interval.Microseconds(), g.burst, consume, g.now.arg(),
		id, retryMemory.Microseconds(), retryMemoryCap).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: %w", err)
	}
	return result(v, g.burst)
}
