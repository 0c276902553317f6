package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/redistest"
)

// TestConsistencyChecker is a checker in the spirit of Meta's "cache made
// consistent": writers update rows in a database and invalidate through the
// cache; readers read through it, over several Cache instances with their
// own clients (as separate processes would). It counts reads that return a
// version older than one whose invalidation had already been acknowledged
// when the read began, and after quiescence compares every cached value with
// the database. Both must be zero.
//
// Rows 0-7 have one writer each and are written through (Put); rows 8-11
// are written by every writer concurrently and invalidated (AfterWrite),
// each with its own tag and the tag "shared", which every such write
// invalidates, so that invalidations of one tag overlap all the time:
// write-through of one entity by concurrent writers is ordered by cache
// arrival, not by commit, which docs/design.md documents.
func TestConsistencyChecker(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b *redistest.Backend) {
		const (
			rows, writers, readers = 12, 4, 8
			writesEach, readsEach  = 40, 120
		)
		ctx := context.Background()
		var caches []*Cache
		for range 3 {
			caches = append(caches, New(redistest.NewClient(t, b), WithNamespace(b.Namespace), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))))
		}
		var (
			dbMu  sync.Mutex
			db    [rows]int // version of each row
			acked [rows]atomic.Int64
		)
		readRow := func(r int) row {
			time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond) // the database's latency
			dbMu.Lock()
			defer dbMu.Unlock()
			return row{r, db[r]}
		}
		key := func(r int) string { return fmt.Sprint("row:", r) }
		tag := key
		// The shared rows also carry one tag that every writer of a
		// shared row invalidates: concurrent invalidations of one tag.
		rowOpts := func(r int, lock LockMode) []CallOption {
			if r >= 8 {
				return []CallOption{TTL(time.Minute), Tags(tag(r), "shared"), Lock(lock)}
			}
			return []CallOption{TTL(time.Minute), Tags(tag(r)), Lock(lock)}
		}
		listTags := ResultTags(func(l []row) []string {
			var tags []string
			for _, x := range l {
				tags = append(tags, tag(x.ID))
			}
			return tags
		})
		ack := func(r, v int) {
			for {
				old := acked[r].Load()
				if int64(v) <= old || acked[r].CompareAndSwap(old, int64(v)) {
					return
				}
			}
		}

		var stale atomic.Int64
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range writesEach {
					c := caches[rand.IntN(len(caches))]
					r := w + writers*(i%2) // this writer's own rows: w and w+4
					if i%3 == 2 {
						r = 8 + rand.IntN(4) // shared rows
					}
					dbMu.Lock()
					db[r]++
					v := db[r]
					dbMu.Unlock()
					if r < 8 {
						Put(ctx, c, key(r), row{r, v}, rowOpts(r, LockLocal)...)
					} else {
						c.AfterWrite(ctx, []string{key(r)}, []string{tag(r), "shared"})
					}
					ack(r, v)
				}
			}()
		}
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range readsEach {
					c := caches[rand.IntN(len(caches))]
					lock := []LockMode{LockLocal, LockDistributed, LockNone}[rand.IntN(3)]
					if rand.IntN(2) == 0 {
						var before [rows]int64
						for r := range rows {
							before[r] = acked[r].Load()
						}
						l, err := GetCached(ctx, c, "list", func(context.Context) ([]row, error) {
							out := make([]row, rows)
							for r := range rows {
								out[r] = readRow(r)
							}
							return out, nil
						}, TTL(time.Minute), listTags, Lock(lock))
						if err != nil {
							t.Error(err)
							return
						}
						for _, x := range l {
							if int64(x.Version) < before[x.ID] {
								stale.Add(1)
							}
						}
						continue
					}
					r := rand.IntN(rows)
					before := acked[r].Load()
					x, err := GetCached(ctx, c, key(r), func(context.Context) (row, error) { return readRow(r), nil }, rowOpts(r, lock)...)
					if err != nil {
						t.Error(err)
						return
					}
					if int64(x.Version) < before {
						stale.Add(1)
					}
				}
			}()
		}
		wg.Wait()

		// Quiescence: whatever is cached equals the database.
		var mismatches int
		c := caches[0]
		for r := range rows {
			x, _ := GetCached(ctx, c, key(r), func(context.Context) (row, error) { return row{r, -1}, nil }, TTL(time.Minute))
			if x.Version != db[r] && x.Version != -1 {
				mismatches++
				t.Errorf("row %d: cached version %d, database %d", r, x.Version, db[r])
			}
		}
		l, _ := GetCached(ctx, c, "list", func(context.Context) ([]row, error) { return nil, nil }, TTL(time.Minute))
		for _, x := range l {
			if x.Version != db[x.ID] {
				mismatches++
				t.Errorf("list: row %d cached at version %d, database %d", x.ID, x.Version, db[x.ID])
			}
		}
		var prevented int64
		for _, c := range caches {
			s, _ := c.Stats(ctx)
			prevented += s.StaleSetsPrevented
		}
		t.Logf("%d writes, %d reads over %d caches: %d stale reads after an acknowledged invalidation, %d cached values differ from the database, %d stale sets prevented",
			writers*writesEach, readers*readsEach, len(caches), stale.Load(), mismatches, prevented)
		if n := stale.Load(); n != 0 {
			t.Fatalf("%d stale reads after an acknowledged invalidation", n)
		}
	})
}
