package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// On a cluster a tag's set lives on one master and its keys on others. A
// master that restarts empty (no persistence) or is replaced (a failover to
// a replica that had not received the last writes) loses tag sets, and the
// keys they pointed to on the other masters can no longer be reached by
// invalidation. So at most once per nodeCheckEvery, triggered by a read
// (an atomic load on the read path; no goroutine while idle), the Cache
// reads each master's run_id in the background; when one changed, or a new
// master appeared, it drops every value of its namespace (InvalidatePattern:
// SCAN and UNLINK, bounded per command; tag sets stay, so that a value
// stored while it runs stays reachable by its tags). What such a restart can leave
// stale is therefore bounded by the time to notice it (nodeCheckEvery plus
// a round trip, about 1 s) and to drop the namespace, not by the TTL.
// A standalone server or a Sentinel set keeps a key and its tags on one
// node, so they are lost together; no check runs there.
const nodeCheckEvery = time.Second

// errUnsure is a batch read's outcome when a key's master changed while it
// ran (see topologyUnsure): what it read is loaded again, not trusted.
var errUnsure = errors.New("runtime: a master no check has seen yet")

// ErrMasterUnconfirmed is returned (wrapped) by an invalidation of tags on
// a cluster whose set lives on a master that no check has confirmed yet (a
// replica just promoted, which may lack the set's newest members) and that
// the check it ran could not confirm either. The invalidation is retried in
// the background; it was not acknowledged.
var ErrMasterUnconfirmed = errors.New("runtime: a tag's master was replaced and is not confirmed yet")

type nodeWatch struct {
	next atomic.Int64 // unix nanoseconds of the next check
	// seen maps each master address a check has recorded to its run_id;
	// nil until the first check. It is replaced, never changed in place,
	// so that the read path looks it up without a lock; mu orders the
	// checks that replace it.
	mu       sync.Mutex
	seen     atomic.Pointer[map[string]string]
	restarts atomic.Int64
	flushes  atomic.Int64
	// failures counts the connection failures on a cluster: a master may
	// be gone, and its replica, promoted, may lack the last tag members
	// (replication is asynchronous). cleared is the count when the last
	// whole check began. While failures > cleared (suspect), each
	// invalidation checks before it returns; see confirmTopology. A check
	// that began before a failure does not clear it.
	failures, cleared atomic.Uint64
	// call is the check in flight that invalidations and reads share
	// (startCheck).
	callMu sync.Mutex
	call   *checkCall
	// unseenAnswers counts the reads answered by a node that no check has
	// seen as a master (answerHook): a GET that go-redis redirected with
	// MOVED runs on the new master before its slot map says so.
	unseenAnswers atomic.Uint64
}

// topologyUnsure reports, on a cluster, that a read of full must not trust
// Redis yet: the key's master is one that no check has seen as a master,
// such as a replica just promoted in place of a master that died. An
// invalidation acknowledged by the dead master may not have reached it
// (replication is asynchronous), and it would serve what was deleted. The
// read is served by its loader, and one check of the masters runs in the
// background; it drops the namespace if a master was replaced, and only
// then counts the new master as seen. Keys on masters already seen are
// read as usual, so one dead master does not take the others' hits.
//
// It looks at go-redis's slot map, not at errors: the client may learn of a
// failover without this Cache seeing one (another user of the client, the
// periodic reload, a retry inside go-redis that found the new master), as
// TestInvalidationLostInFailover forces. It costs a slot lookup per key.
// Before the first check there is nothing to compare with: then only a
// connection failure (suspect) makes every master unseen.
func (c *Cache) topologyUnsure(ctx context.Context, full ...string) bool {
	if !c.unseenMaster(ctx, full...) {
		return false
	}
	c.startCheck()
	return true
}

// unseenMaster reports, on a cluster, that the master of one of the keys
// in go-redis's slot map is one that no check has seen (topologyUnsure,
// without starting a check).
func (c *Cache) unseenMaster(ctx context.Context, full ...string) bool {
	if !c.perKey || c.cluster == nil {
		return false
	}
	if c.nodes.seen.Load() == nil && !c.suspect() {
		return false // before the first check: nothing to compare with
	}
	for _, k := range full {
		m, err := c.cluster.MasterForKey(ctx, k)
		if err != nil {
			continue // the command will fail, and fail open
		}
		if c.unseen(m.Options().Addr) {
			return true
		}
	}
	return false
}

// unseen reports that no check has seen addr as a master; before the
// first check, that a failure has made the masters suspect.
func (c *Cache) unseen(addr string) bool {
	seenp := c.nodes.seen.Load()
	if seenp == nil {
		return c.suspect()
	}
	_, ok := (*seenp)[addr]
	return !ok
}

// topologyUnsureAt is topologyUnsure for the key whose master's breaker
// the read has just looked up (nodeBreakerOf): it uses that lookup's
// address instead of a second one.
func (c *Cache) topologyUnsureAt(ctx context.Context, nb *nodeBreaker, full string) bool {
	if nb == nil {
		return c.topologyUnsure(ctx, full)
	}
	if !c.unseen(nb.addr) {
		return false
	}
	c.startCheck()
	return true
}

// answers returns the count of reads answered by unseen nodes, to compare
// after a read with answeredUnseen; 0 off a cluster.
func (c *Cache) answers() uint64 {
	if c.cluster == nil {
		return 0
	}
	return c.nodes.unseenAnswers.Load()
}

// answeredUnseen reports, after a read that began when answers returned
// before, that a node no check has seen as a master answered a read
// meanwhile (possibly this one, redirected by MOVED), or that the key's
// master in the slot map is unseen: the read is then not trusted, and a
// check starts.
func (c *Cache) answeredUnseen(ctx context.Context, before uint64, full ...string) bool {
	if c.cluster == nil {
		return false
	}
	if c.nodes.unseenAnswers.Load() != before {
		c.startCheck()
		return true
	}
	return c.topologyUnsure(ctx, full...)
}

// hookNode adds answerHook to a node client as go-redis creates it
// (OnNewNode, registered by New): a hook cannot be added to a client in use
// (go-redis's hook chain is not synchronised), so the nodes a cluster
// client made before New are not hooked, and for them only the slot-map
// lookup applies. runtime.NewClient sends nothing before New.
func (c *Cache) hookNode(n *redis.Client) {
	n.AddHook(answerHook{c: c, addr: n.Options().Addr})
}

// answerHook counts, on one node's client, the reads (GET, MGET, scripts)
// it answered while no check had seen it as a master.
type answerHook struct {
	c    *Cache
	addr string
}

func (h answerHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h answerHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if isRead(cmd) {
			h.note()
		}
		return err
	}
}

func (h answerHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if isRead(cmd) {
				h.note()
				break
			}
		}
		return err
	}
}

func (h answerHook) note() {
	if seen := h.c.nodes.seen.Load(); seen != nil {
		if _, ok := (*seen)[h.addr]; !ok {
			h.c.nodes.unseenAnswers.Add(1)
		}
	}
}

// isRead reports the commands whose reply the cache serves or acts on:
// not INFO, CLUSTER SLOTS and the like, which go-redis and the checks send
// to any node.
func isRead(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "get", "mget", "evalsha", "eval":
		return true
	}
	return false
}

// updateSeen replaces the seen masters by a copy that f changed; f is told
// whether there were none before (the first check). Under nodes.mu.
func (c *Cache) updateSeen(f func(seen map[string]string, first bool)) {
	old := c.nodes.seen.Load()
	next := map[string]string{}
	if old != nil {
		for addr, id := range *old {
			next[addr] = id
		}
	}
	f(next, old == nil)
	c.nodes.seen.Store(&next)
}

// suspectTopology notes a connection failure on a cluster.
func (c *Cache) suspectTopology() {
	if c.perKey {
		c.nodes.failures.Add(1)
	}
}

// suspect reports a connection failure that no whole check begun after it
// has cleared.
func (c *Cache) suspect() bool { return c.nodes.failures.Load() > c.nodes.cleared.Load() }

// confirmTopology runs before an invalidation is acknowledged. It checks
// the masters' run_ids now when a failure has made them suspect, or when
// the invalidation relied on tag sets (tagKeys, the sets it emptied) whose
// master no check has seen, or a node no check has seen answered while it
// ran (answers was before): a master replaced since the last check, a
// replica promoted without the last tag members, then has its namespace
// dropped before the caller is told the invalidation is done, so that no
// reader after it gets what a lost member pointed to (the key may live on
// a master that never failed; TestTagMemberLostInFailover). If a tag set's
// master is still not confirmed after the check, the invalidation is not
// acknowledged: ErrMasterUnconfirmed, and the retry queue finishes it.
func (c *Cache) confirmTopology(ctx context.Context, tagKeys []string, before uint64) error {
	if !c.perKey {
		return nil
	}
	unsure := len(tagKeys) > 0 && (c.answers() != before || c.unseenMaster(ctx, tagKeys...))
	if !unsure && !c.suspect() {
		return nil
	}
	// A check already running may have begun before the failure, or have
	// listed the masters before the one this invalidation met: then wait
	// for the next one too.
	failures := c.nodes.failures.Load()
	for range 2 {
		call := c.startCheck()
		select {
		case <-call.done:
		case <-ctx.Done():
			if !unsure {
				return nil // suspect only: the check goes on without the caller
			}
			return fmt.Errorf("%w: %w", ErrMasterUnconfirmed, ctx.Err())
		}
		if call.failures >= failures && (!unsure || !c.unseenMaster(ctx, tagKeys...)) {
			return nil
		}
	}
	if !unsure {
		return nil
	}
	return ErrMasterUnconfirmed
}

// checkCall is one check of the masters in flight, which invalidations
// (confirmTopology) and reads (topologyUnsure, maybeCheckNodes) share.
type checkCall struct {
	done     chan struct{}
	whole    bool      // set before done closes
	failures uint64    // nodes.failures when it began
	started  time.Time // see startCheck
}

// startCheck returns the check of the masters in flight, starting one if
// none is. The check runs under a timeout of its own, whoever waits for
// it: a caller's deadline must not cut a namespace drop half way (the
// master would stay unconfirmed, and the next invalidation would start
// the drop again). Wait counts it. A whole check clears the connection
// failures that came before it began.
func (c *Cache) startCheck() *checkCall {
	c.nodes.callMu.Lock()
	defer c.nodes.callMu.Unlock()
	// A check past its timeout (a client that ignores context deadlines,
	// on a server that hangs) is not joined: a new one starts.
	if call := c.nodes.call; call != nil && time.Since(call.started) < 2*checkTimeout {
		return call
	}
	call := &checkCall{done: make(chan struct{}), failures: c.nodes.failures.Load(), started: time.Now()}
	c.nodes.call = call
	c.tasks.add()
	go func() {
		defer c.tasks.done()
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		call.whole = c.checkNodes(ctx)
		cancel()
		for call.whole {
			old := c.nodes.cleared.Load()
			if call.failures <= old || c.nodes.cleared.CompareAndSwap(old, call.failures) {
				break
			}
		}
		c.nodes.callMu.Lock()
		if c.nodes.call == call {
			c.nodes.call = nil
		}
		c.nodes.callMu.Unlock()
		close(call.done)
	}()
	return call
}

// checkTimeout bounds one check of the masters, its namespace drop
// included.
const checkTimeout = 10 * time.Second

// maybeCheckNodes starts a background check of the masters' run_ids when
// one is due. Reads, writes and invalidations call it.
func (c *Cache) maybeCheckNodes(now time.Time) {
	if !c.perKey {
		return
	}
	next := c.nodes.next.Load()
	if now.UnixNano() < next || !c.nodes.next.CompareAndSwap(next, now.Add(nodeCheckEvery).UnixNano()) {
		return
	}
	c.startCheck()
}

// checkNodesNow makes the next call of maybeCheckNodes check, whenever the
// last check was: a master that failed answers again, and may have come
// back empty.
func (c *Cache) checkNodesNow() {
	if c.perKey {
		c.nodes.next.Store(0)
	}
}

// checkNodes reads every master's run_id and drops the namespace if a
// master restarted or was replaced since the last check. whole reports that
// every master answered and nothing is left to drop.
func (c *Cache) checkNodes(ctx context.Context) (whole bool) {
	var mu sync.Mutex
	ids := map[string]string{}
	err := forEachMaster(ctx, c.client, func(ctx context.Context, m *redis.Client) error {
		info, err := m.Info(ctx, "server").Result()
		if err != nil {
			return err // a failing node: the breaker and the retries deal with it
		}
		if id := infoString(info, "run_id"); id != "" {
			mu.Lock()
			ids[m.Options().Addr] = id
			mu.Unlock()
		}
		return nil
	})
	var changed []string
	c.nodes.mu.Lock()
	c.updateSeen(func(seen map[string]string, first bool) {
		for addr, id := range ids {
			if old, ok := seen[addr]; (ok && old != id) || (!ok && !first) {
				// Recorded once the namespace is dropped: until then a
				// read of a key on it does not trust it (topologyUnsure).
				changed = append(changed, addr)
				delete(seen, addr)
				continue
			}
			seen[addr] = id
		}
	})
	c.nodes.mu.Unlock()
	if len(changed) == 0 {
		return err == nil
	}
	c.nodes.restarts.Add(int64(len(changed)))
	c.log.Warn("repocache: a Redis master restarted or was replaced; its tag sets may be lost, so every key of the namespace is dropped",
		"masters", changed, "namespace", c.ns)
	if _, err := c.InvalidatePattern(ctx, "*"); err != nil {
		c.log.Error("repocache: dropping the namespace after a master restart failed; what the lost tag sets pointed to stays until its TTL", "err", err)
		return false
	}
	c.nodes.mu.Lock()
	c.updateSeen(func(seen map[string]string, _ bool) {
		for _, addr := range changed {
			seen[addr] = ids[addr]
		}
	})
	c.nodes.mu.Unlock()
	c.nodes.flushes.Add(1)
	return err == nil
}
