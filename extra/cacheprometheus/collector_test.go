package cacheprometheus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/repocache/repocache/extra/cacheprometheus"
	"github.com/repocache/repocache/internal/cachemetrics/cachemetricstest"
	"github.com/repocache/repocache/runtime"
	"github.com/repocache/repocache/runtime/cachetest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// newCache returns a Cache on the cachetest kit's Redis (REDIS_URL, a
// throwaway redis-server or miniredis) in the kit's namespace, so that the
// kit's cleanup deletes its keys, with the collector's hook for that
// namespace, and watched by the collector.
func newCache(t *testing.T, col *cacheprometheus.Collector) *runtime.Cache {
	t.Helper()
	kit := cachetest.New(t)
	if kit.Embedded {
		t.Log("on miniredis: INFO-based families are checked loosely")
	}
	c := runtime.New(kit.Client(),
		runtime.WithNamespace(kit.Namespace()),
		runtime.WithLogger(discard),
		runtime.WithStoreWait(time.Second),
		runtime.WithMetrics(col.Metrics(kit.Namespace())))
	if c.Namespace() != kit.Namespace() {
		t.Fatalf("namespace %q, want the kit's %q", c.Namespace(), kit.Namespace())
	}
	t.Cleanup(func() { cachemetricstest.Wait(t, c) }) // before the kit's cleanup closes the client
	if err := col.Watch(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// scrape serves reg with promhttp, as a service would, GETs it and parses
// the text exposition into "name{label="value",...}" → value, labels in
// name order; a histogram gives name_count and name_sum.
func scrape(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s: %s", resp.Status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName(), l.GetValue())
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key(name, labels...)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key(name, labels...)] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key(name+"_count", labels...)] = float64(m.GetHistogram().GetSampleCount())
				out[key(name+"_sum", labels...)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// key is a series' name: name{a="x",b="y"}, labels (name, value pairs)
// sorted by name.
func key(name string, labels ...string) string {
	var pairs []string
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// TestScrapeAfterWorkload runs the scripted workload of cachemetricstest
// on a real Redis, scrapes
// a promhttp endpoint and checks every event family's count against the
// workload, and the Stats families.
func TestScrapeAfterWorkload(t *testing.T) {
	col := cacheprometheus.New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	c := newCache(t, col)
	ns := c.Namespace()

	cachemetricstest.Workload(t, c)

	got := scrape(t, reg)
	s := func(name, method string, extra ...string) string {
		return key("repocache_"+name, append([]string{"namespace", ns, "method", method}, extra...)...)
	}
	want := map[string]float64{
		s("hits_total", "Repo.Find"):                            5,
		s("misses_total", "Repo.Find"):                          4,
		s("loads_total", "Repo.Find"):                           4,
		s("load_errors_total", "Repo.Find"):                     1,
		s("stale_serves_total", "Repo.Find"):                    0,
		s("sets_total", "Repo.Find"):                            3,
		s("bypasses_total", "Repo.Find"):                        1,
		s("hit_duration_seconds_count", "Repo.Find"):            5,
		s("load_duration_seconds_count", "Repo.Find"):           4,
		s("hits_total", "unknown"):                              0,
		s("misses_total", "unknown"):                            1,
		s("loads_total", "unknown"):                             1,
		s("load_errors_total", "unknown"):                       0,
		s("stale_serves_total", "unknown"):                      0,
		s("load_duration_seconds_count", "unknown"):             1,
		s("hits_total", "Repo.List"):                            0,
		s("misses_total", "Repo.List"):                          1,
		s("loads_total", "Repo.List"):                           1,
		s("load_errors_total", "Repo.List"):                     0,
		s("stale_serves_total", "Repo.List"):                    0,
		s("sets_total", "Repo.List"):                            1,
		s("load_duration_seconds_count", "Repo.List"):           1,
		s("hits_total", "Repo.Stream"):                          0,
		s("misses_total", "Repo.Stream"):                        1,
		s("loads_total", "Repo.Stream"):                         1,
		s("load_errors_total", "Repo.Stream"):                   0,
		s("stale_serves_total", "Repo.Stream"):                  0,
		s("load_duration_seconds_count", "Repo.Stream"):         1,
		s("hits_total", "Repo.Swr"):                             1,
		s("misses_total", "Repo.Swr"):                           1,
		s("loads_total", "Repo.Swr"):                            2,
		s("load_errors_total", "Repo.Swr"):                      0,
		s("stale_serves_total", "Repo.Swr"):                     1,
		s("hit_duration_seconds_count", "Repo.Swr"):             1,
		s("load_duration_seconds_count", "Repo.Swr"):            2,
		s("invalidations_total", "Repo.Delete", "kind", "tag"):  1,
		s("invalidations_total", "Repo.Delete", "kind", "key"):  1,
		s("invalidated_keys_total", "Repo.Delete"):              3,
		s("invalidation_failures_total", "Repo.Delete"):         0,
		s("invalidation_duration_seconds_count", "Repo.Delete"): 2,
		s("unrendered_total", "Repo.Delete"):                    1,
	}
	// Families whose events may or may not name the method (today the
	// SWR refresh's set and the decode and encode errors do not, and are
	// "unknown"): their totals over the methods.
	sums := map[string]float64{
		"repocache_sets_total":          7, // Repo.Find 3, project 4, Repo.List, Repo.Swr and its refresh
		"repocache_decode_errors_total": 1,
		"repocache_encode_errors_total": 1,
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
	// Nothing else from the event families: every series is in want.
	for k := range got {
		if strings.Contains(k, `method="`) {
			name := strings.SplitN(k, "{", 2)[0]
			if _, ok := want[k]; !ok && sums[name] == 0 && !strings.HasSuffix(name, "_sum") {
				t.Errorf("unexpected series %s = %v", k, got[k])
			}
		}
	}
	// A key is never a label.
	for k := range got {
		if strings.Contains(k, "project:") {
			t.Errorf("a key in a label: %s", k)
		}
	}

	// The Stats families of the watched Cache.
	n := func(name string) string { return key("repocache_"+name, "namespace", ns) }
	for name, v := range map[string]float64{"stats_ok": 1, "breaker_open": 0, "breaker_opens_total": 0, "redis_masters": 1} {
		if g, ok := got[n(name)]; !ok || g != v { // a 0 must be exported, not absent
			t.Errorf("%s = %v (exported: %v), want %v", n(name), g, ok, v)
		}
	}
	for _, name := range []string{"pool_connections", "pool_hits_total"} {
		if got[n(name)] <= 0 {
			t.Errorf("%s = %v, want > 0", n(name), got[n(name)])
		}
	}
	// The embedded miniredis reports no used_memory: the family then says
	// what Stats says.
	if st, _ := c.Stats(context.Background()); got[n("redis_used_memory_bytes")] != float64(st.Server.UsedMemory) &&
		(st.Server.UsedMemory == 0 || got[n("redis_used_memory_bytes")] <= 0) {
		t.Errorf("redis_used_memory_bytes = %v, Stats says %d", got[n("redis_used_memory_bytes")], st.Server.UsedMemory)
	}
	for _, name := range []string{"redis_evicted_keys_total", "redis_blocked_clients", "pool_idle_connections",
		"invalidation_retries_pending", "background_dropped_total", "evicting_tag_sets"} {
		if _, ok := got[n(name)]; !ok {
			t.Errorf("%s missing", n(name))
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "repocache_l1_") {
			t.Errorf("%s reported for a Cache without WithL1", k)
		}
	}
	if _, ok := got[n("reconnects_total")]; ok {
		t.Errorf("reconnects_total reported for a client not from runtime.NewClient")
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
