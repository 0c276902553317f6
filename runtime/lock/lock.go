// Package lock is a distributed lock on one Redis primary: SET NX PX with a
// random token, release by compare-and-delete, refresh by
// compare-and-pexpire, an optional watchdog that keeps the lock while the
// work runs, retry strategies and a fencing token.
//
// A lock gives mutual exclusion only while its TTL has not run out, and a
// process can pause (GC, swap, a slow disk) past the TTL without noticing.
// The fencing token is the defence: every Obtain returns a number larger than
// any earlier one for the same key, and the resource being protected (a
// database row, a file store) remembers the largest token it has seen and
// rejects writes with a smaller one:
//
//	locks, err := lock.New(client, lock.WithPrefix("app:prod:lock"))
//	if err != nil { ... }
//	l, err := locks.Obtain(ctx, "invoice:"+id, 10*time.Second,
//		lock.WithRetry(lock.LimitRetry(lock.ExponentialBackoff(10*time.Millisecond, time.Second), 10)),
//		lock.WithAutoRefresh(3*time.Second))
//	if errors.Is(err, lock.ErrNotObtained) {
//		return errBusy // someone else holds it
//	} else if err != nil {
//		return err // Redis is down
//	}
//	defer l.Release(context.WithoutCancel(ctx))
//	// UPDATE invoices SET ..., fence = $1 WHERE id = $2 AND fence < $1
//	err = db.Write(ctx, id, l.Fence())
//
// With WithAutoRefresh a watchdog goroutine refreshes the lock until Release
// or the end of the context given to Obtain; if it finds the lock gone (or
// cannot refresh it for a whole TTL), it closes Lost(). Work that must not
// continue without the lock selects on Lost().
//
// Keys: the lock is "<prefix>:{<key>}" and its fencing counter
// "<prefix>:{<key>}:fence", the key escaped with runtime.EscapeKeyPart so
// that both share one cluster slot; both always carry a TTL. A release
// leaves "<prefix>:{<key>}:released:<token>" for 30 s, so that go-redis's
// retry of a release that timed out is recognised as done. The client can
// be a *redis.Client, a *redis.ClusterClient, a failover client or a Ring:
// anything that implements redis.Scripter.
//
// Like every single-primary lock, a failover that loses the last writes can
// hand a lock to two holders; fencing tokens keep the protected resource
// safe in that case too, as long as the counter survives (see Lock.Fence).
package lock

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// Errors returned by the package. Redis errors are returned wrapped, never
// as one of these.
var (
	// ErrNotObtained reports that the lock is held by someone else and the
	// retry strategy (or the context) gave up waiting for it.
	ErrNotObtained = errors.New("lock: not obtained")
	// ErrNotHeld reports a Release, Refresh or TTL on a lock that has
	// expired or been taken over by another holder.
	ErrNotHeld = errors.New("lock: not held")
	// ErrInvalidKey reports an empty key.
	ErrInvalidKey = errors.New("lock: invalid key")
	// ErrInvalidTTL reports a TTL below one millisecond, or an auto-refresh
	// interval that is not shorter than the TTL.
	ErrInvalidTTL = errors.New("lock: invalid TTL")
)

// DefaultFenceTTL is how long a fencing counter outlives the last Obtain or
// Refresh of its key unless WithFenceTTL says otherwise.
const DefaultFenceTTL = 7 * 24 * time.Hour

// Client obtains locks. It is safe for concurrent use; create one per
// process and share it.
type Client struct {
	rc       redis.Scripter
	prefix   string
	fenceTTL time.Duration
	log      *slog.Logger
}

// Option configures a Client.
type Option func(*Client)

// WithPrefix sets the prefix of every key, "app:env:lock" style; the default
// is "lock". Braces and glob characters in it are escaped.
func WithPrefix(p string) Option { return func(c *Client) { c.prefix = p } }

// WithFenceTTL sets how long a fencing counter lives after the last Obtain
// or Refresh of its key (at least the lock's TTL); the default is
// DefaultFenceTTL. See Lock.Fence for why it matters little.
func WithFenceTTL(d time.Duration) Option { return func(c *Client) { c.fenceTTL = d } }

// WithLogger sets the logger for watchdog events; the default is
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// New returns a Client on rc. It returns an error for an empty prefix or a
// non-positive fence TTL.
func New(rc redis.Scripter, opts ...Option) (*Client, error) {
	if rc == nil {
		return nil, errors.New("lock: nil Redis client")
	}
	c := &Client{rc: rc, prefix: "lock", fenceTTL: DefaultFenceTTL, log: slog.Default()}
	for _, o := range opts {
		o(c)
	}
	if c.prefix == "" {
		return nil, errors.New("lock: empty prefix")
	}
	if c.fenceTTL < time.Second {
		return nil, fmt.Errorf("lock: fence TTL %v: %w", c.fenceTTL, ErrInvalidTTL)
	}
	c.prefix = escapePrefix(c.prefix)
	return c, nil
}

// escapePrefix escapes each ':'-separated part, so that a prefix can neither
// carry a hash tag nor a glob, and keeps the separators.
func escapePrefix(p string) string {
	parts := strings.Split(p, ":")
	for i, s := range parts {
		parts[i] = runtime.EscapeKeyPart(s)
	}
	return strings.Join(parts, ":")
}

// keys returns the lock key and the fencing counter key of key.
func (c *Client) keys(key string) []string {
	base := c.prefix + ":{" + runtime.EscapeKeyPart(key) + "}"
	return []string{base, base + ":fence"}
}

// obtainScript sets the lock if free and then advances the fencing counter
// to max(counter+1, server time in microseconds): strictly increasing while
// the counter lives, and still larger than any earlier token after it
// expired, as long as the server clock does not go backwards.
//
// Run twice (go-redis retries a command whose reply timed out after the
// server ran it): the token is drawn once per Obtain, so a lock that holds
// it is this Obtain's own, set by the first run. The retry then renews the
// lock's TTL and returns the fence the first run chose, without advancing
// the counter again; before, it answered "held elsewhere" and the key
// stayed locked by nobody for its TTL (TestRetriedObtainIsTheCallersOwn).
// Obtain stopped after the script (its error, or the process dying): the
// lock expires with its TTL; Obtain deletes it at once on an error, and an
// unused fence value is only a gap in the counter.
var obtainScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	if redis.call('GET', KEYS[1]) ~= ARGV[1] then
		return false
	end
	-- this Obtain's own earlier run, whose reply was lost
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	local f = redis.call('GET', KEYS[2])
	if f then
		redis.call('PEXPIRE', KEYS[2], ARGV[3])
		return tonumber(f)
	end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if now > f then f = now else f = f + 1 end
redis.call('SET', KEYS[2], string.format('%.0f', f), 'PX', ARGV[3])
return f
`)

// releaseScript: KEYS lock, release marker; ARGV token, release ID (drawn
// once per Release call), marker TTL ms. It deletes the lock if it holds
// the token and leaves the release ID in the marker for a while.
//
// Run twice: the first run deleted the lock, so the second no longer finds
// the token; it finds its own release ID in the marker instead and reports
// the release done. Before, a release that succeeded returned ErrNotHeld
// (TestRetriedReleaseSucceeds). A second Release call has another ID and
// still gets ErrNotHeld. The marker is "<lock>:released:<token>", one per
// released lock, and lives releaseMemory. One step: nothing to interrupt;
// a Release that never ran leaves the lock to expire with its TTL.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('DEL', KEYS[1])
	redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
	return 1
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
	return 1
end
return 0
`)

// releaseMemory is how long a release marker lives: longer than go-redis's
// retries with its own defaults (4 attempts of a 3 s read timeout).
const releaseMemory = 30 * time.Second

// dropScript deletes the lock if it holds the token: Obtain's cleanup after
// an error, where the result does not matter. Run twice, it deletes nothing
// the second time.
var dropScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// refreshScript extends the lock and its counter if the lock holds the
// token. Run twice, it extends them twice from nearly the same moment:
// both runs succeed (TestRetriedRefreshSucceeds). One step.

var refreshScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	redis.call('PEXPIRE', KEYS[2], ARGV[3])
	return 1
end
return 0
`)

// ttlScript reads the lock's PTTL if it holds the token: read only.
var ttlScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PTTL', KEYS[1])
end
return -3
`)

// ObtainOption configures one Obtain.
type ObtainOption func(*obtainConfig)

type obtainConfig struct {
	retry   RetryStrategy
	refresh time.Duration
}

// WithRetry sets how Obtain waits for a lock that is held; the default is
// NoRetry. The context given to Obtain bounds the wait in every case.
func WithRetry(s RetryStrategy) ObtainOption {
	return func(o *obtainConfig) {
		if s != nil {
			o.retry = s
		}
	}
}

// WithAutoRefresh starts a watchdog that refreshes the lock to its full TTL
// every interval until Release or the end of the context given to Obtain.
// The interval must be shorter than the TTL; a third of it is a good choice.
// See Lock.Lost for how the watchdog reports a lost lock.
func WithAutoRefresh(every time.Duration) ObtainOption {
	return func(o *obtainConfig) { o.refresh = every }
}

// Obtain takes the lock named key for ttl. It returns ErrNotObtained when
// the lock is held elsewhere and the retry strategy gives up (or ctx ends
// first: the error then matches ctx.Err() too), and a wrapped Redis error
// when Redis fails.
func (c *Client) Obtain(ctx context.Context, key string, ttl time.Duration, opts ...ObtainOption) (*Lock, error) {
	if key == "" {
		return nil, ErrInvalidKey
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lock: ttl %v: %w", ttl, ErrInvalidTTL)
	}
	cfg := obtainConfig{retry: NoRetry()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.refresh != 0 && (cfg.refresh < 0 || cfg.refresh >= ttl) {
		return nil, fmt.Errorf("lock: auto-refresh every %v with ttl %v: %w", cfg.refresh, ttl, ErrInvalidTTL)
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	keys := c.keys(key)
	ttlMS, fenceMS := ttl.Milliseconds(), max(c.fenceTTL, ttl).Milliseconds()
	var timer *time.Timer
	for attempt := 1; ; attempt++ {
		fence, err := obtainScript.Run(ctx, c.rc, keys, token, ttlMS, fenceMS).Int64()
		switch {
		case err == nil:
			l := &Lock{c: c, key: key, keys: keys, token: token, fence: fence, ttl: ttl,
				lost: make(chan struct{}), stop: make(chan struct{}), watchDone: make(chan struct{})}
			if cfg.refresh > 0 {
				go l.watch(ctx, cfg.refresh)
			} else {
				close(l.watchDone)
			}
			return l, nil
		case errors.Is(err, redis.Nil):
			// held elsewhere: retry below
		default:
			// The SET may have happened before the error (a timeout after
			// the write): drop it, so that the key does not stay locked for
			// a whole TTL by nobody.
			c.cleanup(ctx, keys, token)
			if cerr := ctx.Err(); cerr != nil {
				// The caller's context ended during the command: as when it
				// ends while waiting, the lock was not obtained.
				return nil, fmt.Errorf("%w: %w", ErrNotObtained, cerr)
			}
			return nil, fmt.Errorf("lock: obtain %q: %w", key, err)
		}
		wait, ok := cfg.retry.Backoff(attempt)
		if !ok {
			return nil, ErrNotObtained
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrNotObtained, ctx.Err())
		case <-timer.C:
		}
	}
}

func (c *Client) cleanup(ctx context.Context, keys []string, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = dropScript.Run(ctx, c.rc, keys[:1], token).Err()
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("lock: token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Lock is a held lock. Its methods are safe for concurrent use.
type Lock struct {
	c     *Client
	key   string
	keys  []string
	token string
	fence int64
	ttl   time.Duration

	stopOnce  sync.Once
	stop      chan struct{} // closed by Release: the watchdog ends
	watchDone chan struct{} // closed when the watchdog has ended (at once without one)
	lostOnce  sync.Once
	lost      chan struct{}
	mu        sync.Mutex
	lostErr   error
}

// Key returns the name the lock was obtained with.
func (l *Lock) Key() string { return l.key }

// Token returns the random value that identifies this holder.
func (l *Lock) Token() string { return l.token }

// Fence returns the fencing token: larger than the token of every earlier
// Obtain of the same key. Protected resources store the largest token they
// have seen and reject writes that carry a smaller one.
//
// The counter lives next to the lock with a TTL of WithFenceTTL (default
// seven days, renewed by every Obtain and Refresh). While it lives, each
// token is the previous one plus at least one; once it has expired, the next
// token restarts from the Redis server's clock in microseconds, which is
// larger than any earlier token unless the server clock went backwards, or
// more than one lock per microsecond was obtained for the key on average
// since the counter was created. A failover to a replica that had not yet
// received the latest counter can repeat a token; do not rely on the
// counter across failovers that lose writes.
func (l *Lock) Fence() int64 { return l.fence }

// TTL returns the lock's remaining time to live, or ErrNotHeld.
func (l *Lock) TTL(ctx context.Context) (time.Duration, error) {
	ms, err := ttlScript.Run(ctx, l.c.rc, l.keys[:1], l.token).Int64()
	if err != nil {
		return 0, fmt.Errorf("lock: ttl %q: %w", l.key, err)
	}
	if ms < 0 {
		return 0, ErrNotHeld
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Refresh extends the lock to ttl from now if it is still held, else
// returns ErrNotHeld.
func (l *Lock) Refresh(ctx context.Context, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("lock: ttl %v: %w", ttl, ErrInvalidTTL)
	}
	ok, err := refreshScript.Run(ctx, l.c.rc, l.keys, l.token, ttl.Milliseconds(), max(l.c.fenceTTL, ttl).Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("lock: refresh %q: %w", l.key, err)
	}
	if ok == 0 {
		return ErrNotHeld
	}
	return nil
}

// Release stops the watchdog, if any, and deletes the lock if this holder
// still has it; it returns ErrNotHeld when the lock had expired or been
// taken over. The fencing counter stays.
func (l *Lock) Release(ctx context.Context) error {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.watchDone
	id, err := newToken()
	if err != nil {
		return err
	}
	n, err := releaseScript.Run(ctx, l.c.rc, []string{l.keys[0], l.keys[0] + ":released:" + l.token},
		l.token, id, releaseMemory.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("lock: release %q: %w", l.key, err)
	}
	if n == 0 {
		return ErrNotHeld
	}
	return nil
}

// Lost returns a channel that the watchdog closes when it finds the lock
// gone, or when it could not refresh the lock for a whole TTL (Redis down):
// the lock must then be presumed lost. Err tells which. Without
// WithAutoRefresh the channel is never closed.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Err returns why Lost() was closed, an error matching ErrNotHeld, or nil
// while it is open.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lostErr
}

func (l *Lock) lose(err error) {
	l.lostOnce.Do(func() {
		l.mu.Lock()
		l.lostErr = err
		l.mu.Unlock()
		close(l.lost)
	})
	l.c.log.Warn("lock: lost", "key", l.key, "err", err)
}

// watch refreshes the lock every interval until Release or ctx ends.
func (l *Lock) watch(ctx context.Context, every time.Duration) {
	defer close(l.watchDone)
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.stop:
			return
		case <-tick.C:
		}
		sent := time.Now() // the TTL runs from when Redis ran the refresh, at the latest
		rctx, cancel := context.WithTimeout(ctx, every)
		err := l.Refresh(rctx, l.ttl)
		cancel()
		switch {
		case err == nil:
			lastOK = sent
		case errors.Is(err, ErrNotHeld):
			l.lose(err)
			return
		case ctx.Err() != nil:
			return
		case time.Since(lastOK) >= l.ttl:
			l.lose(fmt.Errorf("%w: no successful refresh for %v: %w", ErrNotHeld, l.ttl, err))
			return
		default:
			l.c.log.Warn("lock: refresh failed, retrying", "key", l.key, "err", err)
		}
	}
}
