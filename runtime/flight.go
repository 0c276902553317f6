package runtime

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/repocache/repocache/codec"
)

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

// flightCall is one load in flight. The leader publishes its answer as
// soon as it has loaded (done), and learns later, after its store, whether
// the answer is verified (stored).
//
// Followers never get the leader's value itself: each decodes its own copy
// from frame, so that no two callers share a pointer, a slice or a map.
type flightCall struct {
	done chan struct{} // closed when err, frame and nilValue are set
	err  error
	// frame is the value encoded with the cache's codec; nil with an
	// error, a nil result (nilValue), or a value that could not be
	// encoded, in which case a follower loads its own.
	frame    []byte
	nilValue bool
	// gen numbers the call: a follower that began after it (see now) may
	// get a value loaded before a write it has seen acknowledged.
	gen uint64
	// followers counts the callers that joined, under the group's mu.
	followers int
	// vd tells whether the answer is known to be as fresh as the cache:
	// stored under its lease with no invalidation in between, or read from
	// Redis. Made with the call, settled by the leader.
	vd *verdict
}

// verdict is an answer's freshness, known now or once a background store
// has finished.
//
// "Fresh" holds at the moment Redis ran the command that settles it (the
// lease script that read a value, or the store's compare-and-set); an
// invalidation may delete the value right after and return before the
// loader has read that command's reply. So the verdict is good only for
// callers that joined before that command was sent: sent counts those
// commands, and a caller compares what it read at its join (freshFor).
type verdict struct {
	ch chan struct{} // closed once ok and at are set
	ok bool
	// sent counts the commands that can settle the verdict, each before
	// it is sent.
	sent atomic.Uint64
	at   uint64 // sent when the verdict was settled
	// before, if set, runs when the verdict is known, before ch closes.
	before func()
	// store, if set, is the store the loader's own goroutine runs after
	// it has published its answer (storeHere).
	store func(context.Context)
}

func newVerdict() *verdict { return &verdict{ch: make(chan struct{})} }

// sending is called before each command whose reply may settle the
// verdict is sent.
func (v *verdict) sending() { v.sent.Add(1) }

func (v *verdict) finish(ok bool) {
	v.ok, v.at = ok, v.sent.Load()
	if v.before != nil {
		v.before()
	}
	close(v.ch)
}

// freshFor reports, once ch is closed, whether the answer is fresh for a
// caller that read sent as joined when it joined: the command that settled
// it was sent after that, so Redis ran it after every invalidation the
// caller had seen return.
func (v *verdict) freshFor(joined uint64) bool { return v.ok && v.at > joined }

// join returns the call in flight for key, or registers a new one and
// reports that the caller leads it. A follower also gets the call's
// verdict's sent count at its join, for verdict.freshFor.
func (g *flightGroup) join(key string) (_ *flightCall, leader bool, joined uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		c.followers++
		if g.joined != nil {
			defer g.joined()
		}
		return c, false, c.vd.sent.Load()
	}
	if g.calls == nil {
		g.calls = make(map[string]*flightCall)
	}
	g.seq++
	c := &flightCall{done: make(chan struct{}), gen: g.seq, vd: newVerdict()}
	g.calls[key] = c
	return c, true, 0
}

// now returns the number of the last call begun: calls with a greater
// number began after this moment.
func (g *flightGroup) now() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seq
}

// publish hands the leader's answer to the followers. The call is
// forgotten when its verdict is known (see fill), so that a follower that
// must load again starts a new call instead of finding this one. frame is
// the value already encoded, if the leader encoded it; otherwise it is
// encoded here, and only if someone joined (a call without a stored value
// is forgotten before it is published, so nobody joins it later).
func publish[T any](c *Cache, call *flightCall, v T, err error, frame []byte) {
	c.flight.mu.Lock()
	followers := call.followers
	c.flight.mu.Unlock()
	call.err = err
	switch {
	case err != nil:
	case isNilPointer(v):
		call.nilValue = true
	case frame != nil:
		call.frame = frame
	case followers > 0:
		call.frame, _ = codec.Marshal(c.codec, v) // nil on failure: followers load their own
	}
	close(call.done)
}

// forget removes the call if it is still the one in flight for key.
func (g *flightGroup) forget(key string, c *flightCall) {
	g.mu.Lock()
	if g.calls[key] == c {
		delete(g.calls, key)
	}
	g.mu.Unlock()
}
