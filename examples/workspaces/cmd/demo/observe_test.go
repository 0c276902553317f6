package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// series is one sample of a Prometheus text exposition: a family's name,
// its labels and its value.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// scrape GETs /metrics and parses its samples, checking that the route
// carries none of the API's headers (X-Cache, rate limits).
func scrape(t *testing.T, base string) []series {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if xc, rl := resp.Header.Get("X-Cache"), resp.Header.Get("X-RateLimit-Limit"); xc != "" || rl != "" {
		t.Errorf("GET /metrics: X-Cache %q, X-RateLimit-Limit %q: want neither", xc, rl)
	}
	var out []series
	for l := range strings.SplitSeq(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("/metrics: unparsable line %q", l)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("/metrics: line %q: %v", l, err)
		}
		s := series{name: m[1], labels: map[string]string{}, value: v}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[p[1]] = p[2]
		}
		out = append(out, s)
	}
	return out
}

// sum adds the samples of family name, by its method label.
func sum(ss []series, name string) (total float64, byMethod map[string]float64) {
	byMethod = map[string]float64{}
	for _, s := range ss {
		if s.name == name {
			total += s.value
			byMethod[s.labels["method"]] += s.value
		}
	}
	return total, byMethod
}

// summaryCounts parses the report's summary line.
func summaryCounts(t *testing.T, report string) (hits, misses, loads int) {
	t.Helper()
	m := regexp.MustCompile(`summary: \d+ requests; (\d+) hits, (\d+) misses, (\d+) loads`).FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("no summary:\n%s", report)
	}
	hits, _ = strconv.Atoi(m[1])
	misses, _ = strconv.Atoi(m[2])
	loads, _ = strconv.Atoi(m[3])
	return hits, misses, loads
}

// TestServeMetrics: with -serve, the last lines give the addresses of the
// live page, /metrics, /stats and /healthz; /metrics counts per method
// what /stats counts in all (nothing runs in between), at least what the
// summary reported, and one more hit of Repository.FindWorkspace after one
// more read of a workspace, and nothing else.
func TestServeMetrics(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	t.Setenv("DATABASE_URL", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &watcher{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-serve"}, w) }()
	base := w.waitFor(t, `\nmetrics: +(http://\S+)/metrics `)[1]
	ws := w.waitFor(t, `try: curl -i \S+/workspaces/(\d+)/projects`)[1]
	report := w.String()
	for _, want := range []string{
		"\nlive page: " + base + "/debug/cache ", "\nstats:     " + base + "/stats ", "\nhealth:    " + base + "/healthz ",
		"\notel:      off: make demo DEMOFLAGS=-otel ",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	sumHits, sumMisses, sumLoads := summaryCounts(t, report)

	before := scrape(t, base)
	resp, err := http.Get(base + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Hits, Misses, Loads float64 }
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	hits, hitsBy := sum(before, "repocache_hits_total")
	misses, _ := sum(before, "repocache_misses_total")
	loads, loadsBy := sum(before, "repocache_loads_total")
	if hits != st.Hits || misses != st.Misses || loads != st.Loads {
		t.Errorf("/metrics: %v hits, %v misses, %v loads; /stats: %+v", hits, misses, loads, st)
	}
	if hits < float64(sumHits) || misses < float64(sumMisses) || loads < float64(sumLoads) {
		t.Errorf("/metrics: %v hits, %v misses, %v loads: fewer than the summary's %d, %d, %d", hits, misses, loads, sumHits, sumMisses, sumLoads)
	}
	if hitsBy["Repository.FindWorkspace"] < 1 || loadsBy["Repository.FindWorkspace"] < 1 || hitsBy["unknown"] != 0 {
		t.Errorf("repocache_hits_total by method %v, loads %v: want Repository.FindWorkspace's, and none unknown", hitsBy, loadsBy)
	}
	// The event series are labelled with the namespace the Stats series
	// (from Watch) have: the Cache's own.
	var ns string
	for _, s := range before {
		if s.name == "repocache_stats_ok" {
			ns = s.labels["namespace"]
			if s.value != 1 {
				t.Errorf("repocache_stats_ok = %v", s.value)
			}
		}
	}
	if !strings.HasPrefix(ns, "app:dev:@") {
		t.Fatalf("repocache_stats_ok's namespace %q: want the Cache's, app:dev:@<database>", ns)
	}
	for _, s := range before {
		if s.name == "repocache_hits_total" && s.labels["namespace"] != ns {
			t.Errorf("%s %v: namespace is not %q", s.name, s.labels, ns)
		}
	}

	resp, err = http.Get(fmt.Sprintf("%s/workspaces/%s", base, ws))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if xc := resp.Header.Get("X-Cache"); resp.StatusCode != 200 || xc != "hit" {
		t.Fatalf("GET /workspaces/%s: %d, X-Cache %q", ws, resp.StatusCode, xc)
	}
	after := scrape(t, base)
	for _, fam := range []string{"repocache_hits_total", "repocache_misses_total", "repocache_loads_total"} {
		_, b := sum(before, fam)
		_, a := sum(after, fam)
		for method := range a {
			want := b[method]
			if fam == "repocache_hits_total" && method == "Repository.FindWorkspace" {
				want++
			}
			if a[method] != want {
				t.Errorf("%s{method=%q} went from %v to %v after one hit of a workspace, want %v", fam, method, b[method], a[method], want)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// otelRecord is one object the OTel stdout exporters wrote: a span
// (stdouttrace) or one export of the metrics (stdoutmetric).
type otelRecord struct {
	Name       string
	Attributes []otelAttr
	Status     struct{ Code string }

	ScopeMetrics []struct {
		Metrics []struct {
			Name string
			Data struct {
				DataPoints []struct {
					Attributes []otelAttr
					Value      json.RawMessage // a number for sums; absent for histograms
				}
			}
		}
	}
}

type otelAttr struct {
	Key   string
	Value struct{ Value any }
}

func attr(as []otelAttr, key string) string {
	for _, a := range as {
		if a.Key == key {
			return fmt.Sprint(a.Value.Value)
		}
	}
	return ""
}

// TestDemoOTel: -otel -otel-out writes the spans and metrics to the file,
// nothing of them to the report, and flushes them at exit: the last export
// of the metrics names the repocache instruments, and counts as many misses
// and loads as there are spans of them.
func TestDemoOTel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otel.jsonl")
	report := demo(t, "-otel", "-otel-out", path)
	for _, want := range []string{"otel: metrics every ", "otel:      on: ", "as JSON in " + path + "\n"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, `"ScopeMetrics"`) || strings.Contains(report, `"SpanContext"`) {
		t.Errorf("the OTel output went to the report:\n%s", report)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spans := map[string]int{}
	spanMethods := map[string]bool{}
	var exports int
	var last map[string]float64 // the last export: instrument name -> sum of its points
	dec := json.NewDecoder(f)
	for {
		var r otelRecord
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if r.ScopeMetrics == nil {
			spans[r.Name]++
			spanMethods[r.Name+" "+attr(r.Attributes, "repocache.method")] = true
			continue
		}
		exports++
		last = map[string]float64{}
		for _, sm := range r.ScopeMetrics {
			for _, m := range sm.Metrics {
				last[m.Name] += 0
				for _, p := range m.Data.DataPoints {
					var v float64
					if json.Unmarshal(p.Value, &v) == nil {
						last[m.Name] += v
					}
				}
			}
		}
	}
	if exports == 0 {
		t.Fatalf("%s: no metrics exported (spans: %v)", path, spans)
	}
	for _, name := range []string{"repocache.hits", "repocache.misses", "repocache.loads", "repocache.sets",
		"repocache.hit.duration", "repocache.load.duration", "repocache.invalidated_keys", "repocache.stats.ok", "repocache.pool.connections"} {
		if _, ok := last[name]; !ok {
			t.Errorf("the last export has no %s: %v", name, last)
		}
	}
	if !spanMethods["repocache.miss Repository.FindWorkspace"] || !spanMethods["repocache.load Repository.FindWorkspace"] {
		t.Errorf("no miss and load spans of Repository.FindWorkspace: %v", spanMethods)
	}
	hits, misses, loads := summaryCounts(t, report)
	if last["repocache.hits"] < float64(hits) || last["repocache.misses"] != float64(spans["repocache.miss"]) ||
		last["repocache.loads"] != float64(spans["repocache.load"]) || spans["repocache.miss"] < misses || spans["repocache.load"] < loads {
		t.Errorf("last export: %v hits, %v misses, %v loads; spans %v; summary %d hits, %d misses, %d loads",
			last["repocache.hits"], last["repocache.misses"], last["repocache.loads"], spans, hits, misses, loads)
	}
	if last["repocache.stats.ok"] != 1 {
		t.Errorf("repocache.stats.ok = %v in the last export: the Stats were not read (Redis closed before the flush?)", last["repocache.stats.ok"])
	}
}
