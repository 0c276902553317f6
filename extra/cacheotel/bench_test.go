package cacheotel_test

import (
	"testing"

	"github.com/repocache/repocache/internal/cachemetrics/cachemetricstest"
)

// BenchmarkHit measures what the Recorder adds to a hit (on the OTel SDK,
// with a manual reader and a span recorder; no hit spans, the default):
// GetCachedWith hits of one key through two Caches on the same client and
// namespace, one with no metrics hook, one with the Recorder's, in the same
// run. observe is the hook alone, on a hit event.
//
//	go test -run='^$' -bench='^BenchmarkHit$' -benchtime=20000x -count=10 .
func BenchmarkHit(b *testing.B) {
	k := newKit(b)
	h := cachemetricstest.NewHit(b, k.rec.Metrics)
	b.Run("impl=no-hook", func(b *testing.B) { h.Run(b, h.Plain) })
	b.Run("impl=recorder", func(b *testing.B) { h.Run(b, h.Hooked) })
	b.Run("impl=observe", h.Observe)
}
