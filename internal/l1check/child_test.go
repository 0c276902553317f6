package l1check_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/runtime"
)

// The environment a child is started with.
const (
	envProc  = "L1CHECK_PROC"  // the child's number; unset in the parent
	envRedis = "L1CHECK_REDIS" // a runtime.NewClient URL
	envNS    = "L1CHECK_NS"    // the Cache's namespace
	envDB    = "L1CHECK_DB"    // the coordinator's base URL
	// envIdle, set to 1, is the idle-machine profile: each process reads
	// row 0 only, with idleReaders readers whose pauses interleave, so
	// that the machine stays mostly idle (a hit from memory is about a
	// microsecond) while the row is read about every quarter of a
	// millisecond: an idle process's sleep lasts about a millisecond,
	// and one reader could not tell a notice in 0.1 ms from one in 1 ms.
	envIdle     = "L1CHECK_IDLE"
	idleReaders = 4
)

// readers returns the row each reader of a process reads.
func readers() []int {
	if os.Getenv(envIdle) == "1" {
		return make([]int, idleReaders) // all on row 0
	}
	out := make([]int, rows)
	for r := range out {
		out[r] = r
	}
	return out
}

// clock stamps events so that the processes' stamps compare: the wall
// clock (CLOCK_REALTIME, one kernel clock for every process on the machine)
// read once when the process starts, plus the monotonic time elapsed since.
// A step of the wall clock during a run (NTP) therefore moves no stamp; it
// could only offset processes started on either side of it.
type clock struct{ anchor time.Time }

func newClock() clock { return clock{anchor: time.Now()} }

// now is nanoseconds since the Unix epoch.
func (c clock) now() int64 { return c.anchor.UnixNano() + int64(time.Since(c.anchor)) }

// dbClient is a child's connection to the coordinator.
type dbClient struct {
	base string
	http *http.Client
}

func (d *dbClient) do(ctx context.Context, method, path string, body io.Reader) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, body)
	if err != nil {
		return "", err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func (d *dbClient) row(ctx context.Context, method string, r int) (int64, error) {
	s, err := d.do(ctx, method, "/rows/"+strconv.Itoa(r), nil)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

// load reads row r from the database: the children's loader.
func (d *dbClient) load(r int) func(context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) { return d.row(ctx, http.MethodGet, r) }
}

func (d *dbClient) barrier(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.do(ctx, http.MethodPost, "/barrier/"+name, nil)
	return err
}

func key(r int) string { return "row:" + strconv.Itoa(r) }
func tag(r int) string { return "t:row:" + strconv.Itoa(r) }

// get reads row r through c as the workload does: tagged with the row's
// tag, allowed into the near cache.
func get(ctx context.Context, c *runtime.Cache, db *dbClient, r int) (int64, error) {
	return runtime.GetCached(ctx, c, key(r), db.load(r), runtime.TTL(time.Minute), runtime.Tags(tag(r)), runtime.L1(time.Minute))
}

// TestHelperProcess is a child of TestStalenessWindow: it skips unless
// started by it.
func TestHelperProcess(t *testing.T) {
	proc, err := strconv.Atoi(os.Getenv(envProc))
	if err != nil {
		t.Skip("a child process of TestStalenessWindow; it runs only when started by it")
	}
	clk := newClock()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := &dbClient{base: os.Getenv(envDB), http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * rows}}}
	cl, err := runtime.NewClient(os.Getenv(envRedis), runtime.WithClientLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if cc, ok := cl.Unwrap().(*redis.ClusterClient); ok {
		// A workaround, not part of the check: a node client's first
		// connection writes its options (go-redis turns its maintenance
		// notifications off when the server does not support them) while
		// the near cache's tracker copies those options to start watching
		// the node, a data race that -race reports. Each master's first
		// connection is made here, before the tracker starts.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() })
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	c := runtime.New(cl, runtime.WithNamespace(os.Getenv(envNS)), runtime.WithL1(), runtime.WithLogger(quiet))
	defer c.Close()

	// The runtime signals nothing when Redis confirms the invalidation
	// streams: Stats reports it, so poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := c.Stats(context.Background())
		if s.L1.Watched {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the near cache was not watched within 10 s")
		}
		time.Sleep(5 * time.Millisecond) // polling the server's confirmation
	}
	if err := db.barrier("ready"); err != nil {
		t.Fatal(err)
	}

	rep := &report{Proc: proc}
	ctx, stop := context.WithTimeout(context.Background(), workload)
	defer stop()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex // guards rep while the workload runs
		failed = make(chan error, 1)
	)
	wg.Add(1)
	go func() { // the writer
		defer wg.Done()
		for ctx.Err() == nil {
			r := rand.IntN(rows)
			wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			v, err := db.row(wctx, http.MethodPost, r)
			if err != nil {
				cancel()
				select {
				case failed <- err:
				default:
				}
				return
			}
			err = c.InvalidateTags(wctx, tag(r))
			at := clk.now()
			cancel()
			mu.Lock()
			if err != nil {
				rep.FailedWrites++
			} else {
				rep.Acks = append(rep.Acks, ack{Row: r, Version: v, At: at})
			}
			mu.Unlock()
			// The pace of the writes, not a synchronisation: jittered so
			// that the processes' writes interleave.
			time.Sleep(writeEvery/2 + rand.N(writeEvery))
		}
	}()
	for _, r := range readers() { // one reader per row: a slow read of one row delays no other's
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []read
			errs := 0
			for ctx.Err() == nil {
				rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := clk.now()
				v, err := get(rctx, c, db, r)
				cancel()
				if err != nil {
					errs++
				} else {
					mine = append(mine, read{Row: r, Version: v, Start: start})
				}
				// The pace of the reads, not a synchronisation. It sets
				// the resolution of the measurement: on a busy machine
				// the pause is about readPause, on an idle one about a
				// millisecond (Go's timers sleep no less when the
				// process has nothing else to run).
				time.Sleep(readPause)
			}
			mu.Lock()
			rep.Reads = append(rep.Reads, mine...)
			rep.ReadErrors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case err := <-failed:
		t.Fatalf("database write: %v", err)
	default:
	}
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Wait(wctx); err != nil {
		t.Fatalf("background work: %v", err)
	}
	if err := db.barrier("quiet"); err != nil {
		t.Fatal(err)
	}

	// Quiescence: no write is in flight anywhere. Every row read through
	// this Cache (its near cache first) must come to equal the database
	// once the last invalidations have reached this process. The runtime
	// exports no signal for that, so each row is read again until it does.
	quiesced := time.Now()
	for r := range rows {
		want, err := db.row(wctx, http.MethodGet, r)
		if err != nil {
			t.Fatal(err)
		}
		for {
			got, err := get(wctx, c, db, r)
			if err == nil && got == want {
				break
			}
			if time.Since(quiesced) > settleBound {
				rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: read %d (%v), database %d", key(r), got, err, want))
				break
			}
			time.Sleep(time.Millisecond) // polling: see above
		}
	}
	rep.Settle = time.Since(quiesced)
	s, _ := c.Stats(wctx)
	rep.Hits, rep.Misses, rep.Loads, rep.L1 = s.Hits, s.Misses, s.Loads, s.L1

	var body bytes.Buffer
	if err := gob.NewEncoder(&body).Encode(rep); err != nil {
		t.Fatal(err)
	}
	if _, err := db.do(wctx, http.MethodPost, "/report/"+strconv.Itoa(proc), &body); err != nil {
		t.Fatal(err)
	}
}
