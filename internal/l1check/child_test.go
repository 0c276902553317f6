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
	"sync/atomic"
	"testing"
	"time"

	"github.com/repocache/repocache/runtime"
)

// The environment a child is started with.
const (
	envProc  = "L1CHECK_PROC"  // the child's number; unset in the parent
	envRedis = "L1CHECK_REDIS" // a runtime.NewClient URL
	envNS    = "L1CHECK_NS"    // the Cache's namespace
	envDB    = "L1CHECK_DB"    // the coordinator's base URL
	// envIdle, set to 1, is the idle-machine profile (see pace).
	envIdle = "L1CHECK_IDLE"
)

// profile is the pace of a run's workload.
type profile struct {
	// writeEvery is a process's mean time between writes (jittered).
	writeEvery time.Duration
	// readPause is the longest pause between two reads of a reader, which
	// a notice cuts short (see observer).
	readPause time.Duration
	// workload is how long the writers and readers run.
	workload time.Duration
	// sameClock sets WithClockSkew(0).
	sameClock bool
}

// pace returns the profile the environment asks for. The default is small,
// so that it runs in a few seconds on two shared cores under -race. The
// idle profile (L1CHECK_IDLE=1), for the idle-machine target, writes a
// tenth as often (each row about every 200 ms), reads on a longer pause,
// for longer, and tolerates no clock skew between the cluster's nodes,
// which share this machine's clock: with the default (50 ms on a cluster)
// every read within that window after a write is a load that is not
// stored, and the children kept more than a quarter of a core busy each
// (a tenth on the standalone server; profiles of this machine).
func pace() profile {
	if os.Getenv(envIdle) == "1" {
		return profile{writeEvery: 100 * time.Millisecond, readPause: 2 * time.Millisecond, workload: 8 * time.Second, sameClock: true}
	}
	return profile{writeEvery: 10 * time.Millisecond, readPause: 200 * time.Microsecond, workload: 3 * time.Second}
}

// observer wakes a process's readers when its near cache hears of a
// change. A reader reads again as soon as Redis's notice has been handled,
// or after readPause: a reader that slept on Go's timers alone would
// measure their resolution (about a millisecond in an idle process, whose
// scheduler waits in epoll with a timeout in whole milliseconds) more than
// the notice's travel. It also counts each row's hits from memory, so that
// a reader can tell whether its read was one.
type observer struct {
	wake     [rows]chan struct{}
	fromMemo [rows]atomic.Int64
}

func newObserver() *observer {
	o := &observer{}
	for i := range o.wake {
		o.wake[i] = make(chan struct{}, 1)
	}
	return o
}

// Observe implements runtime.Metrics: every notice (of a row's key, of a
// tag's record, or a flush) wakes every reader. OpL1Invalidate is observed
// after the near cache dropped the key.
func (o *observer) Observe(e runtime.Event) {
	switch e.Op {
	case runtime.OpHit:
		if r, ok := rowOf(e.Key); ok && e.L1 {
			o.fromMemo[r].Add(1)
		}
	case runtime.OpL1Invalidate, runtime.OpL1Flush:
		for _, ch := range o.wake {
			select {
			case ch <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}
}

// rowOf returns the row of a key made by key.
func rowOf(k string) (int, bool) {
	s, ok := strings.CutPrefix(k, "row:")
	if !ok {
		return 0, false
	}
	r, err := strconv.Atoi(s)
	return r, err == nil && r >= 0 && r < rows
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
	pc := pace()
	obs := newObserver()
	opts := []runtime.Option{runtime.WithNamespace(os.Getenv(envNS)), runtime.WithL1(), runtime.WithLogger(quiet), runtime.WithMetrics(obs)}
	if pc.sameClock {
		opts = append(opts, runtime.WithClockSkew(0))
	}
	c := runtime.New(cl, opts...)
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
	ctx, stop := context.WithTimeout(context.Background(), pc.workload)
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
			time.Sleep(pc.writeEvery/2 + rand.N(pc.writeEvery))
		}
	}()
	for r := range rows { // one reader per row: a slow read of one row delays no other's
		wg.Add(1)
		go func() {
			defer wg.Done()
			pause := time.NewTimer(pc.readPause)
			defer pause.Stop()
			var mine []read
			errs := 0
			for ctx.Err() == nil {
				rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start, memo := clk.now(), obs.fromMemo[r].Load()
				v, err := get(rctx, c, db, r)
				cancel()
				if err != nil {
					errs++
				} else {
					mine = append(mine, read{Row: r, Version: v, Start: start, Memory: obs.fromMemo[r].Load() != memo})
				}
				// The pace of the reads: the next notice, or readPause
				// (see observer). Either way the read checks what a reader
				// would get then; neither is a synchronisation.
				pause.Reset(pc.readPause)
				select {
				case <-obs.wake[r]:
				case <-pause.C:
				}
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
