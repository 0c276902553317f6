package cacheotel_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type benchArgs struct{ id string }

// BenchmarkHit measures what the Recorder adds to a hit (on the OTel SDK,
// with a manual reader and a span recorder; no hit spans, the default):
// GetCachedWith hits of one key through two Caches on the same client and
// namespace, one with no metrics hook, one with the Recorder's, in the same
// run. observe is the hook alone, on a hit event.
//
//	go test -run='^$' -bench='^BenchmarkHit$' -benchtime=20000x -count=10 .
func BenchmarkHit(b *testing.B) {
	kit := cachetest.New(b)
	k := newKit(b)
	hook := k.rec.Metrics(kit.Namespace())
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
	b.Run("impl=recorder", func(b *testing.B) { hit(b, hooked) })
	b.Run("impl=observe", func(b *testing.B) {
		b.ReportAllocs()
		e := runtime.Event{Op: runtime.OpHit, Key: "project:42", Duration: 300 * time.Microsecond, Method: "Repository.FindProject"}
		for range b.N {
			hook.Observe(e)
		}
	})
}
