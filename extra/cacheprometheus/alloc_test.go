package cacheprometheus_test

import (
	"testing"
	"time"

	"github.com/repocache/repocache/extra/cacheprometheus"
	"github.com/repocache/repocache/runtime"
)

// TestHitAllocatesNothing: recording a hit, once its series exists, costs
// no allocation (the claim of docs/observability.md).
func TestHitAllocatesNothing(t *testing.T) {
	m := cacheprometheus.New().Metrics("ns")
	hit := runtime.Event{Op: runtime.OpHit, Key: "project:7", Method: "Repository.FindProject", Duration: 40 * time.Microsecond}
	m.Observe(hit) // makes the series
	if n := testing.AllocsPerRun(1000, func() { m.Observe(hit) }); n != 0 {
		t.Fatalf("a hit costs %v allocations in the collector, want 0", n)
	}
}
