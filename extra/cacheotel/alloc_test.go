package cacheotel_test

import (
	"testing"
	"time"

	"github.com/repocache/repocache/runtime"
)

// TestHitAllocatesNothing: recording a hit (no span for hits by default),
// once its series exists, costs no allocation (the claim of
// docs/observability.md).
func TestHitAllocatesNothing(t *testing.T) {
	m := newKit(t).rec.Metrics("ns")
	hit := runtime.Event{Op: runtime.OpHit, Key: "project:7", Method: "Repository.FindProject", Duration: 40 * time.Microsecond}
	m.Observe(hit) // makes the series
	if n := testing.AllocsPerRun(1000, func() { m.Observe(hit) }); n != 0 {
		t.Fatalf("a hit costs %v allocations in the recorder, want 0", n)
	}
}
