package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/orm"
)

// request is what the report knows of one API request: its route decides
// how its cache events read (see lines).
type request struct {
	method, path string // path without the query
}

// batch reports a GET /projects?ids=...: FindProjects, a runtime.GetBatch,
// whose hits and misses all come from one MGET before any load.
func (r request) batch() bool { return r.method == "GET" && r.path == "/projects" }

// keysFirst reports a DELETE /workspaces/{id}/projects/{pid}: DeleteProject,
// whose directive (repo.go) is keys=project:{id} tags=..., and
// runtime.AfterWrite deletes the keys (one OpInvalidate) before it drops the
// tags (one each). runtime.Event does not say whether its Key is a key or a
// tag; every other route of this API invalidates tags only.
func (r request) keysFirst() bool {
	return r.method == "DELETE" && strings.Contains(r.path, "/projects/")
}

// lines turns the cache events of one request into report lines, one per
// operation: a hit, a miss, a load from the database, the values stored
// (consecutive stores on one line), a key or tag dropped. A batch's
// hits and misses are one line, its MGET, and its load one line naming the
// keys it loaded.
func lines(r request, evs []runtime.Event) []string {
	var out []string
	add := func(op, subject string, d time.Duration, note string) {
		l := fmt.Sprintf("%-8s %-36s", op, subject)
		if d > 0 {
			l += fmt.Sprintf(" %8s", d.Round(time.Microsecond))
		}
		if note != "" {
			l += "  " + note
		}
		out = append(out, strings.TrimRight(l, " "))
	}
	var missed []string // the keys of the batch's MGET that missed
	if r.batch() {
		var all, hit []string
		var took time.Duration
		n := 0
		for ; n < len(evs) && (evs[n].Op == runtime.OpHit || evs[n].Op == runtime.OpMiss); n++ {
			e := evs[n]
			all = append(all, e.Key)
			if e.Op == runtime.OpHit {
				hit = append(hit, e.Key)
			} else {
				missed = append(missed, e.Key)
			}
			// Each event's Duration runs from the start of the MGET: the
			// last is the round trip and the decoding of every value.
			took = max(took, e.Duration)
		}
		if n > 0 {
			note := "hit: " + strings.Join(hit, " ")
			switch len(hit) {
			case 0:
				note = "hit: none"
			case len(all):
				note = fmt.Sprintf("hit: all %d", len(all))
			}
			add("mget", strings.Join(all, " "), took, note)
			evs = evs[n:]
		}
	}
	invalidations := 0
	for i := 0; i < len(evs); i++ {
		e := evs[i]
		switch e.Op {
		case runtime.OpHit:
			add("hit", e.Key, e.Duration, "")
		case runtime.OpMiss:
			add("miss", e.Key, e.Duration, "")
		case runtime.OpLoad:
			subject, note := e.Key, ""
			if r.batch() && len(missed) > 0 {
				// GetBatch loads the ids that missed, in one call.
				subject, note = strings.Join(missed, " "), "one query"
			}
			switch {
			case errors.Is(e.Err, orm.ErrNotFound):
				note = "not found"
			case e.Err != nil:
				note = "failed: " + e.Err.Error()
			}
			add("db load", subject, e.Duration, note)
		case runtime.OpSet:
			keys := []string{e.Key}
			for i+1 < len(evs) && evs[i+1].Op == runtime.OpSet {
				i++
				keys = append(keys, evs[i].Key)
			}
			add("stored", strings.Join(keys, " "), 0, "")
		case runtime.OpInvalidate:
			invalidations++
			switch {
			case r.keysFirst() && invalidations == 1 && e.Count > 0:
				add("dropped", e.Key+" (the key)", 0, "")
			case r.keysFirst() && invalidations == 1:
				add("dropped", "nothing: the key "+e.Key+" was not cached", 0, "")
			case e.Count > 0:
				// Which keys carried the tag, runtime.Event does not say.
				add("dropped", plural(e.Count, "key")+" by tag "+e.Key, 0, "")
			default:
				add("dropped", "nothing by tag "+e.Key+" (no cached key carried it)", 0, "")
			}
		case runtime.OpStale:
			add("stale", e.Key, 0, "(served while a refresh runs)")
		case runtime.OpStaleSetPrevented:
			add("not set", e.Key, 0, "(invalidated while it loaded)")
		case runtime.OpError, runtime.OpDecodeError, runtime.OpEncodeError, runtime.OpBypass,
			runtime.OpInvalidateError, runtime.OpUnrendered:
			add(e.Op.String(), e.Key, 0, fmt.Sprint(e.Err))
		}
	}
	return out
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
