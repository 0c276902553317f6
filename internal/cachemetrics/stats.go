package cachemetrics

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/repocache/repocache/runtime"
)

// Watched is a Cache whose Stats an exporter reads when it is collected. A
// Stats call that outlives its collection's wait is shared by the next
// collection rather than repeated, so that a hung Redis does not pile up
// calls.
type Watched[X any] struct {
	// Cache is the watched Cache.
	Cache *runtime.Cache
	// Namespace is its namespace, valid UTF-8.
	Namespace string
	// Extra is what the exporter keeps with it.
	Extra X

	mu   sync.Mutex
	call *statsCall // the last one started
}

type statsCall struct {
	done  chan struct{}
	stats runtime.Stats
	err   error
}

// start returns the Stats call in flight, or starts one.
func (w *Watched[X]) start(timeout time.Duration) *statsCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.call != nil {
		select {
		case <-w.call.done:
		default:
			return w.call
		}
	}
	call := &statsCall{done: make(chan struct{})}
	w.call = call
	go func() {
		defer close(call.done)
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		call.stats, call.err = w.Cache.Stats(ctx)
	}()
	return call
}

// WatchList is the watched Caches of an exporter, at most one per
// namespace. It is safe for concurrent use.
type WatchList[X any] struct {
	mu   sync.Mutex
	list []*Watched[X]
}

// Add watches cache under namespace ns (valid UTF-8), keeping extra with
// it. Adding a watched Cache again does nothing. It reports false, and
// adds nothing, if another Cache is watched under ns.
func (l *WatchList[X]) Add(cache *runtime.Cache, ns string, extra X) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.list {
		switch {
		case w.Cache == cache:
			return true
		case w.Namespace == ns:
			return false
		}
	}
	l.list = append(l.list, &Watched[X]{Cache: cache, Namespace: ns, Extra: extra})
	return true
}

// Remove stops watching cache.
func (l *WatchList[X]) Remove(cache *runtime.Cache) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = slices.DeleteFunc(l.list, func(w *Watched[X]) bool { return w.Cache == cache })
}

// Read reads the Stats of every watched Cache in parallel and calls report
// for each, in the order they were added. It waits for them up to timeout
// in all, or until ctx is done; a Cache whose call has not returned by then
// is reported with stats nil, the call left running for the next Read to
// share. Otherwise stats and err are what its Cache.Stats returned, err
// meaning that Redis's INFO could not be read.
func (l *WatchList[X]) Read(ctx context.Context, timeout time.Duration, report func(w *Watched[X], stats *runtime.Stats, err error)) {
	l.mu.Lock()
	ws := slices.Clone(l.list)
	l.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	calls := make([]*statsCall, len(ws))
	for i, w := range ws {
		calls[i] = w.start(timeout)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	expired := false
	for i, w := range ws {
		call := calls[i]
		if !expired {
			select {
			case <-call.done:
			case <-deadline.C:
				expired = true
			case <-ctx.Done():
				expired = true
			}
		}
		select {
		case <-call.done:
			report(w, &call.stats, call.err)
		default:
			report(w, nil, nil)
		}
	}
}
