package runtime

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The scripts below touch one key each, so they are cluster safe.

// leaseScript reads the key and, if it is empty, writes the caller's
// placeholder with SET PX. Reply: {1, value} when a value is there,
// {2, pttl} when another loader holds the lease, {3, now} when the caller
// got it (now is the server's clock in milliseconds with microseconds as a
// fraction, as a string, to compare with tag invalidations).
//
// It repairs what it cannot use: a key of another type than string is
// deleted, and so is a placeholder without an expiry (no version writes
// one; a lease that never ends would block every loader). A placeholder
// that is the caller's own is granted again: the first run's reply was
// lost and the client ran the script a second time.
// KEYS[1] key; ARGV[1] placeholder; ARGV[2] lease ms.
var leaseScript = redis.NewScript(`
local tp = redis.call('TYPE', KEYS[1])['ok']
if tp ~= 'string' and tp ~= 'none' then redis.call('DEL', KEYS[1]) end
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then
  if string.sub(v, 1, 2) ~= ARGV[1]:sub(1, 2) then return {1, v} end
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl >= 0 then return {2, pttl} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local t = redis.call('TIME')
return {3, string.format('%.3f', tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000)}
`)

// casStoreScript stores a value only if the caller's placeholder is still
// there. KEYS[1] key; ARGV[1] placeholder; ARGV[2] value; ARGV[3] ttl ms.
//
// Run again after a lost reply, it finds its own value and reports it
// stored; nobody else writes the same bytes (envelopes carry a random
// stamp, and a plain frame equal to ours is as fresh as ours).
var casStoreScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if v == ARGV[2] then return 1 end
return 0
`)

// casStoreTaggedScript is casStoreScript for a key tagged with its lease
// (tryLease), on a single master: KEYS[2..] are the sets of those
// tags. It stores only if each set still lists the key. A set that lost
// the member (evicted, or missing on a replica promoted before the
// tagging reached it) no longer lets an
// invalidation of the tag find the key, so the value is not stored and
// the placeholder is deleted. After the store it raises each member's score
// (and the set's expiry) to the key's own expiry plus ARGV[4] ms: a member
// scored at tagging time must not expire before its key.
// KEYS[1] key; ARGV[1] placeholder; ARGV[2] value; ARGV[3] ttl ms;
// ARGV[4] the tag margin ms. Run again after a lost reply, it finds its
// own value and reports it stored.
var casStoreTaggedScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[2] then return 1 end
if v ~= ARGV[1] then return 0 end
for i = 2, #KEYS do
  if not redis.call('ZSCORE', KEYS[i], KEYS[1]) then
    redis.call('DEL', KEYS[1])
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = now + tonumber(ARGV[3]) + tonumber(ARGV[4])
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', 'GT', exp, KEYS[1])
  local pttl = redis.call('PTTL', KEYS[i])
  if pttl >= 0 and now + pttl < exp then
    redis.call('PEXPIREAT', KEYS[i], string.format('%d', exp))
  end
end
return 1
`)

// releaseScript deletes the caller's placeholder, if still there.
// KEYS[1] key; ARGV[1] placeholder.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// keepaliveScript extends the caller's placeholder, if still there.
// KEYS[1] key; ARGV[1] placeholder; ARGV[2] lease ms.
var keepaliveScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// refreshLockScript takes the refresh lock of a stale key with SET NX PX and
// returns the server time (as leaseScript does), or "0" when another
// refresh runs.
// KEYS[1] lock key; ARGV[1] token; ARGV[2] lock ms.
//
// Run again after a lost reply, it finds its own token and grants the lock
// again.
var refreshLockScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) or redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local t = redis.call('TIME')
  return string.format('%.3f', tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000)
end
return '0'
`)

// casRefreshScript replaces a stale envelope with a fresh value only if the
// key still holds the same envelope (same stamp): an invalidation or a
// write-through in between wins. KEYS[1] key; ARGV[1] the old envelope's
// first bytes; ARGV[2] value; ARGV[3] ttl ms.
var casRefreshScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)

// leaseState is the outcome of a lease attempt.
type leaseState uint8

const (
	leaseGranted leaseState = iota + 1
	leaseBusy               // another loader holds it
	leaseValue              // the key holds a value already
)

// lease is a held placeholder.
type lease struct {
	full, token string
	start       float64 // server time (unix ms, µs fraction) when it was granted
	// tagged are tags whose sets listed the key before the lease was
	// granted (tryLease): the store does not tag them again.
	tagged []string
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// tryLease runs leaseScript. With leaseValue it returns the stored value;
// with leaseBusy the remaining time of the other loader's lease. With tags,
// it also adds the key to their sets (for ttl) in the same round trip, so
// that the store after the load needs no tagging round trip of its own: a
// miss with tags known before the load costs three round trips, not four. The caller passes tags only on
// a single master (see loadLeased).
//
// The taggings go first, then the lease, on one connection:
//   - An invalidation of a tag after its tagging finds the key in the set
//     and deletes the placeholder (or, before the lease, what was there:
//     the load then begins after the invalidation). Either way the store
//     cannot put back a value loaded before it.
//   - Replication keeps the order: a replica promoted with the placeholder
//     also has the members, so no invalidation on it can miss the key.
//   - After a NOSCRIPT the scripts run again in the same order
//     (runScriptsInOrder).
//
// The replies' invalidation times are read before the lease, so they
// never stop a store. What can still take the member away before the store
// (an eviction, a replica promoted without it) is caught by the store itself, which requires the member
// (casStoreTaggedScript). A tagging that fails is done again at the store;
// a member whose key is never stored expires with its score.
func (c *Cache) tryLease(ctx context.Context, full string, ttl time.Duration, tags []string) (leaseState, *lease, string, time.Duration, error) {
	token := newPlaceholder()
	leaseCall := scriptCall{leaseScript, []string{full}, []any{token, ms(c.leaseTTL)}}
	if len(tags) == 0 {
		res, err := leaseScript.Run(ctx, c.client, leaseCall.keys, leaseCall.args...).Slice()
		if err != nil {
			return 0, nil, "", 0, err
		}
		return parseLease(full, token, res)
	}
	cmds := c.runScriptsInOrder(ctx, append(c.tagCalls(full, ttl, tags), leaseCall))
	res, err := cmds[len(tags)].Slice()
	if err != nil {
		return 0, nil, "", 0, err
	}
	state, l, val, busyFor, err := parseLease(full, token, res)
	if l == nil {
		return state, l, val, busyFor, err
	}
	for _, cmd := range cmds[:len(tags)] {
		if cmd.Err() != nil {
			return state, l, val, busyFor, nil // tagged again at the store
		}
	}
	l.tagged = tags
	return state, l, val, busyFor, nil
}

func parseLease(full, token string, res []any) (leaseState, *lease, string, time.Duration, error) {
	if len(res) != 2 {
		return 0, nil, "", 0, fmt.Errorf("runtime: lease: unexpected reply %v", res)
	}
	code, _ := res[0].(int64)
	switch code {
	case 1:
		s, _ := res[1].(string)
		return leaseValue, nil, s, 0, nil
	case 2:
		pttl, _ := res[1].(int64)
		return leaseBusy, nil, "", time.Duration(pttl) * time.Millisecond, nil
	case 3:
		now, _ := res[1].(string)
		start, err := strconv.ParseFloat(now, 64)
		if err != nil {
			return 0, nil, "", 0, fmt.Errorf("runtime: lease: server time %q: %w", now, err)
		}
		return leaseGranted, &lease{full: full, token: token, start: start}, "", 0, nil
	}
	return 0, nil, "", 0, fmt.Errorf("runtime: lease: unexpected reply %v", res)
}

// scriptCall is one script run of a pipeline.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// runScripts runs the calls in one pipeline (no round trip for none) with
// EVALSHA, then runs again with EVAL any that the server did not know yet.
// The commands are returned in order, each with its own result or error.
func (c *Cache) runScripts(ctx context.Context, calls []scriptCall) []*redis.Cmd {
	if len(calls) == 0 {
		return nil
	}
	var cmds []*redis.Cmd
	if len(calls) == 1 {
		// One command needs no pipeline (and its allocations).
		cmds = []*redis.Cmd{calls[0].script.EvalSha(ctx, c.client, calls[0].keys, calls[0].args...)}
	} else {
		pipe := c.client.Pipeline()
		cmds = queueScripts(ctx, pipe, calls)
		_, _ = pipe.Exec(ctx)
	}
	c.retryNoScript(ctx, cmds, calls)
	return cmds
}

// queueScripts adds the calls to pipe as EVALSHA commands.
func queueScripts(ctx context.Context, pipe redis.Pipeliner, calls []scriptCall) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	for i, sc := range calls {
		cmds[i] = sc.script.EvalSha(ctx, pipe, sc.keys, sc.args...)
	}
	return cmds
}

// runScriptsInOrder is runScripts for calls whose order on the server
// matters: after a NOSCRIPT, the failed call and every call after it run
// again, in order (the lease script grants its own placeholder again).
func (c *Cache) runScriptsInOrder(ctx context.Context, calls []scriptCall) []*redis.Cmd {
	pipe := c.client.Pipeline()
	cmds := queueScripts(ctx, pipe, calls)
	_, _ = pipe.Exec(ctx)
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			for j := i; j < len(calls); j++ {
				cmds[j] = calls[j].script.Run(ctx, c.client, calls[j].keys, calls[j].args...)
			}
			break
		}
	}
	return cmds
}

// retryNoScript runs again, with EVAL (through Script.Run), each command
// that failed with NOSCRIPT: the script's first use on that server since a
// restart or SCRIPT FLUSH.
func (c *Cache) retryNoScript(ctx context.Context, cmds []*redis.Cmd, calls []scriptCall) {
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			cmds[i] = calls[i].script.Run(ctx, c.client, calls[i].keys, calls[i].args...)
		}
	}
}

// release deletes the lease's placeholder (a failed or uncacheable load), so
// that a waiter can take over at once.
func (c *Cache) release(ctx context.Context, l *lease) {
	if err := releaseScript.Run(ctx, c.client, []string{l.full}, l.token).Err(); err != nil {
		c.redisError("release", l.full, err)
	}
}

// keepAlive extends the lease every third of its TTL until the returned
// function is called, so that a long load is not taken over by a waiter.
// It runs on a timer, not a goroutine of its own: most loads end before
// the first extension, and then it costs no goroutine and no context.
func (c *Cache) keepAlive(ctx context.Context, l *lease) (stop func()) {
	k := &keeper{c: c, ctx: ctx, l: l}
	k.mu.Lock() // a short lease's timer may fire before k.t is set
	k.t = time.AfterFunc(c.leaseTTL/3, k.extend)
	k.mu.Unlock()
	return k.stop
}

// keeper is one lease's keep-alive (see keepAlive).
type keeper struct {
	c       *Cache
	ctx     context.Context // the loader's: its values, not its cancellation
	l       *lease
	mu      sync.Mutex
	t       *time.Timer // under mu
	stopped bool
}

// extend runs keepaliveScript and arms the timer again unless stopped.
// An extension still running when stop is called completes; it changes
// nothing once the placeholder has been replaced by the value or released.
func (k *keeper) extend() {
	sent := time.Now()
	ctx := context.WithoutCancel(k.ctx)
	if err := keepaliveScript.Run(ctx, k.c.client, []string{k.l.full}, k.l.token, ms(k.c.leaseTTL)).Err(); err != nil {
		k.c.redisError("lease_keepalive", k.l.full, err)
	}
	k.mu.Lock()
	if !k.stopped {
		// A third of the TTL from when this extension was sent, as a
		// ticker would: a slow reply does not delay the next one.
		k.t.Reset(max(0, k.c.leaseTTL/3-time.Since(sent)))
	}
	k.mu.Unlock()
}

func (k *keeper) stop() {
	k.mu.Lock()
	k.stopped = true
	k.t.Stop()
	k.mu.Unlock()
}
