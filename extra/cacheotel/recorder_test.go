package cacheotel_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/repocache/repocache/extra/cacheotel"
	"github.com/repocache/repocache/internal/cachemetrics/cachemetricstest"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// otelKit is a Recorder on an in-memory reader and a span recorder.
type otelKit struct {
	rec    *cacheotel.Recorder
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
}

func newKit(t testing.TB, opts ...cacheotel.Option) *otelKit {
	t.Helper()
	k := &otelKit{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(k.reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(k.spans))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	rec, err := cacheotel.New(append([]cacheotel.Option{cacheotel.WithMeterProvider(mp), cacheotel.WithTracerProvider(tp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	k.rec = rec
	return k
}

// newCache returns a Cache on the cachetest kit's Redis (REDIS_URL, a
// throwaway redis-server or miniredis) in the kit's namespace, so that the
// kit's cleanup deletes its keys, with the recorder's hook for that
// namespace, and watched by the recorder.
func newCache(t *testing.T, rec *cacheotel.Recorder) *runtime.Cache {
	t.Helper()
	kit := cachetest.New(t)
	c := runtime.New(kit.Client(),
		runtime.WithNamespace(kit.Namespace()),
		runtime.WithLogger(discard),
		runtime.WithStoreWait(time.Second),
		runtime.WithMetrics(rec.Metrics(kit.Namespace())))
	if c.Namespace() != kit.Namespace() {
		t.Fatalf("namespace %q, want the kit's %q", c.Namespace(), kit.Namespace())
	}
	t.Cleanup(func() { cachemetricstest.Wait(t, c) }) // before the kit's cleanup closes the client
	if err := rec.Watch(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// collect reads the manual reader into "name{key=value,...}" → value,
// attributes in key order; a histogram gives name.count and name.sum.
func (k *otelKit) collect(t *testing.T) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := k.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	attrs := func(s attribute.Set) []string {
		var kv []string
		for _, a := range s.ToSlice() {
			kv = append(kv, string(a.Key), a.Value.Emit())
		}
		return kv
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, attrs(p.Attributes)...)] = float64(p.Value)
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, attrs(p.Attributes)...)] = p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, attrs(p.Attributes)...)] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, attrs(p.Attributes)...)] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name+".count", attrs(p.Attributes)...)] = float64(p.Count)
					out[key(m.Name+".sum", attrs(p.Attributes)...)] = p.Sum
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// key is a series' name: name{a="x",b="y"}, attributes (key, value
// pairs) sorted by key.
func key(name string, kv ...string) string {
	var pairs []string
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// TestWorkload runs the scripted workload of cachemetricstest (that of
// cacheprometheus's TestScrapeAfterWorkload) on a real Redis and reads the
// same counts from an in-memory reader, and the spans of its misses, loads, stale serve and
// invalidations from a span recorder.
func TestWorkload(t *testing.T) {
	k := newKit(t)
	c := newCache(t, k.rec)
	ns := c.Namespace()

	cachemetricstest.Workload(t, c)

	got := k.collect(t)
	s := func(name, method string, extra ...string) string {
		return key("repocache."+name, append([]string{"repocache.namespace", ns, "repocache.method", method}, extra...)...)
	}
	kind := "repocache.invalidation.kind"
	want := map[string]float64{
		s("hits", "Repo.Find"):                          5,
		s("misses", "Repo.Find"):                        4,
		s("loads", "Repo.Find"):                         4,
		s("load.errors", "Repo.Find"):                   1,
		s("sets", "Repo.Find"):                          3,
		s("bypasses", "Repo.Find"):                      1,
		s("hit.duration.count", "Repo.Find"):            5,
		s("load.duration.count", "Repo.Find"):           4,
		s("misses", "unknown"):                          1,
		s("loads", "unknown"):                           1,
		s("load.errors", "unknown"):                     0,
		s("load.duration.count", "unknown"):             1,
		s("misses", "Repo.List"):                        1,
		s("loads", "Repo.List"):                         1,
		s("load.errors", "Repo.List"):                   0,
		s("sets", "Repo.List"):                          1,
		s("load.duration.count", "Repo.List"):           1,
		s("misses", "Repo.Stream"):                      1,
		s("loads", "Repo.Stream"):                       1,
		s("load.errors", "Repo.Stream"):                 0,
		s("load.duration.count", "Repo.Stream"):         1,
		s("hits", "Repo.Swr"):                           1,
		s("misses", "Repo.Swr"):                         1,
		s("loads", "Repo.Swr"):                          2,
		s("load.errors", "Repo.Swr"):                    0,
		s("stale_serves", "Repo.Swr"):                   1,
		s("hit.duration.count", "Repo.Swr"):             1,
		s("load.duration.count", "Repo.Swr"):            2,
		s("invalidations", "Repo.Delete", kind, "tag"):  1,
		s("invalidations", "Repo.Delete", kind, "key"):  1,
		s("invalidated_keys", "Repo.Delete"):            3,
		s("invalidation.duration.count", "Repo.Delete"): 2,
		s("unrendered", "Repo.Delete"):                  1,
	}
	// Instruments whose events may or may not name the method (today the
	// SWR refresh's set and the decode and encode errors do not, and are
	// "unknown"): their totals over the methods.
	sums := map[string]float64{
		"repocache.sets":          7, // Repo.Find 3, project 4, Repo.List, Repo.Swr and its refresh
		"repocache.decode_errors": 1,
		"repocache.encode_errors": 1,
	}
	for name, v := range sums {
		var sum float64
		for k, g := range got {
			if strings.HasPrefix(k, name+"{") {
				sum += g
			}
		}
		if sum != v {
			t.Errorf("%s: %v over the methods, want %v", name, sum, v)
		}
	}
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s missing", k)
		case g != v:
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	for k, v := range got {
		if strings.Contains(k, "repocache.method=") && !strings.Contains(k, ".sum{") {
			if _, ok := want[k]; !ok && sums[strings.SplitN(k, "{", 2)[0]] == 0 {
				t.Errorf("unexpected series %s = %v", k, v)
			}
		}
		if strings.Contains(k, "project:") {
			t.Errorf("a key in an attribute: %s", k)
		}
	}

	// The Stats instruments of the watched Cache.
	n := func(name string) string { return key("repocache."+name, "repocache.namespace", ns) }
	for name, v := range map[string]float64{"stats.ok": 1, "breaker.open": 0, "breaker.opens": 0, "redis.masters": 1} {
		if g, ok := got[n(name)]; !ok || g != v { // a 0 must be exported, not absent
			t.Errorf("%s = %v (exported: %v), want %v", n(name), g, ok, v)
		}
	}
	for _, name := range []string{"pool.connections", "pool.hits"} {
		if got[n(name)] <= 0 {
			t.Errorf("%s = %v, want > 0", n(name), got[n(name)])
		}
	}
	// The embedded miniredis reports no used_memory: the instrument then
	// says what Stats says.
	if st, _ := c.Stats(context.Background()); got[n("redis.used_memory")] != float64(st.Server.UsedMemory) &&
		(st.Server.UsedMemory == 0 || got[n("redis.used_memory")] <= 0) {
		t.Errorf("redis.used_memory = %v, Stats says %d", got[n("redis.used_memory")], st.Server.UsedMemory)
	}
	for _, name := range []string{"redis.evicted_keys", "redis.blocked_clients", "pool.idle_connections", "pool.wait",
		"invalidation.retries.pending", "background_dropped", "evicting_tag_sets"} {
		if _, ok := got[n(name)]; !ok {
			t.Errorf("%s missing", n(name))
		}
	}
	if _, ok := got[n("reconnects")]; ok {
		t.Errorf("reconnects reported for a client not from runtime.NewClient")
	}

	// Spans: one per miss, load, stale serve and invalidation; none for
	// the hits, sets or errors.
	type spanKey struct{ name, method, result string }
	spans := map[spanKey]int{}
	var loadSpanSeconds float64
	for _, sp := range k.spans.Ended() {
		a := map[attribute.Key]attribute.Value{}
		for _, kv := range sp.Attributes() {
			a[kv.Key] = kv.Value
		}
		if a[cacheotel.NamespaceKey].AsString() != ns {
			t.Errorf("span %s: namespace %q, want %q", sp.Name(), a[cacheotel.NamespaceKey].AsString(), ns)
		}
		if sp.Parent().IsValid() {
			t.Errorf("span %s has a parent", sp.Name())
		}
		if _, ok := a[cacheotel.KeyKey]; ok {
			t.Errorf("span %s has the key without WithKeys", sp.Name())
		}
		spans[spanKey{sp.Name(), a[cacheotel.MethodKey].AsString(), a[cacheotel.ResultKey].AsString()}]++
		switch sp.Name() {
		case "repocache.load":
			if a[cacheotel.MethodKey].AsString() == "Repo.Find" {
				loadSpanSeconds += sp.EndTime().Sub(sp.StartTime()).Seconds()
			}
			failed := sp.Status().Code == codes.Error
			if failed != (len(sp.Events()) == 1 && sp.Events()[0].Name == "exception") {
				t.Errorf("load span: status %v with events %v", sp.Status(), sp.Events())
			}
			if failed {
				spans[spanKey{name: "failed load"}]++
			}
		case "repocache.invalidate":
			kv := spanKey{sp.Name(), a[cacheotel.KindKey].AsString(), strconv.FormatInt(a[cacheotel.InvalidatedKeysKey].AsInt64(), 10)}
			spans[kv]++
		}
	}
	for sk, n := range map[spanKey]int{
		{"repocache.miss", "Repo.Find", "miss"}: 4, {"repocache.load", "Repo.Find", ""}: 4,
		{"repocache.miss", "unknown", "miss"}: 1, {"repocache.load", "unknown", ""}: 1,
		{"repocache.miss", "Repo.List", "miss"}: 1, {"repocache.load", "Repo.List", ""}: 1,
		{"repocache.miss", "Repo.Stream", "miss"}: 1, {"repocache.load", "Repo.Stream", ""}: 1,
		{"repocache.miss", "Repo.Swr", "miss"}: 1, {"repocache.load", "Repo.Swr", ""}: 2,
		{"repocache.stale", "Repo.Swr", "stale"}:    1,
		{"repocache.invalidate", "Repo.Delete", ""}: 2,
		{"repocache.invalidate", "tag", "2"}:        1,
		{"repocache.invalidate", "key", "1"}:        1,
		{name: "failed load"}:                       1,
	} {
		if spans[sk] != n {
			t.Errorf("%d spans %+v, want %d", spans[sk], sk, n)
		}
		delete(spans, sk)
	}
	if len(spans) > 0 {
		t.Errorf("unexpected spans: %v", spans)
	}
	// A span starts the event's Duration before its end: the load spans
	// last what the load histogram recorded.
	if sum := got[s("load.duration.sum", "Repo.Find")]; math.Abs(sum-loadSpanSeconds) > 1e-6 {
		t.Errorf("load spans of Repo.Find last %vs, the histogram says %vs", loadSpanSeconds, sum)
	}
}
