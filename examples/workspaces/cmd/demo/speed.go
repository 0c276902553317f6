package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/repocache/repocache/examples/workspaces"
	"github.com/repocache/repocache/runtime"
)

// speedRounds is how many times each side of the comparison is timed; the
// report gives the median.
const speedRounds = 7

// speed is the comparison of the same reads through the cache and straight
// from the database.
type speed struct {
	reads          int           // reads per round
	cached, direct time.Duration // the median round of each
	hits, loads    int           // what the cache did in its rounds
}

// perRead returns the median round's time for one read.
func (s speed) perRead(d time.Duration) time.Duration { return d / time.Duration(s.reads) }

// reads returns the reads the comparison times: each of the script's kinds
// of read, on both workspaces, twice.
func reads(ids seeded) []func(context.Context, workspaces.Repository) error {
	p2, p3 := ids.projects[1], ids.projects[2]
	var rs []func(context.Context, workspaces.Repository) error
	for _, ws := range ids.ws {
		rs = append(rs,
			func(ctx context.Context, r workspaces.Repository) error {
				_, err := r.FindWorkspace(ctx, ws)
				return err
			},
			func(ctx context.Context, r workspaces.Repository) error { _, err := r.ListMembers(ctx, ws); return err },
			func(ctx context.Context, r workspaces.Repository) error {
				_, err := r.ListProjects(ctx, ws)
				return err
			},
		)
	}
	rs = append(rs,
		func(ctx context.Context, r workspaces.Repository) error { _, err := r.FindProject(ctx, p2); return err },
		func(ctx context.Context, r workspaces.Repository) error { _, err := r.FindProject(ctx, p3); return err },
		func(ctx context.Context, r workspaces.Repository) error {
			_, err := r.FindProjects(ctx, []int64{p2, p3})
			return err
		},
		func(ctx context.Context, r workspaces.Repository) error {
			_, err := r.FindProjects(ctx, []int64{p3, p2})
			return err
		},
	)
	return append(rs, rs...)
}

// compare times the same reads through the cache (after one pass that
// fills it) and straight from the store the cache wraps, speedRounds times
// each, alternating, and returns the medians.
func compare(ctx context.Context, cached *workspaces.RepositoryCache, direct *workspaces.Store, cache *runtime.Cache, rec *events, ids seeded) (speed, error) {
	rs := reads(ids)
	timeRound := func(r workspaces.Repository) (time.Duration, error) {
		start := time.Now()
		for _, read := range rs {
			if err := read(ctx, r); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	if _, err := timeRound(cached); err != nil { // fills the cache
		return speed{}, err
	}
	if err := cache.Wait(ctx); err != nil { // every store has landed
		return speed{}, err
	}
	rec.take()
	s := speed{reads: len(rs)}
	var c, d []time.Duration
	for range speedRounds {
		took, err := timeRound(cached)
		if err != nil {
			return s, err
		}
		c = append(c, took)
		for _, e := range rec.take() {
			switch e.Op {
			case runtime.OpHit:
				s.hits++
			case runtime.OpLoad:
				s.loads++
			}
		}
		if took, err = timeRound(direct); err != nil {
			return s, err
		}
		d = append(d, took)
	}
	s.cached, s.direct = median(c), median(d)
	return s, nil
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// String is the report's line, e.g. "same 20 reads, median of 7 rounds:
// 1.2ms through the cache (all hits), 2.5ms straight from the database,
// 2.1x faster".
func (s speed) String() string {
	ratio := float64(s.direct) / float64(s.cached)
	verdict := "faster"
	if ratio < 1 {
		verdict = "slower through the cache"
	}
	note := "all hits"
	if s.loads > 0 {
		note = fmt.Sprintf("%d hits and %d loads in %d rounds", s.hits, s.loads, speedRounds)
	}
	return fmt.Sprintf("same %d reads, median of %d rounds: %s through the cache (%s), %s straight from the database, %.1fx %s",
		s.reads, speedRounds, s.cached.Round(time.Microsecond), note, s.direct.Round(time.Microsecond), ratio, verdict)
}
