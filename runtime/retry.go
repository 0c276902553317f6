package runtime

import (
	"context"
	"sync"
	"time"
)

// A failed invalidation is never final: the keys and tags it could not
// drop are kept in memory and retried in the background, with backoff,
// until they succeed or until nothing they protect can still be alive (the
// retry window: the longest TTL this Cache has written, at least
// minRetryWindow). The queue is bounded; what does not fit is dropped and
// counted. A process that exits (or crashes) loses its queue: what a lost
// retry leaves stale is bounded by the TTL of the entries concerned, and a
// later invalidation of the same tag finishes any drain it left (see
// dropTag).
const (
	maxPendingRetries = 10000
	minRetryWindow    = time.Hour
	retryBackoffMin   = 20 * time.Millisecond
	retryBackoffMax   = 500 * time.Millisecond // a retry lands within 1 s of Redis answering again
)

type retryQueue struct {
	mu       sync.Mutex
	keys     map[string]time.Time // key (without the namespace) → give up after
	tags     map[string]time.Time
	patterns map[string]time.Time // InvalidatePattern's (AfterUnrenderedWrite)
	running  bool
}

func (q *retryQueue) pending() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(len(q.keys) + len(q.tags) + len(q.patterns))
}

// invalidationFailed counts and logs a failed invalidation of keys or tags
// and queues them for the background retry.
func (c *Cache) invalidationFailed(keys, tags []string, method string, err error) {
	c.stats.invalidationFailures.Add(1)
	if isConnFailure(err) {
		c.suspectTopology()
	}
	what := keys
	if len(tags) > 0 {
		what = tags
	}
	c.observe(Event{Op: OpInvalidateError, Key: joinComma(what), Tag: len(tags) > 0, Err: err, Method: method})
	if ok, suppressed := c.invLog.allow(); ok {
		c.log.Error("repocache: invalidation failed; retrying in the background", "keys", keys, "tags", tags, "err", err, "suppressed", suppressed)
	}
	c.retryLater(keys, tags, nil)
}

func (c *Cache) retryLater(keys, tags, patterns []string) {
	q := &c.retries
	window := max(time.Duration(c.maxTTL.Load()), minRetryWindow)
	until := time.Now().Add(window)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.keys == nil {
		q.keys, q.tags, q.patterns = map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	}
	add := func(m map[string]time.Time, items []string) {
		for _, it := range items {
			if _, ok := m[it]; !ok && len(q.keys)+len(q.tags) >= maxPendingRetries {
				c.stats.retriesDropped.Add(1)
				continue
			}
			m[it] = until
		}
	}
	add(q.keys, keys)
	add(q.tags, tags)
	add(q.patterns, patterns)
	if !q.running && len(q.keys)+len(q.tags)+len(q.patterns) > 0 {
		q.running = true
		c.tasks.add()
		go c.runRetries()
	}
}

// runRetries retries the queue until it is empty.
func (c *Cache) runRetries() {
	defer c.tasks.done()
	q := &c.retries
	backoff := retryBackoffMin
	for {
		time.Sleep(backoff) // a backoff, not a synchronisation
		q.mu.Lock()
		now := time.Now()
		keys, tags, patterns := c.liveRetries(q.keys, now), c.liveRetries(q.tags, now), c.liveRetries(q.patterns, now)
		if len(keys)+len(tags)+len(patterns) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		progress := false
		if len(keys) > 0 && c.br.allow() {
			full := make([]string, len(keys))
			for i, k := range keys {
				full[i] = c.prefix + k
			}
			n, err := c.unlink(ctx, full)
			c.br.record(err)
			if err == nil {
				c.invalidated(joinComma(keys), "", false, n, now)
				c.forgetRetries(q.keys, keys)
				progress = true
			}
		}
		for _, t := range tags {
			if !c.br.allow() {
				break
			}
			answers := c.answers()
			n, err := c.dropTag(ctx, t)
			c.br.record(err)
			if err == nil {
				// Done only once its set's master is confirmed, as for
				// InvalidateTags (confirmTopology).
				err = c.confirmTopology(ctx, []string{c.tagKey(t)}, answers)
			}
			if err == nil {
				c.invalidated(t, "", true, n, now)
				c.forgetRetries(q.tags, []string{t})
				progress = true
			}
		}
		cancel()
		for _, p := range patterns {
			if !c.br.allow() {
				break
			}
			pctx, cancel := context.WithTimeout(context.Background(), checkTimeout) // a SCAN of the namespace
			_, err := c.InvalidatePattern(pctx, p)
			cancel()
			c.br.record(err)
			if err == nil {
				c.forgetRetries(q.patterns, []string{p})
				progress = true
			}
		}
		if progress {
			c.stats.retriesSucceeded.Add(1)
			backoff = retryBackoffMin
		} else {
			backoff = min(2*backoff, retryBackoffMax)
		}
	}
}

// liveRetries returns the items of m still worth retrying at now and drops,
// counting them, those whose retry window has passed. q.mu is held.
func (c *Cache) liveRetries(m map[string]time.Time, now time.Time) []string {
	var live []string
	for it, until := range m {
		if now.After(until) {
			delete(m, it)
			c.stats.retriesDropped.Add(1)
		} else {
			live = append(live, it)
		}
	}
	return live
}

func (c *Cache) forgetRetries(m map[string]time.Time, items []string) {
	c.retries.mu.Lock()
	for _, it := range items {
		delete(m, it)
	}
	c.retries.mu.Unlock()
}
