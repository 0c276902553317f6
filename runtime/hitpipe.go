package runtime

import (
	"context"
	goruntime "runtime"
	"sync"

	"github.com/redis/go-redis/v9"
)

// hitPipe sends the GETs of the read path's Redis tier (get.go). While
// fewer than max of its round trips are in flight, a GET goes out at once,
// on its own, as it always has: a lightly loaded Cache pays nothing. Past
// that, GETs wait in one batch, and when a round trip ends the whole batch
// goes out as one pipeline: one write and one read for all of them instead
// of one each, and those system calls and the pool's connection hand-offs
// are most of a hit's CPU (auto-pipelining, as rueidis does on its shared
// connection). Two readers of one key in the same batch share its GET.
//
// A reader joins only a batch not yet sent. It never shares the reply to a
// command sent before it began, so a write acknowledged before a read began
// is never hidden from that read (the README's consistency promise): a
// batch is taken off the queue, under mu, before any of it is written.
//
// The cost is latency under load: a GET that finds max round trips in
// flight waits for one of them to end before it is sent, at most one round
// trip more. WithHitPipelining sets max (0 sends every GET on its own).
type hitPipe struct {
	client redis.UniversalClient
	max    int

	mu   sync.Mutex
	busy int       // round trips of this pipe in flight, at most max
	next *hitBatch // the GETs waiting for one of them to end; nil if none

	// sending, when set by a test, is called with the keys of each round
	// trip just before it is written; joined, after a reader joined the
	// batch waiting.
	sending func(keys []string)
	joined  func()
}

// hitPipeFor returns the pipe of full's master on a cluster (its node
// breaker's: go-redis's cluster pipeline waits for every node it writes to,
// so one pipe for the client would let a hung master hold every master's
// hits), and c.hits elsewhere, or when the slot map is unknown.
func (c *Cache) hitPipeFor(nb *nodeBreaker) *hitPipe {
	if nb == nil {
		return &c.hits
	}
	return &nb.pipe
}

// maxBatch bounds one pipeline; a reader that finds the batch full sends
// its GET on its own.
const maxBatch = 256

// hitBatch is one pipeline of GETs, filled while it waits and read-only
// once done is closed.
type hitBatch struct {
	keys []string
	cmds []*redis.StringCmd // one per key, with its reply once done is closed
	done chan struct{}
}

// add returns the index of full's GET in the batch, adding it if this is
// the batch's first reader of full.
func (b *hitBatch) add(full string) int {
	for i, k := range b.keys {
		if k == full {
			return i
		}
	}
	b.keys = append(b.keys, full)
	return len(b.keys) - 1
}

// get returns what GET full answered, as Get(...).Result() does.
func (p *hitPipe) get(ctx context.Context, full string) (string, error) {
	if p.max <= 0 {
		return p.client.Get(ctx, full).Result()
	}
	p.mu.Lock()
	b := p.next
	if p.busy < p.max || (b != nil && len(b.keys) >= maxBatch) {
		// Alone (or past a full batch): send it now. A batch waits only
		// while all max round trips are taken, so busy < max means none.
		p.busy++
		p.mu.Unlock()
		defer p.ended() // also if a hook panics: the place must be given back
		if p.sending != nil {
			p.sending([]string{full})
		}
		return p.client.Get(ctx, full).Result()
	}
	if b == nil {
		b = &hitBatch{done: make(chan struct{})}
		p.next = b
	}
	i := b.add(full)
	p.mu.Unlock()
	if p.joined != nil {
		p.joined()
	}
	select {
	case <-b.done:
		return b.cmds[i].Result()
	case <-ctx.Done():
		// The batch goes out without this reader; its reply is dropped.
		return "", ctx.Err()
	}
}

// ended is called as a round trip of the pipe ends: the batch waiting, if
// any, takes over its place in flight and is sent from a goroutine of its
// own, so that the reader whose GET just returned is not held up.
func (p *hitPipe) ended() {
	p.mu.Lock()
	b := p.next
	if b == nil {
		p.busy--
		p.mu.Unlock()
		return
	}
	p.next = nil
	p.mu.Unlock()
	go p.sendBatches(b)
}

// sendBatches sends b, then whatever batch filled meanwhile, until none is
// waiting. The readers keep their own deadlines (each waits on its own
// context); the pipeline runs under the client's timeouts.
func (p *hitPipe) sendBatches(b *hitBatch) {
	ctx := context.Background()
	for b != nil {
		if p.sending != nil {
			p.sending(b.keys)
		}
		if len(b.keys) == 1 {
			b.cmds = []*redis.StringCmd{p.client.Get(ctx, b.keys[0])}
		} else {
			pipe := p.client.Pipeline()
			b.cmds = make([]*redis.StringCmd, len(b.keys))
			for i, k := range b.keys {
				b.cmds[i] = pipe.Get(ctx, k)
			}
			_, _ = pipe.Exec(ctx) // each command carries its own error
		}
		// The next batch, if any, takes this one's place before this
		// one's readers wake: once they return, the pipe's count is right.
		p.mu.Lock()
		next := p.next
		if next == nil {
			p.busy--
		}
		p.next = nil
		p.mu.Unlock()
		close(b.done)
		b = next
	}
}

// defaultHitPipelining is WithHitPipelining's default: one round trip in
// flight per two GOMAXPROCS, at least one. On a nearby Redis a round trip
// costs its caller CPU for most of what it waits (two system calls and two
// wake-ups), so more in flight than that only queue for a core: in
// internal/benchcmp's BenchmarkParallelHit (16 goroutines, 2 cores) 1, 2,
// 4 and 8 measured 0.37×, 0.51×, 0.63× and 0.80× the CPU of one GET per
// hit, and 1 had the best wall time too.
func defaultHitPipelining() int { return max(1, goruntime.GOMAXPROCS(0)/2) }
