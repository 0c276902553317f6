package cacheprometheus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
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
	t.Cleanup(func() { wait(t, c) }) // before the kit's cleanup closes the client
	if err := col.Watch(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func wait(t *testing.T, c *runtime.Cache) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("background work: %v", err)
	}
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

type project struct {
	ID   int
	Name string
}

// unencodable cannot be encoded by MessagePack: loading it is an encode
// error.
type unencodable struct{ C chan int }

var errDB = errors.New("database down")

// TestScrapeAfterWorkload runs a scripted workload on a real Redis, scrapes
// a promhttp endpoint and checks every event family's count against the
// workload, and the Stats families.
func TestScrapeAfterWorkload(t *testing.T) {
	col := cacheprometheus.New()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	c := newCache(t, col)
	ns := c.Namespace()
	ctx := context.Background()

	find := func(ctx context.Context, id int) (project, error) { return project{ID: id, Name: "p"}, nil }
	get := func(id int, tag, method string) {
		t.Helper()
		opts := []runtime.CallOption{runtime.TTL(time.Minute), runtime.Tags(tag)}
		if method != "" {
			opts = append(opts, runtime.Method(method))
		}
		if _, err := runtime.GetCachedWith(ctx, c, "project:"+strconv.Itoa(id), id, find, opts...); err != nil {
			t.Fatal(err)
		}
	}
	// Repo.Find: 3 misses (each loads and stores), then 5 hits; projects
	// 1 and 2 carry tag t:a, project 3 t:b.
	get(1, "t:a", "Repo.Find")
	get(2, "t:a", "Repo.Find")
	get(3, "t:b", "Repo.Find")
	wait(t, c)
	for _, id := range []int{1, 1, 1, 2, 2} {
		get(id, "t:a", "Repo.Find")
	}
	// Repo.Find: a load error (a miss, a load, no store).
	_, err := runtime.GetCached(ctx, c, "project:err", func(context.Context) (project, error) { return project{}, errDB },
		runtime.TTL(time.Minute), runtime.Method("Repo.Find"))
	if !errors.Is(err, errDB) {
		t.Fatalf("load error: got %v", err)
	}
	// A call that names no method: a miss, a load and a set under "unknown".
	get(4, "t:c", "")
	// Repo.List: an undecodable entry (a decode error, which names no
	// method), then its miss, load and set.
	if err := c.Client().Set(ctx, c.RedisKey("list:bad"), "not a cache entry", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.GetCached(ctx, c, "list:bad", func(context.Context) ([]int, error) { return []int{1}, nil },
		runtime.TTL(time.Minute), runtime.Method("Repo.List")); err != nil {
		t.Fatal(err)
	}
	// Repo.Stream: a value that cannot be encoded (an encode error, which
	// names no method): a miss and a load, no set.
	if _, err := runtime.GetCached(ctx, c, "stream:1", func(context.Context) (unencodable, error) { return unencodable{C: make(chan int)}, nil },
		runtime.TTL(time.Minute), runtime.Method("Repo.Stream")); err != nil {
		t.Fatal(err)
	}
	// Repo.Swr: a miss, then a stale hit whose refresh loads again and
	// stores (the refresh's set names no method).
	swr := func(context.Context) (string, error) { return "v", nil }
	for i := range 2 {
		if _, err := runtime.GetCached(ctx, c, "swr:1", swr, runtime.TTL(time.Millisecond), runtime.SWR(time.Minute), runtime.Method("Repo.Swr")); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			wait(t, c)
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait(t, c)
	// Repo.Delete: tag t:a drops projects 1 and 2, a key invalidation
	// drops project 3; an invalidation template it could not render.
	del := runtime.WithMethod(ctx, "Repo.Delete")
	if err := c.InvalidateTags(del, "t:a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(del, "project:3"); err != nil {
		t.Fatal(err)
	}
	c.Unrendered("Repo.Delete", "project:{{.Owner.ID}}")
	// Repo.Find: a call whose key could not be built.
	c.Bypass("Repo.Find", "nil owner")
	wait(t, c)

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
		if got[n(name)] != v {
			t.Errorf("%s = %v, want %v", n(name), got[n(name)], v)
		}
	}
	for _, name := range []string{"pool_connections", "pool_hits_total", "redis_used_memory_bytes"} {
		if got[n(name)] <= 0 {
			t.Errorf("%s = %v, want > 0", n(name), got[n(name)])
		}
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
