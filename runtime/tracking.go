package runtime

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// How the near cache learns that a key changed: one dedicated connection
// per master, in RESP2, that enables CLIENT TRACKING ON REDIRECT <its own
// id> BCAST PREFIX <namespace>: when it connects (so a reconnect re-enables
// it) and subscribes to __redis__:invalidate. Redis then sends it the name
// of every key of the namespace that changes: written, deleted, expired,
// evicted, whoever changed it. A null payload (FLUSHALL, FLUSHDB) reaches
// go-redis as an unreadable message, which like every other error here
// flushes the tier.
//
// The proof that the tier is watched is the connection itself: subscribed
// since the last flush, and heard from (a ping answered, an invalidation
// received) within l1StaleAfter. A connection that breaks flushes the tier;
// the next one flushes it again when its subscription is confirmed, since
// what changed in between was told to nobody. A connection that only stalls
// (a paused server, a slow network) stops the tier serving until it is
// heard from again, and loses nothing: what Redis sent meanwhile arrives in
// order on the same connection before the ping's answer.
const (
	l1PingEvery  = 100 * time.Millisecond
	l1StaleAfter = 500 * time.Millisecond
	// l1SyncEvery is how often a cluster's masters are listed, to watch
	// new ones and stop watching those that left.
	l1SyncEvery = time.Second
	// l1MaxBackoff bounds the wait between attempts at a stream that
	// keeps failing (a server without CLIENT TRACKING, a master down).
	l1MaxBackoff      = 5 * time.Second
	invalidateChannel = "__redis__:invalidate"
)

// tracker holds the watchers of one Cache's near cache.
type tracker struct {
	c      *Cache
	n      *nearCache
	prefix string
	// name is the connections' client name (CLIENT LIST shows it):
	// repocache-l1-<random>, one per Cache.
	name string
	// sentinel: the client follows a Sentinel primary, and each watcher
	// reads the run_id its connection reached, for nodeLoop.
	sentinel bool
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu       sync.Mutex
	watchers map[string]*watcher // by master address
	warned   atomic.Bool
	// lost counts watches lost (connections broken or refused), for Stats.
	lost atomic.Int64
	// connecting, when set by a test, is called as a watcher's connection
	// is set up, before it enables tracking.
	connecting atomic.Pointer[func()]
	// stopping, when set by a test, is called as a watcher is stopped,
	// before its pub/sub connection is closed.
	stopping atomic.Pointer[func()]
}

// watcher is the tracking connection of one master.
type watcher struct {
	t         *tracker
	addr      string
	client    *redis.Client
	ps        *redis.PubSub
	cancel    context.CancelFunc
	confirmed atomic.Bool
	proof     atomic.Int64 // unix nanoseconds it was last heard from
	// runID is the run_id of the server its connection reached, for a
	// Sentinel client only (nil otherwise, or if INFO was refused): see
	// nodeLoop.
	runID atomic.Pointer[string]
	// conns counts the connections made, under cmu with confirmed's
	// changes: a subscription's confirmation read from a connection that
	// has since been replaced confirms nothing.
	cmu   sync.Mutex
	conns uint64

	mu      sync.Mutex
	waiting map[string]chan struct{} // ping payload → closed when its answer arrives (see sync)
}

func startTracker(c *Cache, n *nearCache) *tracker {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tracker{c: c, n: n, prefix: c.prefix, ctx: ctx, cancel: cancel, watchers: map[string]*watcher{},
		name: "repocache-l1-" + hex.EncodeToString([]byte(newPlaceholder()[2:10]))}
	switch cl := unwrapClient(c.client).(type) {
	case *redis.ClusterClient:
		if o := cl.Options(); o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			// A replica may answer a GET after this process dropped
			// the key on the master's notice, with the value from
			// before the write, and no notice follows: keep it out.
			c.log.Warn("repocache: the near cache (WithL1) stays off on a cluster client that reads from replicas (ReadOnly, RouteByLatency, RouteRandomly)")
			return t
		}
		t.wg.Add(1)
		go t.syncLoop(cl)
	case *redis.Client:
		// A standalone server, or the current master of a Sentinel set:
		// the options carry the dialer that finds it.
		t.sentinel = cl.Options().Addr == "FailoverClient" // go-redis's name for a Sentinel client
		t.mu.Lock()
		t.add("", cl.Options())
		t.mu.Unlock()
		if t.sentinel {
			t.wg.Add(1)
			go t.nodeLoop(cl)
		}
	default:
		c.log.Warn("repocache: the near cache (WithL1) needs a *redis.Client or a *redis.ClusterClient; it stays off", "client", cl)
	}
	return t
}

// watches reports whether the master of full has a confirmed watcher. On
// a cluster the tracker lists the masters every l1SyncEvery, so a master
// it has not found yet (a replica just promoted, a node added) is watched
// by nobody, and the tier's servable time, which covers the watchers it
// has, does not say so: a value read from it is not kept.
func (t *tracker) watches(ctx context.Context, full string) bool {
	cl, ok := unwrapClient(t.c.client).(*redis.ClusterClient)
	if !ok {
		return true // one master, the one the servable time covers
	}
	m, err := cl.MasterForKey(ctx, full)
	if err != nil {
		return false
	}
	t.mu.Lock()
	w := t.watchers[m.Options().Addr]
	t.mu.Unlock()
	return w != nil && w.confirmed.Load()
}

// add starts watching a master; t.mu is held.
func (t *tracker) add(addr string, base *redis.Options) {
	opt := trackingOptions(base)
	opt.ClientName = t.name
	userOnConnect := base.OnConnect
	prefix := t.prefix
	w := &watcher{t: t, addr: addr}
	opt.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		// A new connection means the last one is gone, whoever noticed
		// first (a ping, or the reader): stop serving and flush now.
		w.cmu.Lock()
		w.conns++
		w.cmu.Unlock()
		w.lost(errors.New("reconnecting"))
		if hook := t.connecting.Load(); hook != nil {
			(*hook)()
		}
		if userOnConnect != nil {
			if err := userOnConnect(ctx, cn); err != nil {
				return err
			}
		}
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return err
		}
		w.runID.Store(nil)
		if t.sentinel { // a round trip per connect that only nodeLoop reads
			if info, err := cn.Info(ctx, "server").Result(); err == nil {
				if rid := infoString(info, "run_id"); rid != "" {
					w.runID.Store(&rid)
				}
			}
		}
		return cn.Do(ctx, "CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST", "PREFIX", prefix).Err()
	}
	ctx, cancel := context.WithCancel(t.ctx)
	w.client, w.cancel = redis.NewClient(opt), cancel
	w.ps = w.client.Subscribe(ctx) // no channel yet: nothing dials here
	t.watchers[addr] = w
	t.wg.Add(2)
	go w.receive(ctx)
	go w.ping(ctx)
	t.refreshLocked()
}

// trackingOptions are the options of a master's tracking connection: how
// to reach and log in to the master, as base says, in RESP2 (invalidations
// arrive as pub/sub messages), one connection, no retries. The fields are
// copied one by one: go-redis writes others (its maintenance-notification
// settings) of a live client's options as it connects.
func trackingOptions(base *redis.Options) *redis.Options {
	return &redis.Options{
		Network: base.Network, Addr: base.Addr, Dialer: base.Dialer,
		Protocol: 2,
		Username: base.Username, Password: base.Password,
		CredentialsProvider:          base.CredentialsProvider,
		CredentialsProviderContext:   base.CredentialsProviderContext,
		StreamingCredentialsProvider: base.StreamingCredentialsProvider,
		DB:                           base.DB,
		MaxRetries:                   -1,
		DialTimeout:                  base.DialTimeout, ReadTimeout: base.ReadTimeout, WriteTimeout: base.WriteTimeout,
		ContextTimeoutEnabled: true,
		PoolSize:              1, PoolTimeout: base.PoolTimeout,
		TLSConfig:       base.TLSConfig,
		DisableIdentity: base.DisableIdentity,
		IdentitySuffix:  base.IdentitySuffix,
	}
}

// remove stops counting a master's watcher, whose caller stops it once
// t.mu is released (go-redis holds its pub/sub lock while it dials, and a
// dial's OnConnect takes t.mu). What it watched is flushed, since the tier
// can no longer prove it fresh. t.mu is held.
func (t *tracker) remove(addr string) *watcher {
	w := t.watchers[addr]
	delete(t.watchers, addr)
	t.n.flush()
	t.refreshLocked()
	return w
}

func (w *watcher) stop() {
	w.cancel()
	if hook := w.t.stopping.Load(); hook != nil {
		(*hook)()
	}
	_ = w.ps.Close()
	_ = w.client.Close()
}

// refresh recomputes the tier's servable time after a watcher's state changed.
func (t *tracker) refresh() {
	t.mu.Lock()
	t.refreshLocked()
	t.mu.Unlock()
}

func (t *tracker) refreshLocked() {
	var d int64
	for _, w := range t.watchers {
		if !w.confirmed.Load() {
			d = 0
			break
		}
		if p := w.proof.Load() + int64(l1StaleAfter); d == 0 || p < d {
			d = p
		}
	}
	t.n.servable.Store(d)
}

// syncLoop keeps one watcher per master of a cluster.
func (t *tracker) syncLoop(cl *redis.ClusterClient) {
	defer t.wg.Done()
	tick := time.NewTicker(l1SyncEvery)
	defer tick.Stop()
	for {
		t.syncMasters(cl)
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *tracker) syncMasters(cl *redis.ClusterClient) {
	ctx, cancel := context.WithTimeout(t.ctx, l1SyncEvery)
	defer cancel()
	var mu sync.Mutex
	masters := map[string]*redis.Options{}
	err := cl.ForEachMaster(ctx, func(_ context.Context, m *redis.Client) error {
		mu.Lock()
		masters[m.Options().Addr] = m.Options()
		mu.Unlock()
		return nil
	})
	if err != nil {
		return // the watchers say what they can prove
	}
	var gone []*watcher
	t.mu.Lock()
	if t.ctx.Err() == nil {
		for addr, o := range masters {
			if t.watchers[addr] == nil {
				t.add(addr, o)
			}
		}
		for addr := range t.watchers {
			if masters[addr] == nil {
				gone = append(gone, t.remove(addr))
			}
		}
	}
	t.mu.Unlock()
	t.n.report()
	for _, w := range gone {
		w.stop()
	}
}

// nodeLoop follows a Sentinel failover that leaves the old primary up: a
// primary demoted by SENTINEL FAILOVER (or a partition) keeps the tracking
// connection open, and what is written on the new primary may never reach
// it. Every l1SyncEvery it compares the run_id of the server the Cache's
// client talks to with the one the watcher's connection reached; when they
// differ, the watcher is replaced (the tier flushed) and its dialer finds
// the current primary (TestL1SentinelTakeover). If they keep differing
// (a client whose dialer picks a random node), the checks back off to
// l1MaxBackoff: the tier then flushes at that pace, never serves unwatched.
// Without INFO (an ACL that denies it) there is nothing to compare: it
// says so once.
func (t *tracker) nodeLoop(cl *redis.Client) {
	defer t.wg.Done()
	wait := l1SyncEvery
	var warnedInfo, warnedSwitch bool
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-time.After(wait):
		}
		t.mu.Lock()
		w := t.watchers[""]
		t.mu.Unlock()
		if w == nil || !w.confirmed.Load() {
			continue // not serving: nothing to prove
		}
		ctx, cancel := context.WithTimeout(t.ctx, l1SyncEvery)
		info, err := cl.Info(ctx, "server").Result()
		cancel()
		watched := w.runID.Load() // after the reply: a reconnect meanwhile counts
		if watched == nil || err != nil {
			if !warnedInfo && (watched == nil || redis.HasErrorPrefix(err, "NOPERM")) {
				warnedInfo = true
				t.c.log.Warn("repocache: the near cache cannot tell which server its tracking connection reached (INFO denied); a Sentinel failover that leaves the old primary up is not followed")
			}
			continue
		}
		if rid := infoString(info, "run_id"); rid == "" || rid == *watched {
			wait = l1SyncEvery
			continue
		}
		t.lost.Add(1)
		if !warnedSwitch {
			warnedSwitch = true
			t.c.log.Warn("repocache: the near cache's tracking connection is on another server than the client's (a Sentinel failover); it reconnects")
		}
		t.mu.Lock()
		if t.ctx.Err() != nil || t.watchers[""] != w {
			t.mu.Unlock()
			continue
		}
		t.remove("")
		t.add("", cl.Options())
		t.mu.Unlock()
		t.n.report()
		w.stop()
		wait = min(2*wait, l1MaxBackoff)
	}
}

// close stops every watcher and waits for them.
func (t *tracker) close() {
	t.cancel()
	t.mu.Lock()
	ws := make([]*watcher, 0, len(t.watchers))
	for addr, w := range t.watchers {
		ws = append(ws, w)
		delete(t.watchers, addr)
	}
	t.n.servable.Store(0)
	t.mu.Unlock()
	for _, w := range ws { // not under t.mu: see remove
		w.stop()
	}
	t.wg.Wait()
	t.n.flush()
	t.n.report()
}

// prove records that the watcher was heard from now.
func (w *watcher) prove() {
	w.proof.Store(time.Now().UnixNano())
	w.t.refresh()
}

// lost stops the tier serving and flushes it: what Redis sent on the
// broken connection, and what it will not send until the next one, is
// lost. err says why (for the caller's log).
func (w *watcher) lost(err error) {
	w.cmu.Lock()
	was := w.confirmed.Swap(false)
	w.cmu.Unlock()
	w.t.refresh()
	w.t.n.flush()
	if !was {
		return // already counted, logged and flushed
	}
	w.t.lost.Add(1)
}

func (w *watcher) receive(ctx context.Context) {
	defer w.t.wg.Done()
	// The channel is recorded even if this first dial fails: every
	// reconnect subscribes again.
	_ = w.ps.Subscribe(ctx, invalidateChannel)
	backoff := 20 * time.Millisecond
	for ctx.Err() == nil {
		// The flushes of the last message, or of a reconnect inside the
		// last receive (OnConnect).
		w.t.n.report()
		w.cmu.Lock()
		conn := w.conns
		w.cmu.Unlock()
		msg, err := w.ps.ReceiveTimeout(ctx, l1StaleAfter)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if isTimeout(err) {
				// A stall: the servable time already stops the tier;
				// nothing was lost on a connection that is still open.
				continue
			}
			w.lost(err)
			w.t.n.report()
			if !w.t.warned.Swap(true) {
				w.t.c.log.Warn("repocache: the near cache has no invalidation stream (it serves again once Redis confirms one)",
					"master", w.addr, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, l1MaxBackoff)
			// Ask again: on a new connection go-redis subscribes by
			// itself; on the same one (an unreadable message, such as
			// FLUSHALL's null payload as go-redis sees it) only this
			// brings a confirmation.
			_ = w.ps.Subscribe(ctx, invalidateChannel)
			continue
		}
		backoff = 20 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == invalidateChannel {
				// A new connection: what changed before it tracked was
				// told to nobody.
				w.t.n.flush()
				w.cmu.Lock()
				current := w.conns == conn
				if current {
					w.confirmed.Store(true)
				}
				w.cmu.Unlock()
				if current {
					w.t.warned.Store(false)
					w.prove()
				}
			}
		case *redis.Pong:
			w.prove()
			w.mu.Lock()
			if ch := w.waiting[m.Payload]; ch != nil {
				close(ch)
				delete(w.waiting, m.Payload)
			}
			w.mu.Unlock()
		case *redis.Message:
			if m.Channel != invalidateChannel {
				continue
			}
			if m.PayloadSlice == nil {
				// FLUSHALL or FLUSHDB (of any database): every key
				// changed. The stream itself is intact.
				w.t.n.flush()
				w.prove()
				continue
			}
			for _, k := range m.PayloadSlice {
				held := false
				if !strings.HasPrefix(k, w.t.prefix+"#") { // the cache's own records are never held
					held = w.t.n.drop(k)
				}
				if w.t.n.observe != nil {
					e := Event{Op: OpL1Invalidate, Key: strings.TrimPrefix(k, w.t.prefix)}
					if held {
						e.Count = 1
					}
					w.t.n.observe(e)
				}
			}
			w.prove()
		}
	}
}

// ping asks the server for a sign of life every l1PingEvery; its answer
// comes back through receive, after everything Redis sent before it.
func (w *watcher) ping(ctx context.Context) {
	defer w.t.wg.Done()
	tick := time.NewTicker(l1PingEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !w.confirmed.Load() {
				// The receiver reconnects, with its backoff; a ping
				// would dial too, ten times a second.
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, l1StaleAfter)
			_ = w.ps.Ping(pctx)
			cancel()
		}
	}
}

// sync returns once every watcher has received everything its master sent
// before this call: a ping with a payload of its own travels behind it.
func (t *tracker) sync(ctx context.Context) error {
	t.mu.Lock()
	ws := make([]*watcher, 0, len(t.watchers))
	for _, w := range t.watchers {
		ws = append(ws, w)
	}
	t.mu.Unlock()
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.sync(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sync sends a ping with a payload of its own and waits for its answer.
func (w *watcher) sync(ctx context.Context) error {
	token := newPlaceholder()[2:]
	ch := make(chan struct{})
	w.mu.Lock()
	if w.waiting == nil {
		w.waiting = map[string]chan struct{}{}
	}
	w.waiting[token] = ch
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.waiting, token)
		w.mu.Unlock()
	}()
	if err := w.ps.Ping(ctx, token); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
