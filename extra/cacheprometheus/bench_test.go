package cacheprometheus_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/repocache/repocache/extra/cacheprometheus"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
)

// cpuTime is this process's user+system CPU time: wall time on a loopback
// round trip mostly measures the scheduler, CPU time the work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type benchArgs struct{ id string }

// BenchmarkHit measures what the collector adds to a hit: GetCachedWith hits
// of one key through two Caches on the same client and namespace (so the
// same stored value), one with no metrics hook, one with a Collector's,
// in the same run. interleaved alternates the two in blocks and reports the
// CPU time of each; observe is the hook alone, on a hit event.
//
//	go test -run='^$' -bench='^BenchmarkHit$' -benchtime=20000x -count=10 . | tee hit.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl hit.txt
func BenchmarkHit(b *testing.B) {
	kit := cachetest.New(b)
	col := cacheprometheus.New()
	prometheus.NewRegistry().MustRegister(col)
	hook := col.Metrics(kit.Namespace())
	plain := runtime.New(kit.Client(), runtime.WithNamespace(kit.Namespace()), runtime.WithLogger(discard))
	hooked := runtime.New(kit.Client(), runtime.WithNamespace(kit.Namespace()), runtime.WithLogger(discard),
		runtime.WithMetrics(hook))
	ctx := context.Background()
	want := project{ID: 42, Name: "Acme Corporation"}
	if err := runtime.Set(ctx, plain, "project:42", want, runtime.TTL(time.Hour)); err != nil {
		b.Fatal(err)
	}
	load := func(context.Context, benchArgs) (project, error) { return want, nil }
	hit := func(b *testing.B, c *runtime.Cache) {
		b.ReportAllocs()
		a := benchArgs{id: "42"}
		start := cpuTime()
		b.ResetTimer()
		for range b.N {
			v, err := runtime.GetCachedWith(ctx, c, "project:42", a, load,
				runtime.TTL(5*time.Minute), runtime.Tags("project:42"), runtime.Method("Repository.FindProject"))
			if err != nil || v.ID != 42 {
				b.Fatal(v, err)
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
	b.Run("impl=no-hook", func(b *testing.B) { hit(b, plain) })
	b.Run("impl=collector", func(b *testing.B) { hit(b, hooked) })
	// interleaved alternates blocks of hits without and with the hook, so
	// that a machine whose load drifts during the run weighs on both alike,
	// and reports the CPU time of each and the difference in percent.
	b.Run("impl=interleaved", func(b *testing.B) {
		a := benchArgs{id: "42"}
		const block = 500
		var cpu [2]time.Duration
		var n [2]int
		for i := 0; i < b.N; i += block {
			m := (i / block) % 2
			c := []*runtime.Cache{plain, hooked}[m]
			start := cpuTime()
			for j := i; j < min(i+block, b.N); j++ {
				if _, err := runtime.GetCachedWith(ctx, c, "project:42", a, load,
					runtime.TTL(5*time.Minute), runtime.Tags("project:42"), runtime.Method("Repository.FindProject")); err != nil {
					b.Fatal(err)
				}
				n[m]++
			}
			cpu[m] += cpuTime() - start
		}
		if n[0] > 0 && n[1] > 0 {
			plainNs, hookedNs := float64(cpu[0])/float64(n[0]), float64(cpu[1])/float64(n[1])
			b.ReportMetric(plainNs, "no-hook-cpu-ns/op")
			b.ReportMetric(hookedNs, "collector-cpu-ns/op")
			b.ReportMetric(100*(hookedNs-plainNs)/plainNs, "overhead-%")
		}
	})
	b.Run("impl=observe", func(b *testing.B) {
		b.ReportAllocs()
		e := runtime.Event{Op: runtime.OpHit, Key: "project:42", Duration: 300 * time.Microsecond, Method: "Repository.FindProject"}
		for range b.N {
			hook.Observe(e)
		}
	})
}
