package cacheprometheus_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/repocache/repocache/extra/cacheprometheus"
	"github.com/repocache/repocache/internal/cachemetrics/cachemetricstest"
	"github.com/repocache/repocache/runtime"
)

// BenchmarkHit measures what the collector adds to a hit: GetCachedWith hits
// of one key through two Caches on the same client and namespace (so the
// same stored value), one with no metrics hook, one with a Collector's,
// in the same run. interleaved alternates the two in blocks and reports the
// CPU time of each; observe is the hook alone, on a hit event.
//
//	go test -run='^$' -bench='^BenchmarkHit$' -benchtime=20000x -count=10 . | tee hit.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl hit.txt
func BenchmarkHit(b *testing.B) {
	col := cacheprometheus.New()
	prometheus.NewRegistry().MustRegister(col)
	h := cachemetricstest.NewHit(b, col.Metrics)
	b.Run("impl=no-hook", func(b *testing.B) { h.Run(b, h.Plain) })
	b.Run("impl=collector", func(b *testing.B) { h.Run(b, h.Hooked) })
	// interleaved alternates blocks of hits without and with the hook, so
	// that a machine whose load drifts during the run weighs on both alike,
	// and reports the CPU time of each and the difference in percent.
	b.Run("impl=interleaved", func(b *testing.B) {
		const block = 500
		var cpu [2]time.Duration
		var n [2]int
		for i := 0; i < b.N; i += block {
			m := (i / block) % 2
			c := []*runtime.Cache{h.Plain, h.Hooked}[m]
			start := cachemetricstest.CPUTime()
			for j := i; j < min(i+block, b.N); j++ {
				if err := h.Get(c); err != nil {
					b.Fatal(err)
				}
				n[m]++
			}
			cpu[m] += cachemetricstest.CPUTime() - start
		}
		if n[0] > 0 && n[1] > 0 {
			plainNs, hookedNs := float64(cpu[0])/float64(n[0]), float64(cpu[1])/float64(n[1])
			b.ReportMetric(plainNs, "no-hook-cpu-ns/op")
			b.ReportMetric(hookedNs, "collector-cpu-ns/op")
			b.ReportMetric(100*(hookedNs-plainNs)/plainNs, "overhead-%")
		}
	})
	b.Run("impl=observe", h.Observe)
}
