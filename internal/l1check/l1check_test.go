package l1check_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// The workload's shape; its pace is a profile (see pace).
const (
	procs = 3 // child processes, each a writer and a reader per row
	rows  = 6 // rows of the database
	// settleBound is how long, after quiescence, a row may take to read
	// as the database's value through every Cache.
	settleBound = 5 * time.Second
)

// The bounds asserted on every run. The window of a write and another
// process lies between two figures: the time to the process's last read
// that returned an older version (stale for), and the time to its first
// read that returned the write's version or later (first fresh), which
// adds the wait for the process's next read of the row: a notice wakes the
// readers (see observer), so that wait is the rest of a read in flight at
// the notice (on the cluster a miss may wait for another process's load),
// or the pause between reads when no notice came (the key was not in
// Redis, so nothing changed that Redis would tell).
//
// On this 2-core machine a run holds three child processes, the parent,
// Redis (three of them for the cluster) and, under -race, a runtime 5-10
// times slower: an invalidation waits for the scheduler of a busy process
// and for its garbage collector. Measured (RESULTS.md): most processes are
// fresh before the writer has its answer; first fresh p99 0.6-2.5 ms, max
// 6-14 ms; stale for at most a few milliseconds. The bounds leave room for
// a machine shared with other work; the design bound is l1StaleAfter
// (500 ms), past which a near cache whose stream was not heard from stops
// serving.
const (
	// staleBound: no read that began later than this after another
	// process's acknowledged write returned an older version.
	staleBound = 50 * time.Millisecond
	// freshP99Bound: the 99th percentile of the time to the first fresh
	// read. Its maximum is reported, not asserted: it measures the
	// slowest read in flight more than the near cache.
	freshP99Bound = 50 * time.Millisecond
	// The target on an idle machine, for the time to the first fresh
	// read: reported, and asserted with L1CHECK_STRICT=1.
	idleP99 = time.Millisecond
	idleMax = 10 * time.Millisecond
)

// figures are a run's results, for the log and RESULTS.md.
type figures struct {
	backend                       string
	reads, writes, failed         int
	l1Hits                        int64
	pairs, unresolved, freshAtAck int
	p50, p99, max                 time.Duration // ack → first fresh read in another process
	restP50                       time.Duration // the same, over the pairs not fresh at the ack
	staleP99, staleMax            time.Duration // ack → last stale read in another process
	gapP50, gapP99                time.Duration // between two reads of a row in one process
	staleOther, staleOwn          int
	staleOtherMemory              int       // stale reads in other processes served by the near cache
	worstOther                    staleRead // the stale read in another process that began latest after its ack
	settle                        time.Duration
	cacheMismatch, redisMismatch  int
	redisHeld                     int // rows with an entry in Redis after quiescence
}

var (
	tableMu sync.Mutex
	table   []figures
)

func TestStalenessWindow(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		b := redistest.Standalone(t)
		b.RequireReal(t)
		url := os.Getenv("REDIS_URL")
		if url == "" {
			url = "redis://" + b.Addrs[0]
		}
		check(t, b, url)
	})
	t.Run("cluster", func(t *testing.T) {
		b := redistest.Cluster(t)
		check(t, b, "redis+cluster://"+strings.Join(b.Addrs, ","))
	})
	writeTable(t)
}

// check runs the children on backend b (url for runtime.NewClient),
// computes the windows and asserts the bounds.
func check(t *testing.T, b *redistest.Backend, url string) {
	co := newCoordinator(procs)
	srv := httptest.NewServer(co.handler())
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outs := make([]bytes.Buffer, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for p := range procs {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envProc+"="+strconv.Itoa(p), envRedis+"="+url, envNS+"="+b.Namespace, envDB+"="+srv.URL)
		cmd.Stdout, cmd.Stderr = &outs[p], &outs[p]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[p] = cmd.Wait(); errs[p] != nil {
				co.fail()
			}
		}()
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v\n%s", p, err, outs[p].String())
		}
	}
	if t.Failed() {
		return
	}
	var reps []*report
	for p := range procs {
		rep := co.report(p)
		if rep == nil {
			t.Fatalf("process %d sent no report:\n%s", p, outs[p].String())
		}
		reps = append(reps, rep)
	}

	f := figures{backend: b.Name}
	for _, rep := range reps {
		f.reads += len(rep.Reads)
		f.writes += len(rep.Acks)
		f.failed += rep.FailedWrites
		f.l1Hits += rep.L1.Hits
		f.settle = max(f.settle, rep.Settle)
		f.cacheMismatch += len(rep.Mismatches)
		for _, m := range rep.Mismatches {
			t.Errorf("process %d after quiescence: %s", rep.Proc, m)
		}
		if rep.ReadErrors != 0 {
			t.Errorf("process %d: %d reads returned an error (reads fail open)", rep.Proc, rep.ReadErrors)
		}
		if rep.L1.Hits == 0 {
			t.Errorf("process %d: no read was served by its near cache: nothing was measured", rep.Proc)
		}
		t.Logf("process %d: %d reads, %d acknowledged writes (%d failed); %d hits, %d misses, %d loads; near cache %+v",
			rep.Proc, len(rep.Reads), len(rep.Acks), rep.FailedWrites, rep.Hits, rep.Misses, rep.Loads, rep.L1)
	}
	w := analyse(reps)
	f.pairs, f.unresolved, f.freshAtAck = len(w.pairs), w.unresolved, w.freshAtAck
	f.p50, f.p99, f.max = quantile(w.pairs, .5), quantile(w.pairs, .99), quantile(w.pairs, 1)
	f.restP50 = quantile(w.pairs[len(w.pairs)-(f.pairs-f.freshAtAck):], .5) // sorted by the quantiles above: the zeros first
	f.staleP99, f.staleMax = quantile(w.staleFor, .99), quantile(w.staleFor, 1)
	f.gapP50, f.gapP99 = quantile(w.gaps, .5), quantile(w.gaps, .99)
	f.staleOther, f.staleOwn, f.staleOtherMemory, f.worstOther = w.staleOther, w.staleOwn, w.staleOtherMemory, w.worstOther
	f.redisHeld, f.redisMismatch = checkRedis(t, b, co)

	t.Logf("%s: %d reads, %d acknowledged writes; ack → first fresh read in another process over %d pairs (%d fresh before the ack; the rest: p50 %v): p50 %v, p99 %v, max %v (%d still stale at the end); ack → last stale read: p99 %v, max %v; between two reads of a row in a process: p50 %v, p99 %v; stale reads: %d in other processes (%d from memory; the latest %v after its ack, from memory %v), %d in the writing process; settled %v after quiescence",
		f.backend, f.reads, f.writes, f.pairs, f.freshAtAck, f.restP50, f.p50, f.p99, f.max, f.unresolved, f.staleP99, f.staleMax, f.gapP50, f.gapP99, f.staleOther, f.staleOtherMemory, f.worstOther.after, f.worstOther.memory, f.staleOwn, f.settle)
	idle := f.p99 <= idleP99 && f.max <= idleMax
	t.Logf("%s: idle-machine target (p99 ≤ %v, max ≤ %v) held: %v", f.backend, idleP99, idleMax, idle)

	// A write's own process drops its entries before the write returns.
	// (Not when its InvalidateTags found the tag set already emptied by
	// another process whose notice is still on its way: see
	// TestWriterReadsOwnWriteWhileNoticeLate. This workload rarely writes
	// a row within that lag after another process did.)
	if f.staleOwn != 0 {
		t.Errorf("%d reads in a writing process began after its own acknowledged write and returned an older version, e.g. %+v", f.staleOwn, w.ownExamples)
	}
	if f.pairs < 100 {
		t.Errorf("only %d (write, other process) pairs: too few to measure", f.pairs)
	}
	if f.staleMax > staleBound {
		t.Errorf("a read in another process began %v after an acknowledged write and returned an older version; bound %v", f.staleMax, staleBound)
	}
	if f.p99 > freshP99Bound {
		t.Errorf("the other processes' first fresh read came %v (p99) after the acknowledgement; bound %v", f.p99, freshP99Bound)
	}
	if os.Getenv("L1CHECK_STRICT") == "1" && !idle {
		t.Errorf("idle-machine target missed: p99 %v (≤ %v), max %v (≤ %v)", f.p99, idleP99, f.max, idleMax)
	}
	tableMu.Lock()
	table = append(table, f)
	tableMu.Unlock()
}

var errAbsent = errors.New("no entry in Redis")

// checkRedis reads every row's entry in Redis through a Cache without a
// near cache, whose loader fails: an entry must decode to the database's
// value, and a missing one is left missing. It returns the rows held and
// the mismatches.
func checkRedis(t *testing.T, b *redistest.Backend, co *coordinator) (held, bad int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := runtime.New(b.Client, runtime.WithNamespace(b.Namespace), runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer c.Close()
	for r := range rows {
		got, err := runtime.GetCached(ctx, c, key(r), func(context.Context) (int64, error) { return 0, errAbsent },
			runtime.TTL(time.Minute), runtime.Tags(tag(r)))
		switch want := co.version(r); {
		case errors.Is(err, errAbsent):
		case err != nil:
			bad++
			t.Errorf("after quiescence %s in Redis: %v", key(r), err)
		case got != want:
			bad++
			t.Errorf("after quiescence %s in Redis: %d, database %d", key(r), got, want)
		default:
			held++
		}
	}
	t.Logf("%s: %d of %d rows held in Redis after quiescence, %d mismatches", b.Name, held, rows, bad)
	return held, bad
}

func writeTable(t *testing.T) {
	path := os.Getenv("L1CHECK_TABLE")
	if path == "" || len(table) == 0 {
		return
	}
	var sb strings.Builder
	sb.WriteString("# Near cache staleness window\n\n")
	race := ""
	if raceBuild {
		race = " -race"
	}
	idleEnv, profileName := "", "the default profile, the one `make test` runs"
	if os.Getenv(envIdle) == "1" {
		idleEnv, profileName = envIdle+"=1 ", "the idle-machine profile"
	}
	fmt.Fprintf(&sb, "Written by `%sL1CHECK_TABLE=$PWD/internal/l1check/%s go test%s -count=1 -run '^TestStalenessWindow$' -v ./internal/l1check/`, %s ", idleEnv, filepath.Base(path), race, profileName)
	fmt.Fprintf(&sb, "(on this machine: 2 shared cores, redis-server 7.0, loopback). Each run starts %d child processes (the test binary again), each with its own `runtime.Cache` (`WithL1()`, its own client from `runtime.NewClient`, one namespace), ", procs)
	pc := pace()
	fmt.Fprintf(&sb, "one writer (a database write of a random row every ~%v, then `InvalidateTags` of its tag; the acknowledgement is when that returned) and a reader for each of %d rows (`GetCached`, then a pause until the process's near cache handles Redis's next notice, observed through `runtime.WithMetrics` as `OpL1Invalidate` or `OpL1Flush`, or for %v), for %v. ", pc.writeEvery, rows, pc.readPause, pc.workload)
	sb.WriteString("The database is in the parent process, served on loopback HTTP. Timestamps are the wall clock read once per process plus monotonic time since. ")
	if pc.sameClock {
		sb.WriteString("The idle profile's Caches tolerate no clock skew between the cluster's nodes (`WithClockSkew(0)`: they share this machine's clock), so that a load after a write is stored and the near cache serves the reads after it.\n\n")
	} else {
		sb.WriteString("On the cluster many reads miss: a load whose tag was invalidated within the clock skew tolerated between nodes (`WithClockSkew`, 50 ms by default on a cluster) is returned but not stored, and every row is rewritten every few tens of milliseconds; the near cache serves most of the rest.\n\n")
	}
	sb.WriteString("*Window* is, for each acknowledged write and each other process that read the row afterwards, the time from the acknowledgement to the start of that process's first read returning the write's version or later (after which none returned older), 0 when that read began before the acknowledgement (*fresh at the ack*: Redis's notice reached the process before the writer had its answer). Past the notice it includes the wait for that process's next read of the row (*gap* between two reads, cut short by a notice). *The rest* is the window over the pairs not fresh at the ack. *Stale for* is the time to the last read that returned an older version: the window lies between the two. ")
	fmt.Fprintf(&sb, "Asserted: no read in the writing process older than its own acknowledged write; in other processes, stale for ≤ %v (max) and window ≤ %v (p99); every near cache and every Redis entry equal to the database after quiescence. The idle-machine target for the window is p99 ≤ %v, max ≤ %v.\n\n", staleBound, freshP99Bound, idleP99, idleMax)
	sb.WriteString("| backend | reads / near-cache hits / acked writes | pairs / fresh at the ack | window p50 / p99 / max | the rest: p50 / max | stale for p99 / max | gap p50 / p99 | stale reads: other processes (from memory) / writing process | idle target held | after quiescence: near-cache mismatches / Redis rows held, mismatches |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	r := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	for _, f := range table {
		fmt.Fprintf(&sb, "| %s | %d / %d / %d | %d / %d | %v / %v / %v | %v / %v | %v / %v | %v / %v | %d (%d) / %d | %v | %d / %d of %d, %d |\n", f.backend, f.reads, f.l1Hits, f.writes, f.pairs, f.freshAtAck,
			r(f.p50), r(f.p99), r(f.max), r(f.restP50), r(f.max), r(f.staleP99), r(f.staleMax), r(f.gapP50), r(f.gapP99), f.staleOther, f.staleOtherMemory, f.staleOwn,
			f.p99 <= idleP99 && f.max <= idleMax, f.cacheMismatch, f.redisHeld, rows, f.redisMismatch)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
