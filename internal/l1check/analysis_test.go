package l1check_test

import (
	"cmp"
	"slices"
	"sort"
	"testing"
	"time"
)

// windows is what the records of a run say about staleness.
type windows struct {
	// pairs holds, for every acknowledged write and every other process
	// that read the row after the acknowledgement, the time from the
	// acknowledgement to the start of that process's first read of the row
	// that returned the write's version or a later one, and after which no
	// read of it returned an older one: 0 when that read began before the
	// acknowledgement (Redis's notice reached the process before the
	// writer had its answer). It includes the wait for the process's next
	// read of the row (see gap).
	pairs []time.Duration
	// freshAtAck counts the pairs whose process was fresh before the
	// acknowledgement (their window is 0).
	freshAtAck int
	// staleFor holds, for the same pairs, the time from the
	// acknowledgement to the start of the process's last read that
	// returned an older version (0 when none did): how long it is proved
	// to have stayed stale. The window lies between the two.
	staleFor []time.Duration
	// unresolved counts pairs whose process read the row stale until the
	// end of the run (their staleFor is in pairs too).
	unresolved int
	// staleOther counts reads that began after another process's
	// acknowledged write of the row and returned an older version;
	// staleOwn those that began after their own process's.
	staleOther, staleOwn int
	// staleOtherMemory counts the stale reads in other processes that the
	// near cache served (the rest came from Redis or a load); worstOther
	// is the one that began longest after the acknowledgement.
	staleOtherMemory int
	worstOther       staleRead
	// ownExamples describes a few stale reads in the writing process.
	ownExamples []staleRead
	// gaps are the times between the starts of consecutive reads of a row
	// in one process: the resolution of pairs.
	gaps []time.Duration
}

// staleRead is a read older than an acknowledged write that preceded it.
type staleRead struct {
	proc  int
	ack   ack
	after time.Duration // the read began this long after the acknowledgement
	got   int64
	// memory reports a read served from the near cache.
	memory bool
}

// analyse computes the windows from the children's reports.
func analyse(reps []*report) windows {
	var w windows
	// reads[p][r]: process p's reads of row r by start.
	reads := map[int]*[rows][]read{}
	for _, rep := range reps {
		rs := new([rows][]read)
		for _, rd := range rep.Reads {
			rs[rd.Row] = append(rs[rd.Row], rd)
		}
		for r := range rs {
			slices.SortFunc(rs[r], func(a, b read) int { return cmp.Compare(a.Start, b.Start) })
			for i := 1; i < len(rs[r]); i++ {
				w.gaps = append(w.gaps, time.Duration(rs[r][i].Start-rs[r][i-1].Start))
			}
		}
		reads[rep.Proc] = rs
	}
	for _, rep := range reps {
		for _, a := range rep.Acks {
			for p, rs := range reads {
				list := rs[a.Row]
				i := sort.Search(len(list), func(i int) bool { return list[i].Start >= a.At })
				if i == len(list) {
					continue // the process did not read the row after the acknowledgement
				}
				// The last read older than the write, before the
				// acknowledgement or after it: the window ends at the
				// read after it, or at the acknowledgement when that read
				// began before (the notice often comes first).
				lastOld, lastStale := -1, -1
				for j := range list {
					if list[j].Version < a.Version {
						lastOld = j
						if j >= i {
							lastStale = j
						}
					}
				}
				if p == rep.Proc {
					if lastStale >= 0 && len(w.ownExamples) < 5 {
						w.ownExamples = append(w.ownExamples, staleRead{proc: p, ack: a,
							after: time.Duration(list[lastStale].Start - a.At), got: list[lastStale].Version})
					}
					continue // counted per read below
				}
				stale := time.Duration(0)
				if lastStale >= 0 {
					stale = time.Duration(list[lastStale].Start - a.At)
				}
				w.staleFor = append(w.staleFor, stale)
				switch fresh := lastOld + 1; {
				case fresh == len(list):
					w.unresolved++
					w.pairs = append(w.pairs, stale)
				case list[fresh].Start < a.At:
					w.freshAtAck++
					w.pairs = append(w.pairs, 0)
				default:
					w.pairs = append(w.pairs, time.Duration(list[fresh].Start-a.At))
				}
			}
		}
	}
	w.staleOwn, w.staleOther, w.staleOtherMemory, w.worstOther = countStale(reps, reads)
	return w
}

// countStale counts the reads that began after an acknowledged write of
// their row and returned an older version: own when the write was their
// own process's, other when another's; of those, memory when the near
// cache served them, and the other one that began longest after the first
// acknowledgement it missed.
func countStale(reps []*report, reads map[int]*[rows][]read) (own, other, memory int, worst staleRead) {
	// For each process and row, the acknowledgements by time with the
	// highest version acknowledged so far.
	type mark struct {
		at int64
		v  int64
		a  ack
	}
	marks := func(keep func(proc int) bool) [rows][]mark {
		var ms [rows][]mark
		for _, rep := range reps {
			if !keep(rep.Proc) {
				continue
			}
			for _, a := range rep.Acks {
				ms[a.Row] = append(ms[a.Row], mark{a.At, a.Version, a})
			}
		}
		for r := range ms {
			slices.SortFunc(ms[r], func(a, b mark) int { return cmp.Compare(a.at, b.at) })
			for i := 1; i < len(ms[r]); i++ {
				ms[r][i].v = max(ms[r][i].v, ms[r][i-1].v)
			}
		}
		return ms
	}
	acked := func(ms []mark, at int64) int64 {
		i := sort.Search(len(ms), func(i int) bool { return ms[i].at > at })
		if i == 0 {
			return 0
		}
		return ms[i-1].v
	}
	// missed returns the first acknowledgement of a version above v.
	missed := func(ms []mark, v int64) mark {
		return ms[sort.Search(len(ms), func(i int) bool { return ms[i].v > v })]
	}
	for p, rs := range reads {
		mine := marks(func(q int) bool { return q == p })
		others := marks(func(q int) bool { return q != p })
		for r := range rs {
			for _, rd := range rs[r] {
				if rd.Version < acked(mine[r], rd.Start) {
					own++
				}
				if rd.Version < acked(others[r], rd.Start) {
					other++
					if rd.Memory {
						memory++
					}
					m := missed(others[r], rd.Version)
					if after := time.Duration(rd.Start - m.at); after > worst.after {
						worst = staleRead{proc: p, ack: m.a, after: after, got: rd.Version, memory: rd.Memory}
					}
				}
			}
		}
	}
	return own, other, memory, worst
}

// quantile returns the q-quantile of ds (sorted in place); 0 when empty.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// TestAnalyse checks the figures on records made up by hand.
func TestAnalyse(t *testing.T) {
	reps := []*report{
		{Proc: 0, Acks: []ack{{Row: 0, Version: 1, At: 100}},
			Reads: []read{{Row: 0, Version: 0, Start: 50}, {Row: 0, Version: 0, Start: 115}, {Row: 0, Version: 1, Start: 118}}},
		{Proc: 1, Reads: []read{
			{Row: 0, Version: 0, Start: 90},                // began before the acknowledgement: not stale
			{Row: 0, Version: 0, Start: 105},               // stale
			{Row: 0, Version: 1, Start: 110},               // fresh, but a stale read follows
			{Row: 0, Version: 0, Start: 120, Memory: true}, // stale, from the near cache
			{Row: 0, Version: 1, Start: 130},               // the first fresh read after the last stale one
			{Row: 0, Version: 2, Start: 140},
			{Row: 1, Version: 0, Start: 150}, // another row
		}},
		{Proc: 2, Reads: []read{{Row: 0, Version: 0, Start: 99}}}, // nothing read after the acknowledgement
	}
	w := analyse(reps)
	if len(w.pairs) != 1 || w.pairs[0] != 30 || w.staleFor[0] != 20 || w.unresolved != 0 {
		t.Errorf("pairs %v, stale for %v, unresolved %d; want [30ns], [20ns], 0", w.pairs, w.staleFor, w.unresolved)
	}
	if w.staleOther != 2 || w.staleOwn != 1 || len(w.ownExamples) != 1 {
		t.Errorf("stale reads: %d in other processes, %d in the writing process (%v); want 2 and 1", w.staleOther, w.staleOwn, w.ownExamples)
	}
	if w.staleOtherMemory != 1 || w.worstOther.after != 20 || !w.worstOther.memory || w.worstOther.proc != 1 {
		t.Errorf("stale reads from memory %d, the latest %+v; want 1, and 20ns after the acknowledgement, from memory, in process 1", w.staleOtherMemory, w.worstOther)
	}

	// A process whose reads were fresh before the acknowledgement: 0; one
	// whose last older read came before it, and the next after it.
	reps[2].Reads = []read{{Row: 0, Version: 0, Start: 97}, {Row: 0, Version: 1, Start: 98}, {Row: 0, Version: 1, Start: 104}}
	w = analyse(reps)
	slices.Sort(w.pairs) // by process, in no set order
	if len(w.pairs) != 2 || w.pairs[0] != 0 || w.pairs[1] != 30 || w.freshAtAck != 1 {
		t.Errorf("pairs %v, fresh at the acknowledgement %d; want [0ns 30ns] and 1", w.pairs, w.freshAtAck)
	}
	reps[2].Reads = []read{{Row: 0, Version: 0, Start: 97}, {Row: 0, Version: 1, Start: 104}}
	w = analyse(reps)
	slices.Sort(w.pairs)
	if len(w.pairs) != 2 || w.pairs[0] != 4 || w.pairs[1] != 30 || w.freshAtAck != 0 {
		t.Errorf("pairs %v, fresh at the acknowledgement %d; want [4ns 30ns] and 0", w.pairs, w.freshAtAck)
	}
	// Fresh before the acknowledgement and after it, then an older read:
	// not fresh at the ack; the window ends at the read after the older
	// one.
	reps[2].Reads = []read{{Row: 0, Version: 1, Start: 98}, {Row: 0, Version: 1, Start: 104}, {Row: 0, Version: 0, Start: 108}, {Row: 0, Version: 1, Start: 112}}
	w = analyse(reps)
	slices.Sort(w.pairs)
	if len(w.pairs) != 2 || w.pairs[0] != 12 || w.pairs[1] != 30 || w.freshAtAck != 0 || w.staleOther != 3 {
		t.Errorf("pairs %v, fresh at the acknowledgement %d, stale reads in other processes %d; want [12ns 30ns], 0 and 3", w.pairs, w.freshAtAck, w.staleOther)
	}
	reps[2].Reads = reps[2].Reads[:0]

	// A process that read the row stale until the end of the run.
	reps[1].Reads = reps[1].Reads[:2]
	w = analyse(reps)
	if len(w.pairs) != 1 || w.pairs[0] != 5 || w.unresolved != 1 {
		t.Errorf("pairs %v, unresolved %d; want [5ns] and 1", w.pairs, w.unresolved)
	}
	if q := quantile([]time.Duration{3, 1, 2}, .5); q != 2 {
		t.Errorf("median of 1, 2, 3: %v", q)
	}
}
