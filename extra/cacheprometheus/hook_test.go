package cacheprometheus_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/repocache/repocache/extra/cacheprometheus"
	"github.com/repocache/repocache/runtime"
)

// TestMethodLabelIsBounded: past WithMaxMethods distinct methods, events are
// counted under "other", in every namespace; a call with no method is
// "unknown", which counts as one of them.
func TestMethodLabelIsBounded(t *testing.T) {
	col := cacheprometheus.New(cacheprometheus.WithMaxMethods(3))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	a, b := col.Metrics("a"), col.Metrics("b")
	if col.Metrics("a") != a {
		t.Error("Metrics of one namespace returned two hooks")
	}
	hit := func(m runtime.Metrics, method string) { m.Observe(runtime.Event{Op: runtime.OpHit, Method: method}) }
	hit(a, "M1")
	hit(a, "")
	hit(b, "M2")
	for i := range 50 {
		hit(a, "id:"+strconv.Itoa(i)) // a caller passing ids as methods
	}
	hit(b, "M1") // labelled in namespace a: labelled in b too
	hit(b, "M1")
	hit(a, "") // still "unknown"

	got := scrape(t, reg)
	hits := func(ns, method string) string {
		return key("repocache_hits_total", "namespace", ns, "method", method)
	}
	want := map[string]float64{
		hits("a", "M1"): 1, hits("a", "unknown"): 2, hits("a", "other"): 50,
		hits("b", "M2"): 1, hits("b", "M1"): 2,
	}
	n := 0
	for k, v := range got {
		if k[:len("repocache_hits_total")] != "repocache_hits_total" {
			continue
		}
		n++
		if want[k] != v {
			t.Errorf("%s = %v, want %v", k, v, want[k])
		}
	}
	if n != len(want) {
		t.Errorf("%d hits series, want %d: %v", n, len(want), got)
	}
}

// TestEventMapping: each kind of event feeds its family; bypass and
// unrendered events take their method from Key; an L1 hit is also a hit.
func TestEventMapping(t *testing.T) {
	col := cacheprometheus.New(cacheprometheus.WithBuckets(time.Millisecond, 0, time.Second, time.Millisecond))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	m := col.Metrics("ns")
	boom := errors.New("boom")
	for _, e := range []runtime.Event{
		{Op: runtime.OpHit, Method: "M", Duration: 500 * time.Microsecond},
		{Op: runtime.OpHit, Method: "M", L1: true, Duration: 2 * time.Millisecond},
		{Op: runtime.OpHit, Method: "M", Duration: 2 * time.Second},
		{Op: runtime.OpError, Key: "k", Err: boom},
		{Op: runtime.OpInvalidateError, Method: "W", Key: "t", Tag: true, Err: boom},
		{Op: runtime.OpStaleSetPrevented, Key: "k"},
		{Op: runtime.OpBypass, Key: "Repo.Find", Method: "Repo.Find", Err: boom},
		{Op: runtime.OpUnrendered, Key: "Repo.Save", Method: "Repo.Save", Err: boom},
		{Op: runtime.Op(200), Method: "M"}, // a future kind: ignored
	} {
		m.Observe(e)
	}
	got := scrape(t, reg)
	s := func(name, method string) string {
		return key("repocache_"+name, "namespace", "ns", "method", method)
	}
	for k, v := range map[string]float64{
		s("hits_total", "M"): 3, s("l1_hits_total", "M"): 1, s("misses_total", "M"): 0,
		s("hit_duration_seconds_count", "M"): 3, s("hit_duration_seconds_sum", "M"): 2.0025,
		s("redis_errors_total", "unknown"):         1,
		s("invalidation_failures_total", "W"):      1,
		s("invalidated_keys_total", "W"):           0,
		s("stale_sets_prevented_total", "unknown"): 1,
		s("bypasses_total", "Repo.Find"):           1,
		s("unrendered_total", "Repo.Save"):         1,
	} {
		if g, ok := got[k]; !ok || g != v { // a 0 must be exported, not absent
			t.Errorf("%s = %v (exported: %v), want %v", k, g, ok, v)
		}
	}
	// Buckets: 1ms and 1s (WithBuckets sorts, deduplicates, drops 0).
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "repocache_hit_duration_seconds" {
			continue
		}
		var bounds []float64
		var counts []uint64
		for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
			counts = append(counts, b.GetCumulativeCount())
		}
		if len(bounds) != 2 || bounds[0] != 0.001 || bounds[1] != 1 || counts[0] != 1 || counts[1] != 2 {
			t.Errorf("buckets %v with cumulative counts %v, want [0.001 1] and [1 2]", bounds, counts)
		}
	}
}

// TestConcurrentObserveAndScrape: events from many goroutines, with new
// methods appearing while scrapes run, all end up counted (run with -race).
func TestConcurrentObserveAndScrape(t *testing.T) {
	col := cacheprometheus.New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	const workers, events = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	scrapes := make(chan struct{})
	go func() {
		defer close(scrapes)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := col.Metrics("ns" + strconv.Itoa(w%2))
			for i := range events {
				m.Observe(runtime.Event{Op: runtime.OpHit, Method: "M" + strconv.Itoa(i%10), Duration: time.Duration(i) * time.Microsecond})
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-scrapes
	got := scrape(t, reg)
	var total float64
	for k, v := range got {
		if len(k) > len("repocache_hits_total{") && k[:len("repocache_hits_total{")] == "repocache_hits_total{" {
			total += v
		}
	}
	if total != workers*events {
		t.Errorf("%v hits counted, want %d", total, workers*events)
	}
}

// TestDefaultBuckets: 10µs to 10s.
func TestDefaultBuckets(t *testing.T) {
	b := cacheprometheus.DefaultBuckets()
	if b[0] != 10*time.Microsecond || b[len(b)-1] != 10*time.Second {
		t.Errorf("DefaultBuckets %v: want 10µs to 10s", b)
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Errorf("DefaultBuckets not increasing: %v", b)
		}
	}
}
