package debughandler

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/repocache/repocache/runtime"
)

// TestHistogramBuckets: buckets tile the durations without gaps, and a
// percentile read back is within 6% of the duration observed.
func TestHistogramBuckets(t *testing.T) {
	prevHi := 0.0
	for i := range numBuckets {
		lo, hi := bucketBounds(i)
		if lo != prevHi || hi <= lo {
			t.Fatalf("bucket %d = [%v, %v), previous ended at %v", i, lo, hi, prevHi)
		}
		prevHi = hi
		if i > 0 && bucketOf(time.Duration(lo)) != i {
			t.Fatalf("bucketOf(%v) = %d, want %d", lo, bucketOf(time.Duration(lo)), i)
		}
	}
	for _, d := range []time.Duration{1, 7, 8, 100, 999, 57 * time.Microsecond, 1234567, 3 * time.Second, 10 * time.Minute} {
		var h histogram
		h.observe(d)
		var b [numBuckets]uint64
		n := h.addTo(&b)
		got := quantiles(&b, n, 0.5)[0]
		if rel := math.Abs(float64(got-d)) / float64(d); rel > 0.0625 {
			t.Errorf("p50 of %v = %v (%.1f%% off)", d, got, 100*rel)
		}
	}
	if bucketOf(-1) != 0 || bucketOf(time.Duration(math.MaxInt64)) != numBuckets-1 {
		t.Error("out-of-range durations are not clamped")
	}
}

// TestQuantiles: p50, p90 and p99 of 1..100 ms.
func TestQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 100; i++ {
		h.observe(time.Duration(i) * time.Millisecond)
	}
	var b [numBuckets]uint64
	n := h.addTo(&b)
	q := quantiles(&b, n, 0.5, 0.9, 0.99)
	for i, want := range []time.Duration{50 * time.Millisecond, 90 * time.Millisecond, 99 * time.Millisecond} {
		if rel := math.Abs(float64(q[i]-want)) / float64(want); rel > 0.0625 {
			t.Errorf("quantile %d = %v, want about %v", i, q[i], want)
		}
	}
}

// TestRequestRate: requests per second over the last minute, on a clock
// the test moves.
func TestRequestRate(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h := New()
	h.now = func() time.Time { return now }
	h.start = now
	rec := h.Metrics()
	hit := runtime.Event{Op: runtime.OpHit, Method: "M"}
	for range 10 { // 10 requests a second for 30 seconds
		for range 10 {
			rec.Observe(hit)
		}
		now = now.Add(time.Second)
	}
	for range 20 {
		for range 10 {
			rec.Observe(runtime.Event{Op: runtime.OpMiss, Method: "M"})
		}
		now = now.Add(time.Second)
	}
	rate := func() float64 { return h.Snapshot(context.Background()).Caches[0].Rows[0].RequestsPerSecond }
	if r := rate(); math.Abs(r-10) > 0.01 {
		t.Errorf("rate after 30s = %v, want 10", r)
	}
	now = now.Add(45 * time.Second) // at 95s: the window holds seconds 36 to 49 of the 50
	if r, want := rate(), 140.0/60; math.Abs(r-want) > 0.01 {
		t.Errorf("rate 45s later = %v, want %v", r, want)
	}
	now = now.Add(time.Hour)
	if r := rate(); r != 0 {
		t.Errorf("rate an hour later = %v, want 0", r)
	}
}

// TestObserveNoAlloc: recording an event of a known row allocates nothing,
// with a method or by key shape.
func TestObserveNoAlloc(t *testing.T) {
	rec := New().Metrics()
	for _, e := range []runtime.Event{
		{Op: runtime.OpHit, Key: "project:1", Method: "Repository.FindProject", Duration: time.Microsecond},
		{Op: runtime.OpHit, Key: "workspace:42:members", Duration: time.Microsecond},
		{Op: runtime.OpLoad, Key: "workspace:42:members", Duration: time.Millisecond},
		{Op: runtime.OpInvalidate, Key: "workspace:42,workspace:43", Count: 2},
		{Op: runtime.OpInvalidate, Key: "workspace:42", Tag: true, Count: 2},
	} {
		rec.Observe(e)
		if n := testing.AllocsPerRun(100, func() { rec.Observe(e) }); n != 0 {
			t.Errorf("Observe(%+v): %v allocations", e, n)
		}
	}
}

// TestKeyShapes: rows of calls that named no method.
func TestKeyShapes(t *testing.T) {
	for _, tc := range []struct {
		e    runtime.Event
		want string
	}{
		{runtime.Event{Op: runtime.OpHit, Key: "workspace:42:members"}, "workspace:{}:members"},
		{runtime.Event{Op: runtime.OpHit, Key: "user:a%3Ab@x.example"}, "user:{}"},
		{runtime.Event{Op: runtime.OpHit, Key: "config"}, "config"},
		{runtime.Event{Op: runtime.OpInvalidate, Key: "project:1,project:2"}, "project:{}"},
		{runtime.Event{Op: runtime.OpInvalidate, Key: "project:7", Tag: true}, "tag project:{}"},
	} {
		if got := shapeOf(tc.e); got != tc.want {
			t.Errorf("shapeOf(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
	rec := New().Metrics()
	a := rec.row(runtime.Event{Op: runtime.OpHit, Key: "w:1:m"})
	if b := rec.row(runtime.Event{Op: runtime.OpHit, Key: "w:2:m"}); a != b {
		t.Error("two keys of one shape have two rows")
	}
	if b := rec.row(runtime.Event{Op: runtime.OpInvalidate, Key: "w:2:m", Tag: true}); a == b {
		t.Error("a tag shares a key's row")
	}
	if b := rec.row(runtime.Event{Op: runtime.OpHit, Key: "w:1:m", Method: "w:{}:m"}); a == b {
		t.Error("a method shares a key shape's row")
	}
}

// TestRowCap: rows past WithMaxRows are counted in "(other)".
func TestRowCap(t *testing.T) {
	h := New(WithMaxRows(2))
	rec := h.Metrics()
	for i := range 5 {
		rec.Observe(runtime.Event{Op: runtime.OpHit, Method: fmt.Sprint("M", i)})
	}
	rows := h.Snapshot(context.Background()).Caches[0].Rows
	if len(rows) != 3 || rows[2].Name != otherRow || rows[2].Hits != 3 {
		t.Errorf("rows = %+v", rows)
	}
}

// TestConcurrentObserve: events recorded from many goroutines while the
// page is read all add up (run with -race).
func TestConcurrentObserve(t *testing.T) {
	h := New()
	rec := h.Metrics()
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = h.Snapshot(context.Background())
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rec.Observe(runtime.Event{Op: runtime.OpHit, Method: fmt.Sprint("M", (w+i)%5), Duration: time.Duration(i) * time.Microsecond})
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	cv := h.Snapshot(context.Background()).Caches[0]
	if cv.Total.Hits != workers*each || cv.Total.HitLatency.Count != workers*each || len(cv.Rows) != 5 {
		t.Errorf("total = %+v, %d rows", cv.Total, len(cv.Rows))
	}
	if r := cv.Total.RequestsPerSecond; r <= 0 {
		t.Errorf("rate = %v", r)
	}
}

// BenchmarkObserve is the cost a recorded event adds to a cache call.
func BenchmarkObserve(b *testing.B) {
	rec := New().Metrics()
	b.Run("method", func(b *testing.B) {
		e := runtime.Event{Op: runtime.OpHit, Key: "project:1", Method: "Repository.FindProject", Duration: 50 * time.Microsecond}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec.Observe(e)
			}
		})
	})
	b.Run("keyshape", func(b *testing.B) {
		e := runtime.Event{Op: runtime.OpHit, Key: "workspace:42:members", Duration: 50 * time.Microsecond}
		b.ReportAllocs()
		for range b.N {
			rec.Observe(e)
		}
	})
}
