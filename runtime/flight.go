package runtime

import "sync"

// flightGroup collapses concurrent loads of one key. Unlike
// x/sync/singleflight, the leader calls its loader directly rather than
// through a stored closure, so a loader passed to GetCached does not escape
// to the heap on the hit path, and followers wait with their own context.
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flightCall
	// joined, when set by a test, is called after a follower joins a call.
	joined func()
}

type flightCall struct {
	done chan struct{}
	val  any
	err  error
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
	c := &flightCall{done: make(chan struct{})}
	g.calls[key] = c
	return c, true
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
