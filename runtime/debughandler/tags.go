package debughandler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redisnode"
	"github.com/repocache/repocache/runtime"
)

// watched is a Recorder's Cache and the last scan of its tag sets.
type watched struct {
	c        *runtime.Cache
	scanning sync.Mutex // held by the one view that scans
	last     atomic.Pointer[Tags]
}

// scanBatch is the COUNT hint of each SCAN.
const scanBatch = 500

// tags returns the largest tags of w's namespace: the last scan's while it
// is younger than the scan interval or while another view scans, else a
// new scan's.
func (h *Handler) tags(ctx context.Context, w *watched) *Tags {
	last := w.last.Load()
	if last != nil && h.now().Sub(last.At) < h.scanEvery {
		return last
	}
	if !w.scanning.TryLock() {
		if last == nil {
			return &Tags{At: h.now(), Error: "a scan is running"}
		}
		return last
	}
	defer w.scanning.Unlock()
	if l := w.last.Load(); l != last { // another view scanned meanwhile
		return l
	}
	ctx, cancel := context.WithTimeout(ctx, h.scanTimeout)
	defer cancel()
	t := h.scanTags(ctx, w.c)
	w.last.Store(t)
	return t
}

// scanTags finds the namespace's tag sets with SCAN MATCH on every master
// (at most scanKeys of them, within ctx) and measures each with ZCARD.
func (h *Handler) scanTags(ctx context.Context, c *runtime.Cache) *Tags {
	t := &Tags{At: h.now()}
	prefix := c.Namespace() + ":#tag:{"
	pattern := escapeGlob(prefix) + "*}"
	var (
		mu      sync.Mutex
		sizes   []Tag
		total   atomic.Int64 // tag sets found on every master
		partial atomic.Bool
	)
	err := forEachMaster(ctx, c.Client(), func(ctx context.Context, m *redis.Client) error {
		var cursor uint64
		var found []string
		for {
			keys, next, err := m.Scan(ctx, cursor, pattern, scanBatch).Result()
			if err != nil {
				return err
			}
			found = append(found, keys...)
			if cursor = next; cursor == 0 {
				break
			}
			if total.Add(int64(len(keys))) >= int64(h.scanKeys) {
				partial.Store(true)
				break
			}
		}
		got, err := measure(ctx, m, prefix, found)
		mu.Lock()
		sizes = append(sizes, got...)
		mu.Unlock()
		return err
	})
	t.Partial = partial.Load()
	if err != nil {
		t.Error = err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			t.Partial, t.Error = true, "stopped at the time limit"
		}
	}
	t.Scanned = len(sizes)
	sort.Slice(sizes, func(i, j int) bool {
		if sizes[i].Keys != sizes[j].Keys {
			return sizes[i].Keys > sizes[j].Keys
		}
		return sizes[i].Tag < sizes[j].Tag
	})
	if len(sizes) > h.topTags {
		sizes = sizes[:h.topTags]
	}
	t.Top = sizes
	return t
}

// measure pipelines ZCARD and ZSCORE "#v" (the tag's last invalidation,
// not a key) for each tag set, in batches.
func measure(ctx context.Context, m *redis.Client, prefix string, keys []string) ([]Tag, error) {
	var out []Tag
	for len(keys) > 0 {
		n := min(len(keys), scanBatch)
		batch := keys[:n]
		keys = keys[n:]
		pipe := m.Pipeline()
		cards := make([]*redis.IntCmd, n)
		marks := make([]*redis.FloatCmd, n)
		for i, k := range batch {
			cards[i] = pipe.ZCard(ctx, k)
			marks[i] = pipe.ZScore(ctx, k, "#v")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return out, err
		}
		for i, k := range batch {
			size := cards[i].Val()
			if marks[i].Err() == nil {
				size--
			}
			if size <= 0 {
				continue
			}
			out = append(out, Tag{Tag: unescapeTag(strings.TrimSuffix(strings.TrimPrefix(k, prefix), "}")), Keys: size})
		}
	}
	return out, nil
}

// unescapeTag undoes the runtime's escaping of a tag in its key.
var unescapeTag = strings.NewReplacer("%7B", "{", "%7D", "}", "%25", "%").Replace

// escapeGlob escapes the SCAN MATCH glob characters of s.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// forEachMaster runs fn on every master of client (see redisnode).
func forEachMaster(ctx context.Context, client redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	if rc, ok := client.(*runtime.Client); ok {
		client = rc.UniversalClient
	}
	if err := redisnode.ForEachMaster(ctx, client, fn); err != nil {
		return fmt.Errorf("tag scan: %w", err)
	}
	return nil
}
