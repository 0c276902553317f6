package faults_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repocache/repocache/internal/faultproxy"
	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const rows = 16

type version struct {
	v  int
	at time.Time // when the database got it
}

// workload is a database of rows with versions, written by writers that
// invalidate through the cache and read by readers through it, over two
// caches with their own clients (two processes).
type workload struct {
	caches []*runtime.Cache

	mu  sync.Mutex
	db  [rows][]version // every version of each row, the last is current
	ack [rows]atomic.Int64

	reads, writes, readErrs, staleAcked, invFailures atomic.Int64
	latMu                                            sync.Mutex
	lat                                              []time.Duration
	window                                           atomic.Int64 // longest time a read lagged behind the database, ns
}

func newWorkload(caches ...*runtime.Cache) *workload {
	w := &workload{caches: caches}
	for r := range rows {
		w.db[r] = []version{{0, time.Now()}}
	}
	return w
}

func key(r int) string { return fmt.Sprint("row:", r) }

func (w *workload) current(r int) version {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.db[r][len(w.db[r])-1]
}

// firstAfter is when the database got the first version after v.
func (w *workload) firstAfter(r, v int) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.db[r][v+1].at
}

func (w *workload) load(r int) func(context.Context) (int, error) {
	return func(context.Context) (int, error) {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) // the database's latency
		return w.current(r).v, nil
	}
}

func (w *workload) write(ctx context.Context) {
	w.writeRow(ctx, w.caches[rand.IntN(len(w.caches))], rand.IntN(rows))
}

func (w *workload) writeRow(ctx context.Context, c *runtime.Cache, r int) {
	w.mu.Lock()
	v := len(w.db[r])
	w.db[r] = append(w.db[r], version{v, time.Now()})
	w.mu.Unlock()
	w.writes.Add(1)
	// By tag alone: what a lost tag set leaves stale shows.
	if err := c.InvalidateTags(ctx, key(r)); err != nil {
		w.invFailures.Add(1) // retried in the background; not acknowledged
		return
	}
	for {
		old := w.ack[r].Load()
		if int64(v) <= old || w.ack[r].CompareAndSwap(old, int64(v)) {
			return
		}
	}
}

func (w *workload) read(ctx context.Context) {
	c := w.caches[rand.IntN(len(w.caches))]
	r := rand.IntN(rows)
	acked := w.ack[r].Load()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	v, err := runtime.GetCached(ctx, c, key(r), w.load(r), runtime.TTL(time.Minute), runtime.Tags(key(r)))
	d := time.Since(start)
	w.reads.Add(1)
	w.latMu.Lock()
	w.lat = append(w.lat, d)
	w.latMu.Unlock()
	if err != nil {
		w.readErrs.Add(1)
		return
	}
	if int64(v) < acked {
		w.staleAcked.Add(1)
	}
	if cur := w.current(r); v < cur.v {
		if lag := start.Sub(w.firstAfter(r, v)); lag > time.Duration(w.window.Load()) {
			w.window.Store(int64(lag))
		}
	}
}

// run drives writers and readers until ctx ends.
func (w *workload) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				w.write(context.WithoutCancel(ctx))
				time.Sleep(2 * time.Millisecond) // the pace of the load, not a synchronisation
			}
		}()
	}
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				w.read(context.WithoutCancel(ctx))
			}
		}()
	}
	wg.Wait()
}

// quiesce waits for the caches' background work (retries included), then
// counts the rows whose cached value differs from the database.
func (w *workload) quiesce(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, c := range w.caches {
		if err := c.Wait(ctx); err != nil {
			t.Errorf("background work did not finish: %v", err)
		}
	}
	mismatches := 0
	for _, c := range w.caches {
		for r := range rows {
			v, err := runtime.GetCached(ctx, c, key(r), func(context.Context) (int, error) { return -1, nil },
				runtime.TTL(time.Minute), runtime.Tags(key(r)))
			if err != nil || (v != -1 && v != w.current(r).v) {
				mismatches++
				t.Errorf("after quiescence row %d: cached %d (%v), database %d", r, v, err, w.current(r).v)
			}
		}
	}
	return mismatches
}

// breakerFailures is the runtime's breaker threshold: the consecutive
// connection failures after which a Cache stops trying Redis.
const breakerFailures = 3

// slowReads counts the reads that took at least d.
func (w *workload) slowReads(d time.Duration) int {
	w.latMu.Lock()
	defer w.latMu.Unlock()
	n := 0
	for _, l := range w.lat {
		if l >= d {
			n++
		}
	}
	return n
}

type figures struct {
	scenario              string
	reads, writes         int64
	readErrs, staleAcked  int64
	invFailures           int64
	p50, p99              time.Duration
	window, recovery      time.Duration
	mismatches            int
	windowBound, recBound time.Duration
}

var (
	tableMu sync.Mutex
	table   []figures
)

func (w *workload) figures(name string, recovery time.Duration, mismatches int) figures {
	w.latMu.Lock()
	lat := slices.Clone(w.lat)
	w.latMu.Unlock()
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	return figures{scenario: name, reads: w.reads.Load(), writes: w.writes.Load(), readErrs: w.readErrs.Load(),
		staleAcked: w.staleAcked.Load(), invFailures: w.invFailures.Load(), p50: q(0.5), p99: q(0.99),
		window: time.Duration(w.window.Load()), recovery: recovery, mismatches: mismatches}
}

// check asserts a scenario's figures and records them for the table.
func check(t *testing.T, f figures) {
	t.Helper()
	t.Logf("%s: %d reads, %d writes, %d read errors, %d stale after an acknowledged invalidation, %d failed invalidations, p50 %v, p99 %v, stale window %v (bound %v), recovery %v (bound %v), %d mismatches after quiescence",
		f.scenario, f.reads, f.writes, f.readErrs, f.staleAcked, f.invFailures, f.p50, f.p99, f.window, f.windowBound, f.recovery, f.recBound, f.mismatches)
	if f.readErrs != 0 {
		t.Errorf("%d errors reached readers: reads must fail open", f.readErrs)
	}
	if f.staleAcked != 0 {
		t.Errorf("%d reads older than an invalidation that had returned nil", f.staleAcked)
	}
	if f.mismatches != 0 {
		t.Errorf("%d cached values differ from the database after quiescence", f.mismatches)
	}
	if f.window > f.windowBound {
		t.Errorf("stale window %v, bound %v", f.window, f.windowBound)
	}
	if f.recovery > f.recBound {
		t.Errorf("recovery %v, bound %v", f.recovery, f.recBound)
	}
	tableMu.Lock()
	table = append(table, f)
	tableMu.Unlock()
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newCaches builds n caches, each on its own client from runtime.NewClient
// (the production defaults), in one namespace.
func newCaches(t *testing.T, url, ns string, n int, opts ...runtime.Option) []*runtime.Cache {
	t.Helper()
	var out []*runtime.Cache
	for range n {
		cl, err := runtime.NewClient(url, runtime.WithClientLogger(quiet()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close() })
		out = append(out, runtime.New(cl, append([]runtime.Option{runtime.WithNamespace(ns), runtime.WithLogger(quiet())}, opts...)...))
	}
	return out
}

// recovered waits until a Set through every cache succeeds for every row
// (so on every master), and returns how long that took from since.
func recovered(t *testing.T, caches []*runtime.Cache, since time.Time, bound time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(bound + 5*time.Second)
	for {
		ok := true
		for _, c := range caches {
			for r := range rows {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				err := runtime.Set(ctx, c, "probe:"+key(r), 1, runtime.TTL(time.Minute))
				cancel()
				ok = ok && err == nil
			}
		}
		if ok {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered %v after the fault", time.Since(since))
		}
		time.Sleep(10 * time.Millisecond) // polling servers that give no signal
	}
}

func inject(t *testing.T, w *workload, before, after time.Duration, fault func() time.Time) time.Time {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	time.Sleep(before) // let the load run before the fault
	healed := fault()
	time.Sleep(after) // and after it
	cancel()
	<-done
	return healed
}

// killAndFailOver runs the workload while tp's first master is killed and
// another node takes over, and returns when the kill happened.
func killAndFailOver(t *testing.T, tp *redistest.Topology, w *workload) time.Time {
	t.Helper()
	var killed time.Time
	inject(t, w, 300*time.Millisecond, 500*time.Millisecond, func() time.Time {
		m := tp.Master(0)
		killed = time.Now()
		if err := m.Kill(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := tp.WaitFailover(ctx, m); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	})
	return killed
}

func hits(caches []*runtime.Cache) int64 {
	var n int64
	for _, c := range caches {
		s, _ := c.Stats(context.Background())
		n += s.Hits
	}
	return n
}

func addrs(tp *redistest.Topology) string {
	var a []string
	for _, n := range tp.Nodes() {
		a = append(a, n.Addr)
	}
	return strings.Join(a, ",")
}

func TestFaults(t *testing.T) {
	t.Run("replies delayed past the timeout", func(t *testing.T) {
		b := redistest.Standalone(t)
		b.RequireReal(t)
		p, err := faultproxy.Start(b.Addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		caches := newCaches(t, "redis://"+p.Addr()+"/0?read_timeout=100ms", b.Namespace, 2)
		w := newWorkload(caches...)
		healed := inject(t, w, 200*time.Millisecond, 200*time.Millisecond, func() time.Time {
			for range 20 { // a reply late past the read timeout every 50 ms for a second
				p.DelayNext(1, 150*time.Millisecond)
				time.Sleep(50 * time.Millisecond)
			}
			return time.Now()
		})
		f := w.figures("replies delayed 150 ms past a 100 ms timeout, 20 times in 1 s (standalone)", recovered(t, caches, healed, time.Second), w.quiesce(t))
		f.windowBound, f.recBound = 2*time.Second, time.Second
		check(t, f)
	})

	// Redis refusing connections, then hung (it accepts, never answers):
	// once the breaker has opened, a read costs the loader and nothing
	// more, so the p99 stays within 5 ms of the loader's (0.3 ms).
	for _, fault := range []struct {
		name        string
		start, heal func(p *faultproxy.Proxy)
	}{
		{"Redis refusing connections for 1 s (standalone)", func(p *faultproxy.Proxy) { p.Refuse(true, true) }, func(p *faultproxy.Proxy) { p.Refuse(false, false) }},
		{"Redis hung for 1 s: replies held (standalone)", func(p *faultproxy.Proxy) { p.Hold() }, func(p *faultproxy.Proxy) { p.Release() }},
	} {
		t.Run(fault.name, func(t *testing.T) {
			b := redistest.Standalone(t)
			b.RequireReal(t)
			p, err := faultproxy.Start(b.Addrs[0])
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			caches := newCaches(t, "redis://"+p.Addr()+"/0?read_timeout=100ms", b.Namespace, 2)
			w := newWorkload(caches...)
			healed := inject(t, w, 200*time.Millisecond, 300*time.Millisecond, func() time.Time {
				fault.start(p)
				time.Sleep(time.Second) // the outage
				fault.heal(p)
				return time.Now()
			})
			f := w.figures(fault.name, recovered(t, caches, healed, time.Second), w.quiesce(t))
			// The outage, then the retry's backoff (500 ms at most) and
			// slack for a loaded machine.
			f.windowBound, f.recBound = 3*time.Second, time.Second
			// Wall time varies with the machine's load (the p99 is a
			// figure for the table, not an assertion). What must hold is
			// a count: only the reads made before a cache knew Redis was
			// failing (three failures per cache, for each of six readers
			// in flight) wait for a timeout; every later one goes
			// straight to the loader.
			slow := w.slowReads(90 * time.Millisecond)
			t.Logf("%d of %d reads waited 90 ms or more", slow, w.reads.Load())
			if slow > 2*(breakerFailures+6) {
				t.Errorf("%d reads waited for Redis's timeout; want only those before the breaker opened (at most %d)", slow, 2*(breakerFailures+6))
			}
			check(t, f)
		})
	}

	t.Run("master killed, replica takes over", func(t *testing.T) {
		tp := redistest.ReplicatedCluster(t)
		caches := newCaches(t, "redis+cluster://"+addrs(tp), tp.Namespace, 2)
		w := newWorkload(caches...)
		killed := killAndFailOver(t, tp, w)
		rec := recovered(t, caches, killed, 6*time.Second)
		f := w.figures("cluster master SIGKILL, failover to its replica (3+3 nodes)", rec, w.quiesce(t))
		f.windowBound, f.recBound = 8*time.Second, 6*time.Second
		check(t, f)
	})

	t.Run("master killed, no replica takes over", func(t *testing.T) {
		tp := redistest.ReplicatedCluster(t)
		ctx := context.Background()
		// A cache cluster should keep serving the slots it still has:
		// Redis's default (cluster-require-full-coverage yes) refuses
		// every command while any slot is uncovered.
		for _, n := range tp.Nodes() {
			if err := n.Client().ConfigSet(ctx, "cluster-require-full-coverage", "no").Err(); err != nil {
				t.Fatal(err)
			}
		}
		m := tp.Master(0)
		if err := tp.ReplicaOf(m).Client().ConfigSet(ctx, "cluster-replica-no-failover", "yes").Err(); err != nil {
			t.Fatal(err)
		}
		caches := newCaches(t, "redis+cluster://"+addrs(tp), tp.Namespace, 2)
		w := newWorkload(caches...)
		var hitsDuring int64
		var restarted time.Time
		inject(t, w, 300*time.Millisecond, 300*time.Millisecond, func() time.Time {
			if err := m.Kill(); err != nil {
				t.Fatal(err)
			}
			before := hits(caches)
			time.Sleep(2 * time.Second) // the outage: longer than the node timeout
			hitsDuring = hits(caches) - before
			if err := m.Restart(false); err != nil { // killed: it comes back empty
				t.Fatal(err)
			}
			restarted = time.Now()
			return restarted
		})
		rec := recovered(t, caches, restarted, 3*time.Second)
		f := w.figures("cluster master SIGKILL, no failover, cluster-require-full-coverage no", rec, w.quiesce(t))
		f.windowBound, f.recBound = 5*time.Second, 3*time.Second
		t.Logf("%d hits on the other masters during the 2 s outage", hitsDuring)
		if hitsDuring == 0 {
			t.Error("no hits while one master of three was down: the whole cluster failed")
		}
		check(t, f)
	})

	t.Run("master stopped and continued", func(t *testing.T) {
		tp := redistest.ReplicatedCluster(t)
		caches := newCaches(t, "redis+cluster://"+addrs(tp), tp.Namespace, 2)
		w := newWorkload(caches...)
		healed := inject(t, w, 300*time.Millisecond, 300*time.Millisecond, func() time.Time {
			m := tp.Master(1)
			if err := m.Stop(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(700 * time.Millisecond) // the stall, shorter than the node timeout: no failover
			if err := m.Cont(); err != nil {
				t.Fatal(err)
			}
			return time.Now()
		})
		f := w.figures("cluster master SIGSTOP 700 ms, then SIGCONT", recovered(t, caches, healed, time.Second), w.quiesce(t))
		f.windowBound, f.recBound = 3*time.Second, time.Second
		check(t, f)
	})

	t.Run("master restarted empty", func(t *testing.T) {
		tp := redistest.ReplicatedCluster(t)
		caches := newCaches(t, "redis+cluster://"+addrs(tp), tp.Namespace, 2)
		w := newWorkload(caches...)
		var restarted time.Time
		inject(t, w, 400*time.Millisecond, 1500*time.Millisecond, func() time.Time {
			m := tp.Master(2)
			// Its replica must not take over: the master comes back empty
			// and the replica then copies the empty master.
			if err := tp.ReplicaOf(m).Client().ConfigSet(context.Background(), "cluster-replica-no-failover", "yes").Err(); err != nil {
				t.Fatal(err)
			}
			if err := m.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := m.Restart(true); err != nil { // back within the node timeout: no failover, its data gone
				t.Fatal(err)
			}
			restarted = time.Now()
			return restarted
		})
		rec := recovered(t, caches, restarted, 3*time.Second)
		// Every row written once more: a row whose cached value was
		// listed only in a tag set that the restart lost stays stale
		// unless the cache noticed the restart.
		for r := range rows {
			w.writeRow(context.Background(), caches[0], r)
		}
		f := w.figures("cluster master SIGKILL and restart empty, no failover", rec, w.quiesce(t))
		f.windowBound, f.recBound = 3*time.Second, 3*time.Second
		var restarts int64
		for _, c := range caches {
			s, _ := c.Stats(context.Background())
			restarts += s.MasterRestarts
		}
		if restarts == 0 {
			t.Error("no cache noticed the master that came back empty")
		}
		check(t, f)
	})

	t.Run("sentinel failover", func(t *testing.T) {
		tp := redistest.Sentinel(t)
		var sent []string
		for _, s := range tp.Sentinels() {
			sent = append(sent, s.Addr)
		}
		caches := newCaches(t, "redis+sentinel://"+strings.Join(sent, ",")+"/"+tp.MasterName, tp.Namespace, 2)
		w := newWorkload(caches...)
		killed := killAndFailOver(t, tp, w)
		rec := recovered(t, caches, killed, 6*time.Second)
		f := w.figures("Sentinel primary SIGKILL, failover to the replica", rec, w.quiesce(t))
		f.windowBound, f.recBound = 8*time.Second, 6*time.Second
		check(t, f)
	})

	writeTable(t)
}

func writeTable(t *testing.T) {
	path := os.Getenv("FAULTS_TABLE")
	if path == "" {
		return
	}
	var sb strings.Builder
	sb.WriteString("# Fault suite figures\n\nWritten by `make faults-table` (`internal/faults`, on this machine: 2 cores, redis-server 7.0, loopback). ")
	sb.WriteString("Each scenario runs 2 writers and 6 readers over two caches with their own clients from `runtime.NewClient`. ")
	sb.WriteString("A read is stale after an acknowledged invalidation if it returns a version older than one whose invalidation had returned nil when the read began (must be 0). ")
	sb.WriteString("The stale window is the longest time a read lagged behind the database, which a failed invalidation allows until its background retry lands.\n\n")
	sb.WriteString("| scenario | reads / writes | errors to readers | p50 / p99 read | stale after ack | failed invalidations | stale window (bound) | recovery (bound) | mismatches after quiescence |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, f := range table {
		fmt.Fprintf(&sb, "| %s | %d / %d | %d | %v / %v | %d | %d | %v (%v) | %v (%v) | %d |\n", f.scenario, f.reads, f.writes, f.readErrs,
			f.p50.Round(time.Microsecond), f.p99.Round(time.Microsecond), f.staleAcked, f.invFailures,
			f.window.Round(time.Millisecond), f.windowBound, f.recovery.Round(time.Millisecond), f.recBound, f.mismatches)
	}
	if len(evictionTable) > 0 {
		sb.WriteString("\n## Eviction\n\n4 000 entries, each tagged with its own tag and one of 40 group tags, written into a server with `maxmemory 2mb` (`TestEvictionLeavesStaleEntries`). Entries left after invalidating every tag were reachable by no tag set: each is a stale read until its TTL.\n\n")
		sb.WriteString("| policy | keys evicted | left after every group tag | left after every item tag too | flagged in Stats |\n| --- | --- | --- | --- | --- |\n")
		for _, f := range evictionTable {
			fmt.Fprintf(&sb, "| %s | %d | %d | %d | %v |\n", f.policy, f.evicted, f.staleGroup, f.staleItems, f.flagged)
		}
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
