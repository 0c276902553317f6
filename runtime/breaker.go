package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The circuit breaker makes a failing Redis cheap. After breakerThreshold
// consecutive connection failures (refused, reset, timed out: not a server
// reply such as WRONGTYPE, and not the caller's own context ending) it
// opens: reads go straight to the loader without touching Redis, writes and
// invalidations fail at once (invalidations are queued for the background
// retry). While it is open one prober pings Redis every breakerProbe;
// the first answer closes it, so recovery is noticed within breakerProbe
// plus one round trip.
const (
	breakerThreshold = 3
	breakerProbe     = 100 * time.Millisecond
)

// ErrBreakerOpen is the error of a Redis operation that the cache did not
// attempt because Redis has been failing; see Stats.BreakerOpen.
var ErrBreakerOpen = errors.New("runtime: redis is failing (circuit breaker open)")

type breaker struct {
	c     *Cache
	fails atomic.Int32
	open  atomic.Bool
	opens atomic.Int64 // times it opened
	skips atomic.Int64 // operations not attempted while open
}

// allow reports whether Redis may be tried; a false is counted as a skip.
func (b *breaker) allow() bool {
	if !b.open.Load() {
		return true
	}
	b.skips.Add(1)
	return false
}

// ok notes a successful call; it writes only after failures.
func (b *breaker) ok() {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
}

// record notes the outcome of a Redis call made with a live context.
func (b *breaker) record(err error) {
	if !isConnFailure(err) {
		b.ok()
		return
	}
	b.c.suspectTopology()
	if b.fails.Add(1) >= breakerThreshold && !b.open.Swap(true) {
		b.opens.Add(1)
		b.c.log.Warn("repocache: redis is failing; reads go to the source until it answers again", "err", err)
		go b.probe()
	}
}

// recordCtx is record for a call made with ctx: when ctx itself has ended,
// the error says nothing about Redis.
func (b *breaker) recordCtx(ctx context.Context, err error) {
	if err != nil && ctx.Err() != nil {
		return
	}
	b.record(err)
}

func (b *breaker) probe() {
	t := time.NewTicker(breakerProbe)
	defer t.Stop()
	for range t.C {
		ctx, cancel := context.WithTimeout(context.Background(), breakerProbe)
		err := b.c.client.Ping(ctx).Err()
		cancel()
		if err == nil || !isConnFailure(err) || errors.Is(err, redis.ErrClosed) {
			b.fails.Store(0)
			b.open.Store(false)
			b.c.checkNodesNow() // a master may have come back empty
			if !errors.Is(err, redis.ErrClosed) {
				b.c.log.Info("repocache: redis answers again; the cache is back in use")
			}
			return
		}
	}
}

// isConnFailure reports an error that says Redis could not be reached or
// did not answer in time, as opposed to a reply (a miss, a server error).
func isConnFailure(err error) bool {
	if err == nil || err == redis.Nil || errors.Is(err, context.Canceled) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) && !errors.Is(err, context.DeadlineExceeded) {
		// Replies, and the LOADING / MASTERDOWN / CLUSTERDOWN states of
		// a server that is up but cannot serve.
		return redis.HasErrorPrefix(err, "LOADING") || redis.HasErrorPrefix(err, "MASTERDOWN") ||
			redis.HasErrorPrefix(err, "CLUSTERDOWN") || redis.HasErrorPrefix(err, "TRYAGAIN")
	}
	return true
}

// On a cluster one master can fail while the others serve: the breaker of
// the whole Cache stays closed (the others' successes reset it) while every
// read of the dead master's slots waits for its timeouts and retries. So a
// cluster Cache also keeps a breaker per master (found from the key's slot
// in the client's slot map, which costs no round trip): after
// breakerThreshold consecutive connection failures of reads on a master,
// reads of its keys go straight to the loader; every nodeBreakerOpen one
// read tries it again (half open), and its success closes the breaker. A
// failover moves the slots to another master, whose breaker is closed.
const nodeBreakerOpen = 500 * time.Millisecond

type nodeBreaker struct {
	addr      string // the master's
	fails     atomic.Int32
	openUntil atomic.Int64 // unix nanoseconds; 0 when closed
	probing   atomic.Bool  // a half-open read is in flight
	// pipe sends the master's hits (hitpipe.go): one per master, so that
	// a hung master holds only the hits of its own keys.
	pipe hitPipe
}

// nodeBreakerOf returns the breaker of the master that serves full, or nil
// when the client is not a cluster client or its slot map is unknown.
func (c *Cache) nodeBreakerOf(ctx context.Context, full string) *nodeBreaker {
	if c.cluster == nil {
		return nil
	}
	m, err := c.cluster.MasterForKey(ctx, full)
	if err != nil {
		return nil
	}
	addr := m.Options().Addr
	if v, ok := c.nodeBr.Load(addr); ok {
		return v.(*nodeBreaker)
	}
	h := &c.hits
	v, _ := c.nodeBr.LoadOrStore(addr, &nodeBreaker{addr: addr, pipe: hitPipe{client: h.client, max: h.max, sending: h.sending, joined: h.joined}})
	return v.(*nodeBreaker)
}

// allow reports whether a read may try the master; a half-open breaker
// lets one read through at a time, the probe, which must end with record
// (an answer) or release. nb may be nil.
func (nb *nodeBreaker) allow(c *Cache, now time.Time) (ok, probe bool) {
	if nb == nil {
		return true, false
	}
	until := nb.openUntil.Load()
	if until == 0 {
		return true, false
	}
	if now.UnixNano() >= until && nb.probing.CompareAndSwap(false, true) {
		return true, true
	}
	c.br.skips.Add(1)
	return false, false
}

// release gives back the probe of the read that took it (allow), after a
// failure or when it ended without a Redis outcome (the caller's context
// ended, or the read did not go to Redis after all). Only that read calls
// it: a read let through before the breaker opened must not free another
// read's probe. nb may be nil.
func (nb *nodeBreaker) release(probe bool) {
	if nb != nil && probe {
		nb.probing.Store(false)
	}
}

// record notes the outcome of a read on the master made with a live
// context. nb may be nil.
func (nb *nodeBreaker) record(c *Cache, err error) {
	if nb == nil {
		return
	}
	if !isConnFailure(err) {
		if nb.fails.Load() != 0 || nb.openUntil.Load() != 0 {
			nb.fails.Store(0)
			nb.openUntil.Store(0)
			c.checkNodesNow() // it may have come back empty
		}
		if nb.probing.Load() { // a plain load on the hit path: no shared write
			nb.probing.Store(false)
		}
		return
	}
	c.suspectTopology()
	if nb.fails.Add(1) >= breakerThreshold {
		nb.openUntil.Store(time.Now().Add(nodeBreakerOpen).UnixNano())
	}
}
