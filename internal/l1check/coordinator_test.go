package l1check_test

import (
	"encoding/gob"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/repocache/repocache/runtime"
)

// The protocol between the parent and its children, over loopback HTTP
// served by the parent:
//
//	GET  /rows/{r}         the row's version (a child's loader)
//	POST /rows/{r}         a write: the row's next version, returned
//	POST /barrier/{name}   returns once every child has called it
//	POST /report/{proc}    a child's records, gob-encoded
//
// The barriers line the children's phases up: "ready" (every near cache
// is watched), then the workload, then "quiet" (every writer stopped and
// every Cache's background work done), then the check after quiescence.

// ack is a write whose invalidation returned nil.
type ack struct {
	Row     int
	Version int64
	At      int64 // when InvalidateTags returned, on the shared clock
}

// read is one GetCached through a child's Cache.
type read struct {
	Row     int
	Version int64
	Start   int64 // when GetCached was called, on the shared clock
	// Memory reports a read served from the near cache (an OpHit with L1
	// set for its key was observed while it ran).
	Memory bool
}

// report is what a child sends the parent when it is done.
type report struct {
	Proc  int
	Acks  []ack
	Reads []read
	// FailedWrites counts invalidations that returned an error: retried in
	// the background, never acknowledged.
	FailedWrites int
	// ReadErrors counts GetCached errors (reads fail open: must be 0).
	ReadErrors int
	// Settle is the longest any row took, after quiescence, to read
	// through this Cache as the database's value; Mismatches the rows that
	// never did.
	Settle     time.Duration
	Mismatches []string
	// Hits (from the near cache or Redis), Misses and Loads are the
	// Cache's counters at the end; L1 its near cache's.
	Hits, Misses, Loads int64
	L1                  runtime.L1Stats
}

// coordinator is the parent's side: the database, the barriers and the
// reports.
type coordinator struct {
	procs int
	// abort is closed when a child failed: the others' barriers return an
	// error instead of waiting for it.
	abort     chan struct{}
	abortOnce sync.Once

	mu       sync.Mutex
	db       [rows]int64
	barriers map[string]chan struct{}
	arrived  map[string]int
	reports  map[int]*report
}

func newCoordinator(procs int) *coordinator {
	return &coordinator{procs: procs, abort: make(chan struct{}),
		barriers: map[string]chan struct{}{}, arrived: map[string]int{}, reports: map[int]*report{}}
}

func (co *coordinator) fail() { co.abortOnce.Do(func() { close(co.abort) }) }

// version returns row r's current version.
func (co *coordinator) version(r int) int64 {
	co.mu.Lock()
	defer co.mu.Unlock()
	return co.db[r]
}

// report returns what process p sent, or nil.
func (co *coordinator) report(p int) *report {
	co.mu.Lock()
	defer co.mu.Unlock()
	return co.reports[p]
}

func (co *coordinator) handler() http.Handler {
	mux := http.NewServeMux()
	row := func(w http.ResponseWriter, req *http.Request) (int, bool) {
		r, err := strconv.Atoi(req.PathValue("r"))
		if err != nil || r < 0 || r >= rows {
			http.Error(w, "no such row", http.StatusNotFound)
			return 0, false
		}
		return r, true
	}
	mux.HandleFunc("GET /rows/{r}", func(w http.ResponseWriter, req *http.Request) {
		if r, ok := row(w, req); ok {
			fmt.Fprint(w, co.version(r))
		}
	})
	mux.HandleFunc("POST /rows/{r}", func(w http.ResponseWriter, req *http.Request) {
		if r, ok := row(w, req); ok {
			co.mu.Lock()
			co.db[r]++
			v := co.db[r]
			co.mu.Unlock()
			fmt.Fprint(w, v)
		}
	})
	mux.HandleFunc("POST /barrier/{name}", func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		co.mu.Lock()
		ch := co.barriers[name]
		if ch == nil {
			ch = make(chan struct{})
			co.barriers[name] = ch
		}
		if co.arrived[name]++; co.arrived[name] == co.procs {
			close(ch)
		}
		co.mu.Unlock()
		select {
		case <-ch:
		case <-co.abort:
			http.Error(w, "another process failed", http.StatusServiceUnavailable)
		case <-req.Context().Done():
		}
	})
	mux.HandleFunc("POST /report/{proc}", func(w http.ResponseWriter, req *http.Request) {
		var rep report
		if err := gob.NewDecoder(req.Body).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		co.mu.Lock()
		co.reports[rep.Proc] = &rep
		co.mu.Unlock()
	})
	return mux
}
