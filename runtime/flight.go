package runtime

import "sync"

// flightGroup collapses concurrent loads of one key. Unlike
// x/sync/singleflight, the leader calls its loader directly rather than
// through a stored closure, so a loader passed to GetCached does not escape
// to the heap on the hit path, and followers wait with their own context.
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flightCall
	seq   uint64 // numbers the calls, under mu
	// joined, when set by a test, is called after a follower joins a call.
	joined func()
}

type flightCall struct {
	done chan struct{}
	val  any
	err  error
	// gen numbers the call: a follower that began after it (see now) may
	// get a value loaded before a write it has seen acknowledged.
	gen uint64
	// verified reports a value known to be as fresh as the cache: stored
	// under its lease with no invalidation in between, or read from Redis.
	verified bool
}

// join returns the call in flight for key, or registers a new one and
// reports that the caller leads it.
func (g *flightGroup) join(key string) (*flightCall, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		if g.joined != nil {
			defer g.joined()
		}
		return c, false
	}
	if g.calls == nil {
		g.calls = make(map[string]*flightCall)
	}
	g.seq++
	c := &flightCall{done: make(chan struct{}), gen: g.seq}
	g.calls[key] = c
	return c, true
}

// now returns the number of the last call begun: calls with a greater
// number began after this moment.
func (g *flightGroup) now() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seq
}

func (c *flightCall) finish(v any, err error) {
	c.val, c.err = v, err
	close(c.done)
}

func (g *flightGroup) forget(key string, c *flightCall) {
	g.mu.Lock()
	if g.calls[key] == c {
		delete(g.calls, key)
	}
	g.mu.Unlock()
}
